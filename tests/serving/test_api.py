"""Every endpoint and every error, through Litestar's test client over the published index (version A)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image, ImageOps

from imagesearch.embedder import Embedder
from imagesearch.index_store import load_index
from imagesearch.projection import LinearHead
from serving.app import create_app
from serving.search import nearest
from tests.conftest import PHOTOS, jpeg_bytes, photo, png_bytes
from tests.serving.conftest import derive_version, serving_settings, small_whitening

ALL_ITEMS = 2 * len(PHOTOS)


def search(client: TestClient, image: bytes, **params: object) -> dict:
    response = client.post("/v1/search", params=params, files={"image": ("query.jpg", image, "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict) -> list[str]:
    return [hit["item_id"] for hit in body["results"]]


def assert_error(response, status: int, error: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["detail"], body
    if error is not None:
        assert body["error"] == error, body
    return body


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return jpeg_bytes(photo("astronaut"), quality=85)


# ------------------------------------------------------------------------------------------ search


def test_multipart_search_finds_the_photo_with_everything_a_result_needs(client: TestClient, astronaut: bytes) -> None:
    body = search(client, astronaut, k=5)
    assert body["version"] == "20260101T000000Z" and body["k"] == 5
    assert len(body["results"]) == 5
    assert ids(body)[0] in ("astronaut", "astronaut-mirror")
    top = body["results"][0]
    assert top["title"].startswith("astronaut") and top["category"] == "space"
    assert top["price"] == 10.0 and top["on_sale"] is True
    assert top["image_url"] == f"/v1/items/{top['item_id']}/image"
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1.0001
    timing = body["timing"]
    assert timing["total_ms"] >= timing["embed_ms"] > 0 and timing["preprocess_ms"] > 0 and timing["search_ms"] >= 0


def test_raw_image_body_and_png_give_the_same_answer(client: TestClient) -> None:
    picture = photo("coffee")
    raw = client.post("/v1/search", content=png_bytes(picture), headers={"Content-Type": "image/png"}, params={"k": 3})
    assert raw.status_code == 200, raw.text
    multipart = search(client, png_bytes(picture), k=3)
    assert ids(raw.json()) == ids(multipart)
    assert ids(multipart)[0] in ("coffee", "coffee-mirror")


def test_default_k_is_ten_and_k_above_the_index_size_returns_everything(client: TestClient, astronaut: bytes) -> None:
    assert len(search(client, astronaut)["results"]) == 10
    everything = search(client, astronaut, k=100)
    assert sorted(ids(everything)) == sorted(f"{name}{variant}" for name in PHOTOS for variant in ("", "-mirror"))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "space"}, lambda hit: hit["category"] == "space"),
        ({"min_price": 12, "max_price": 14}, lambda hit: 12 <= hit["price"] <= 14),
        ({"on_sale_only": "true"}, lambda hit: hit["on_sale"]),
        ({"category": "science", "on_sale_only": "true", "max_price": 16}, lambda hit: hit["item_id"].startswith("immuno")),
    ],
)
def test_filters_return_k_matching_results_when_enough_match(
    client: TestClient, astronaut: bytes, params: dict, expected: Callable[[dict], bool]
) -> None:
    everything = search(client, astronaut, k=100)["results"]
    matching = [hit["item_id"] for hit in everything if expected(hit)]
    for k in (1, 3, 100):
        body = search(client, astronaut, k=k, **params)
        assert ids(body) == matching[:k], (k, params)


def test_a_filter_nothing_matches_returns_no_results(client: TestClient, astronaut: bytes) -> None:
    assert search(client, astronaut, category="no-such-category")["results"] == []
    assert search(client, astronaut, min_price=1000)["results"] == []


# ------------------------------------------------------------------------------------------ similar


def test_similar_excludes_the_item_and_ranks_its_mirrored_twin_first(client: TestClient) -> None:
    response = client.get("/v1/items/chelsea/similar", params={"k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item_id"] == "chelsea" and body["version"] == "20260101T000000Z"
    assert "chelsea" not in ids(body) and len(ids(body)) == 5
    assert ids(body)[0] == "chelsea-mirror"
    assert body["timing"]["embed_ms"] is None and body["timing"]["total_ms"] >= 0


def test_similar_returns_every_other_item_for_a_large_k_and_honours_filters(client: TestClient) -> None:
    assert len(client.get("/v1/items/logo/similar", params={"k": 100}).json()["results"]) == ALL_ITEMS - 1
    body = client.get("/v1/items/logo/similar", params={"k": 100, "category": "art"}).json()
    assert sorted(ids(body)) == ["colorwheel", "colorwheel-mirror", "logo-mirror"]


# ------------------------------------------------------------------------------------------ images, index, ops


def test_item_image_serves_the_catalog_file(client: TestClient, photo_catalog: Path) -> None:
    response = client.get("/v1/items/rocket/image")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/png")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.content == (photo_catalog.parent / "rocket.png").read_bytes()


def test_item_image_type_comes_from_the_bytes_not_the_name(index_a: Path, tmp_path: Path, embedder: Embedder) -> None:
    """A seller's PNG named .html is served as image/png; markup named .png is not served at all."""
    files = {
        "rocket": ("rocket.html", png_bytes(photo("rocket"))),
        "coffee": ("coffee.png", jpeg_bytes(photo("coffee"))),
        "retina": ("retina.png", b"<!doctype html><script>alert(document.cookie)</script>"),
        "logo": ("logo.jpg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
    }
    for name, content in files.values():
        (tmp_path / name).write_bytes(content)
    uris = {item_id: str(tmp_path / name) for item_id, (name, _) in files.items()}
    directory = derive_version(index_a, tmp_path / "renamed", "20260106T000000Z", list(range(ALL_ITEMS)), image_uris=uris)
    with TestClient(create_app(serving_settings(directory), embedder)) as client:
        for item_id, media_type in (("rocket", "image/png"), ("coffee", "image/jpeg")):
            response = client.get(f"/v1/items/{item_id}/image")
            assert response.status_code == 200 and response.headers["content-type"] == media_type
            assert response.headers["x-content-type-options"] == "nosniff" and response.content == files[item_id][1]
        for item_id in ("retina", "logo"):
            assert "not a PNG, JPEG" in assert_error(client.get(f"/v1/items/{item_id}/image"), 404, "unknown_item")["detail"]


def test_item_image_of_an_unknown_item_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/items/nope/image"), 404, "unknown_item")


def test_remote_catalog_images_are_linked_not_served(index_a: Path, tmp_path: Path, embedder: Embedder) -> None:
    remote = {"rocket": "https://images.example.com/rocket.png", "retina": "gs://bucket/retina.png"}
    rows = list(range(ALL_ITEMS))
    directory = derive_version(index_a, tmp_path / "remote", "20260103T000000Z", rows, image_uris=remote)
    with TestClient(create_app(serving_settings(directory), embedder)) as client:
        hits = {hit["item_id"]: hit for hit in client.get("/v1/items/rocket-mirror/similar", params={"k": 100}).json()["results"]}
        assert hits["rocket"]["image_url"] == "https://images.example.com/rocket.png"
        assert hits["retina"]["image_url"] == "/v1/items/retina/image"
        for item_id in remote:
            assert_error(client.get(f"/v1/items/{item_id}/image"), 404, "unknown_item")


def learned_head(embeddings: np.ndarray, dims: int) -> LinearHead:
    """A head as the training DAG exports one: any (mean, weight) pair; here a random rotation after centring (of the
    photos, a random projection to 64-d keeps a retina photo's nearest neighbour its mirrored twin)."""
    rng = np.random.default_rng(5)
    weight, _ = np.linalg.qr(rng.standard_normal((embeddings.shape[1], dims)))
    return LinearHead(mean=embeddings.astype(np.float32).mean(axis=0), weight=weight.astype(np.float32))


@pytest.mark.parametrize("kind", ["pca-whitening", "linear-head", "legacy whitening.npz"])
def test_a_projected_version_projects_queries_into_its_search_space(
    kind: str, index_a: Path, tmp_path: Path, embedder: Embedder
) -> None:
    embeddings = np.load(index_a / "embeddings.npy")
    projection = learned_head(embeddings, 64) if kind == "linear-head" else small_whitening(embeddings, 8)
    directory = derive_version(index_a, tmp_path / "projected", "20260105T000000Z", list(range(ALL_ITEMS)),
                               projection=projection, legacy_whitening=kind.startswith("legacy"))
    index = load_index(directory)
    assert index.projection.kind == ("pca-whitening" if kind.startswith("legacy") else kind)
    assert index.projection.projection_id == projection.projection_id
    assert index.embeddings.shape == (ALL_ITEMS, projection.out_dim)
    image = jpeg_bytes(photo("retina"))
    rows = nearest(index, index.project(embedder.embed_bytes([image]))[0], 5).rows
    with TestClient(create_app(serving_settings(directory), embedder)) as client:
        body = search(client, image, k=5)
        assert ids(body) == [index.items["item_id"][row] for row in rows.tolist()]
        assert ids(body)[0] in ("retina", "retina-mirror")
        similar = client.get("/v1/items/retina/similar", params={"k": 3}).json()
        assert ids(similar)[0] == "retina-mirror"


def test_index_info(client: TestClient) -> None:
    body = client.get("/v1/index").json()
    assert body["version"] == "20260101T000000Z" and body["item_count"] == ALL_ITEMS
    assert body["embedding_dim"] == 1280 and body["model_id"].startswith("efficientnet-lite0-")
    assert body["index_kind"] == "brute_force" and body["created_at"]
    assert body["categories"] == sorted(set(PHOTOS.values()))
    assert body["metrics"]["recall_at_10"] == 1.0


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": None, "item_count": None}
    assert client.get("/readyz").json() == {"status": "ready", "version": "20260101T000000Z", "item_count": ALL_ITEMS}


def test_metrics_count_requests_per_route_and_status_and_report_inference_and_index(client: TestClient, astronaut: bytes) -> None:
    search(client, astronaut, k=1)
    client.get("/v1/items/nope/similar")
    text = client.get("/metrics").text
    assert 'imagesearch_http_requests_total{method="POST",route="/v1/search",status="200"}' in text
    assert 'imagesearch_http_requests_total{method="GET",route="/v1/items/{item_id}/similar",status="404"}' in text
    assert 'imagesearch_http_request_duration_seconds_bucket{le="0.1",method="POST",route="/v1/search",status="200"}' in text
    assert "imagesearch_inference_seconds_count" in text and "imagesearch_inference_batch_size_sum" in text
    assert 'imagesearch_index_version_info{version="20260101T000000Z"} 1.0' in text
    assert f"imagesearch_index_items {float(ALL_ITEMS)}" in text
    created = client.get("/v1/index").json()["created_at"]
    exported = re.search(r"^imagesearch_index_created_timestamp_seconds (\S+)$", text, re.MULTILINE)
    assert exported and float(exported.group(1)) == datetime.fromisoformat(created).timestamp()


def test_openapi_schema_and_docs(client: TestClient) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert {"/v1/search", "/v1/items/{item_id}/similar", "/v1/items/{item_id}/image", "/v1/index", "/healthz", "/readyz",
            "/metrics", "/admin/index"} <= set(schema["paths"])
    body = schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "image/*"}
    parameters = {p["name"] for p in schema["paths"]["/v1/search"]["post"]["parameters"]}
    assert parameters == {"k", "category", "min_price", "max_price", "on_sale_only"}
    for docs in ("/schema", "/schema/swagger", "/schema/redoc"):
        assert client.get(docs).headers["content-type"].startswith("text/html")


