"""The model-repository hook: run workspaces and the index Asset where the steps put them, local or GCS; a
``gs://`` repository read through the Google provider's GCSHook and an Airflow connection (the GCS emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from imagesearch.artifacts import publish
from imagesearch.settings import get_settings
from plugins.hooks.model_repository import ModelRepositoryHook
from tests.imagesearch.test_artifacts import sealed_dir

VERSION = "20261127T050000Z-1a2b3c4d"
# An Airflow connection given as an environment variable, as a deployment may do: anonymous credentials, which
# the storage client sends to STORAGE_EMULATOR_HOST (set by the gcs_emulator fixture).
EMULATOR_CONNECTION = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "test"}})


def test_local_repository(tmp_path: Path) -> None:
    hook = ModelRepositoryHook(str(tmp_path / "repo"))
    assert hook.uri == str(tmp_path / "repo")
    assert hook.workspace_uri("20261127T050000Z") == str(tmp_path / "repo" / "runs" / "20261127T050000Z")
    asset = hook.index_asset()
    assert asset.uri == asset.name == (tmp_path / "repo" / "indexes").as_uri()
    assert hook.committed_versions() == [] and hook.latest_version() is None


def test_file_uri_and_gcs_repositories(tmp_path: Path) -> None:
    assert ModelRepositoryHook(tmp_path.as_uri()).workspace_uri("v1") == str(tmp_path / "runs" / "v1")
    gcs = ModelRepositoryHook("gs://models/imagesearch", gcp_conn_id="no_such_connection")
    assert gcs.workspace_uri("20261127T050000Z") == "gs://models/imagesearch/runs/20261127T050000Z"
    assert gcs.index_asset().uri == "gs://models/imagesearch/indexes"  # parsing a DAG needs no connection


def test_defaults_to_the_settings_repository_and_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGESEARCH_MODEL_REPOSITORY", str(tmp_path))
    assert ModelRepositoryHook().uri == str(tmp_path)
    assert ModelRepositoryHook().gcp_conn_id == "google_cloud_default"
    monkeypatch.setenv("IMAGESEARCH_GCP_CONN_ID", "google_cloud_models")
    get_settings.cache_clear()  # as a new process would
    assert ModelRepositoryHook().gcp_conn_id == "google_cloud_models"


def test_gcs_calls_retry_for_the_configured_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_REPOSITORY_RETRY_S", "7")
    get_settings.cache_clear()
    repository = ModelRepositoryHook("gs://models/imagesearch", gcp_conn_id="no_such_connection").get_conn()
    assert repository.retry_s == 7  # type: ignore[attr-defined]
    assert repository.child("runs/v1").retry_s == 7  # type: ignore[attr-defined]


def test_gcs_repository_through_the_airflow_connection(
        monkeypatch: pytest.MonkeyPatch, gcs_bucket: str, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GCS_MODELS", EMULATOR_CONNECTION)
    hook = ModelRepositoryHook(f"{gcs_bucket}/models", gcp_conn_id="gcs_models")
    assert hook.committed_versions() == []
    manifest, uploaded = publish(hook.get_conn(), sealed_dir(tmp_path, VERSION))
    assert uploaded
    assert hook.committed_versions() == [VERSION] and hook.latest_version() == VERSION
    assert hook.manifest(VERSION) == manifest
    assert hook.get_conn().child(f"runs/{VERSION}").client == hook.gcs_client  # workspaces too
    assert hook.gcs_hook.gcp_conn_id == "gcs_models"


def test_gcs_repository_needs_its_connection(gcs_bucket: str) -> None:
    hook = ModelRepositoryHook(f"{gcs_bucket}/models", gcp_conn_id="no_such_connection")
    with pytest.raises(AirflowNotFoundException, match="no_such_connection"):
        hook.committed_versions()
