"""What one DAG run builds: a version unique to the run, its workspace, its params and schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imagesearch.manifest import VERSION_PATTERN
from imagesearch.settings import Settings
from plugins.hooks.model_repository import ModelRepositoryHook
from plugins.runs import dag_params, index_version, run_macros, schedule, shard_ids, step_inputs
from tasks.pipeline import PARAMS, REPOSITORY


@dataclass
class Run:
    run_id: str
    run_after: datetime


def test_one_version_per_run_and_its_workspace(tmp_path: Path) -> None:
    when = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    first, again, other = index_version(Run("a", when)), index_version(Run("a", when)), index_version(Run("b", when))
    assert first == again != other and first.startswith("20261127T050000Z-") and VERSION_PATTERN.match(first)
    macros = run_macros(ModelRepositoryHook(str(tmp_path)))
    assert macros["run_workspace"](first) == str(tmp_path / "runs" / first)


def test_params_inputs_schedule_and_shards(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMAGESEARCH_SCHEDULE": "@hourly"})
    params = dag_params(settings)
    assert list(params) == [param.name for param in PARAMS]
    assert (params["limit"].schema["type"], params["limit"].schema["minimum"], params["limit"].value) == ("integer", 0, 0)
    assert params["catalog_uri"].schema["minLength"] == 1
    inputs = step_inputs(settings, ModelRepositoryHook(str(tmp_path)))
    assert inputs["limit"] == "{{ params.limit }}" and inputs[REPOSITORY] == str(tmp_path)
    assert schedule(settings) == "@hourly" and schedule(Settings.from_env({"IMAGESEARCH_SCHEDULE": " Manual "})) is None
    assert shard_ids({"shard_ids": ["0", 1, 2]}) == [0, 1, 2]
