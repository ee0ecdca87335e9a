"""The official FPN (tensorflow/tpu ``modeling/architecture/fpn.py``): P3–P7 with BatchNorm.

- Laterals: 1×1 convolutions (with bias) of C3, C4, C5; top-down by nearest ×2 upsampling and
  addition; a 3×3 'SAME' convolution (with bias) on each of P3..P5.
- P6: a 3×3 stride-2 'SAME' convolution of P5 (after its 3×3 convolution, before its
  BatchNorm); P7: the same on ReLU(P6). TensorFlow's 'SAME' pads a stride-2 convolution of an
  even input 0 before and 1 after (:class:`~fashionkit.modeling.official.backbone.SameConv2d`).
- Then every level P3..P7 goes through its own BatchNorm, without ReLU.

State-dict keys: ``lateral.{3,4,5}``, ``output.{3,4,5}`` (TF ``l3``.., ``post_hoc_d3``..),
``p6``, ``p7``, ``norm.{3..7}`` (TF ``p3-bn``..).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.official.backbone import SameConv2d, batch_norm
from fashionkit.modeling.official.tf_weights import (
    VariableMap,
    batch_norm_entries,
    conv_entries,
    convert_variables,
)

__all__ = ["LEVELS", "OfficialFPN", "build_fpn", "tf_to_state_dict", "tf_variable_map", "tf_variable_names"]

LEVELS: tuple[int, ...] = (3, 4, 5, 6, 7)
_INPUT_LEVELS = (3, 4, 5)


class OfficialFPN(nn.Module):
    """``{2..5: C}`` → ``{3..7: P}`` (NCHW, ``channels`` each)."""

    def __init__(self, in_channels: Mapping[int, int], channels: int = 256):
        super().__init__()
        self.lateral = nn.ModuleDict({str(k): nn.Conv2d(in_channels[k], channels, 1)
                                      for k in _INPUT_LEVELS})
        self.output = nn.ModuleDict({str(k): nn.Conv2d(channels, channels, 3, padding=1)
                                     for k in _INPUT_LEVELS})
        self.p6 = SameConv2d(channels, channels, 3, stride=2)
        self.p7 = SameConv2d(channels, channels, 3, stride=2)
        self.norm = nn.ModuleDict({str(k): batch_norm(channels) for k in LEVELS})

    def forward(self, features: Mapping[int, Tensor]) -> dict[int, Tensor]:
        feats = {5: self.lateral["5"](features[5])}
        for level in (4, 3):
            up = F.interpolate(feats[level + 1], scale_factor=2.0, mode="nearest")
            feats[level] = up + self.lateral[str(level)](features[level])
        for level in _INPUT_LEVELS:
            feats[level] = self.output[str(level)](feats[level])
        feats[6] = self.p6(feats[5])
        feats[7] = self.p7(F.relu(feats[6]))
        return {level: self.norm[str(level)](feats[level]) for level in LEVELS}


def build_fpn(config: ModelConfig) -> OfficialFPN:
    """The FPN on the ResNet of ``config`` (C3, C4, C5 of 512, 1024, 2048 channels)."""
    c5 = config.backbone_out_channels
    return OfficialFPN({k: c5 // 2 ** (5 - k) for k in _INPUT_LEVELS}, config.fpn_channels)


def tf_variable_map(config: ModelConfig, prefix: str = "") -> VariableMap:
    out: VariableMap = {}
    for k in _INPUT_LEVELS:
        out.update(conv_entries(f"fpn/l{k}", f"{prefix}lateral.{k}", bias=True))
        out.update(conv_entries(f"fpn/post_hoc_d{k}", f"{prefix}output.{k}", bias=True))
    for k in (6, 7):
        out.update(conv_entries(f"fpn/p{k}", f"{prefix}p{k}", bias=True))
    for k in LEVELS:
        out.update(batch_norm_entries(f"fpn/p{k}-bn", f"{prefix}norm.{k}"))
    return out


def tf_variable_names(config: ModelConfig) -> set[str]:
    return set(tf_variable_map(config))


@functools.lru_cache(maxsize=4)
def _shape_model(c5: int, channels: int) -> OfficialFPN:
    with torch.device("meta"):
        return OfficialFPN({k: c5 // 2 ** (5 - k) for k in _INPUT_LEVELS}, channels)


def tf_to_state_dict(variables: Mapping[str, np.ndarray], config: ModelConfig,
                     source: str = "checkpoint") -> dict[str, Tensor]:
    """The :class:`OfficialFPN` state dict from the official TF variables."""
    return convert_variables(variables, tf_variable_map(config),
                             _shape_model(config.backbone_out_channels, config.fpn_channels),
                             source)
