"""tasks.served_version: what the overlay serves, as snapshot and evaluate each need it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imagesearch import gitops
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks.cli import StepFailed
from tasks.served_version import served_folder, version_to_compare, version_to_keep
from tests.gitops.support import bootstrapped

VERSION = "20260101T000000Z"


def settings_for(url: str) -> Settings:
    return Settings.from_env({"IMAGESEARCH_GITOPS_REPO_URL": url})


def name_version(config: gitops.GitOpsConfig, tmp_path: Path, version: str) -> None:
    def change(tip: gitops.Overlay) -> gitops.Edit:
        previous = tip.version()
        tip.set_version(version)
        return gitops.Edit(previous, f"test: serve {version}")

    with gitops.checkout(config, tmp_path / "edit") as checkout:
        gitops.commit_and_push(checkout, change)


def test_the_overlay_version_for_each_reader(tmp_path: Path) -> None:
    config = bootstrapped(tmp_path)
    name_version(config, tmp_path, VERSION)
    assert version_to_keep(settings_for(config.url)) == VERSION
    assert version_to_compare(settings_for(config.url), config.overlay) == VERSION
    assert version_to_compare(settings_for(config.url), "") is None  # no overlay given: floors only


def test_an_unreadable_gitops_repo(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = settings_for(str(tmp_path / "none.git"))
    with caplog.at_level(logging.WARNING):
        assert version_to_keep(missing) is None  # snapshot builds a new version
        assert version_to_compare(missing, "gitops/overlays/local") is None  # no local repo yet: nothing serves
    assert "cannot read the version gitops/overlays/local serves" in caplog.text and "no GitOps repo at" in caplog.text


def test_a_served_version_that_is_not_committed_stops_the_gate(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=f"serves {VERSION}, which is not committed"):
        served_folder(open_repository(str(tmp_path / "models")), "gitops/overlays/local", VERSION, tmp_path / "x")
