"""The catalog as an Airflow Asset: only a gs:// catalog is watched; a new snapshot is recorded on the Asset with
its updated time and generation, read from the store through the Airflow connection (GCS emulator)."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from imagesearch.gcs import gcs_client
from imagesearch.settings import Settings
from plugins.catalog_watch import announce_snapshot, catalog_asset

EMULATOR_CONNECTION = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "test"}})


def test_only_a_gcs_catalog_is_an_asset() -> None:
    assert catalog_asset(Settings.from_env({"IMAGESEARCH_CATALOG_URI": "gs://catalogs/prod/catalog.parquet"})) == \
        Asset(uri="gs://catalogs/prod/catalog.parquet")
    assert catalog_asset(Settings.from_env({"IMAGESEARCH_CATALOG_URI": "/data/catalog.csv"})) is None


def test_a_snapshot_is_announced_with_its_generation(gcs_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_TEST", EMULATOR_CONNECTION)
    blob = gcs_client().bucket(gcs_bucket.removeprefix("gs://")).blob("catalog.csv")
    blob.upload_from_string(b"item_id,image_uri\n")
    blob.reload()
    uri = f"{gcs_bucket}/catalog.csv"
    events = OutletEventAccessors()
    snapshot = announce_snapshot(uri, "google_cloud_test", outlet_events=events)
    assert snapshot == {"uri": uri, "updated": blob.updated.isoformat(), "generation": str(blob.generation)}
    assert events[Asset(uri=uri)].extra == snapshot
    with pytest.raises(AirflowFailException, match="disappeared"):
        announce_snapshot(f"{gcs_bucket}/gone.csv", "google_cloud_test", outlet_events=OutletEventAccessors())
