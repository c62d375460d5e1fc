"""The model-repository hook: run workspaces and the index Asset where the steps put them, local or GCS."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.hooks.model_repository import ModelRepositoryHook


def test_local_repository(tmp_path: Path) -> None:
    hook = ModelRepositoryHook(str(tmp_path / "repo"))
    assert hook.uri == str(tmp_path / "repo")
    assert hook.workspace_uri("20261127T050000Z") == str(tmp_path / "repo" / "runs" / "20261127T050000Z")
    asset = hook.index_asset()
    assert asset.uri == asset.name == (tmp_path / "repo" / "indexes").as_uri()
    assert hook.committed_versions() == [] and hook.latest_version() is None


def test_file_uri_and_gcs_repositories(tmp_path: Path) -> None:
    assert ModelRepositoryHook(tmp_path.as_uri()).workspace_uri("v1") == str(tmp_path / "runs" / "v1")
    gcs = ModelRepositoryHook("gs://models/imagesearch")
    assert gcs.workspace_uri("20261127T050000Z") == "gs://models/imagesearch/runs/20261127T050000Z"
    assert gcs.index_asset().uri == "gs://models/imagesearch/indexes"


def test_defaults_to_the_settings_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGESEARCH_MODEL_REPOSITORY", str(tmp_path))
    assert ModelRepositoryHook().uri == str(tmp_path)
