"""
# image_index: build, evaluate, publish and roll out the image-search index

Turns the marketplace catalog into a new, versioned **ScaNN index** of CNN image embeddings, hourly
(`IMAGESEARCH_SCHEDULE`) or when triggered here with the form below.

| task | what it does |
|---|---|
| `snapshot` | validates the catalog, finds new or changed items from metadata (no download), shards them |
| `shards` | the work shard ids `snapshot` wrote (none when nothing is new) |
| `shard.preprocess` | per shard: fetches, hashes and fits the new or changed images (same bytes as before: reused) |
| `shard.embed` | per shard: embeds the new images (a GPU pod in Kubernetes) |
| `build_index` | gathers the reused vectors from the last version (one pass) and the new ones, builds the ScaNN index |
| `evaluate` | recall@10, near-duplicate top-1, category precision@10 vs floors and vs the serving version; fails the run |
| `publish` | seals the version in the model repository, `_COMMIT` last; updates the `<repository>/indexes` Asset |
| `deploy` | GitOps bump of the overlay, which Argo CD rolls out; *skipped* (why: in its log) while a rollback pins it |
| `run_note` | writes the run's note: version, metrics, gate verdict, what was published and deployed, with links |

Each task runs one `tasks` CLI (`python -m tasks.<step> --workspace ...`): as a Kubernetes pod with
`IMAGESEARCH_RUNNER=kubernetes`, else as a local subprocess with the same argv. The version is the
run's `run_after` in UTC plus a suffix hashed from the run id (e.g. `20261127T050000Z-1a2b3c4d`), so
retries redo the same version in the same workspace (`<model repository>/runs/<version>`) and two runs
never share one. Failed tasks retry with exponential backoff.

When the catalog snapshot and the model are those of the version the GitOps overlay serves, the run
says "nothing changed" in every task's log and summary and builds, publishes and commits nothing.

**Trigger form**: the catalog, a full rebuild (no reuse of the last version's embeddings), an item
limit (0: all), whether to publish and to deploy, and the quality gates. Nothing is published when a
gate fails; nothing is deployed unless it was published.

**"Unpause on trigger"** (ticked by default in the form) unpauses this DAG, and an unpaused DAG also
runs on its schedule: besides your run, the scheduler queues a run for the latest full hour straight
away (catchup is off, so only that one), then one every hour, each with the default params: a full,
publishing, *deploying* run. Unticked, your run waits, queued, until the DAG is unpaused (a paused
DAG runs nothing). For triggered runs only, give the DAG no schedule (`IMAGESEARCH_SCHEDULE=none`).
Locally, `make airflow` starts with the DAG paused (`make airflow AIRFLOW_ARGS=--unpause` to schedule it).

**After a run**: the run's note (and `run_note`'s log) names the version, its metrics and the gate
verdict; `publish` links to the version in the model repository, `deploy` to its GitOps commit
(`IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE`), both to the search page. A task that fails after its
retries emails `IMAGESEARCH_ALERT_EMAIL_TO`. A skipped task's log says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, TriggerRule, chain, task, task_group

from imagesearch.settings import Settings
from plugins.hooks.model_repository import ModelRepositoryHook
from plugins.notifiers import FailureEmailNotifier
from plugins.operators.factory import step_operator
from plugins.run_note import write_run_note
from plugins.runs import VERSION, WORKSPACE, run_macros, schedule, shard_ids

settings = Settings.from_env()
repository = ModelRepositoryHook(settings.model_repository)
REPOSITORY = {"--repository": repository.uri}
FULL_REBUILD = {"--full-rebuild": "{{ params.full_rebuild }}"}

with DAG(
    dag_id="image_index",
    description="Catalog -> embeddings -> ScaNN index -> evaluated, published version -> GitOps bump",
    doc_md=__doc__,
    schedule=schedule(settings),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    tags=["imagesearch", "index", settings.runner],
    user_defined_macros=run_macros(repository),
    default_args={
        "owner": "search-platform",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=settings.max_retry_delay_s),
        "execution_timeout": timedelta(minutes=5),
        "on_failure_callback": FailureEmailNotifier(),  # after the last try
    },
    params={
        "catalog_uri": Param(settings.catalog_uri, type="string", minLength=1, title="Catalog URI",
                             description="CSV, JSONL or Parquet catalog: a local path, file:// or gs:// URI."),
        "full_rebuild": Param(False, type="boolean", title="Full rebuild",
                              description="Embed every image again instead of reusing the last version's embeddings."),
        "limit": Param(0, type="integer", minimum=0, title="Item limit",
                       description="Index at most this many catalog items (0: all of them)."),
        "publish": Param(True, type="boolean", title="Publish",
                         description="Publish the evaluated index as a new version in the model repository."),
        "deploy": Param(True, type="boolean", title="Deploy",
                        description="Commit the published version to the GitOps repo (Argo CD rolls it out)."),
        "min_recall_at_10": Param(settings.min_recall_at_10, type="number", minimum=0, maximum=1,
                                  title="Minimum recall@10", description="Quality gate: ScaNN vs exact search."),
        "min_near_duplicate_top1": Param(settings.min_near_duplicate_top1, type="number", minimum=0, maximum=1,
                                         title="Minimum near-duplicate top-1",
                                         description="Quality gate: transformed copies must find their original first."),
        **{
            f"max_regression_{metric}": Param(
                getattr(settings, f"max_regression_{metric}"), type="number", minimum=0, maximum=1,
                title=f"Largest drop in {label} vs serving",
                description=f"Regression gate: the candidate's {label} may be at most this much lower than the "
                            "version the overlay serves, both scored on the same query sample.")
            for metric, label in (("recall_at_10", "recall@10"), ("near_duplicate_top1", "near-duplicate top-1"),
                                  ("category_precision_at_10", "category precision@10"))
        },
    },
) as dag:
    snapshot = step_operator(
        "snapshot", settings, workspace=WORKSPACE, flags=FULL_REBUILD,
        options={"--catalog": "{{ params.catalog_uri }}", **REPOSITORY, "--version": VERSION, "--limit": "{{ params.limit }}"},
    )
    shards = task(task_id="shards", doc_md=shard_ids.__doc__)(shard_ids)(snapshot.output)

    @task_group(group_id="shard", tooltip="Per shard: preprocess, then embed (one mapped copy of the group per shard)")
    def per_shard(shard: int) -> None:
        chain(
            step_operator("preprocess", settings, workspace=WORKSPACE, shard=shard, options=REPOSITORY, flags=FULL_REBUILD),
            # auto: CUDA when the node has a GPU (embed's pod asks for one), so pods and local runs share one argv.
            step_operator("embed", settings, workspace=WORKSPACE, shard=shard, options={**REPOSITORY, "--device": "auto"}),
        )

    chain(
        shards,
        per_shard.expand(shard=shards),
        # Runs when no shard was mapped (nothing new to fetch: every vector is reused), not only after all succeeded.
        step_operator("build_index", settings, workspace=WORKSPACE, trigger_rule=TriggerRule.NONE_FAILED),
        step_operator("evaluate", settings, workspace=WORKSPACE, options={
            "--min-recall": "{{ params.min_recall_at_10 }}",
            "--min-near-duplicate-top1": "{{ params.min_near_duplicate_top1 }}",
            "--max-regression-recall": "{{ params.max_regression_recall_at_10 }}",
            "--max-regression-near-duplicate-top1": "{{ params.max_regression_near_duplicate_top1 }}",
            "--max-regression-category-precision": "{{ params.max_regression_category_precision_at_10 }}",
            **REPOSITORY, "--serving-overlay": settings.gitops_overlay,
        }),
        step_operator("publish", settings, workspace=WORKSPACE, options=REPOSITORY, enabled="{{ params.publish }}",
                      outlets=[repository.index_asset()]),
        step_operator("deploy", settings, workspace=WORKSPACE, options=REPOSITORY,
                      enabled="{{ params.publish and params.deploy }}"),
        # A teardown: it runs however the others ended, and the run's state stays theirs.
        task(task_id="run_note", doc_md=write_run_note.__doc__, show_return_value_in_logs=False)(write_run_note)(
            version=VERSION, workspace=WORKSPACE).as_teardown(),
    )
