"""Creating the local bare GitOps repo from gitops/: once, with the model repository written in; never over
something else, never for a remote URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import gitops, kustomize
from imagesearch.errors import GitOpsError
from imagesearch.gitops.bootstrap import bootstrap
from imagesearch.repository import ModelRepository
from tests.gitops.support import log


def test_bootstrap_is_idempotent(tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository) -> None:
    assert not bootstrap(config)
    assert log(config, tmp_path / "look") == ["Bootstrap the GitOps repo from the project's gitops/ folder"]
    overlay = gitops.Overlay.at(config, tmp_path / "look")
    assert overlay.read_literal(kustomize.REPOSITORY_KEY) == models.uri
    assert overlay.version() == ""
    assert (tmp_path / "look" / "gitops" / "base" / "kustomization.yaml").is_file()


def test_bootstrap_refuses_remote_urls_and_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(GitOpsError, match="remote repository"):
        bootstrap(gitops.GitOpsConfig("https://github.com/acme/gitops.git"))
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    with pytest.raises(GitOpsError, match="not a bare git repository"):
        bootstrap(gitops.GitOpsConfig(str(tmp_path / "occupied")))
