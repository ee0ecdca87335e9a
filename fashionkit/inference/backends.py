"""Reduced-precision backends: which parts of the model run in bf16/fp16, and how.

``bf16`` (CPU with AMX/AVX-512-BF16, or GPU) and ``fp16`` (GPU) run the convolution- and
matmul-heavy parts under ``torch.autocast`` with channels-last weights: the backbone and FPN,
the RPN head's 3×3 convolution(s), the box head (the v2 designs' four 256-channel convolutions
on every proposal are as costly as the backbone), the mask head and mask predictor. The layers
that produce objectness, detection scores, box deltas and attribute scores (the RPN head's two
1×1 convolutions, ``box_predictor``, ``attribute_predictor``; a small share of the FLOPs) and all
post-processing (proposal selection, NMS, thresholds) stay in fp32, reading fp32 copies of the
features, so that near-tied detections are ranked as eager ranks them. Each wrapped part
returns fp32 tensors. The RPN's box deltas matter most: rounded to bf16 (weights and outputs)
they move the proposals, and with them the detections' scores, so keeping them in fp32 keeps
the torch bf16 backend within the parity tests' score bounds.

The backbone's BatchNorms are folded into the preceding convolutions
(:func:`fold_batchnorm`); a backbone left without normalisation layers (ResNet + FPN without
norm: every preset but the v2 heads' FPN norm) stores its weights in reduced precision
(:class:`StoredInDtype`) instead of re-casting them under autocast on every call.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.ops.misc import FrozenBatchNorm2d

__all__ = ["REDUCED_PRECISION_PARTS", "prepare_model", "reduced_precision_parts"]

# Attribute paths of the parts run in reduced precision (see the module docstring).
REDUCED_PRECISION_PARTS: tuple[str, ...] = (
    "backbone",
    "rpn.head.conv",
    "roi_heads.box_head",
    "roi_heads.mask_head",
    "roi_heads.mask_predictor",
)


def reduced_precision_parts(model: nn.Module) -> tuple[str, ...]:
    """The parts of ``model`` run in reduced precision: :data:`REDUCED_PRECISION_PARTS` for
    the torchvision-based models; for the official architecture
    (:class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN`) the same roles under its
    own names: backbone and FPN, the RPN's shared 3×3 convolution (its per-level BatchNorms
    and the objectness and box-delta layers stay fp32), each of the box head's convolutions
    and its fc layer (its BatchNorm, the class, box-delta and attribute layers stay fp32), and
    the mask head's convolutions, deconvolution and mask logits."""
    config = getattr(model, "config", None)
    if getattr(config, "architecture", "torchvision") != "official":
        return REDUCED_PRECISION_PARTS
    heads = model.get_submodule("roi_heads")
    return ("backbone", "rpn.conv",
            *(f"roi_heads.box_convs.{i}" for i in range(len(heads.box_convs))),  # type: ignore[arg-type]
            "roi_heads.box_fc",
            *(f"roi_heads.mask_convs.{i}" for i in range(len(heads.mask_convs))),  # type: ignore[arg-type]
            "roi_heads.mask_deconv", "roi_heads.mask_logits")


def _to_float(value):
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return type(value)((k, _to_float(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float(v) for v in value)
    return value


class AutocastWrapper(nn.Module):
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


_NORMS = (nn.BatchNorm2d, nn.GroupNorm)


def _is_frozen_bn(module: object) -> bool:
    return isinstance(module, FrozenBatchNorm2d)


_NormStats = tuple[torch.Tensor, torch.Tensor, float, torch.Tensor | None, torch.Tensor | None]


def _norm_stats(module: object) -> _NormStats | None:
    """``(running_mean, running_var, eps, weight, bias)`` of a BatchNorm2d / FrozenBatchNorm2d
    with running statistics (what folding needs), else ``None``."""
    if not isinstance(module, nn.BatchNorm2d | FrozenBatchNorm2d):
        return None
    mean, var = module.running_mean, module.running_var
    if not isinstance(mean, torch.Tensor) or not isinstance(var, torch.Tensor):
        return None  # track_running_stats=False: normalises by batch statistics, not foldable
    weight, bias = module.weight, module.bias
    return (mean, var, float(module.eps),
            weight if isinstance(weight, torch.Tensor) else None,
            bias if isinstance(bias, torch.Tensor) else None)


def fold_batchnorm(body: nn.Module) -> int:
    """Fold every eval-mode BatchNorm / FrozenBatchNorm that directly follows a convolution in
    a torchvision ResNet (stem, blocks' ``convK``/``bnK``, ``downsample``) into the
    convolution's weights and bias; the norm becomes ``Identity``. Returns the number folded.
    Inference-only: the folded model computes the same function with two memory passes
    fewer per convolution."""
    folded = 0

    def fold(parent: nn.Module, conv_name: str, bn_name: str) -> None:
        nonlocal folded
        conv, stats = getattr(parent, conv_name, None), _norm_stats(getattr(parent, bn_name, None))
        if not isinstance(conv, nn.Conv2d) or stats is None:
            return
        weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, *stats)
        conv.weight, conv.bias = weight, bias
        setattr(parent, bn_name, nn.Identity())
        folded += 1

    for module in list(body.modules()):
        for k in (1, 2, 3):
            fold(module, f"conv{k}", f"bn{k}")
        downsample = getattr(module, "downsample", None)
        if isinstance(downsample, nn.Sequential) and len(downsample) == 2:
            fold(downsample, "0", "1")
    return folded


class StoredInDtype(nn.Module):
    """``module`` with its weights stored in ``dtype``: inputs are cast to it, outputs back to
    fp32. For parts without normalisation layers, where autocast would re-cast every weight
    on every call."""

    def __init__(self, module: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.module = module.to(dtype)
        self.dtype = dtype

    def forward(self, x):
        return _to_float(self.module(x.to(self.dtype)))


def prepare_model(model: nn.Module, backend: str, device: torch.device,
                  copy_model: bool = False) -> nn.Module:
    """The model ready for ``backend`` on ``device`` (eval mode). ``eager``: as it is.
    ``bf16``/``fp16``: :func:`reduced_precision_parts` wrapped in :class:`AutocastWrapper`, weights
    channels-last. ``copy_model``: work on a deep copy (the caller's model is not changed)."""
    model = model.eval()
    if backend == "eager":
        return model.to(device)
    if copy_model:
        model = copy.deepcopy(model)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[backend]
    # NHWC lets oneDNN (AMX) and cuDNN pick their fast reduced-precision convolution kernels.
    model = model.to(device).to(memory_format=torch.channels_last)
    parts = list(reduced_precision_parts(model))
    backbone = model.get_submodule("backbone")
    fold_batchnorm(backbone.get_submodule("body"))
    if not any(isinstance(m, _NORMS) or _is_frozen_bn(m) for m in backbone.modules()):
        # Normalisation-free after folding: store the backbone's weights in reduced precision.
        model.backbone = StoredInDtype(backbone, dtype)
        parts.remove("backbone")
    for path in parts:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, AutocastWrapper(getattr(parent, name), device.type, dtype))
    return model
