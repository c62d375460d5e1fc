"""A step's pod resources: its declared :class:`~tasks.pipeline.ResourceClass`, with settings' overrides merged in."""

from __future__ import annotations

import json

from imagesearch.settings import Settings, SettingsError
from tasks.pipeline import Step


def step_resources(step: Step, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(requests, limits) of the step's pod: its resource class, then ``IMAGESEARCH_KUBERNETES_RESOURCES`` for it."""
    resources = step.size.resources
    if not settings.kubernetes.resources:
        return resources.requests, resources.limits
    try:
        overrides = json.loads(settings.kubernetes.resources).get(step.name, {})
        return ({**resources.requests, **overrides.get("requests", {})},
                {**resources.limits, **overrides.get("limits", {})})
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"IMAGESEARCH_KUBERNETES_RESOURCES is not a JSON object of steps: {exc}") from None
