"""The one typed settings object, read from ``IMAGESEARCH_*`` environment variables by pydantic-settings.

Settings are grouped by concern (``settings.pipeline.shard_size``, ``settings.kubernetes.image``, ...) while the
variables stay flat: a field's variable is ``IMAGESEARCH_`` + its group's prefix (``KUBERNETES_``, ``GITOPS_``,
``AIRFLOW_``, ``ALERT_`` or none) + the field's name in capitals, e.g. ``IMAGESEARCH_KUBERNETES_IMAGE``.
``variable_names()`` lists them all; docs/CONFIGURATION.md must name every one (tests/docs).

To add a setting: add a field with a description to the group it concerns, a row to docs/CONFIGURATION.md, and
read it as ``get_settings().<group>.<field>`` (or from the settings a caller passes in).

A process reads its environment once, through ``get_settings()``. ``Settings.from_env(mapping)`` builds settings
from a given mapping (tests, a pod's rendered environment); a bad value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from imagesearch.backbones import BACKBONES, DEFAULT_BACKBONE
from imagesearch.catalog_formats import suffixes_text
from imagesearch.index import ReorderDtype

PREFIX = "IMAGESEARCH_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


# What can run the embedder's network (imagesearch/runtimes.py).
Runtime = Literal["torch", "openvino"]
# The most results one search may ask for (the API's bound on k).
MAX_K = 100


class SettingsError(ValueError):
    pass


def _variables(group_prefix: str = "") -> ConfigDict:
    """A group's model config: each field is read from ``IMAGESEARCH_<group_prefix><FIELD>`` (its alias)."""
    return ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True,
                      alias_generator=lambda name: f"{PREFIX}{group_prefix}{name.upper()}")


def _iso_4217(code: str) -> str:
    if not re.fullmatch("[A-Z]{3}", code):
        raise ValueError("must be an ISO 4217 code such as USD or EUR")
    return code


def _registered_backbone(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"must be a registered backbone ({', '.join(sorted(BACKBONES))}; imagesearch/backbones.py)")
    return name


def _at_least_max_k(rows: int) -> int:
    if rows < MAX_K:
        raise ValueError(f"must be at least {MAX_K}, the largest k a request may ask for")
    return rows


def default_openvino_cache_dir() -> str:
    """``$XDG_CACHE_HOME/imagesearch/openvino``, else ``~/.cache/imagesearch/openvino``: read once, when this module
    is imported, like every default."""
    return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imagesearch" / "openvino")


