"""The Prometheus metrics object: its own registry, batches and the served index in the exposition."""

from __future__ import annotations

from pathlib import Path

from imagesearch.embedder import Embedder
from imagesearch.index_store import load_index
from serving.metrics import Metrics


def test_batches_and_the_index_are_exposed(index_a: Path, embedder: Embedder) -> None:
    metrics, other = Metrics(), Metrics()  # one registry each: two apps in a process do not collide
    metrics.observe_batch(4, 0.02)
    metrics.set_index(load_index(index_a, embedder.model_id))
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "imagesearch_inference_batch_size_sum 4.0" in text and "imagesearch_inference_seconds_count 1.0" in text
    assert 'imagesearch_index_version_info{version="20260101T000000Z"} 1.0' in text
    assert "imagesearch_index_items 20.0" in text
    assert "imagesearch_inference_batch_size_sum 0.0" in other.exposition()[0].decode()
