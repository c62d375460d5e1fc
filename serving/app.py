"""The search service's Litestar app: the one place that wires routes, dependencies, errors and OpenAPI.

``python -m serving.app`` runs it under uvicorn with the workers from settings. Each worker is its own
process with its own index and metrics: ``POST /admin/index`` swaps the index of the worker that answers,
so the local deploy runs one worker (the default) and Kubernetes scales with pods.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio.to_thread
import numpy as np
import uvicorn
from litestar import Litestar, Router
from litestar.di import Provide

from imagesearch.artifacts import MANIFEST, Manifest
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig, servable_config
from imagesearch.settings import Settings, get_settings
from serving.admin import AdminController, bearer_token_guard
from serving.admission import Admission, AdmissionMiddleware, client_slots
from serving.allocator import tune_allocator
from serving.api import SearchController
from serving.connections import PROTOCOL_PATH, raise_open_files_limit
from serving.errors import EXCEPTION_HANDLERS
from serving.memory_budget import QueryMemoryMiddleware
from serving.metrics import Metrics, RequestMetricsMiddleware
from serving.openapi import asset_routers, openapi_config
from serving.ops import OpsController
from serving.service import QueryEmbedder, SearchService
from serving.uploads import MULTIPART_OVERHEAD
from serving.web import web_page

log = logging.getLogger(__name__)
API_VERSION = "1.0.0"


def _warm_up(embedder: QueryEmbedder, batch_sizes: set[int]) -> None:
    """The first passes through the network are slow (allocations, kernel choice): pay them before serving."""
    size = embedder.config.preprocess.size
    for count in sorted(batch_sizes):
        embedder.embed_arrays(np.zeros((count, 3, size, size), dtype=np.float32))


def served_model(index_dir: Path, settings: Settings) -> EmbedderConfig:
    """The model queries are embedded with: that of the version in ``index_dir`` (its manifest's ``model.config``,
    refused unless this image can embed with it); with no version there yet, that of new runs
    (``IMAGESEARCH_BACKBONE``), which then decides what a swap may bring in. The version's files are checked when
    the index loads; a manifest that is not the version's is refused then, before anything is served."""
    manifest_path = index_dir / MANIFEST
    if not manifest_path.is_file():
        config = EmbedderConfig.for_settings(settings)
        log.info("no version in %s yet: queries will be embedded with %s", index_dir, config.model_id)
        return config
    manifest = Manifest.decode(manifest_path.read_bytes())
    return servable_config(manifest.model, manifest.version)


def create_app(settings: Settings | None = None, embedder: QueryEmbedder | None = None) -> Litestar:
    """The app; its embedder is built from the served version's manifest (:func:`served_model`) unless given."""
    settings = settings or get_settings()
    tune_allocator()  # freed bodies and decode buffers go back to the system (serving/allocator.py)
    index_dir = Path(settings.serving.index_dir).resolve()
    embedder = embedder or Embedder(served_model(index_dir, settings), threads=settings.pipeline.torch_threads)
    metrics = Metrics()
    service = SearchService(settings, embedder, metrics)
    max_body_bytes = settings.serving.max_upload_bytes + MULTIPART_OVERHEAD
    admission = AdmissionMiddleware(
        Admission(settings.serving.max_queue, settings.serving.retry_after_s, metrics,
                  client_slots(settings.serving.max_queue, settings.serving.client_slot_share)),
        max_body_bytes, settings.serving.body_read_timeout_s,
    )

    async def start() -> None:
        await service.start()
        if service.holder.current is None:
            await anyio.to_thread.run_sync(service.holder.try_load_at_start, index_dir)
        await anyio.to_thread.run_sync(_warm_up, embedder, {1, settings.serving.batch_max_size})

    def provide_service() -> SearchService:
        return service

    def provide_metrics() -> Metrics:
        return metrics

    route_handlers: list[object] = [SearchController, OpsController, web_page, *asset_routers()]
    if settings.serving.admin_token:
        admin_guard = bearer_token_guard(settings.serving.admin_token)
        route_handlers.append(Router("/", route_handlers=[AdminController], guards=[admin_guard]))
    return Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        dependencies={
            "service": Provide(provide_service, sync_to_thread=False),
            "metrics": Provide(provide_metrics, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        # Admission first: only admitted searches wait for memory, and only their bodies are read.
        middleware=[RequestMetricsMiddleware(metrics), admission, QueryMemoryMiddleware(service.memory, max_body_bytes)],
        on_startup=[start],
        on_shutdown=[service.stop],
        request_max_body_size=max_body_bytes,
        openapi_config=openapi_config(API_VERSION),
    )


def main() -> None:
    settings = get_settings().serving
    raise_open_files_limit(settings.max_connections + 256)  # the index, the model, logs
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("serving %s on %s:%d with %d worker(s)", settings.index_dir, settings.host, settings.port, settings.workers)
    uvicorn.run(
        "serving.app:create_app", factory=True, host=settings.host, port=settings.port, workers=settings.workers,
        access_log=False, timeout_graceful_shutdown=settings.shutdown_timeout_s,
        # Connection limits live in the protocol (serving/connections.py), not in limit_concurrency: that one
        # answers 503 to every request, probes included, while a flood of idle connections stays open.
        http=PROTOCOL_PATH, timeout_keep_alive=settings.keep_alive_timeout_s,
        proxy_headers=bool(settings.forwarded_allow_ips), forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )


if __name__ == "__main__":
    main()
