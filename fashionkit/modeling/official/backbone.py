"""The official model's ResNet-50/101 (tensorflow/tpu ``modeling/architecture/resnet.py``) on
torchvision's ResNet, and TensorFlow's 'SAME' padding.

What torchvision's ResNet already does the same way: the post-activation bottleneck with its
stride in the 3×3 convolution and a 1×1 projection shortcut in each stage's first block, and
the padding of every convolution: the official ``conv2d_fixed_padding`` pads ``(k − 1) // 2``
before and the rest after for strided convolutions (3 and 3 for the 7×7 stem, 1 and 1 for a
3×3, none for a 1×1) and uses 'SAME' otherwise, which for odd kernels at stride 1 is
PyTorch's symmetric padding.

What differs and is replaced here:

- BatchNorm: epsilon 1e-3 and momentum 0.99 (PyTorch's momentum 0.01) from the official config.
- The stem's 3×3 stride-2 max pool is 'SAME': on an even input TF pads 0 before and 1 after,
  PyTorch's ``padding=1`` pads 1 on both sides, which shifts every pooling window by a pixel.
  :class:`SameMaxPool2d` pads as TF does.

Variables: TensorFlow named the layers in the order it built them (``resnet50/conv2d``,
``conv2d_1``, … and ``batch_normalization``, ``_1``, …): the stem, then per block the
projection shortcut (first block of a stage) and the three convolutions, each convolution with
the BatchNorm after it. :func:`tf_variable_map` reproduces that numbering.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping

import numpy as np
import torch
import torchvision
from torch import Tensor, nn
from torch.nn import functional as F

from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.official.tf_weights import (
    VariableMap,
    batch_norm_entries,
    conv_entries,
    convert_variables,
)

__all__ = ["BATCH_NORM_EPS", "BATCH_NORM_MOMENTUM", "FrozenStatsBatchNorm1d",
           "FrozenStatsBatchNorm2d", "OfficialResNet", "SameConv2d", "SameMaxPool2d",
           "batch_norm", "freeze_batch_norms", "same_padding", "tf_to_state_dict",
           "tf_variable_map", "tf_variable_names"]

#: ``batch_norm_activation.batch_norm_epsilon`` / ``batch_norm_momentum`` of the official config.
BATCH_NORM_EPS = 1e-3
BATCH_NORM_MOMENTUM = 0.01  # TF's 0.99: the weight of the old running average

_DEPTHS = {"resnet50": 50, "resnet101": 101}
_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """A BatchNorm2d with the official epsilon and momentum."""
    return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM)


class _FrozenStatistics:
    """A BatchNorm that always normalises with its moving statistics, never updates them, and
    whose scale and offset are not trained (``ModelConfig.norm="frozen_bn"`` of the official
    architecture). It behaves as torchvision's ``FrozenBatchNorm2d`` but keeps BatchNorm's
    state dict (``num_batches_tracked`` included), so a converted checkpoint loads into the
    frozen and the trained variant alike."""

    def forward(self, x: Tensor) -> Tensor:
        bn: nn.modules.batchnorm._BatchNorm = self  # type: ignore[assignment]
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                            training=False, momentum=0.0, eps=bn.eps)


class FrozenStatsBatchNorm2d(_FrozenStatistics, nn.BatchNorm2d):
    """:class:`_FrozenStatistics` for ``N×C×H×W``."""


class FrozenStatsBatchNorm1d(_FrozenStatistics, nn.BatchNorm1d):
    """:class:`_FrozenStatistics` for ``N×C``."""


def freeze_batch_norms(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d under ``module`` (in place) by its frozen-statistics
    variant with the same state, its scale and offset excluded from training; returns
    ``module``."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(
                child, _FrozenStatistics):
            kind = FrozenStatsBatchNorm1d if isinstance(child, nn.BatchNorm1d) \
                else FrozenStatsBatchNorm2d
            frozen = kind(child.num_features, eps=child.eps, momentum=child.momentum,
                          device=child.running_mean.device)  # type: ignore[union-attr]
            frozen.load_state_dict(child.state_dict())
            frozen.requires_grad_(False)
            setattr(module, name, frozen)
        else:
            freeze_batch_norms(child)
    return module


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding of one axis: ``(before, after)`` such that the output has
    ``ceil(size / stride)`` positions; the odd pixel, if any, goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's 'SAME' padding (padded positions never win)."""

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size, self.stride)
        left, right = same_padding(x.shape[-1], self.kernel_size, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's 'SAME' padding, which for a stride-2 convolution of an
    even input is 0 before and 1 after (PyTorch's ``padding=1`` would pad 1 on both sides)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.kernel_size
        sh, sw = self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class OfficialResNet(nn.Module):
    """ResNet-50/101 body returning ``{2: C2, 3: C3, 4: C4, 5: C5}`` (NCHW).

    State-dict keys are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, …,
    ``layer1.0.downsample.0``/``.1``), without the classifier."""

    def __init__(self, backbone: str):
        super().__init__()
        if backbone not in _DEPTHS:
            raise ValueError(f"the official model has ResNet-50 or -101, not {backbone!r}")
        net = getattr(torchvision.models, backbone)(weights=None, norm_layer=batch_norm)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = SameMaxPool2d(3, 2)
        self.layer1, self.layer2, self.layer3, self.layer4 = (net.layer1, net.layer2,
                                                              net.layer3, net.layer4)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {2: c2, 3: c3, 4: c4, 5: c5}


def tf_variable_map(config: ModelConfig, prefix: str = "") -> VariableMap:
    """TF variable name → (state-dict key under ``prefix``, kind) for the ResNet."""
    depth = _DEPTHS[config.backbone]
    scope = f"resnet{depth}"
    out: VariableMap = {}
    counter = itertools.count()

    def add(key: str) -> None:
        i = next(counter)
        suffix = "" if i == 0 else f"_{i}"
        out.update(conv_entries(f"{scope}/conv2d{suffix}", f"{prefix}{key}", bias=False))
        out.update(batch_norm_entries(f"{scope}/batch_normalization{suffix}",
                                      f"{prefix}{_bn_key(key)}"))

    add("conv1")
    for stage, blocks in enumerate(_BLOCKS[depth], start=1):
        for block in range(blocks):
            base = f"layer{stage}.{block}"
            if block == 0:
                add(f"{base}.downsample.0")
            for conv in (1, 2, 3):
                add(f"{base}.conv{conv}")
    return out


def _bn_key(conv_key: str) -> str:
    if conv_key.endswith("downsample.0"):
        return conv_key[:-1] + "1"
    head, _, name = conv_key.rpartition(".")
    bn = name.replace("conv", "bn")
    return f"{head}.{bn}" if head else bn


def tf_variable_names(config: ModelConfig) -> set[str]:
    """The TF variables the ResNet of ``config`` consumes."""
    return set(tf_variable_map(config))


@functools.lru_cache(maxsize=4)
def _shape_model(backbone: str) -> OfficialResNet:
    with torch.device("meta"):
        return OfficialResNet(backbone)


def tf_to_state_dict(variables: Mapping[str, np.ndarray], config: ModelConfig,
                     source: str = "checkpoint") -> dict[str, Tensor]:
    """The :class:`OfficialResNet` state dict from the official TF variables (keys relative to
    the ResNet); :class:`~fashionkit.errors.InvalidDataError` names each missing or
    mis-shaped variable."""
    return convert_variables(variables, tf_variable_map(config), _shape_model(config.backbone),
                             source)
