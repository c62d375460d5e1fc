"""Probes and metrics for the platform: liveness, readiness (an index is loaded), Prometheus."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get

from serving.errors import error_responses
from serving.metrics import Metrics
from serving.schemas import Health
from serving.service import SearchService


class OpsController(Controller):
    tags = ["operations"]

    @get("/healthz", summary="Liveness: the process answers")
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get("/readyz", responses=error_responses(503), summary="Readiness: an index is loaded")
    async def readyz(self, service: SearchService) -> Health:
        index = service.index()
        return Health(status="ready", version=index.version, item_count=index.size)

    @get("/metrics", summary="Prometheus metrics", media_type=MediaType.TEXT, sync_to_thread=False)
    def metrics(self, metrics: Metrics) -> Response[bytes]:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
