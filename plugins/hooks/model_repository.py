"""The model repository as Airflow sees it: run workspaces, the published-index Asset, committed versions.

A thin wrapper over ``imagesearch.repository`` and ``imagesearch.artifacts``: the same client the steps
use, so the DAG and the steps cannot disagree about the layout (``runs/<version>``, ``indexes/<version>``).
A ``gs://`` repository is reached as Airflow reaches Google Cloud: the Google provider's ``GCSHook`` with
the Airflow connection ``IMAGESEARCH_GCP_CONN_ID`` (``google_cloud_default``), looked up at the first
request, so parsing a DAG needs no connection. The steps themselves run outside Airflow (pods with
Workload Identity, or subprocesses) and keep Google's application-default credentials.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import Asset, BaseHook

from imagesearch import uri as uris
from imagesearch.artifacts import INDEXES, committed_versions, latest_version, read_manifest
from imagesearch.manifest import Manifest
from imagesearch.repository import GCSRepository, ModelRepository, open_repository
from imagesearch.settings import get_settings

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.cloud import storage

GCS_CONSOLE = "https://console.cloud.google.com/storage/browser"


class ModelRepositoryHook(BaseHook):
    """A local folder, ``file://`` or ``gs://bucket/prefix`` model repository; ``gs://`` through the Google Cloud
    connection ``gcp_conn_id`` (defaults: from settings)."""

    hook_name = "Image-search model repository"

    def __init__(self, repository: str | None = None, gcp_conn_id: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        settings = get_settings()
        self.repository: str = repository or settings.storage.model_repository
        self.gcp_conn_id: str = gcp_conn_id or settings.google.gcp_conn_id
        self.retry_s: float = settings.storage.repository_retry_s

    @cached_property
    def gcs_hook(self) -> GCSHook:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook  # 0.4 s of imports: not while parsing a DAG

        return GCSHook(gcp_conn_id=self.gcp_conn_id)  # looks the connection up: only when a request is made

    def gcs_client(self) -> storage.Client:
        return self.gcs_hook.get_conn()

    def get_conn(self) -> ModelRepository:
        repository = open_repository(self.repository, retry_s=self.retry_s)
        if isinstance(repository, GCSRepository):
            repository.client = self.gcs_client
        return repository

    @property
    def uri(self) -> str:
        """The repository's canonical URI, as the steps are given it with ``--repository``."""
        return self.get_conn().uri

    def workspace_uri(self, version: str) -> str:
        """Where the run building ``version`` keeps its intermediate files: ``<repo>/runs/<version>``."""
        return self.get_conn().child(f"runs/{version}").uri

    def model_workspace_uri(self, version: str) -> str:
        """Where the image_model run building model ``version`` keeps its files: ``<repo>/model-runs/<version>``."""
        return self.get_conn().child(f"model-runs/{version}").uri

    def index_asset(self) -> Asset:
        """The published indexes as an Airflow Asset: ``gs://bucket/prefix/indexes`` or ``file:///.../indexes``.

        Named by its URI (Airflow's default), so pointing the pipeline at another repository makes another
        Asset instead of a name clash that would deactivate it.
        """
        location = self.get_conn().child(INDEXES).uri
        path = uris.local_path(location)
        return Asset(uri=Path(path).as_uri() if path is not None else location)

    def version_url(self, version: str) -> str:
        """Where a person sees a published version: the GCS console for ``gs://``, else a ``file://`` URL."""
        location = self.get_conn().child(f"{INDEXES}/{version}").uri
        if location.startswith("gs://"):
            return f"{GCS_CONSOLE}/{location.removeprefix('gs://')}/"
        path = uris.local_path(location)
        return Path(path).as_uri() if path is not None else location

    def committed_versions(self) -> list[str]:
        return committed_versions(self.get_conn())

    def latest_version(self) -> str | None:
        return latest_version(self.get_conn())

    def manifest(self, version: str) -> Manifest:
        return read_manifest(self.get_conn(), version)