AtLeastOne = Annotated[int, Field(ge=1)]
NotNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NotNegativeFloat = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class PipelineSettings(BaseModel):
    """How the image_index DAG runs its steps, cuts shards, embeds and builds the index."""

    model_config = _variables()

    runner: Literal["local", "kubernetes", "gke"] = Field(
        "local", description="How pipeline steps run: local subprocesses, Kubernetes pods, or the same pods on a GKE "
                             "cluster (GKEStartPodOperator, with the google settings).")
    schedule: str = Field("@hourly", description="The DAG's schedule: a cron expression or preset; none or manual: "
                                                 "triggered runs only.")
    catalog_uri: str = Field(str(DATA_DIR / "catalogs" / "tuxpaint" / "catalog.csv"),
                             description=f"The catalog the DAG reads ({suffixes_text()}; a path, file:// or gs://).")
    catalog_watch_interval_s: float = Field(300.0, description="A gs:// catalog is watched (dags/catalog_watch.py) "
                                                                "this often for a new snapshot.")
    catalog_watch_timeout_s: float = Field(6 * 3600.0, description="How long one wait for a new snapshot lasts "
                                                                   "(then a new wait).")
    shard_size: AtLeastOne = Field(5000, description="About this many items per shard: shards are cut over the items "
                                                     "that need fetching and embedding (new or changed).")
    max_shards: AtLeastOne = Field(32, description="The most shards (larger shards then).")
    max_parallel_shards: int = Field(4, description="Shards processed at once (pods or processes).")
    max_failure_ratio: Share = Field(0.2, description="A shard (or the catalog) fails above this share of bad images "
                                                      "(rows).")
    backbone: Annotated[str, AfterValidator(_registered_backbone)] = Field(
        DEFAULT_BACKBONE, description="The backbone new runs embed with (imagesearch/backbones.py: "
                                      f"{', '.join(sorted(BACKBONES))}); its input size and normalisation come with "
                                      "it. A version records its own; the search server embeds with the served one's.")
    embed_batch_size: AtLeastOne = Field(8, description="Images per embedding batch; 8 is fastest on CPU here "
                                                        "(bench/embed.py): raise it on a GPU.")
    torch_threads: int = Field(0, description="The embedder's threads, in torch or OpenVINO (0: the runtime's "
                                              "default, all cores).")
    embedder_runtime: Runtime = Field(
        "openvino", description="What runs the embedder's network on the CPU (imagesearch/runtimes.py): openvino "
                                "(faster than torch here: bench/embed.py) or torch; the vectors agree within "
                                "1e-3 cosine, so the model id does not change. On a GPU the network runs in torch.")
    openvino_cache_dir: str = Field(
        default_openvino_cache_dir(),
        description="Where OpenVINO models converted from the embedder's network are kept, so that later processes "
                    "skip the conversion (each is still checked against torch before use); empty: convert in "
                    "memory every time.")
    brute_force_below: int = Field(20_000, description="Below this many items ScaNN searches exhaustively.")
    reorder_dtype: ReorderDtype = Field("int8", description="What the tree + AH index re-scores its candidates with: "
                                                            "float32, bfloat16 or int8 (a quarter of float32's "
                                                            "memory; bench/index.py).")
    soar_lambda: float | None = Field(None, gt=0, description="SOAR spilling of each row to a second leaf, with this "
                                                              "lambda (ScaNN suggests 1.5); unset: none.")
    whitening_dims: int = Field(512, description="Output dimensions of the PCA-whitening learned per version on the "
                                                 "raw embeddings when the run gives no projection (a model version's "
                                                 "head: build_index --projection) (bench/quality.py); 0: off.")
    model_version: str = Field("", description="The model version (a trained head in the model repository's models/) "
                                               "index runs project with when their model_version param is empty; "
                                               "empty: the pin, else the newest gated one for the backbone; none: "
                                               "no head (PCA-whitening).")
    model_schedule: str = Field("@daily", description="The image_model (training) DAG's schedule: a cron expression "
                                                      "or preset; none or manual: triggered runs only.")
    whitening_shrinkage: float = Field(0.3, description="The whitening's eigenvalue shrinkage.")
    whitening_min_items: int = Field(200, description="The smallest index the whitening is learned for.")
    index_update_max_changed: Share = Field(
        0.25, description="A run updates the previous version's tree index (deletes and upserts) unless more than "
                          "this share of the items it was last built in full with changed since: then it builds it "
                          "in full.")
    index_update_max_imbalance_growth: NotNegativeFloat = Field(
        0.25, description="An updated index whose partitions' weighted relative imbalance (ScaNN's health "
                          "statistic) grew by more than this since the last full build is built in full instead.")
    index_update_max_error_growth: NotNegativeFloat = Field(
        0.05, description="An updated index whose average quantization error grew by more than this share since "
                          "the last full build is built in full instead.")
    task_retries: int = Field(2, description="Airflow retries of each step task.")
    retry_delay_s: float = Field(30.0, description="The first retry's delay; it doubles with each retry.")
    max_retry_delay_s: float = Field(600.0, description="The longest delay between retries.")


class StorageSettings(BaseModel):
    """Where published versions live."""

    model_config = _variables()

    model_repository: str = Field(str(DATA_DIR / "model-repository"),
                                  description="Where versioned indexes live: a local path, file:// URI or "
                                              "gs://bucket/prefix.")
    repository_retry_s: float = Field(60.0, description="How long a gs:// call keeps retrying transient errors before "
                                                        "the step fails with a clear message.")


