"""The catalog watch's wait: the Google provider's deferrable ``GCSObjectUpdateSensor`` on the catalog object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.sensors.gcs import GCSObjectUpdateSensor
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from imagesearch import uri as uris
from plugins.catalog_watch import WATCH_DAG_ID, last_announced

if TYPE_CHECKING:
    from airflow.sdk import Context


class CatalogSnapshotSensor(GCSObjectUpdateSensor):
    """Waits for the catalog object to be updated after the last announced snapshot; the Asset is its inlet."""

    def __init__(self, *, catalog_uri: str, gcp_conn_id: str, interval_s: float, timeout_s: float, **kwargs: Any) -> None:
        bucket, name = uris.split_gs(catalog_uri) if catalog_uri.startswith("gs://") else ("", "")
        inlets = [Asset(uri=catalog_uri)] if bucket else []  # last_announced reads its events
        super().__init__(
            bucket=bucket, object=name, ts_func=last_announced, google_cloud_conn_id=gcp_conn_id, deferrable=True,
            poke_interval=interval_s, timeout=timeout_s, soft_fail=True, inlets=inlets, **kwargs,
        )
        self.catalog_uri = catalog_uri

    def execute(self, context: Context) -> None:
        if not (self.bucket and self.object):
            raise AirflowFailException(f"the catalog {self.catalog_uri} is not a gs:// object: there is nothing to "
                                       f"watch ({WATCH_DAG_ID} is off; image_index runs on its schedule)")
        super().execute(context)
