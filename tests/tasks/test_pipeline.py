"""tasks.pipeline: the one declaration of the steps is complete and every step's CLI takes what it declares."""

from __future__ import annotations

import contextlib
import importlib
import io

import pytest

from imagesearch.settings import Settings
from tasks.pipeline import MODEL_STEPS, PARAMS, STEP, STEPS, Step, default_params, stages, unknown_sources


def test_every_step_input_is_a_run_parameter_or_a_run_fact() -> None:
    assert unknown_sources() == []
    assert unknown_sources([Step("x", "doc", STEPS[0].timeout, STEPS[0].size, enabled_by=("publsh",))]) == ["x: publsh"]


def test_the_shards_split_the_pipeline_in_three() -> None:
    before, per_shard, after = stages()
    assert [*before, *per_shard, *after] == list(STEPS)
    assert all(step.sharded for step in per_shard) and not any(step.sharded for step in (*before, *after))
    assert len({step.name for step in (*STEPS, *MODEL_STEPS)}) == len(STEPS) + len(MODEL_STEPS) == len(STEP)


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_the_step_cli_takes_every_declared_option(step: Step) -> None:
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), pytest.raises(SystemExit) as exited:
        importlib.import_module(step.command[2]).main(["--help"])
    assert exited.value.code == 0
    for flag in ("--workspace", *(["--shard"] if step.sharded else []), *(arg.flag for arg in step.args)):
        assert f"{flag} " in help_text.getvalue() or f"{flag}\n" in help_text.getvalue(), flag


def test_argv_leaves_out_empty_options_and_false_switches() -> None:
    snapshot = STEP["snapshot"]
    inputs = {**default_params(Settings(), {"catalog_uri": "c.csv", "limit": 0}), "repository": "/models", "version": "",
              "serving_overlay": ""}
    assert snapshot.argv("/models/runs/v", snapshot.options(inputs), snapshot.flags(inputs)) == [
        "python", "-m", "tasks.steps.snapshot", "--workspace", "/models/runs/v", "--catalog", "c.csv", "--repository", "/models",
        "--limit", "0"]
    with pytest.raises(ValueError, match="snapshot takes no shard"):
        snapshot.argv("/w", {}, {}, shard=0)


def test_params_defaults_come_from_settings() -> None:
    settings = Settings.from_env({"IMAGESEARCH_MIN_RECALL_AT_10": "0.7", "IMAGESEARCH_CATALOG_URI": "/c.csv"})
    params = default_params(settings, {"limit": 5, "publish": None})
    assert params["min_recall_at_10"] == 0.7 and params["catalog_uri"] == "/c.csv" and params["limit"] == 5
    assert params["publish"] is True and [param.name for param in PARAMS] == list(params)


def test_pod_sizes_are_resource_classes() -> None:
    assert STEP["deploy"].size.resources.requests == {"cpu": "250m", "memory": "256Mi"}
    assert STEP["build_index"].size.resources.limits == {"cpu": "8", "memory": "32Gi"}
    assert [step.name for step in STEPS if step.gpu] == ["embed"]
    assert [step.name for step in STEPS if step.commits_to_git] == ["deploy"]
