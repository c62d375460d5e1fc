"""Embeddings: unit float32 vectors; a re-encoded copy stays much closer to itself than to others."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagesearch.augment import near_duplicate
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.settings import Settings
from tests.conftest import jpeg_bytes, photo, png_bytes

NAMES = ("coffee", "chelsea", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def variants(image: Image.Image) -> list[bytes]:
    w, h = image.size
    return [
        jpeg_bytes(image, quality=50),
        png_bytes(image.resize((w // 2, h // 2))),
        png_bytes(image.crop((w // 20, h // 20, w - w // 20, h - h // 20))),
        near_duplicate(image),
    ]


def test_vectors_are_unit_float32(embedder: Embedder) -> None:
    vectors = embedder.embed_bytes([png_bytes(photo(name)) for name in NAMES[:3]])
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_transformed_copies_stay_closest_to_their_original(embedder: Embedder) -> None:
    originals = embedder.embed_bytes([png_bytes(photo(name)) for name in NAMES])
    for row, name in enumerate(NAMES):
        copies = embedder.embed_bytes(variants(photo(name)))
        similarity = copies @ originals.T
        others = np.delete(similarity, row, axis=1)
        assert (similarity[:, row] > 0.8).all(), name
        assert (similarity[:, row] - others.max(axis=1) > 0.1).all(), name


def test_batching_does_not_change_results(embedder: Embedder) -> None:
    arrays = [embedder.preprocess(png_bytes(photo(name))) for name in NAMES[:5]]
    together = embedder.embed_many(arrays, batch_size=5)
    alone = np.concatenate([embedder.embed_arrays(a[None]) for a in arrays])
    assert np.allclose(together, alone, atol=1e-4)


def test_without_a_config_it_embeds_with_the_model_of_new_runs(embedder: Embedder) -> None:
    assert embedder.config == EmbedderConfig.for_settings(Settings.from_env({}))  # IMAGESEARCH_BACKBONE unset
    assert embedder.model_id == embedder.config.model_id and embedder.model_id.startswith("efficientnet-lite0-")


def test_mirror_is_a_near_neighbour_but_not_identical(embedder: Embedder) -> None:
    image = photo("chelsea")
    a, b = embedder.embed_bytes([png_bytes(image), png_bytes(ImageOps.mirror(image))])
    assert 0.8 < float(a @ b) < 0.9999