class InputSettings(BaseModel):
    """The input policy (imagesearch/input_policy.py) and the limits of every image fetch; lists are comma-separated."""

    model_config = _variables()

    catalog_prefixes: str = Field(str(DATA_DIR), description="Where catalogs may be read: local folders, "
                                                             "gs://bucket/prefix, https://host/prefix.")
    image_schemes: str = Field("file,gs,https", description="Schemes image URIs may use (file: local paths too).")
    image_local_roots: str = Field(str(DATA_DIR), description="Local folders images may be read from, besides the "
                                                              "catalog's own folder.")
    image_buckets: str = Field("", description="GCS buckets images may come from, besides the catalog's own bucket.")
    image_hosts: str = Field("", description="HTTP(S) image hosts (img.example.com, *.example.com); empty: any "
                                             "public host.")
    fetch_allowed_networks: str = Field("", description="CIDRs exempt from the refusal of private, loopback and "
                                                        "link-local addresses.")
    fetch_max_redirects: NotNegative = Field(3, description="Redirects followed per fetch, each target checked again.")
    fetch_timeout_s: Positive = Field(10.0, description="Every fetch's total deadline: connect, redirects and body.")
    fetch_min_bytes_per_s: NotNegative = Field(16 * 1024, description="A body arriving slower than this (after its "
                                                                      "first second) is dropped as too_slow.")
    fetch_workers: AtLeastOne = Field(8, description="Fetches at once.")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="The largest image file accepted.")
    max_image_pixels: int = Field(40_000_000, description="The most pixels of a catalog image (decompression bombs "
                                                          "are refused before decoding).")
    min_image_side: int = Field(16, description="The shortest image side accepted, in pixels.")


class EvaluationSettings(BaseModel):
    """The quality gate: absolute floors, the largest drops allowed against the version the overlay serves (scored
    on the same query sample), and that sample."""

    model_config = _variables()

    min_recall_at_10: Share = Field(0.9, description="The gate's floor of recall@10 against exact search.")
    min_near_duplicate_top1: Share = Field(0.9, description="The gate's floor of near-duplicate top-1 accuracy.")
    max_regression_recall_at_10: Share = Field(0.01, description="The largest drop of recall@10 allowed.")
    max_regression_near_duplicate_top1: Share = Field(0.02, description="The largest drop of near-duplicate top-1 "
                                                                        "accuracy allowed.")
    max_regression_category_precision_at_10: Share = Field(0.03, description="The largest drop of category "
                                                                             "precision@10 allowed.")
    eval_sample_size: int = Field(500, description="Evaluation queries.")
    eval_seed: int = Field(1234, description="The seed that draws them.")


