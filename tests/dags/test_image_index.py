"""dags/image_index.py: imports cleanly, wires the steps as specified, validates its params, renders its versions."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.dags.airflow_support import RUN_VERSION, VERSION_PATTERN, load_dag, render

SETTINGS = {
    "IMAGESEARCH_RUNNER": "local", "IMAGESEARCH_MODEL_REPOSITORY": "/srv/model-repository", "IMAGESEARCH_SCHEDULE": "@hourly",
    "IMAGESEARCH_CATALOG_URI": "/srv/catalogs/shop.csv", "IMAGESEARCH_MAX_PARALLEL_SHARDS": "4",
    "IMAGESEARCH_MIN_RECALL_AT_10": "0.9", "IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1": "0.9", "IMAGESEARCH_TASK_RETRIES": "2",
}


@pytest.fixture(scope="module")
def dag() -> Any:
    return load_dag(**SETTINGS)


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_imports_without_errors_in_both_modes(runner: str) -> None:
    assert load_dag(IMAGESEARCH_RUNNER=runner).dag_id == "image_index"


def test_schedule_and_run_policy(dag: Any) -> None:
    assert dag.schedule == "@hourly"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert {"imagesearch", "index"} <= set(dag.tags)
    assert dag.owner == "search-platform"
    assert "image_index" in dag.doc_md and "Trigger form" in dag.doc_md
    assert "Unpause on trigger" in dag.doc_md and "latest full hour" in dag.doc_md
    assert load_dag(**{**SETTINGS, "IMAGESEARCH_SCHEDULE": "none"}).schedule is None


def test_flow(dag: Any) -> None:
    downstream = {task_id: dag.task_dict[task_id].downstream_task_ids for task_id in dag.task_dict}
    assert downstream == {
        "snapshot": {"shards"},
        "shards": {"shard.preprocess", "shard.embed"},  # both take their shard from it
        "shard.preprocess": {"shard.embed"},
        "shard.embed": {"build_index"},
        "build_index": {"evaluate"},
        "evaluate": {"publish"},
        "publish": {"deploy"},
        "deploy": {"run_note"},
        "run_note": set(),
    }
    assert dag.task_dict["run_note"].is_teardown  # runs however the run went; the run's state stays the steps'
    assert not any(dag.task_dict[task_id].is_teardown for task_id in downstream if task_id != "run_note")
    group = dag.task_group_dict["shard"]
    assert type(group).__name__ == "MappedTaskGroup"
    assert [task.task_id for task in group.iter_mapped_dependencies()] == ["shards"]
    for task_id in ("shard.preprocess", "shard.embed"):
        assert dag.task_dict[task_id].max_active_tis_per_dag == 4  # IMAGESEARCH_MAX_PARALLEL_SHARDS


def test_every_task_retries_with_backoff_and_has_a_timeout(dag: Any) -> None:
    for task in dag.tasks:
        assert task.retries == 2, task.task_id
        assert task.retry_exponential_backoff == 2.0, task.task_id
        assert task.execution_timeout is not None and task.execution_timeout.total_seconds() > 0, task.task_id


def test_publish_and_deploy_link_to_their_outcome_and_failures_alert(dag: Any) -> None:
    from plugins.notifiers import FailureEmailNotifier

    links = {task.task_id: sorted(link.name for link in task.operator_extra_links)
             for task in dag.tasks if task.operator_extra_links}
    assert links == {"publish": ["Index version", "Search page"], "deploy": ["GitOps commit", "Search page"]}
    for task in dag.tasks:
        assert any(isinstance(callback, FailureEmailNotifier) for callback in task.on_failure_callback), task.task_id


def test_publish_updates_the_index_asset(dag: Any) -> None:
    [asset] = dag.task_dict["publish"].outlets
    assert asset.uri == asset.name == "file:///srv/model-repository/indexes"


def with_conf(dag: Any, **conf: Any) -> dict[str, Any]:
    """The run's params for a trigger with ``conf``, validated against the DAG's Param schemas."""
    params = copy.deepcopy(dag.params)
    for key, value in conf.items():
        params[key] = value
    return params.validate()


def test_params_are_typed_and_validated(dag: Any) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    assert with_conf(dag) == {
        "catalog_uri": "/srv/catalogs/shop.csv", "full_rebuild": False, "limit": 0, "publish": True, "deploy": True,
        "model_version": "", "min_recall_at_10": 0.9, "min_near_duplicate_top1": 0.9, "max_regression_recall_at_10": 0.01,
        "max_regression_near_duplicate_top1": 0.02, "max_regression_category_precision_at_10": 0.03,
    }
    assert with_conf(dag, catalog_uri="gs://b/c.parquet", limit=100, deploy=False, min_recall_at_10=0.5)["limit"] == 100
    assert with_conf(dag, model_version="20261127T040000Z-1a2b3c4d")["model_version"] == "20261127T040000Z-1a2b3c4d"
    assert render(dag, "snapshot", model_version="none").options["--model-version"] == "none"
    for bad in ({"limit": -1}, {"limit": "ten"}, {"min_recall_at_10": 1.5}, {"min_near_duplicate_top1": -0.1},
                {"max_regression_recall_at_10": -0.01}, {"max_regression_category_precision_at_10": 2},
                {"full_rebuild": "yes"}, {"publish": 1}, {"catalog_uri": ""}):
        with pytest.raises(ParamValidationError, match="Invalid input"):
            with_conf(dag, **bad)
    assert all(dag.params.get_param(name).description for name in dag.params)


def test_version_and_workspace_are_deterministic_per_run(dag: Any) -> None:
    snapshot = render(dag, "snapshot")
    version = snapshot.options["--version"]
    assert re.match(VERSION_PATTERN, version) and version == RUN_VERSION
    assert snapshot.workspace == f"/srv/model-repository/runs/{version}"
    assert render(dag, "build_index").workspace == snapshot.workspace  # every task of the run, every try


def test_two_triggers_in_the_same_second_build_two_versions(dag: Any) -> None:
    # Two REST API triggers with the same run_after differ only in their run ids.
    first = render(dag, "snapshot", run_id="manual__2026-11-27T05:00:00+00:00_a1")
    second = render(dag, "snapshot", run_id="manual__2026-11-27T05:00:00+00:00_b2")
    versions = {first.options["--version"], second.options["--version"]}
    assert len(versions) == 2 and all(re.match(VERSION_PATTERN, version) for version in versions)
    assert first.workspace != second.workspace


def test_params_reach_the_argv(dag: Any) -> None:
    argv = render(dag, "snapshot", catalog_uri="/data/c.csv", limit=7, full_rebuild=True).step_argv()
    assert argv[:5] == ["python", "-m", "tasks.steps.snapshot", "--workspace", f"/srv/model-repository/runs/{RUN_VERSION}"]
    assert argv[5:] == ["--catalog", "/data/c.csv", "--repository", "/srv/model-repository", "--version", RUN_VERSION,
                        "--limit", "7", "--full-rebuild"]
    assert render(dag, "shard.embed", shard=3).step_argv()[5:] == ["--shard", "3", "--device", "auto"]
    assert render(dag, "shard.preprocess", shard=3, full_rebuild=True).step_argv()[5:] == ["--shard", "3"]
    assert render(dag, "evaluate", min_recall_at_10=0.8, max_regression_near_duplicate_top1=0.05).step_argv()[5:] == [
        "--min-recall", "0.8", "--min-near-duplicate-top1", "0.9", "--max-regression-recall", "0.01",
        "--max-regression-near-duplicate-top1", "0.05", "--max-regression-category-precision", "0.03",
        "--repository", "/srv/model-repository", "--serving-overlay", "gitops/overlays/local"]


def test_publish_and_deploy_switches(dag: Any) -> None:
    from plugins.operators.command import truthy

    assert truthy(render(dag, "publish").enabled) and truthy(render(dag, "deploy").enabled)
    assert not truthy(render(dag, "publish", publish=False).enabled)
    assert not truthy(render(dag, "deploy", deploy=False).enabled)
    assert not truthy(render(dag, "deploy", publish=False).enabled)  # nothing published, nothing to deploy
