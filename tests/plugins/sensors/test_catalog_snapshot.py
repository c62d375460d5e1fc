"""The catalog watch's deferrable sensor: on the catalog object, with its Asset as inlet; nothing to watch locally."""

from __future__ import annotations

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from plugins.catalog_watch import last_announced
from plugins.sensors.catalog_snapshot import CatalogSnapshotSensor


def test_the_sensor_waits_in_the_triggerer_on_the_catalog_object() -> None:
    sensor = CatalogSnapshotSensor(task_id="wait", catalog_uri="gs://catalogs/prod/catalog.parquet",
                                   gcp_conn_id="google_cloud_default", interval_s=30, timeout_s=3600)
    assert (sensor.bucket, sensor.object, sensor.deferrable, sensor.soft_fail) == \
        ("catalogs", "prod/catalog.parquet", True, True)
    assert sensor.inlets == [Asset(uri="gs://catalogs/prod/catalog.parquet")] and sensor.ts_func is last_announced
    assert (sensor.poke_interval, sensor.timeout) == (30, 3600)


def test_a_local_catalog_has_nothing_to_watch() -> None:
    sensor = CatalogSnapshotSensor(task_id="wait", catalog_uri="/data/catalog.csv", gcp_conn_id="google_cloud_default",
                                   interval_s=30, timeout_s=3600)
    assert sensor.inlets == []
    with pytest.raises(AirflowFailException, match="nothing to watch"):
        sensor.execute(context={})  # type: ignore[arg-type]
