"""One pipeline: the DAG (parsed by Airflow), its pods and ``tasks.operations.run_all`` run the steps of ``tasks.pipeline``,
in the same order, with the same argv.

``run_all`` runs for real (every step, the GitOps commit included) and logs each argv it ran; the DAG's tasks
are rendered for a run with the same parameters and the same version, as local tasks and as pods.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from tasks.pipeline import STEPS, stages
from tests.conftest import run_pipeline
from tests.dags.airflow_support import RUN_VERSION, load_dag, pipeline_env, render
from tests.gitops.support import bootstrapped

PARAMS = {"limit": 0, "min_recall_at_10": 0.85, "max_regression_near_duplicate_top1": 0.05, "full_rebuild": False}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("one-pipeline")


@pytest.fixture(scope="module")
def env(base: Path) -> dict[str, str]:
    bootstrapped(base, str(base / "models"))  # base/gitops.git, which pipeline_env points at
    return pipeline_env(base, IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1="0.5")


@pytest.fixture(scope="module")
def run_all_argvs(base: Path, env: dict[str, str], photo_catalog: Path) -> list[list[str]]:
    """The argv of every step ``run_all`` ran, in order (a real run of the photo catalog, in 2 shards)."""
    options = ["--limit", "0", "--min-recall-at-10", "0.85", "--max-regression-near-duplicate-top1", "0.05",
               "--no-full-rebuild", "--deploy"]
    result = run_pipeline(photo_catalog, base / "models", "--version", RUN_VERSION, *options, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"changed": true' in result.stdout and '"commit": "' in result.stdout  # it made the GitOps commit
    return [shlex.split(line.removeprefix("==> ")) for line in result.stderr.splitlines() if line.startswith("==> ")]


def dag_order(dag: Any) -> list[str]:
    """The DAG's task ids in run order (the DAG is one chain; the per-shard group's tasks in their order)."""
    upstream = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    order: list[str] = []
    while upstream:
        ready = sorted(task_id for task_id, before in upstream.items() if before <= set(order))
        assert len(ready) == 1, f"not one chain: {ready} may run together"
        order.append(ready[0])
        del upstream[ready[0]]
    return order


def step_tasks(dag: Any, shards: list[int]) -> list[tuple[str, int | None]]:
    """(task id, shard) of every step task a run with ``shards`` runs, in order: per-shard tasks once per shard."""
    tasks: list[tuple[str, int | None]] = []
    group: list[str] = []
    for task_id in [*dag_order(dag), None]:
        if task_id is not None and task_id.startswith("shard."):
            group.append(task_id)
            continue
        tasks += [(grouped, shard) for shard in shards for grouped in group]
        group = []
        if task_id is not None and hasattr(dag.task_dict[task_id], "step_argv"):
            tasks.append((task_id, None))
    return tasks


def test_the_dag_runs_the_declared_steps_in_order() -> None:
    dag = load_dag(IMAGESEARCH_RUNNER="local")
    before, per_shard, after = stages()
    expected = [*(s.name for s in before), *(f"shard.{s.name}" for s in per_shard), *(s.name for s in after)]
    assert [task_id for task_id, _ in step_tasks(dag, [0])] == expected
    assert {dag.task_dict[task_id].step for task_id in expected} == {step.name for step in STEPS}
    for task_id in dag.task_dict:  # the DAG's doc lists its tasks, with the steps' docs from their declaration
        assert f"| `{task_id}` |" in dag.doc_md, task_id
    assert all(step.doc in dag.doc_md for step in STEPS)


def test_dag_pods_and_run_all_run_the_same_argv(env: dict[str, str], photo_catalog: Path,
                                                run_all_argvs: list[list[str]]) -> None:
    local_dag = load_dag(**env)
    pod_dag = load_dag(**{**env, "IMAGESEARCH_RUNNER": "kubernetes"})
    shards = [0, 1]  # 20 items, IMAGESEARCH_SHARD_SIZE=10
    params = {**PARAMS, "catalog_uri": str(photo_catalog)}
    local_argvs, pod_commands = [], []
    for task_id, shard in step_tasks(local_dag, shards):
        local_argvs.append(render(local_dag, task_id, shard=shard, **params).step_argv())
        pod = render(pod_dag, task_id, shard=shard, **params).build_pod_request_obj(dry_run=True)
        pod_commands.append(pod.spec.containers[0].command)
    assert local_argvs == run_all_argvs
    assert pod_commands == run_all_argvs
    before, per_shard, after = stages()
    declared = [*before, *[step for _ in shards for step in per_shard], *after]
    assert [argv[2] for argv in run_all_argvs] == [step.command[2] for step in declared]  # every step ran, in order
    evaluate = next(argv for argv in run_all_argvs if argv[2] == "tasks.steps.evaluate")
    assert evaluate[5:7] == ["--min-recall", "0.85"]  # the trigger form's gate reaches evaluate in both


def test_switched_off_steps_are_skipped_alike(photo_catalog: Path) -> None:
    from imagesearch.settings import Settings
    from plugins.operators.command import truthy
    from tasks.operations.run_all import parse_args

    dag = load_dag(IMAGESEARCH_RUNNER="local")
    _, params = parse_args(["--catalog", str(photo_catalog), "--no-deploy"], Settings.from_env())
    for step in STEPS:
        rendered = render(dag, f"shard.{step.name}" if step.sharded else step.name, shard=0 if step.sharded else None,
                          **params)
        assert truthy(rendered.enabled) == all(params[name] for name in step.enabled_by), step.name
