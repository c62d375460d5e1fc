"""The one step operator factory: a declared step (:mod:`tasks.pipeline`) as an Airflow task, by runner.

    step_operator(STEP["embed"], settings, workspace=WORKSPACE, inputs=inputs, shard=shard)

The step declaration gives the argv, timeout, doc, retries and the switch that may skip it; the runner
(``IMAGESEARCH_RUNNER``) picks the operator class from :data:`RUNNERS`: ``local`` a
:class:`LocalStepOperator`, ``kubernetes`` a :class:`StepPodOperator`, ``gke`` the same pod on a GKE cluster
(:class:`~plugins.operators.gke.StepGKEPodOperator`). Another runner is one more entry.
Per-shard tasks run at most ``max_parallel_shards`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from imagesearch.settings import Settings
from plugins.notifiers import FailureEmailNotifier
from plugins.operators.local import LocalStepOperator
from plugins.operators.pod import StepPodOperator, pod_kwargs
from tasks.pipeline import Inputs, RetryPolicy, Step

# runner -> (the step, settings, the operator's arguments) -> the task
RUNNERS: dict[str, Callable[[Step, Settings, dict[str, Any]], BaseOperator]] = {
    "local": lambda step, settings, arguments: LocalStepOperator(**arguments),
    "kubernetes": lambda step, settings, arguments: StepPodOperator(**arguments, **pod_kwargs(step, settings)),
    "gke": lambda step, settings, arguments: gke_operator(step, settings, arguments),
}


def gke_operator(step: Step, settings: Settings, arguments: dict[str, Any]) -> BaseOperator:
    from plugins.operators.gke import StepGKEPodOperator, gke_pod_kwargs  # the Google provider only when used

    return StepGKEPodOperator(**arguments, **gke_pod_kwargs(pod_kwargs(step, settings), settings))


def retry_arguments(policy: RetryPolicy, settings: Settings) -> dict[str, Any]:
    """A task's retries and their delays, from the policy and settings."""
    return {
        "retries": policy.attempts(settings),
        "retry_delay": timedelta(seconds=settings.pipeline.retry_delay_s),
        "retry_exponential_backoff": policy.backoff,
        "max_retry_delay": timedelta(seconds=settings.pipeline.max_retry_delay_s),
    }


def enabled_template(step: Step) -> str | bool:
    """The template that renders whether the run switched the step on (True when no parameter switches it)."""
    if not step.enabled_by:
        return True
    return "{{ " + " and ".join(f"params.{name}" for name in step.enabled_by) + " }}"


def step_operator(step: Step, settings: Settings, *, workspace: str, inputs: Inputs, shard: Any = None,
                  **kwargs: Any) -> BaseOperator:
    """The task running ``step``; ``shard`` may be a mapped task group's argument.

    ``inputs``: the run's inputs as templates (``{"limit": "{{ params.limit }}", ...}``). Extra ``kwargs``
    (outlets, trigger_rule...) go to the operator.
    """
    arguments: dict[str, Any] = {
        "task_id": step.name, "execution_timeout": step.timeout, "doc_md": step.doc,
        **retry_arguments(step.retry, settings),
        "step": step.name, "workspace": workspace, "options": step.options(inputs), "flags": step.flags(inputs),
        "shard": shard, "enabled": enabled_template(step), **kwargs,
    }
    if step.sharded:
        arguments["max_active_tis_per_dag"] = settings.pipeline.max_parallel_shards
    return RUNNERS[settings.pipeline.runner](step, settings, arguments)


def dag_arguments(settings: Settings, macros: dict[str, Any], **default_args: Any) -> dict[str, Any]:
    """What every imagesearch DAG shares: its run policy (no catchup, one run at a time, 8 hours at most), its
    macros, and the default task arguments (retries with backoff, the failure email, ``default_args``)."""
    return {
        "start_date": datetime(2026, 1, 1, tzinfo=UTC), "catchup": False, "max_active_runs": 1,
        "dagrun_timeout": timedelta(hours=8), "user_defined_macros": macros,
        "default_args": {"owner": "search-platform", **retry_arguments(RetryPolicy(), settings),
                         "on_failure_callback": FailureEmailNotifier(),  # after the last try
                         **default_args},
    }

