"""Liveness, readiness and the metrics endpoint, as Kubernetes and Prometheus call them."""

from __future__ import annotations

from litestar.testing import TestClient


def test_probes_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": None, "item_count": None}
    assert client.get("/readyz").json() == {"status": "ready", "version": "20260101T000000Z", "item_count": 20}
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'imagesearch_http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in metrics.text
