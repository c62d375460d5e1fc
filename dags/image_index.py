"""
# image_index: build, evaluate, publish and roll out the image-search index

Turns the marketplace catalog into a new, versioned **ScaNN index** of CNN image embeddings, hourly
(`IMAGESEARCH_SCHEDULE`) or when triggered here with the form below.

<!-- the tasks: a table made from tasks/pipeline.py -->

Each step task runs one `tasks` CLI (`python -m tasks.steps.<module> --workspace ...`): as a Kubernetes pod with
`IMAGESEARCH_RUNNER=kubernetes`, else as a local subprocess with the same argv. The steps, their arguments,
pod sizes, timeouts and retries are declared once, in `tasks/pipeline.py`; this file only wires them. The version is the
run's `run_after` in UTC plus a suffix hashed from the run id (e.g. `20261127T050000Z-1a2b3c4d`), so
retries redo the same version in the same workspace (`<model repository>/runs/<version>`) and two runs
never share one. A step that failed for a transient reason (network, timeout, a 5xx) is retried with
exponential backoff; one that failed for good (bad input, a failed gate, a refused version) is not.

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

from datetime import timedelta

from airflow.sdk import DAG, BaseOperator, TriggerRule, chain, task, task_group

from imagesearch.settings import get_settings
from plugins.hooks.model_repository import ModelRepositoryHook
from plugins.operators.factory import dag_arguments, step_operator
from plugins.run_note import write_run_note
from plugins.runs import VERSION, WORKSPACE, dag_params, run_macros, schedule, shard_ids, step_inputs
from tasks.pipeline import Step, stages

settings = get_settings()
repository = ModelRepositoryHook(settings.storage.model_repository)
inputs = step_inputs(settings, repository)
before_shards, per_shard_steps, after_shards = stages()


def step_task(step: Step, **kwargs: object) -> BaseOperator:
    outlets = [repository.index_asset()] if step.publishes_version else []
    return step_operator(step, settings, workspace=WORKSPACE, inputs=inputs, outlets=outlets, **kwargs)


def task_table() -> str:
    """The DAG's tasks in order, each with its doc: the steps' from their declaration."""
    rows = [*((step.name, step.doc) for step in before_shards),
            ("shards", "The work shard ids the steps before it wrote (none when nothing is new)."),
            *((f"shard.{step.name}", step.doc) for step in per_shard_steps),
            *((step.name, step.doc) for step in after_shards),
            ("run_note", "Writes the run's note: version, metrics, gate verdict, what was published and deployed, with links.")]
    return "\n".join(["| task | what it does |", "|---|---|", *(f"| `{task}` | {doc} |" for task, doc in rows)])


with DAG(
    dag_id="image_index",
    description="Catalog -> embeddings -> ScaNN index -> evaluated, published version -> GitOps bump",
    doc_md=(__doc__ or "").replace("<!-- the tasks: a table made from tasks/pipeline.py -->", task_table()),
    schedule=schedule(settings),
    tags=["imagesearch", "index", settings.pipeline.runner],
    params=dag_params(settings),
    # execution_timeout: the tasks that are not steps (shards, run_note); each step has its own
    **dag_arguments(settings, run_macros(repository), execution_timeout=timedelta(minutes=5)),
) as dag:
    head = [step_task(step) for step in before_shards]
    shards = task(task_id="shards", doc_md=shard_ids.__doc__)(shard_ids)(head[-1].output)

    @task_group(group_id="shard", tooltip="Per shard: the per-shard steps in order (one mapped copy of the group per shard)")
    def per_shard(shard: int) -> None:
        chain(*(step_task(step, shard=shard) for step in per_shard_steps))

    chain(
        *head,
        shards,
        per_shard.expand(shard=shards),
        # The first step after the shards runs when no shard was mapped (nothing new to fetch: every vector is
        # reused), not only after all succeeded.
        *(step_task(step, **({"trigger_rule": TriggerRule.NONE_FAILED} if index == 0 else {}))
          for index, step in enumerate(after_shards)),
        # A teardown: it runs however the others ended, and the run's state stays theirs.
        task(task_id="run_note", doc_md=write_run_note.__doc__, show_return_value_in_logs=False)(write_run_note)(
            version=VERSION, workspace=WORKSPACE).as_teardown(),
    )
