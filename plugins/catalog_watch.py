"""New catalog snapshots as an Airflow Asset, so that a snapshot landing on GCS starts an index run.

When ``IMAGESEARCH_CATALOG_URI`` is a ``gs://`` object and the DAG has a schedule, the ``catalog_watch`` DAG
(``dags/catalog_watch.py``) waits in the triggerer (``plugins/sensors/catalog_snapshot.py``) until the
object is updated after the last snapshot it announced, then records an event on the catalog's Asset:
``image_index`` runs on that Asset besides its time schedule (``AssetOrTimeSchedule``). A local catalog
has nothing to watch: ``catalog_watch`` is then off (no schedule, paused) and ``image_index`` keeps its
plain schedule.

Each event's extra holds the object's ``updated`` time and ``generation``; the next wait counts only
updates after that ``updated`` time, so a snapshot landing while a run is being started is not lost, and
none is announced twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from imagesearch import uri as uris
from imagesearch.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Context

WATCH_DAG_ID = "catalog_watch"
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # no snapshot announced yet: the one there now counts as new


def catalog_asset(settings: Settings) -> Asset | None:
    """The catalog object as an Asset when it is on GCS (else None: nothing to watch)."""
    return Asset(uri=settings.pipeline.catalog_uri) if settings.pipeline.catalog_uri.startswith("gs://") else None


def last_announced(context: Context) -> datetime:
    """When the snapshot last announced on the catalog's Asset was updated (its event's extra, else the event's
    time); :data:`NEVER` before the first. The sensor waits for an update after it."""
    [asset] = context["task"].inlets
    events = context["inlet_events"][asset].ascending(False).limit(1)
    if not events:
        return NEVER
    updated = events[0].extra.get("updated")
    return datetime.fromisoformat(updated) if isinstance(updated, str) else events[0].timestamp


def announce_snapshot(catalog_uri: str, gcp_conn_id: str, *, outlet_events: Any = None) -> dict[str, Any]:
    """Record the catalog object's current snapshot (``updated``, ``generation``) on its Asset: image_index starts."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    bucket, name = uris.split_gs(catalog_uri)
    blob = GCSHook(gcp_conn_id=gcp_conn_id).get_conn().bucket(bucket).get_blob(name)
    if blob is None:
        raise AirflowFailException(f"the catalog {catalog_uri} disappeared after it was updated")
    snapshot = {"uri": catalog_uri, "updated": blob.updated.isoformat(), "generation": str(blob.generation)}
    outlet_events[Asset(uri=catalog_uri)].extra.update(snapshot)
    return snapshot
