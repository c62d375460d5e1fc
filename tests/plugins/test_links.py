"""The run's links: to the version in its store and to the GitOps commit."""

from __future__ import annotations

from pathlib import Path

from imagesearch.settings import Settings
from plugins.hooks.model_repository import ModelRepositoryHook
from plugins.links import commit_url, version_url

VERSION = "20261127T050000Z"


TEMPLATE = "https://github.com/acme/gitops/commit/{commit}"


def test_a_version_links_to_the_gcs_console_or_a_local_folder(tmp_path: Path) -> None:
    assert ModelRepositoryHook("gs://models/imagesearch").version_url(VERSION) == (
        f"https://console.cloud.google.com/storage/browser/models/imagesearch/indexes/{VERSION}/")
    assert ModelRepositoryHook(str(tmp_path)).version_url(VERSION) == (tmp_path / "indexes" / VERSION).as_uri()
    assert version_url({"version": VERSION, "repository": "gs://b/p"}).endswith(f"/b/p/indexes/{VERSION}/")
    assert version_url({}) == ""  # a skipped or failed publish links nowhere


def test_a_commit_links_through_the_template_only_when_there_is_one() -> None:
    deploy = {"version": VERSION, "commit": "0123456789abcdef"}
    linked = Settings.from_env({"IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE": TEMPLATE})
    assert commit_url(deploy, linked) == TEMPLATE.format(commit="0123456789abcdef")
    assert commit_url(deploy, Settings.from_env({})) == ""
    assert commit_url({**deploy, "commit": None}, linked) == ""  # nothing changed
