"""Reduced-precision backends: which parts of the model run in bf16/fp16, and how.

``bf16`` (CPU with AMX/AVX-512-BF16, or GPU) and ``fp16`` (GPU) run the convolution- and
matmul-heavy parts under ``torch.autocast`` with channels-last weights: the backbone and FPN,
the RPN head's convolutions, the box head (the v2 designs' four 256-channel convolutions on
every proposal are as costly as the backbone), the mask head and mask predictor. The layers
that produce detection scores, box deltas and attribute scores (``box_predictor``,
``attribute_predictor``) and all post-processing (proposal selection, NMS, thresholds) stay in
fp32, reading fp32 copies of the features, so that near-tied detections are ranked as eager
ranks them. Each wrapped part returns fp32 tensors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["REDUCED_PRECISION_PARTS", "prepare_model"]

# Attribute paths of the parts run in reduced precision (see the module docstring).
REDUCED_PRECISION_PARTS: tuple[str, ...] = (
    "backbone",
    "rpn.head",
    "roi_heads.box_head",
    "roi_heads.mask_head",
    "roi_heads.mask_predictor",
)


def _to_float(value):
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return type(value)((k, _to_float(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float(v) for v in value)
    return value


class Autocast(nn.Module):
    """``module`` run under ``torch.autocast(device_type, dtype)``; outputs in fp32."""

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            out = self.module(*args, **kwargs)
        return _to_float(out)


def prepare_model(model: nn.Module, backend: str, device: torch.device,
                  copy_model: bool = False) -> nn.Module:
    """The model ready for ``backend`` on ``device`` (eval mode). ``eager``: as it is.
    ``bf16``/``fp16``: :data:`REDUCED_PRECISION_PARTS` wrapped in :class:`Autocast`, weights
    channels-last. ``copy_model``: work on a deep copy (the caller's model is not changed)."""
    model = model.eval()
    if backend == "eager":
        return model.to(device)
    if copy_model:
        model = copy.deepcopy(model)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[backend]
    # NHWC lets oneDNN (AMX) and cuDNN pick their fast reduced-precision convolution kernels.
    model = model.to(device).to(memory_format=torch.channels_last)
    for path in REDUCED_PRECISION_PARTS:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, Autocast(getattr(parent, name), device.type, dtype))
    return model
