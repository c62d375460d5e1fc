"""A step pod's resources: its declared resource class, with a settings override for one step."""

from __future__ import annotations

import pytest

from imagesearch.settings import Settings, SettingsError
from plugins.operators.specs import step_resources
from tasks.pipeline import STEP


def test_the_declared_class_then_the_override() -> None:
    embed = STEP["embed"]
    requests, limits = step_resources(embed, Settings.from_env({}))
    assert (requests, limits) == (embed.size.resources.requests, embed.size.resources.limits)
    override = Settings.from_env({"IMAGESEARCH_KUBERNETES_RESOURCES": '{"embed": {"limits": {"memory": "64Gi"}}, "publish": {}}'})
    requests, limits = step_resources(embed, override)
    assert requests == embed.size.resources.requests
    assert limits == {**embed.size.resources.limits, "memory": "64Gi"}
    assert step_resources(STEP["snapshot"], override)[1] == STEP["snapshot"].size.resources.limits
    with pytest.raises(SettingsError, match="IMAGESEARCH_KUBERNETES_RESOURCES is not a JSON object"):
        step_resources(embed, Settings.from_env({"IMAGESEARCH_KUBERNETES_RESOURCES": "[1, 2]"}))
