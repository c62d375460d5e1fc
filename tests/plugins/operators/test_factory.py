"""The operator factory: one declared step as the runner's task, with its retries, timeout and switch."""

from __future__ import annotations

from datetime import timedelta

from imagesearch.settings import Settings
from plugins.operators.factory import enabled_template, retry_arguments, step_operator
from plugins.operators.local import LocalStepOperator
from plugins.operators.pod import StepPodOperator
from tasks.pipeline import PARAMS, REPOSITORY, SERVING_OVERLAY, STEP, STEPS, VERSION, RetryPolicy

INPUTS = {**{param.name: f"{{{{ params.{param.name} }}}}" for param in PARAMS},
          REPOSITORY: "/models", VERSION: "20260101T000000Z", SERVING_OVERLAY: "gitops/overlays/local"}


def test_each_runner_makes_its_operator_from_the_declaration() -> None:
    for runner, kind in (("local", LocalStepOperator), ("kubernetes", StepPodOperator)):
        settings = Settings.from_env({"IMAGESEARCH_RUNNER": runner, "IMAGESEARCH_TASK_RETRIES": "4",
                                      "IMAGESEARCH_MAX_PARALLEL_SHARDS": "3"})
        for step in STEPS:
            task = step_operator(step, settings, workspace="/models/runs/v", inputs=INPUTS,
                                 shard=0 if step.sharded else None)
            assert isinstance(task, kind) and task.task_id == step.name
            assert task.execution_timeout == step.timeout and task.retries == step.retry.attempts(settings)
            assert task.step_argv()[2] == f"tasks.steps.{step.program}"
            assert task.max_active_tis_per_dag == (3 if step.sharded else None)


def test_retries_and_the_switch() -> None:
    settings = Settings.from_env({"IMAGESEARCH_TASK_RETRIES": "2", "IMAGESEARCH_RETRY_DELAY_S": "30",
                                  "IMAGESEARCH_MAX_RETRY_DELAY_S": "600"})
    assert retry_arguments(RetryPolicy(), settings) == {"retries": 2, "retry_delay": timedelta(seconds=30),
                                                        "retry_exponential_backoff": 2.0,
                                                        "max_retry_delay": timedelta(seconds=600)}
    assert retry_arguments(RetryPolicy(retries=0), settings)["retries"] == 0
    assert enabled_template(STEP["snapshot"]) is True
    assert enabled_template(STEP["deploy"]) == "{{ params.publish and params.deploy }}"
