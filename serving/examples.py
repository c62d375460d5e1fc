"""Real example bodies for the API docs, as the server answered them on the test catalog (tests/conftest.py).

``tests/serving/test_openapi.py`` checks each still matches the schema of its response.
"""

from __future__ import annotations

from typing import Any

VERSION = "20260101T000000Z"


def _hit(item_id: str, score: float, category: str, price: float, on_sale: bool) -> dict[str, Any]:
    """A result from the test catalog, where each item's title is its id."""
    return {
        "item_id": item_id, "score": score, "title": item_id, "category": category, "price": price, "currency": "USD",
        "on_sale": on_sale, "image_url": f"/v1/items/{item_id}/image",
    }


# POST /v1/search?k=3 with a photo of the cat in the catalog.
SEARCH: dict[str, Any] = {
    "version": VERSION, "k": 3,
    "results": [
        _hit("chelsea", 0.991457, "pets", 12.0, True), _hit("chelsea-mirror", 0.968801, "pets", 12.0, True),
        _hit("astronaut-mirror", 0.366737, "space", 10.0, True),
    ],
    "timing": {"total_ms": 62.277, "search_ms": 0.235, "preprocess_ms": 3.277, "embed_ms": 58.766},
    "item_id": None,
    "capped": False,
}

# GET /v1/items/chelsea/similar?k=3
SIMILAR: dict[str, Any] = {
    "version": VERSION, "k": 3,
    "results": [
        _hit("chelsea-mirror", 0.973642, "pets", 12.0, True), _hit("astronaut-mirror", 0.374698, "space", 10.0, True),
        _hit("coffee-mirror", 0.373587, "kitchen", 13.0, False),
    ],
    "timing": {"total_ms": 0.248, "search_ms": 0.248, "preprocess_ms": None, "embed_ms": None},
    "item_id": "chelsea",
    "capped": False,
}

INDEX: dict[str, Any] = {
    "version": VERSION, "item_count": 20, "created_at": "2026-01-01T00:00:00+00:00",
    "model_id": "efficientnet-lite0-579344248a93-gem3-pad224-39469313", "embedding_dim": 1280, "index_kind": "brute_force",
    "categories": ["art", "kitchen", "people", "pets", "science", "space"],
    "metrics": {
        "category_precision_at_10": 0.265, "eval_queries": 20.0, "near_duplicate_images": 20.0,
        "near_duplicate_top1": 0.75, "near_duplicate_top10": 1.0, "recall_at_10": 1.0,
    },
}

LIVE: dict[str, Any] = {"status": "ok", "version": None, "item_count": None}

READY: dict[str, Any] = {"status": "ready", "version": VERSION, "item_count": 20}

# POST /admin/index {"directory": "/srv/imagesearch/indexes/20260102T000000Z"}
SWAP: dict[str, Any] = {"version": "20260102T000000Z", "item_count": 14, "previous_version": "20260101T000000Z"}

# GET /metrics (an excerpt)
METRICS = """\
# HELP imagesearch_http_requests_total HTTP requests by route and status.
# TYPE imagesearch_http_requests_total counter
imagesearch_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0
# HELP imagesearch_inference_batch_size Images per micro-batch.
# TYPE imagesearch_inference_batch_size histogram
imagesearch_inference_batch_size_bucket{le="1.0"} 1.0
imagesearch_index_version_info{version="20260101T000000Z"} 1.0
imagesearch_index_items 20.0
"""
