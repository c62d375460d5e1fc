"""Probes and metrics for the platform: liveness, readiness (an index is loaded), Prometheus."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get

from serving import examples
from serving.errors import NotReadyError, error_responses
from serving.metrics import Metrics
from serving.openapi import ok
from serving.schemas import Health
from serving.service import SearchService


class OpsController(Controller):
    tags = ["operations"]

    @get(
        "/healthz", operation_id="checkLiveness", summary="Liveness: the process answers",
        description="Answers 200 as long as the process serves HTTP, index or not (Kubernetes' liveness probe).",
        responses=ok(Health, "The process is alive.", examples.LIVE, "Alive"),
    )
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz", operation_id="checkReadiness", summary="Readiness: an index is loaded",
        description="200 with the served version once an index is loaded; 503 until then (Kubernetes' readiness probe).",
        responses={
            **ok(Health, "Ready to search.", examples.READY, "Ready"),
            **error_responses(503, examples={503: (NotReadyError.error, "no index is loaded yet")}),
        },
    )
    async def readyz(self, service: SearchService) -> Health:
        index = service.index()
        return Health(status="ready", version=index.version, item_count=index.size)

    @get(
        "/metrics", operation_id="getMetrics", summary="Prometheus metrics", media_type=MediaType.TEXT, sync_to_thread=False,
        responses=ok(str, "Prometheus' text exposition format.", examples.METRICS, "An excerpt", MediaType.TEXT),
        description="Requests by route and status, latency histograms, inference batch sizes and time, overload "
        "rejections, and the served index's version, size and age (see gitops/monitoring for the dashboard and alerts).",
    )
    def metrics(self, metrics: Metrics) -> Response[bytes]:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)
