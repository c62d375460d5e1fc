"""The index holder: start without an index, swap in a new version, and swaps under concurrent requests."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import numpy as np
from litestar.testing import TestClient

from imagesearch.embedder import Embedder
from imagesearch.index_store import LoadedIndex, load_index
from serving.app import create_app
from serving.search import nearest
from tests.conftest import jpeg_bytes, photo
from tests.serving.conftest import (
    DERIVED_VERSION,
    SlowEmbedder,
    admin_headers,
    serve_in_thread,
    serving_settings,
    swap,
)

VERSION_A = "20260101T000000Z"
JPEG = {"Content-Type": "image/jpeg"}


def test_without_a_committed_index_the_server_starts_but_is_not_ready(tmp_path: Path, index_a: Path, embedder: Embedder) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copytree(index_a, tmp_path / index_a.name)
    with TestClient(create_app(serving_settings(empty), embedder)) as client:
        assert client.get("/healthz").status_code == 200
        for response in (client.get("/readyz"), client.get("/v1/index"), client.get("/v1/items/coffee/similar"),
                         client.post("/v1/search", content=jpeg_bytes(photo("coffee")), headers=JPEG)):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "no_index_loaded"
        response = swap(client, tmp_path / index_a.name)
        assert response.status_code == 200, response.text
        assert response.json() == {"version": VERSION_A, "item_count": 20, "previous_version": None}
        assert client.get("/readyz").json()["version"] == VERSION_A


def test_a_swap_serves_the_new_version_everywhere(index_dir: Path, index_b_beside: Path, embedder: Embedder) -> None:
    with TestClient(create_app(serving_settings(index_dir), embedder)) as client:
        response = swap(client, index_b_beside)
        assert response.status_code == 200, response.text
        assert response.json() == {"version": DERIVED_VERSION, "item_count": 14, "previous_version": VERSION_A}
        assert client.get("/v1/index").json()["version"] == DERIVED_VERSION
        assert client.get("/readyz").json() == {"status": "ready", "version": DERIVED_VERSION, "item_count": 14}
        assert client.get("/v1/items/coffee/similar").status_code == 404  # dropped in B
        metrics = client.get("/metrics").text
        assert f'imagesearch_index_version_info{{version="{DERIVED_VERSION}"}} 1.0' in metrics
        assert VERSION_A not in metrics and "imagesearch_index_items 14.0" in metrics


def expected_answers(
    indexes: dict[str, LoadedIndex], query_for: Callable[[LoadedIndex], np.ndarray], k: int, exclude_item: str | None = None
) -> dict[str, list[str]]:
    """Each version's item ids for a query given in that version's search space."""
    answers = {}
    for version, index in indexes.items():
        exclude = index.row_of[exclude_item] if exclude_item else None
        rows = nearest(index, query_for(index), k, exclude=exclude).rows
        answers[version] = [index.items["item_id"][row] for row in rows.tolist()]
    return answers


def test_swaps_under_concurrent_requests_give_only_old_or_new_answers_and_no_errors(
    index_dir: Path, index_b_beside: Path, embedder: Embedder
) -> None:
    index_b = index_b_beside
    indexes = {VERSION_A: load_index(index_dir), DERIVED_VERSION: load_index(index_b)}
    image = jpeg_bytes(photo("astronaut"))
    raw_query = embedder.embed_bytes([image])
    expected = {
        "similar": expected_answers(indexes, lambda index: index.embeddings[index.row_of["astronaut"]], 5, "astronaut"),
        "search": expected_answers(indexes, lambda index: index.project(raw_query)[0], 5),
    }
    seen: dict[str, set[str]] = {"similar": set(), "search": set()}
    failures: list[str] = []
    rolling = anyio.Event()

    async def ask(client: httpx.AsyncClient, kind: str) -> None:
        while not rolling.is_set():
            if kind == "similar":
                response = await client.get("/v1/items/astronaut/similar", params={"k": 5})
            else:
                response = await client.post("/v1/search", params={"k": 5}, content=image, headers=JPEG)
            if response.status_code != 200:
                failures.append(f"{kind}: {response.status_code} {response.text}")
                continue
            body = response.json()
            seen[kind].add(body["version"])
            if [hit["item_id"] for hit in body["results"]] != expected[kind][body["version"]]:
                failures.append(f"{kind}: unexpected results for {body['version']}: {body['results']}")

    async def roll(client: httpx.AsyncClient) -> None:
        try:
            for directory in (index_b, index_dir, index_b, index_dir, index_b):
                await anyio.sleep(0.3)
                response = await client.post("/admin/index", json={"directory": str(directory)}, headers=admin_headers())
                assert response.status_code == 200, response.text
            await anyio.sleep(0.3)
        finally:
            rolling.set()

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client, anyio.create_task_group() as group:
            group.start_soon(roll, client)
            for kind, count in (("similar", 6), ("search", 3)):
                for _ in range(count):
                    group.start_soon(ask, client, kind)

    with serve_in_thread(create_app(serving_settings(index_dir), embedder)) as url:
        anyio.run(scenario, url)
    assert failures == []
    assert seen == {"similar": {VERSION_A, DERIVED_VERSION}, "search": {VERSION_A, DERIVED_VERSION}}


def test_a_saturated_queue_answers_503_with_retry_after_and_recovers(index_a: Path, embedder: Embedder) -> None:
    # one client may hold the whole queue here: the per-client share is tested in tests/serving/test_admission.py
    settings = serving_settings(index_a, max_queue=2, batch_max_size=1, retry_after_s=3, client_slot_share=1.0)
    image = jpeg_bytes(photo("coffee"))

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            responses = await asyncio.gather(*(client.post("/v1/search", content=image, headers=JPEG) for _ in range(8)))
            statuses = [response.status_code for response in responses]
            assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses
            for response in responses:
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "3" and response.json()["error"] == "overloaded"
            assert (await client.post("/v1/search", content=image, headers=JPEG)).status_code == 200
            assert "imagesearch_overload_rejections_total 6.0" in (await client.get("/metrics")).text

    with serve_in_thread(create_app(settings, SlowEmbedder(embedder, 0.3))) as url:  # type: ignore[arg-type]
        anyio.run(scenario, url)
