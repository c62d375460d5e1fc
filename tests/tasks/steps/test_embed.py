"""The embed step's batching: any batch size gives the vectors of one whole batch."""

from __future__ import annotations

import numpy as np

from imagesearch.embedder import Embedder
from imagesearch.preprocess import normalize
from tasks.steps.embed import embed_pixels


def test_batches_give_the_same_vectors_as_one_pass() -> None:
    embedder = Embedder(device="cpu")
    pixels = np.random.default_rng(0).integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)
    batched = embed_pixels(embedder, pixels, batch_size=2)
    assert batched.shape == (5, embedder.dim) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, embedder.embed_arrays(normalize(pixels, embedder.config.preprocess)), atol=1e-5)
    assert embed_pixels(embedder, pixels[:0], batch_size=2).shape == (0, embedder.dim)
