"""
# catalog_watch: start image_index when a new catalog snapshot lands on GCS

On when `IMAGESEARCH_CATALOG_URI` is a `gs://` object and `image_index` has a schedule; otherwise off
(no schedule, paused: a local catalog has nothing to watch, and `image_index` runs on its schedule).

- `wait_for_snapshot` waits in the triggerer (the Google provider's deferrable `GCSObjectUpdateSensor`)
  until the catalog object is updated after the last announced snapshot, checking every
  `IMAGESEARCH_CATALOG_WATCH_INTERVAL_S`; after `IMAGESEARCH_CATALOG_WATCH_TIMEOUT_S` it ends *skipped*
  and the next run waits again.
- `announce_snapshot` records the snapshot (`updated`, `generation`) as an event on the catalog's
  Asset: `image_index`, scheduled on that Asset *or* its time schedule, starts a run.

The DAG runs continuously (`@continuous`, one run at a time): as soon as one wait ends, the next begins.
The Google Cloud connection is `IMAGESEARCH_GCP_CONN_ID` (`google_cloud_default`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, task

from imagesearch.settings import get_settings
from plugins.catalog_watch import WATCH_DAG_ID, announce_snapshot, catalog_asset
from plugins.runs import watched_catalog
from plugins.sensors.catalog_snapshot import CatalogSnapshotSensor

settings = get_settings()
catalog = watched_catalog(settings)

with DAG(
    dag_id=WATCH_DAG_ID,
    description="A new snapshot of the gs:// catalog starts image_index (besides its schedule)",
    doc_md=__doc__,
    schedule="@continuous" if catalog is not None else None,
    is_paused_upon_creation=catalog is None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["imagesearch", "catalog"],
    default_args={"owner": "search-platform", "retries": settings.pipeline.task_retries},
) as dag:
    wait = CatalogSnapshotSensor(
        task_id="wait_for_snapshot", catalog_uri=settings.pipeline.catalog_uri, gcp_conn_id=settings.google.gcp_conn_id,
        interval_s=settings.pipeline.catalog_watch_interval_s, timeout_s=settings.pipeline.catalog_watch_timeout_s,
    )
    announce = task(task_id="announce_snapshot", outlets=[asset] if (asset := catalog_asset(settings)) else [])(
        announce_snapshot)(settings.pipeline.catalog_uri, settings.google.gcp_conn_id)
    wait >> announce
