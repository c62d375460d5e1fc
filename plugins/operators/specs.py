"""Per-step operating limits (timeout, pod resources, GPU, deferral) and docs: one table for both runners."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import timedelta

from imagesearch.settings import Settings, SettingsError


@dataclass(frozen=True)
class StepSpec:
    doc: str  # the task's doc in the Airflow UI
    timeout: timedelta  # the task's execution_timeout, and its pod's activeDeadlineSeconds
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    gpu: bool = False  # embed: a GPU node, when settings give it GPUs
    deferrable: bool = False  # long steps: wait for the pod in the triggerer, not in a worker slot


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


STEP_SPECS: dict[str, StepSpec] = {
    "snapshot": StepSpec(
        "Read and validate the catalog, de-duplicate it and split it into shards; fails on a corrupt catalog.",
        timedelta(minutes=30), **_resources("500m", "1Gi", "2", "4Gi"),
    ),
    "preprocess": StepSpec(
        "One shard: fetch, hash, decode and fit its images; unchanged images are reused from the last version.",
        timedelta(hours=1), **_resources("2", "4Gi", "4", "8Gi"), deferrable=True,
    ),
    "embed": StepSpec(
        "One shard: embed its new images with the CNN (on a GPU node in Kubernetes).",
        timedelta(hours=2), **_resources("4", "8Gi", "8", "16Gi"), gpu=True, deferrable=True,
    ),
    "build_index": StepSpec(
        "Merge the shards' embeddings and build the ScaNN index.",
        timedelta(hours=1), **_resources("4", "8Gi", "8", "32Gi"), deferrable=True,
    ),
    "evaluate": StepSpec(
        "Measure recall@10 and near-duplicate hit rates; fail the run below the quality gates.",
        timedelta(hours=1), **_resources("2", "4Gi", "4", "16Gi"), deferrable=True,
    ),
    "publish": StepSpec(
        "Seal the index as a checksummed version in the model repository, _COMMIT last (the index Asset).",
        timedelta(minutes=30), **_resources("500m", "1Gi", "2", "4Gi"),
    ),
    "deploy": StepSpec(
        "GitOps bump: commit the new index version to the GitOps repo, which Argo CD rolls out.",
        timedelta(minutes=15), **_resources("250m", "256Mi", "1", "1Gi"),
    ),
}


def step_spec(step: str, settings: Settings) -> StepSpec:
    """The step's spec, with ``IMAGESEARCH_KUBERNETES_RESOURCES`` overrides merged in."""
    spec = STEP_SPECS[step]
    if not settings.kubernetes_resources:
        return spec
    try:
        overrides = json.loads(settings.kubernetes_resources).get(step, {})
        return replace(spec, requests={**spec.requests, **overrides.get("requests", {})},
                       limits={**spec.limits, **overrides.get("limits", {})})
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"IMAGESEARCH_KUBERNETES_RESOURCES is not a JSON object of steps: {exc}") from None
