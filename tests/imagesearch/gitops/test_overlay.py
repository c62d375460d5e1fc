"""One overlay of a clone: its literals (in the worktree and at a commit) and the operator's records beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import kustomize, pins
from imagesearch.errors import GitOpsError
from imagesearch.gitops.config import GitOpsConfig
from imagesearch.gitops.overlay import Overlay, served_version
from imagesearch.repository import ModelRepository
from tests.gitops.support import V1, clone


def test_literals_are_read_and_set_and_staged(tmp_path: Path, config: GitOpsConfig, models: ModelRepository) -> None:
    overlay = Overlay(clone(config, tmp_path / "clone"))
    assert overlay.read_literal(kustomize.REPOSITORY_KEY) == models.uri and overlay.version() == ""
    bootstrap_commit = overlay.checkout.head()
    overlay.set_version(V1)
    assert overlay.checkout.git("diff", "--cached", "--name-only") == config.kustomization
    overlay.checkout.commit(f"Deploy index {V1}")
    assert overlay.version() == V1 and overlay.version(bootstrap_commit) == ""
    assert served_version(config) == ""  # not pushed: the branch tip still names nothing
    assert overlay.checkout.push() and served_version(config) == V1


def test_pin_and_reverted_records(tmp_path: Path, config: GitOpsConfig) -> None:
    overlay = Overlay.at(config, tmp_path / "clone")
    overlay.checkout.sync()
    assert overlay.pin() is None and overlay.reverted() == {}
    pins.write_pin(overlay.path, pins.Pin(V1, "bad results", "ops@test", "2026-01-01T00:00:00+00:00"))
    assert overlay.pin() == pins.Pin(V1, "bad results", "ops@test", "2026-01-01T00:00:00+00:00")


def test_a_missing_overlay_is_a_clear_error(tmp_path: Path, config: GitOpsConfig) -> None:
    overlay = Overlay(clone(GitOpsConfig(config.url, overlay="gitops/overlays/nowhere"), tmp_path / "clone"))
    with pytest.raises(GitOpsError, match=r"no gitops/overlays/nowhere/kustomization\.yaml"):
        overlay.version()
