"""Prometheus metrics: requests per route and status, inference time and batch size, the index served.

Each app owns its registry (no process-global state, so several apps can live in one test process).
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from imagesearch.index_store import LoadedIndex

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            "imagesearch_http_requests", "HTTP requests by route and status.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "imagesearch_http_request_duration_seconds", "HTTP request latency by route and status.", labels,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.inference = Histogram(
            "imagesearch_inference_seconds", "Network time per micro-batch.", buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.batch_size = Histogram(
            "imagesearch_inference_batch_size", "Images per micro-batch.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.rejected = Counter(
            "imagesearch_overload_rejections",
            "Requests refused with 503 because every admission slot, or the memory for queries, was taken.",
            registry=self.registry,
        )
        self.admitted = Gauge(
            "imagesearch_admitted_requests", "Searches and similar-item requests admitted and not yet answered.",
            registry=self.registry,
        )
        self.memory_budget = Gauge(
            "imagesearch_query_memory_budget_bytes", "The memory searches may reserve for their bodies and decodes.",
            registry=self.registry,
        )
        self.memory_reserved = Gauge(
            "imagesearch_query_memory_reserved_bytes", "Memory reserved now by searches in flight (bodies, decodes).",
            registry=self.registry,
        )
        self.memory_reserved_peak = Gauge(
            "imagesearch_query_memory_reserved_peak_bytes", "The most memory searches have held reserved at once.",
            registry=self.registry,
        )
        self.memory_waits = Counter(
            "imagesearch_query_memory_waits", "Searches that waited for their memory reservation.", registry=self.registry
        )
        self.capped_searches = Counter(
            "imagesearch_filtered_search_capped",
            "Filtered searches that reached the depth cap before finding k matches (answered with fewer).",
            registry=self.registry,
        )
        self.index_version = Gauge(
            "imagesearch_index_version_info", "1 for the index version being served.", ("version",), registry=self.registry
        )
        self.index_items = Gauge("imagesearch_index_items", "Items in the index being served.", registry=self.registry)
        self.index_loaded = Gauge(
            "imagesearch_index_loaded_timestamp_seconds", "When the served index was loaded.", registry=self.registry
        )
        self.index_created = Gauge(
            "imagesearch_index_created_timestamp_seconds", "When the served index was built (its freshness).",
            registry=self.registry,
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def set_index(self, index: LoadedIndex) -> None:
        self.index_version.clear()
        self.index_version.labels(version=index.version).set(1)
        self.index_items.set(index.size)
        self.index_loaded.set_to_current_time()
        with contextlib.suppress(ValueError):
            self.index_created.set(datetime.fromisoformat(index.manifest.created_at).timestamp())

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its media type (without charset: Litestar appends it to text/* types)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


class RequestMetricsMiddleware(ASGIMiddleware):
    """Counts and times every routed HTTP request by method, route template and status."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        began = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, send_with_status)
        finally:
            labels = (scope.get("method", "?"), scope.get("path_template") or "unmatched", str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - began)
