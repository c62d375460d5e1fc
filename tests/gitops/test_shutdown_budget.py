"""The search pod's stop fits its grace period: preStop, then the server's drain, then its exit, before SIGKILL."""

from __future__ import annotations

import pytest
import yaml

from imagesearch import kustomize
from imagesearch.settings import Settings
from tests.conftest import ROOT

OVERLAYS = ("local", "staging", "production")
# The lifespan shutdown (the micro-batcher's last batch, the inference thread) and the process exit.
EXIT_MARGIN_S = 5


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_graceful_shutdown_fits_the_pod_grace_period(overlay: str) -> None:
    docs = [doc for doc in yaml.safe_load_all(kustomize.render_text(ROOT / "gitops" / "overlays" / overlay)) if doc]
    pod = next(doc for doc in docs if doc["kind"] == "Deployment")["spec"]["template"]["spec"]
    search = next(container for container in pod["containers"] if container["name"] == "search")
    settings = Settings.from_env({item["name"]: item["value"] for item in search["env"] if "value" in item})
    pre_stop = search["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop + settings.serving.shutdown_timeout_s + EXIT_MARGIN_S <= pod["terminationGracePeriodSeconds"]
    # An upload admitted just before SIGTERM can still arrive in full and be answered within the drain.
    assert settings.serving.body_read_timeout_s < settings.serving.shutdown_timeout_s
    # A search waiting for query memory at SIGTERM gets it or its 503 within the drain.
    assert settings.serving.query_memory_wait_s < settings.serving.shutdown_timeout_s