class ServingSettings(BaseModel):
    """The search server, its fetcher and its abuse limits."""

    model_config = _variables()

    index_dir: str = Field(str(DATA_DIR / "serving-index"), description="Where the fetcher puts a version and the "
                                                                        "server loads it.")
    index_version: str = Field("", description="The version the fetcher downloads (set by the overlay's ConfigMap).")
    index_root: str = Field("", description="POST /admin/index swaps in only <index_root>/<version> folders; empty: "
                                            "the folder holding index_dir.")
    admin_token: str = Field("", description="Enables POST /admin/index (the in-process swap) for callers with this "
                                             "bearer token.")
    host: str = Field("127.0.0.1", description="The server's address.")
    port: int = Field(8000, description="The server's port.")
    workers: AtLeastOne = Field(1, description="uvicorn workers.")
    request_threads: AtLeastOne = Field(8, description="Threads for decoding and searching off the event loop.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, description="Bigger request bodies get 413.")
    body_read_timeout_s: Positive = Field(15.0, description="A search body must arrive in full within this many "
                                                            "seconds of its first byte being read (else 408).")
    query_memory_wait_s: Positive = Field(25.0, description="A search waits at most this many seconds for its memory "
                                                            "reservation (its body, then its decode) before 503 + "
                                                            "Retry-After.")
    query_max_image_pixels: AtLeastOne = Field(16_000_000, description="Pixel cap of query images (lower than the "
                                                                       "catalog's); larger ones get 422.")
    query_memory_budget_mb: AtLeastOne = Field(512, description="Memory for search inputs: each search reserves its "
                                                                "body (2.25 x its length, before reading it) and its "
                                                                "decode (22 bytes per pixel) and waits, then gets "
                                                                "503, when they do not fit (serving/memory_budget.py).")
    category_index_memory_mb: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Memory for the category indexes built after a version serves; unset: the container's "
                          "limit (cgroup memory.max, else physical memory) less the server's RSS, the query memory budget "
                          "and 512 MiB (serving/memory_limit.py). A category left without one is searched in the "
                          "whole index.")
    filtered_search_max_rows: Annotated[int, AfterValidator(_at_least_max_k)] = Field(
        4096, description="The most rows a filtered search examines.")
    max_connections: AtLeastOne = Field(2048, description="Open connections per worker; a new one past it is closed at "
                                                          "once (serving/connections.py).")
    max_connections_per_client: AtLeastOne = Field(64, description="Open connections one peer address may hold; its "
                                                                   "next one is closed at once.")
    header_read_timeout_s: Positive = Field(5.0, description="A request's headers must arrive in full within this many "
                                                             "seconds of the connection waiting for them, or it is closed.")
    keep_alive_timeout_s: Positive = Field(5.0, description="An idle kept-alive connection is closed after this many "
                                                            "seconds (uvicorn's timeout_keep_alive).")
    client_slot_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.25, description="The largest share of IMAGESEARCH_MAX_QUEUE one client (peer address) may hold; past it 503.")
    forwarded_allow_ips: str = Field("", description="Proxies whose X-Forwarded-For names the client (uvicorn's "
                                                     "forwarded_allow_ips); empty: the TCP peer is the client.")
    shutdown_timeout_s: Annotated[int, Field(gt=0)] = Field(
        30, description="How long a stopping server lets in-flight requests finish; fits the pod's "
                        "terminationGracePeriodSeconds with the preStop sleep (tests/gitops check the sum).")
    batch_max_size: AtLeastOne = Field(16, description="Micro-batching of concurrent image queries: the largest "
                                                       "batch (1: off).")
    batch_max_wait_ms: float = Field(5.0, description="How long a batch waits to fill.")
    max_queue: AtLeastOne = Field(64, description="Searches admitted at once (body reading included) before 503.")
    retry_after_s: int = Field(1, description="The seconds a saturated server asks clients to wait (Retry-After).")
    image_base_url: str = Field("", description="Result thumbnails are served at <image_base_url>/v1/items/<id>/image; "
                                                "empty: relative to this server.")
    currency: Annotated[str, AfterValidator(_iso_4217)] = Field(
        "USD", description="The ISO 4217 code the catalog's prices are in, shown with every price.")
    search_page_url: str = Field("", description="The search page the DAG's task links point to; empty: "
                                                 "http://<host>:<port>/ of these settings.")

    def search_page(self) -> str:
        """The search web page's URL: ``search_page_url``, else this server's host and port."""
        return self.search_page_url or f"http://{self.host}:{self.port}/"


