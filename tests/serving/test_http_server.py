"""``python -m serving.app`` over real HTTP on a loopback port: the production entrypoint end to end."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import jpeg_bytes, photo
from tests.serving.conftest import ServerProcess, admin_headers, start_server

pytestmark = pytest.mark.slow


def test_every_endpoint_answers_over_http(live_server: ServerProcess, photo_catalog: Path) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/readyz").json()["version"] == "20260101T000000Z"
        assert http.get("/v1/index").json()["item_count"] == 20
        image = jpeg_bytes(photo("rocket"))
        multipart = http.post("/v1/search", params={"k": 3}, files={"image": ("rocket.jpg", image, "image/jpeg")}).json()
        raw = http.post("/v1/search", params={"k": 3}, content=image, headers={"Content-Type": "image/jpeg"}).json()
        assert [hit["item_id"] for hit in multipart["results"]] == [hit["item_id"] for hit in raw["results"]]
        assert multipart["results"][0]["item_id"] in ("rocket", "rocket-mirror")
        similar = http.get("/v1/items/rocket/similar", params={"k": 3}).json()
        assert similar["results"][0]["item_id"] == "rocket-mirror"
        thumbnail = http.get(similar["results"][0]["image_url"])
        assert thumbnail.content == (photo_catalog.parent / "rocket-mirror.png").read_bytes()
        assert http.post("/v1/search", content=b"nope", headers={"Content-Type": "image/png"}).status_code == 415
        assert http.get("/v1/items/nope/similar").status_code == 404
        assert "/v1/search" in http.get("/schema/openapi.json").json()["paths"]
        assert "text/html" in http.get("/").headers["content-type"]
        metrics = http.get("/metrics").text
        assert 'route="/v1/search",status="200"' in metrics
        assert 'imagesearch_index_version_info{version="20260101T000000Z"}' in metrics


def test_the_server_starts_without_an_index_then_serves_one_swapped_in(index_a: Path, tmp_path: Path) -> None:
    empty = tmp_path / "index"
    empty.mkdir()
    server = start_server(empty, tmp_path / "server.log", env={"IMAGESEARCH_BATCH_MAX_SIZE": "1"}, ready=False)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            not_ready = http.get("/readyz")
            assert not_ready.status_code == 503 and not_ready.headers["retry-after"] == "1"
            assert http.get("/healthz").status_code == 200
            fetched = tmp_path / "20260101T000000Z"
            shutil.copytree(index_a, fetched)
            swapped = http.post("/admin/index", json={"directory": str(fetched)}, headers=admin_headers())
            assert swapped.status_code == 200, swapped.text
            assert http.get("/readyz").json()["version"] == "20260101T000000Z"
    finally:
        server.stop()
    # A graceful stop: uvicorn finishes the shutdown, then re-raises the signal it got as its exit status.
    assert server.process.returncode in (0, -signal.SIGTERM), server.log.read_text()[-2000:]
    assert "Application shutdown complete" in server.log.read_text()
