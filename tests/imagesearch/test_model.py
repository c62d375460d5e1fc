"""Every registered backbone's pretrained weights load strictly into the network its spec builds, and classify
real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagesearch.backbones import BACKBONES, BackboneSpec, LiteArchitecture, registered, weights_file
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.model import (
    B0_STAGES,
    EfficientNetLite,
    fold_batch_norms,
    key_map,
    lite_stages,
    load_backbone,
    map_state_dict,
    round_channels,
)
from imagesearch.preprocess import preprocess_bytes
from tests.conftest import photo, png_bytes

ESPRESSO, CUP = 967, 968
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
LITE0 = registered("efficientnet-lite0")


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def spec(request: pytest.FixtureRequest) -> BackboneSpec:
    return BACKBONES[request.param]


@pytest.fixture(scope="module")
def embedder(spec: BackboneSpec) -> Embedder:
    return Embedder(EmbedderConfig.for_backbone(spec, fit="crop"), device="cpu")


def test_stages_scale_as_efficientnet_rounds_them() -> None:
    assert lite_stages(LiteArchitecture(1.0, 1.0)) == B0_STAGES
    assert [stage.repeats for stage in lite_stages(LiteArchitecture(1.0, 1.1))] == [1, 3, 3, 4, 4, 5, 1]  # ends fixed
    lite2 = lite_stages(LiteArchitecture(1.1, 1.2))
    assert [stage.out_channels for stage in lite2] == [16, 24, 48, 88, 120, 208, 352]
    assert lite2[0].in_channels == 32 and [a.out_channels for a in lite2[:-1]] == [b.in_channels for b in lite2[1:]]
    assert (round_channels(32, 1.4), round_channels(10, 1.0), round_channels(100, 1.18)) == (48, 16, 120)


def test_key_map_covers_every_weight_exactly(spec: BackboneSpec) -> None:
    source = torch.load(weights_file(spec), map_location="cpu", weights_only=True)
    network = EfficientNetLite(spec)
    target = network.state_dict()
    mapping = key_map(network.stages)
    assert set(mapping) == set(source)
    assert set(mapping.values()) == set(target)
    for key, value in map_state_dict(source, network.stages).items():
        assert value.shape == target[key].shape, key


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(KeyError, match="unexpected keys"):
        map_state_dict({"_blocks.99._se_reduce.weight": torch.zeros(1)}, lite_stages(LITE0.architecture))


def test_weights_of_another_shape_do_not_load() -> None:
    """Lite1's weights in Lite0's network: the strict load refuses them."""
    lite1 = torch.load(weights_file(registered("efficientnet-lite1")), map_location="cpu", weights_only=True)
    with pytest.raises(KeyError, match="unexpected keys"):
        map_state_dict(lite1, lite_stages(LITE0.architecture))


@pytest.mark.parametrize(("name", "expected"), [("coffee", {ESPRESSO, CUP}), ("chelsea", set(IMAGENET_CATS))])
def test_classifies_real_photos(spec: BackboneSpec, embedder: Embedder, name: str, expected: set[int]) -> None:
    assert embedder.config.preprocess.size == spec.input_size
    batch = preprocess_bytes(png_bytes(photo(name)), embedder.config.preprocess)[None]
    logits = embedder.classify(batch)[0]
    assert int(np.argmax(logits)) in expected


def test_the_embedder_reports_its_backbone(spec: BackboneSpec, embedder: Embedder) -> None:
    assert embedder.model_id.startswith(f"{spec.name}-{spec.weights.sha256[:12]}-gem3-crop{spec.input_size}-")
    assert embedder.info.name == spec.name and embedder.info.weights_sha256 == spec.weights.sha256
    assert embedder.info.dim == embedder.dim == spec.feature_dim == 1280
    assert EmbedderConfig.from_dict(embedder.info.config) == embedder.config


def test_folding_the_batch_norms_keeps_the_features() -> None:
    batch = np.stack([preprocess_bytes(png_bytes(photo(name))) for name in ("coffee", "chelsea")])
    inputs = torch.from_numpy(batch)
    with torch.inference_mode():
        reference = load_backbone(LITE0).features(inputs)
        folded_network = fold_batch_norms(load_backbone(LITE0))
        folded = folded_network.features(inputs)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in folded_network.modules())
    assert torch.allclose(folded, reference, rtol=1e-4, atol=1e-4)


def test_a_network_in_training_mode_is_not_folded() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(load_backbone(LITE0).train())
