"""The pretrained weights load into our torchvision-built network and classify real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig, default_weights_path
from imagesearch.model import EfficientNetLite0, key_map, map_state_dict
from imagesearch.preprocess import PreprocessConfig, preprocess_bytes
from tests.conftest import photo, png_bytes

ESPRESSO = 967
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(EmbedderConfig(preprocess=PreprocessConfig(fit="crop")))


def test_key_map_covers_every_weight_exactly() -> None:
    source = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    target = EfficientNetLite0().state_dict()
    mapping = key_map()
    assert set(mapping) == set(source)
    assert set(mapping.values()) == set(target)
    for key, value in map_state_dict(source).items():
        assert value.shape == target[key].shape, key


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(KeyError, match="unexpected keys"):
        map_state_dict({"_blocks.99._se_reduce.weight": torch.zeros(1)})


@pytest.mark.parametrize(("name", "expected"), [("coffee", {ESPRESSO}), ("chelsea", set(IMAGENET_CATS))])
def test_classifies_real_photos(embedder: Embedder, name: str, expected: set[int]) -> None:
    batch = preprocess_bytes(png_bytes(photo(name)), embedder.config.preprocess)[None]
    logits = embedder.classify(batch)[0]
    assert int(np.argmax(logits)) in expected


def test_model_id_names_weights_and_preprocessing(embedder: Embedder) -> None:
    assert embedder.model_id.startswith("efficientnet-lite0-579344248a93")
    assert embedder.model_id.endswith("crop224")
    assert embedder.info.weights_sha256.startswith("579344248a93")
    assert embedder.info.dim == 1280