class KubernetesSettings(BaseModel):
    """The step pods, with runner=kubernetes or gke."""

    model_config = _variables("KUBERNETES_")

    conn_id: str = Field("kubernetes_default", description="The Airflow connection to the cluster.")
    namespace: str = Field("imagesearch", description="Where step pods run.")
    image: str = Field("imagesearch-tasks:latest", description="The task image (docker/Dockerfile.tasks).")
    image_pull_policy: str = Field("IfNotPresent", description="Its pull policy.")
    service_account: str = Field("image-index-pipeline", description="The pods' service account (Workload Identity "
                                                                     "for GCS).")
    env_config_map: str = Field("imagesearch-pipeline", description="A ConfigMap whose keys become every step "
                                                                    "container's environment (settings, no "
                                                                    "credentials); empty: none.")
    env_secret: str = Field("imagesearch-pipeline-git", description="The Secret with the git push credential "
                                                                    "(IMAGESEARCH_GITOPS_TOKEN), which only the "
                                                                    "deploy step gets; empty: none.")
    env_read_secret: str = Field("imagesearch-pipeline-git-read", description="The Secret with a read-only git "
                                                                              "credential (IMAGESEARCH_GITOPS_TOKEN), "
                                                                              "which only the steps that read what "
                                                                              "serves get (snapshot, evaluate); "
                                                                              "empty: none (a public GitOps repo).")
    resources: str = Field("", description='JSON overrides of the per-step requests/limits, e.g. '
                                           '{"embed": {"requests": {"memory": "16Gi"}}}.')
    gpu_count: int = Field(1, description="embed's GPUs (0: embed on CPU).")
    gpu_resource: str = Field("nvidia.com/gpu", description="The resource name of a GPU.")
    gpu_node_selector: str = Field("cloud.google.com/gke-accelerator=nvidia-l4",
                                   description="The node pool embed is pinned to (key=value[,key=value]).")
    gpu_toleration: str = Field("nvidia.com/gpu", description="The taint embed tolerates.")
    deferrable: bool = Field(True, description="Long steps wait for their pod in the triggerer instead of holding a "
                                               "worker slot.")
    run_as_user: int = Field(10001, description="The non-root uid and gid of the step containers; the task image "
                                                "must work as that user.")


class GoogleSettings(BaseModel):
    """Airflow's Google Cloud connection and, with runner=gke, the cluster the step pods run in."""

    model_config = _variables()

    gcp_conn_id: str = Field("google_cloud_default", description="Airflow's Google Cloud connection: the DAG's gs:// "
                                                                 "model-repository access, and the GKE cluster's "
                                                                 "credentials with runner=gke.")
    gke_project: str = Field("", description="runner=gke: the cluster's project; empty: the connection's own.")
    gke_location: str = Field("", description="runner=gke (required): the cluster's region or zone.")
    gke_cluster: str = Field("", description="runner=gke (required): the cluster's name.")


class GitOpsSettings(BaseModel):
    """The GitOps repo the DAG's deploy step commits to, and what it changes there."""

    model_config = _variables("GITOPS_")

    repo_url: str = Field(str(DATA_DIR / "gitops.git"), description="The GitOps repo the deploy step pushes to and "
                                                                    "snapshot and evaluate read: its URL without "
                                                                    "credentials (userinfo in it is taken as the "
                                                                    "credential, and never printed).")
    username: str = Field("x-access-token", description="The git credential's user name over HTTPS, with the token.")
    token: SecretStr = Field(SecretStr(""), description="The git credential's password: an access token (from a Secret; "
                                                        "never printed). Empty: git's own credential setup.")
    branch: str = Field("main", description="Its branch.")
    overlay: str = Field("gitops/overlays/local", description="The overlay whose version the deploy step bumps.")
    author_name: str = Field("image-index-bot", description="The author of bump commits.")
    author_email: str = Field("image-index-bot@localhost", description="The author's email.")
    push_retries: int = Field(5, description="Push attempts (the change is re-made on the new tip) when someone else "
                                             "pushed first.")
    commit_url_template: str = Field("", description="A GitOps commit's web page ({commit}, {version}) for the "
                                                     "deploy task's link and the run note; empty: no link.")


