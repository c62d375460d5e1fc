"""The catalog watch: a new snapshot of a gs:// catalog starts image_index besides its hourly schedule; a local
catalog leaves the watch off. Runs for real: ``airflow dags test catalog_watch`` against the GCS emulator, the
Google provider's deferrable sensor and GCSHook reaching it through an Airflow connection."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from imagesearch.repository import gcs_client
from imagesearch.uri import split_gs
from tests.conftest import ROOT
from tests.dags.airflow_support import dags_test, dags_test_argv, load_dag, pipeline_env, task_states

WATCH = "catalog_watch"
# Anonymous credentials, which the storage client sends to STORAGE_EMULATOR_HOST (set by the gcs_emulator fixture).
EMULATOR_CONNECTION = json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "test"}})


def test_a_local_catalog_leaves_the_watch_off() -> None:
    watch = load_dag(WATCH, IMAGESEARCH_CATALOG_URI="/srv/catalogs/catalog.csv", IMAGESEARCH_SCHEDULE="@hourly")
    assert watch.schedule is None and watch.is_paused_upon_creation is True
    assert load_dag(IMAGESEARCH_CATALOG_URI="/srv/catalogs/catalog.csv", IMAGESEARCH_SCHEDULE="@hourly").schedule == "@hourly"
    assert all(not task.outlets and not task.inlets for task in watch.tasks)


def test_a_gcs_catalog_starts_image_index_on_a_new_snapshot_or_the_hour() -> None:
    from airflow.providers.google.cloud.sensors.gcs import GCSObjectUpdateSensor
    from airflow.sdk import Asset, AssetOrTimeSchedule

    settings = {"IMAGESEARCH_CATALOG_URI": "gs://shop/catalogs/catalog.parquet", "IMAGESEARCH_SCHEDULE": "@hourly",
                "IMAGESEARCH_GCP_CONN_ID": "google_cloud_catalog", "IMAGESEARCH_CATALOG_WATCH_INTERVAL_S": "120"}
    catalog = Asset(uri="gs://shop/catalogs/catalog.parquet")
    index = load_dag(**settings)
    assert isinstance(index.schedule, AssetOrTimeSchedule)
    assert index.schedule.asset_condition == catalog
    assert index.schedule.timetable.expression == "0 * * * *"  # the hourly schedule remains

    watch = load_dag(WATCH, **settings)
    assert watch.schedule == "@continuous" and watch.max_active_runs == 1 and watch.is_paused_upon_creation is False
    wait, announce = watch.task_dict["wait_for_snapshot"], watch.task_dict["announce_snapshot"]
    assert isinstance(wait, GCSObjectUpdateSensor) and wait.deferrable and wait.soft_fail
    assert (wait.bucket, wait.object, wait.google_cloud_conn_id, wait.poke_interval) == (
        "shop", "catalogs/catalog.parquet", "google_cloud_catalog", 120)
    assert wait.inlets == [catalog] and announce.outlets == [catalog]
    assert announce.upstream_task_ids == {"wait_for_snapshot"}
    # Triggered runs only: no schedule, no watch.
    manual = {**settings, "IMAGESEARCH_SCHEDULE": "none"}
    assert load_dag(**manual).schedule is None and load_dag(WATCH, **manual).schedule is None


def catalog_events(home: Path, uri: str) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri = ? "
                          "ORDER BY e.id", (uri,))
        return [json.loads(extra) for (extra,) in rows]


def upload(uri: str, text: str) -> Any:
    bucket, name = split_gs(uri)
    blob = gcs_client().bucket(bucket).blob(name)
    blob.upload_from_string(text)
    blob.reload()
    return blob


def wait_until_deferred(home: Path, timeout_s: float = 600) -> None:
    """Until the sensor has poked, found nothing new and handed the wait to its trigger (a trigger row exists)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(home / "airflow.db") as db:
            if db.execute("SELECT count(*) FROM trigger WHERE classpath LIKE '%.GCSCheckBlobUpdateTimeTrigger'").fetchone()[0]:
                return
        time.sleep(1)
    raise TimeoutError(f"{WATCH}'s sensor did not defer within {timeout_s:g}s")


def test_each_new_snapshot_is_announced_once(gcs_bucket: str, tmp_path: Path) -> None:
    uri = f"{gcs_bucket}/catalogs/catalog.csv"
    home = tmp_path / "airflow"
    env = {**os.environ, **pipeline_env(tmp_path), "PYTHONPATH": str(ROOT), "IMAGESEARCH_CATALOG_URI": uri,
           "IMAGESEARCH_SCHEDULE": "@hourly", "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": EMULATOR_CONNECTION,
           "IMAGESEARCH_CATALOG_WATCH_INTERVAL_S": "1"}

    first = upload(uri, "item_id,image_uri\n")
    result = dags_test(home, env, {}, dag_id=WATCH)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {task: state for (task, _), (state, _) in task_states(home, WATCH).items()} == {
        "wait_for_snapshot": "success", "announce_snapshot": "success"}
    [event] = catalog_events(home, uri)
    assert event["generation"] == str(first.generation) and event["updated"] == first.updated.isoformat()

    # The next run finds nothing newer than the announced snapshot: it waits in the trigger (no second event)
    # until the next snapshot lands, then announces that one.
    waiting = subprocess.Popen(dags_test_argv(home, {}, WATCH), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until_deferred(home)
        assert len(catalog_events(home, uri)) == 1
        second = upload(uri, "item_id,image_uri\nshirt-1,gs://shop/shirt-1.jpg\n")
        output, _ = waiting.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the launcher and the airflow process it started
            os.killpg(waiting.pid, signal.SIGKILL)
    assert waiting.returncode == 0, output[-5000:]
    assert "running trigger in line" in output
    assert {task: state for (task, _), (state, _) in task_states(home, WATCH).items()} == {
        "wait_for_snapshot": "success", "announce_snapshot": "success"}
    assert second.updated > first.updated
    assert [event["generation"] for event in catalog_events(home, uri)] == [str(first.generation), str(second.generation)]
