"""The pretrained weights load into our torchvision-built network and classify real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig, default_weights_path
from imagesearch.model import EfficientNetLite0, fold_batch_norms, key_map, load_efficientnet_lite0, map_state_dict
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


def test_folding_the_batch_norms_keeps_the_features() -> None:
    batch = np.stack([preprocess_bytes(png_bytes(photo(name))) for name in ("coffee", "chelsea")])
    inputs = torch.from_numpy(batch)
    with torch.inference_mode():
        reference = load_efficientnet_lite0().features(inputs)
        folded_network = fold_batch_norms(load_efficientnet_lite0())
        folded = folded_network.features(inputs)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in folded_network.modules())
    assert torch.allclose(folded, reference, rtol=1e-4, atol=1e-4)


def test_a_network_in_training_mode_is_not_folded() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(load_efficientnet_lite0().train())