def test_web_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'id="file"' in response.text and "/v1/search" in response.text


# ------------------------------------------------------------------------------------------ bad input


def bomb() -> bytes:
    """A few kilobytes of PNG that decode to 64 million pixels."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b"plain text, not a picture", "image/jpeg", 415, "image_not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", 415, "image_not_an_image"),
        (b"{}", "application/json", 415, "unsupported_media_type"),
        (b"abc", "text/plain", 415, "unsupported_media_type"),
        (b"", "image/jpeg", 400, "bad_request"),
    ],
)
def test_raw_bodies_that_are_not_usable_images(
    client: TestClient, content: bytes, content_type: str, status: int, error: str
) -> None:
    assert_error(client.post("/v1/search", content=content, headers={"Content-Type": content_type}), status, error)


def test_a_body_without_content_type_is_415(client: TestClient) -> None:
    response = client.post("/v1/search", content=b"\xff\xd8\xff")
    assert_error(response, 415, "unsupported_media_type")


def test_images_that_cannot_be_used(client: TestClient, astronaut: bytes) -> None:
    assert_error(search_raw(client, astronaut[: len(astronaut) // 2]), 422, "image_truncated")
    assert_error(search_raw(client, bomb(), "image/png"), 422, "image_too_large")
    assert_error(search_raw(client, png_bytes(ImageOps.fit(photo("coffee"), (8, 8))), "image/png"), 422, "image_too_small")
    multipart = client.post("/v1/search", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert_error(multipart, 415, "image_not_an_image")


def search_raw(client: TestClient, content: bytes, content_type: str = "image/jpeg"):  # type: ignore[no-untyped-def]
    return client.post("/v1/search", content=content, headers={"Content-Type": content_type})


def test_malformed_multipart_forms(client: TestClient, astronaut: bytes) -> None:
    assert_error(client.post("/v1/search", files={"photo": ("a.jpg", astronaut, "image/jpeg")}), 400, "bad_request")
    assert_error(client.post("/v1/search", data={"image": "not a file"}, files={"other": ("a", b"x")}), 400, "bad_request")


@pytest.mark.parametrize(
    "params",
    [{"k": 0}, {"k": 101}, {"k": "ten"}, {"min_price": -1}, {"max_price": "cheap"}, {"min_price": 5, "max_price": 1},
     {"on_sale_only": "maybe"}],
)
def test_bad_query_parameters_are_400(client: TestClient, astronaut: bytes, params: dict) -> None:
    body = assert_error(client.post("/v1/search", params=params, files={"image": ("a.jpg", astronaut, "image/jpeg")}), 400)
    assert next(iter(params)) in body["detail"]
    assert_error(client.get("/v1/items/coffee/similar", params=params), 400)


def test_unknown_item_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert "no-such-item" in assert_error(client.get("/v1/items/no-such-item/similar"), 404, "unknown_item")["detail"]
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.get("/v1/search"), 405)


def test_bodies_over_the_size_cap_are_413(index_a: Path, embedder: Embedder, astronaut: bytes) -> None:
    assert len(astronaut) > 20_000
    with TestClient(create_app(serving_settings(index_a, max_upload_bytes=20_000), embedder)) as client:
        assert_error(search_raw(client, astronaut), 413, "payload_too_large")
        multipart = client.post("/v1/search", files={"image": ("a.jpg", astronaut, "image/jpeg")})
        assert_error(multipart, 413, "payload_too_large")
        huge = client.post("/v1/search", content=b"\0" * 200_000, headers={"Content-Type": "image/jpeg"})
        assert_error(huge, 413, "payload_too_large")
        small = jpeg_bytes(ImageOps.contain(photo("astronaut"), (128, 128)))
        assert search_raw(client, small).status_code == 200


def test_the_server_keeps_serving_after_bad_input(client: TestClient, astronaut: bytes) -> None:
    for content in (b"junk", astronaut[:5000], bomb()):
        assert search_raw(client, content).status_code in (415, 422)
    assert ids(search(client, astronaut, k=1))[0] in ("astronaut", "astronaut-mirror")
