"""The one step operator factory: from settings, a Kubernetes pod or a local subprocess, same argv.

    step_operator("embed", settings, workspace=..., options={"--device": "auto"}, shard=shard)

``runner=kubernetes`` gives a :class:`StepPodOperator`, ``runner=gke`` the same pod on a GKE cluster
(:class:`StepGKEPodOperator`), ``runner=local`` a :class:`LocalStepOperator`;
both get the step's execution timeout, and per-shard tasks the parallelism cap of
``max_parallel_shards``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from imagesearch.settings import Settings
from plugins.operators.local import LocalStepOperator
from plugins.operators.pod import StepPodOperator, pod_kwargs
from plugins.operators.specs import step_spec


def step_operator(
    step: str,
    settings: Settings,
    *,
    workspace: str,
    options: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    enabled: str | bool = True,
    shard: Any = None,
    **kwargs: Any,
) -> BaseOperator:
    """The task running ``tasks.<step>``; ``shard`` may be a mapped task group's argument.

    Extra ``kwargs`` (task_id, outlets, doc_md...) go to the operator. Per-shard tasks run at most
    ``settings.max_parallel_shards`` at a time.
    """
    spec = step_spec(step, settings)
    common: dict[str, Any] = {"task_id": step, "execution_timeout": spec.timeout, "doc_md": spec.doc, **kwargs}
    if shard is not None:
        common["max_active_tis_per_dag"] = settings.max_parallel_shards
    command = {"step": step, "workspace": workspace, "options": options, "flags": flags, "shard": shard, "enabled": enabled}
    if settings.runner == "gke":
        from plugins.operators.gke import StepGKEPodOperator, gke_pod_kwargs  # the Google provider only when used

        return StepGKEPodOperator(**command, **gke_pod_kwargs(pod_kwargs(step, spec, settings), settings), **common)
    if settings.runner == "kubernetes":
        return StepPodOperator(**command, **pod_kwargs(step, spec, settings), **common)
    return LocalStepOperator(**command, **common)
