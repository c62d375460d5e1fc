"""dags/image_model.py: wired from tasks/pipeline.py's MODEL_STEPS, typed params, daily by default; and one real
``airflow dags test image_model`` on the published photo index that trains, gates and publishes a model version."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from imagesearch import model_versions
from imagesearch.repository import open_repository
from tasks.pipeline import MODEL_PARAMS, MODEL_STEPS
from tests.dags.airflow_support import dags_test, load_dag, pipeline_env, render, task_states

MODEL_DAG = "image_model"


@pytest.fixture(scope="module")
def dag() -> Any:
    return load_dag(MODEL_DAG, IMAGESEARCH_RUNNER="local", IMAGESEARCH_MODEL_REPOSITORY="/srv/model-repository")


def test_flow_schedule_and_params(dag: Any) -> None:
    assert [task.task_id for task in dag.topological_sort()] == [step.name for step in MODEL_STEPS]
    assert {task_id: dag.task_dict[task_id].downstream_task_ids for task_id in dag.task_dict} == {
        "gather_training": {"train_model"}, "train_model": {"evaluate_model"}, "evaluate_model": {"publish_model"},
        "publish_model": set()}
    assert dag.schedule == "@daily" and dag.catchup is False and {"imagesearch", "model"} <= set(dag.tags)
    assert load_dag(MODEL_DAG, IMAGESEARCH_MODEL_SCHEDULE="none").schedule is None
    params = dag.params.dump()
    assert set(params) == {param.name for param in MODEL_PARAMS}
    copies = dag.params.get_param("copies_per_item").schema
    assert (copies["type"], copies["minimum"], copies["maximum"]) == ("integer", 1, 64)
    assert dag.params.get_param("publish").schema["type"] == "boolean"


def test_steps_render_the_same_argv_as_their_cli(dag: Any) -> None:
    task = render(dag, "gather_training", index_version="20260101T000000Z", copies_per_item=2)
    argv = task.step_argv()
    assert argv[:3] == ["python", "-m", "tasks.steps.gather_training"]
    assert argv[argv.index("--workspace") + 1].startswith("/srv/model-repository/model-runs/")
    assert argv[argv.index("--index-version") + 1] == "20260101T000000Z"
    assert argv[argv.index("--copies-per-item") + 1] == "2"
    assert render(dag, "publish_model", publish=False).enabled in (False, "False")


def test_airflow_dags_test_trains_gates_and_publishes_a_model_version(
        tmp_path: Path, published_repository: tuple[Path, str]) -> None:
    shutil.copytree(published_repository[0], tmp_path / "models", ignore=shutil.ignore_patterns("runs"))
    home = tmp_path / "airflow-home"
    # Lenient tolerances: the photo catalog's 20 items decide little; the gate itself is tested in
    # tests/tasks/steps/test_evaluate_model.py.
    conf = {"index_version": published_repository[1], "training_steps": 30, "copies_per_item": 2,
            "max_regression_near_duplicate_top1": 1.0, "max_regression_category_precision_at_10": 1.0}
    result = dags_test(home, pipeline_env(tmp_path), conf, MODEL_DAG)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert set(task_states(home, MODEL_DAG).values()) == {("success", 1)}
    repo = open_repository(str(tmp_path / "models"))
    (manifest,) = model_versions.versions(repo)
    assert manifest.passed_gate and manifest.training["index_version"] == published_repository[1]
    assert model_versions.choose(repo, manifest.model.model_id).version == manifest.version
    assert (tmp_path / "models" / "model-runs" / manifest.version / "training" / "head.npz").is_file()
