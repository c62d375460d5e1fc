"""Where the GitOps repo is: settings with per-call overrides, overlay paths, local or remote URLs."""

from __future__ import annotations

from pathlib import Path

from imagesearch.gitops.config import GitOpsConfig, local_repo_path, repo_option_help
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


def test_a_credential_comes_from_the_token_setting_or_the_url_and_never_stays_in_the_url() -> None:
    settings = Settings.from_env({"IMAGESEARCH_GITOPS_REPO_URL": "https://git.example.com/gitops.git",
                                  "IMAGESEARCH_GITOPS_TOKEN": "tok-from-secret"})
    config = GitOpsConfig.from_settings(settings)
    assert config.credential == ("x-access-token", "tok-from-secret") and config.secrets == ("tok-from-secret",)
    assert "tok-from-secret" not in repr(config) and "tok-from-secret" not in repr(settings)
    # The older form, a token in the URL (as the Secret held it): moved out of the URL, sent as it was meant.
    config = GitOpsConfig.from_settings(settings, url="https://tok-in-url@git.example.com/gitops.git")
    assert config.url == "https://git.example.com/gitops.git"
    assert config.credential == ("tok-in-url", "") and config.secrets == ("tok-in-url",)
    assert "tok-in-url" not in repr(config)
    assert GitOpsConfig("https://bot:pw@h/g.git").credential == ("bot", "pw")
    assert GitOpsConfig("/srv/gitops.git").credential is None  # no token: git's own credential setup
    assert GitOpsConfig.from_settings(Settings.from_env({})).credential is None


def test_the_option_help_shows_the_default_url_without_credentials() -> None:
    settings = Settings.from_env({"IMAGESEARCH_GITOPS_REPO_URL": "https://tok@git.example.com/gitops.git"})
    assert repo_option_help(settings) == "GitOps repo URL (default https://git.example.com/gitops.git)"
