"""Where the GitOps repo is: settings with per-call overrides, overlay paths, local or remote URLs."""

from __future__ import annotations

from pathlib import Path

from imagesearch.gitops.config import GitOpsConfig, local_repo_path
from imagesearch.settings import Settings


def test_from_settings_takes_overrides_but_not_none() -> None:
    settings = Settings.from_env({"IMAGESEARCH_GITOPS_REPO_URL": "/srv/gitops.git", "IMAGESEARCH_GITOPS_BRANCH": "deploy",
                                  "IMAGESEARCH_GITOPS_OVERLAY": "gitops/overlays/staging"})
    config = GitOpsConfig.from_settings(settings, overlay="gitops/overlays/production/", branch=None)
    assert (config.url, config.branch, config.overlay) == ("/srv/gitops.git", "deploy", "gitops/overlays/production/")
    assert config.kustomization == "gitops/overlays/production/kustomization.yaml"
    assert config.overlay_file("pin.yaml") == "gitops/overlays/production/pin.yaml"
    assert config.environment == "production"


def test_local_and_remote_repo_urls() -> None:
    assert local_repo_path("/srv/gitops.git") == Path("/srv/gitops.git")
    assert local_repo_path("file:///srv/gitops.git") == Path("/srv/gitops.git")
    assert local_repo_path("https://github.com/acme/gitops.git") is None
    assert local_repo_path("git@github.com:acme/gitops.git") is None