class AirflowSettings(BaseModel):
    """The local Airflow of make airflow and make demo, and the REST API the run_note task uses."""

    model_config = _variables("AIRFLOW_")

    home: str = Field(str(DATA_DIR / "airflow"), description="make airflow's Airflow home (SQLite).")
    demo_home: str = Field(str(DATA_DIR / "airflow-demo"), description="make demo's (airflow dags test) own home, "
                                                                      "never shared with a scheduler.")
    unpause: bool = Field(False, description="make airflow unpauses the DAG at start (it pauses it otherwise).")
    api_url: str = Field("", description="The REST API run_note sets each run's note through; empty: the note is "
                                         "only logged.")
    api_token_file: str = Field("", description="The file holding that API's bearer token.")


class AlertSettings(BaseModel):
    """Who a task that fails for good emails, and through which SMTP server."""

    model_config = _variables("ALERT_")

    email_to: str = Field("", description="Comma-separated addresses; empty: nobody.")
    email_from: str = Field("image-index@localhost", description="The alerts' sender.")
    smtp_url: str = Field("smtp://127.0.0.1:25", description="smtp://[user:password@]host[:port] (STARTTLS when "
                                                             "offered) or smtps://... (TLS).")


class _FlatVariables(PydanticBaseSettingsSource):
    """Reads every group's fields from their flat variables (``IMAGESEARCH_PORT``, not a nested name)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError("read as whole groups by __call__")

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for group_name, group in _groups(self.settings_cls).items():
            found = {name: self.environ[name] for name in _group_variables(group) if name in self.environ}
            if found:
                values[group_name] = found
        return values


class Settings(BaseSettings):
    """Every setting, by concern. ``Settings()`` reads the process environment; prefer ``get_settings()``."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    pipeline: PipelineSettings = PipelineSettings()
    storage: StorageSettings = StorageSettings()
    inputs: InputSettings = InputSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    serving: ServingSettings = ServingSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    google: GoogleSettings = GoogleSettings()
    gitops: GitOpsSettings = GitOpsSettings()
    airflow: AirflowSettings = AirflowSettings()
    alerts: AlertSettings = AlertSettings()

    @model_validator(mode="after")
    def _gke_names_its_cluster(self) -> Settings:
        if self.pipeline.runner == "gke" and not (self.google.gke_location and self.google.gke_cluster):
            raise ValueError(f"{PREFIX}RUNNER=gke needs {PREFIX}GKE_LOCATION and {PREFIX}GKE_CLUSTER")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the process environment's flat variables (no .env or secret files)."""
        return init_settings, _FlatVariables(settings_cls, os.environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **groups: BaseModel) -> Settings:
        """Settings from ``environ`` (default: the process environment) only, with any ``groups`` given replacing
        theirs (``Settings.from_env({}, serving=ServingSettings(port=0))``); a bad value raises SettingsError."""
        sources = (InitSettingsSource(cls, init_kwargs=groups), _FlatVariables(cls, os.environ if environ is None else environ))
        try:
            return cls(_build_sources=(sources, groups))
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None


def _groups(settings_cls: type[BaseSettings]) -> dict[str, type[BaseModel]]:
    return {name: field.annotation for name, field in settings_cls.model_fields.items()}  # type: ignore[misc]


def _group_variables(group: type[BaseModel]) -> list[str]:
    return [field.alias for field in group.model_fields.values() if field.alias]


def variables_by_group() -> dict[str, list[str]]:
    """Every setting's environment variable, by group, in the order of the groups and their fields."""
    return {name: _group_variables(group) for name, group in _groups(Settings).items()}


def variable_names() -> list[str]:
    """Every setting's environment variable."""
    return [name for names in variables_by_group().values() for name in names]


def _explain(error: ValidationError) -> str:
    """One line per bad variable: its name, the value given and what it must be."""
    lines = []
    for problem in error.errors(include_url=False):
        reason = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{problem['loc'][-1]}={problem['input']!r} is not valid: {reason}" if problem["loc"] else reason)
    return "; ".join(lines)


@functools.cache
def get_settings() -> Settings:
    """This process's settings, read from its environment once (tests that change it call get_settings.cache_clear)."""
    return Settings.from_env()
