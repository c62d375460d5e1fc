"""The one typed settings object, read from ``IMAGESEARCH_*`` environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

PREFIX = "IMAGESEARCH_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


# The most results one search may ask for (the API's bound on k).
MAX_K = 100


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # Where versioned indexes live: a local path, file:// URI or gs://bucket/prefix.
    model_repository: str = str(DATA_DIR / "model-repository")
    # How long a gs:// call keeps retrying transient errors before the step fails with a clear message.
    repository_retry_s: float = 60.0
    # The GitOps repo the DAG's last step commits to, and what it changes there.
    gitops_repo_url: str = str(DATA_DIR / "gitops.git")
    gitops_branch: str = "main"
    gitops_overlay: str = "gitops/overlays/local"
    gitops_author_name: str = "image-index-bot"
    gitops_author_email: str = "image-index-bot@localhost"
    gitops_push_retries: int = 5
    # How pipeline steps run: local subprocesses, Kubernetes pods, or pods on a GKE cluster (GKEStartPodOperator).
    runner: Literal["local", "kubernetes", "gke"] = "local"
    schedule: str = "@hourly"
    catalog_uri: str = str(DATA_DIR / "catalogs" / "tuxpaint" / "catalog.csv")
    # A gs:// catalog is watched (dags/catalog_watch.py): this often, and for this long per wait (then a new wait).
    catalog_watch_interval_s: float = 300.0
    catalog_watch_timeout_s: float = 6 * 3600.0
    # The input policy (imagesearch/input_policy.py), comma-separated lists. Catalogs are read only under
    # catalog_prefixes (local folders, gs://bucket/prefix, https://host/prefix). Images: these schemes, these
    # local roots, these buckets and hosts ("" hosts: any public host), plus the catalog's own folder.
    catalog_prefixes: str = str(DATA_DIR)
    image_schemes: str = "file,gs,https"
    image_local_roots: str = str(DATA_DIR)
    image_buckets: str = ""
    image_hosts: str = ""
    # Private, loopback and link-local addresses are refused unless inside one of these CIDRs.
    fetch_allowed_networks: str = ""
    fetch_max_redirects: int = 3
    # Pipeline knobs. Shards are cut over the items that need fetching and embedding (new or changed):
    # about shard_size each, never more than max_shards (larger shards then).
    shard_size: int = 5000
    max_shards: int = 32
    max_parallel_shards: int = 4
    max_failure_ratio: float = 0.2
    # Every fetch's total deadline (connect, redirects and body), and the slowest body transfer accepted.
    fetch_timeout_s: float = 10.0
    fetch_min_bytes_per_s: int = 16 * 1024
    fetch_workers: int = 8
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 16
    embed_batch_size: int = 8  # fastest on CPU here (bench/embed.py); raise it on a GPU
    torch_threads: int = 0  # 0: torch's default
    brute_force_below: int = 20_000
    # PCA-whitening learned per version on the raw embeddings (bench/quality.py): output dims, eigenvalue
    # shrinkage, and the smallest index it is learned for (0 dims: off).
    whitening_dims: int = 512
    whitening_shrinkage: float = 0.3
    whitening_min_items: int = 200
    # The quality gate: absolute floors, and the largest drop allowed against the version the overlay serves
    # (scored on the same query sample).
    min_recall_at_10: float = 0.9
    min_near_duplicate_top1: float = 0.9
    max_regression_recall_at_10: float = 0.01
    max_regression_near_duplicate_top1: float = 0.02
    max_regression_category_precision_at_10: float = 0.03
    eval_sample_size: int = 500
    eval_seed: int = 1234
    # Serving: the fetcher fills index_dir with index_version; the server loads index_dir.
    index_dir: str = str(DATA_DIR / "serving-index")
    index_version: str = ""
    # POST /admin/index swaps in only <index_root>/<version> folders; "" means the folder holding index_dir.
    index_root: str = ""
    # Enables POST /admin/index (the local deploy's in-process swap) for callers with this bearer token.
    admin_token: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_upload_bytes: int = 10 * 1024 * 1024
    batch_max_size: int = 16
    batch_max_wait_ms: float = 5.0
    max_queue: int = 64
    # Abuse limits of the server. Queries get a lower pixel cap than the catalog; decoding runs under a memory
    # budget (permits = budget // worst case of one query image, see serving/decode_budget.py); a request body
    # must arrive within body_read_timeout_s of admission (408 after); uvicorn refuses connections past
    # max_connections; a filtered search examines at most filtered_search_max_rows rows.
    query_max_image_pixels: int = 16_000_000
    decode_memory_budget_mb: int = 512
    body_read_timeout_s: float = 15.0
    max_connections: int = 256
    filtered_search_max_rows: int = 4096
    # How long a stopping server lets in-flight requests finish; fits the pod's terminationGracePeriodSeconds
    # together with the preStop sleep (tests/gitops check the sum).
    shutdown_timeout_s: int = 30
    # Result thumbnails are served at <image_base_url>/v1/items/<item_id>/image: "" keeps them relative to this
    # server; set the public URL (e.g. https://search.example.com) when clients need absolute links.
    image_base_url: str = ""
    # The catalog's prices carry no currency: this ISO 4217 code is the one they are in, shown with every price.
    currency: str = "USD"
    # Threads for decoding and searching off the event loop; the seconds a saturated server asks clients to wait.
    request_threads: int = 8
    retry_after_s: int = 1
    # Airflow (dags/image_index.py): task retries and, with runner=kubernetes, the step pods.
    task_retries: int = 2
    retry_delay_s: float = 30.0
    max_retry_delay_s: float = 600.0
    # make airflow's home, and make demo's (`airflow dags test`): separate SQLite DBs, so a scheduler never sees a
    # test run; make airflow pauses the DAG's schedule at start unless airflow_unpause.
    airflow_home: str = str(DATA_DIR / "airflow")
    airflow_demo_home: str = str(DATA_DIR / "airflow-demo")
    airflow_unpause: bool = False
    # The DAG's task links: a GitOps commit's web page ({commit}, {version}; "": no link) and the search page
    # ("": http://<host>:<port>/ of this server's settings).
    gitops_commit_url_template: str = ""
    search_page_url: str = ""
    # The run_note task sets each run's note through this Airflow REST API with the bearer token in this file
    # (make airflow sets both; "": the note is only logged).
    airflow_api_url: str = ""
    airflow_api_token_file: str = ""
    # A task that fails for good emails these comma-separated addresses ("": nobody) through this SMTP server:
    # smtp://[user:password@]host[:port] (STARTTLS when offered) or smtps://... (TLS).
    alert_email_to: str = ""
    alert_email_from: str = "image-index@localhost"
    alert_smtp_url: str = "smtp://127.0.0.1:25"
    kubernetes_conn_id: str = "kubernetes_default"
    kubernetes_namespace: str = "imagesearch"
    kubernetes_image: str = "imagesearch-tasks:latest"
    kubernetes_image_pull_policy: str = "IfNotPresent"
    kubernetes_service_account: str = "image-index-pipeline"
    # A ConfigMap whose keys become every step container's environment (IMAGESEARCH_* settings, no credentials),
    # and the Secret with the git push credentials, which only the deploy step gets; "" for none.
    kubernetes_env_config_map: str = "imagesearch-pipeline"
    kubernetes_env_secret: str = "imagesearch-pipeline-git"
    # JSON overrides of the per-step requests/limits, e.g. {"embed": {"requests": {"memory": "16Gi"}}}.
    kubernetes_resources: str = ""
    # embed's GPUs (0: embed on CPU), the node pool it is pinned to (key=value[,key=value]) and the taint it tolerates.
    kubernetes_gpu_count: int = 1
    kubernetes_gpu_resource: str = "nvidia.com/gpu"
    kubernetes_gpu_node_selector: str = "cloud.google.com/gke-accelerator=nvidia-l4"
    kubernetes_gpu_toleration: str = "nvidia.com/gpu"
    # Long steps wait for their pod in the triggerer instead of holding a worker slot.
    kubernetes_deferrable: bool = True
    # The step containers run as this non-root uid and gid; the task image must work as that user.
    kubernetes_run_as_user: int = 10001
    # Airflow's Google Cloud connection: the model-repository hook's gs:// access and, with runner=gke, the cluster's.
    gcp_conn_id: str = "google_cloud_default"
    # runner=gke: the cluster the step pods run in ("" project: the connection's own project).
    gke_project: str = ""
    gke_location: str = ""
    gke_cluster: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None:
                continue
            values[field.name] = _parse(field.name, hints[field.name], raw)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.runner not in ("local", "kubernetes", "gke"):
            raise SettingsError(f"{PREFIX}RUNNER must be 'local', 'kubernetes' or 'gke', not {self.runner!r}")
        if self.runner == "gke" and not (self.gke_location and self.gke_cluster):
            raise SettingsError(f"{PREFIX}RUNNER=gke needs {PREFIX}GKE_LOCATION and {PREFIX}GKE_CLUSTER")
        if self.fetch_timeout_s <= 0 or self.fetch_max_redirects < 0 or self.fetch_min_bytes_per_s < 0:
            raise SettingsError(f"{PREFIX}FETCH_TIMEOUT_S must be positive, the redirect cap and minimum rate not negative")
        if not 0 <= self.max_failure_ratio <= 1:
            raise SettingsError(f"{PREFIX}MAX_FAILURE_RATIO must be within [0, 1], got {self.max_failure_ratio}")
        for name in ("min_recall_at_10", "min_near_duplicate_top1", "max_regression_recall_at_10",
                     "max_regression_near_duplicate_top1", "max_regression_category_precision_at_10"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be within [0, 1], got {getattr(self, name)}")
        for name in (
            "shard_size", "max_shards", "embed_batch_size", "batch_max_size", "max_queue", "fetch_workers", "workers",
            "request_threads", "query_max_image_pixels", "decode_memory_budget_mb", "max_connections",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
        if self.filtered_search_max_rows < MAX_K:
            raise SettingsError(f"{PREFIX}FILTERED_SEARCH_MAX_ROWS must be at least {MAX_K}, the largest k a request may ask for")
        for name in ("body_read_timeout_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be above 0")
        if not re.fullmatch("[A-Z]{3}", self.currency):
            raise SettingsError(f"{PREFIX}CURRENCY must be an ISO 4217 code such as USD or EUR, not {self.currency!r}")


def _parse(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    return raw


def search_page(settings: Settings) -> str:
    """The search web page's URL: ``search_page_url``, else this server's host and port."""
    return settings.search_page_url or f"http://{settings.host}:{settings.port}/"


def get_settings() -> Settings:
    return Settings.from_env()
