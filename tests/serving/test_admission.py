"""Admission slots: /similar shares them with searches, and one client (peer address) holds only its share."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import httpx

from imagesearch.embedder import Embedder
from serving.app import create_app
from tests.conftest import jpeg_bytes, photo
from tests.serving.conftest import SlowEmbedder, serve_in_thread, serving_settings


def test_similar_is_refused_while_searches_hold_every_slot(index_a: Path, embedder: Embedder) -> None:
    image = jpeg_bytes(photo("coffee"))

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            searches = [
                asyncio.ensure_future(client.post("/v1/search", content=image, headers={"Content-Type": "image/jpeg"}))
                for _ in range(2)
            ]
            await asyncio.sleep(0.5)  # both admitted, both inside the 1 s embedding
            refused = await client.get("/v1/items/coffee/similar")
            assert refused.status_code == 503 and refused.json()["error"] == "overloaded", refused.text
            assert refused.headers["retry-after"] == "2"
            assert [response.status_code for response in await asyncio.gather(*searches)] == [200, 200]
            assert (await client.get("/v1/items/coffee/similar")).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert 'route="/v1/items/{item_id}/similar",status="503"} 1.0' in metrics
            assert "imagesearch_admitted_requests 0.0" in metrics

    settings = serving_settings(index_a, max_queue=2, batch_max_size=1, retry_after_s=2, client_slot_share=1.0)
    with serve_in_thread(create_app(settings, SlowEmbedder(embedder, 1.0))) as url:  # type: ignore[arg-type]
        anyio.run(scenario, url)


def test_one_client_holds_only_its_share_of_slots_while_another_is_served(index_a: Path, embedder: Embedder) -> None:
    image = jpeg_bytes(photo("coffee"))
    headers = {"Content-Type": "image/jpeg"}

    async def scenario(url: str) -> None:
        other_peer = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=url, timeout=30) as greedy, \
                httpx.AsyncClient(base_url=url, timeout=30, transport=other_peer) as other:
            held = [asyncio.ensure_future(greedy.post("/v1/search", content=image, headers=headers)) for _ in range(2)]
            await asyncio.sleep(0.5)  # both admitted, both inside the 1 s embedding: the greedy client's whole share
            refused = await greedy.post("/v1/search", content=image, headers=headers)
            assert refused.status_code == 429 and "this client already has 2" in refused.json()["detail"], refused.text
            assert refused.headers["retry-after"] and refused.json()["error"] == "too_many_requests"
            served = await other.post("/v1/search", content=image, headers=headers)
            assert served.status_code == 200, served.text
            assert [response.status_code for response in await asyncio.gather(*held)] == [200, 200]

    settings = serving_settings(index_a, max_queue=4, batch_max_size=1, client_slot_share=0.5)
    with serve_in_thread(create_app(settings, SlowEmbedder(embedder, 1.0))) as url:  # type: ignore[arg-type]
        anyio.run(scenario, url)
