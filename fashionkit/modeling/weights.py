"""Loading local weight files into an :class:`~fashionkit.modeling.AttributeMaskRCNN`.

Three kinds, recognised from the keys (nothing is ever downloaded):

- ``checkpoint``: fashionkit's own (:mod:`fashionkit.modeling.checkpoint`), or a Lightning
  checkpoint of the training engine (``state_dict`` with ``model.`` prefixes).
- ``detection``: a torchvision Mask R-CNN state dict (e.g. the COCO ``maskrcnn_resnet50_fpn``
  or ``_v2`` file). Class-specific layers (box classifier and regressor, mask logits) are
  re-initialised when their class count differs (91 COCO → 47 here); the attribute head is
  new. Everything else must match the model's config by name and shape.
- ``backbone``: an ImageNet classification ResNet state dict (``conv1.weight``, ``layer1.*``,
  ``fc.*``) loaded into the backbone body; the FPN and heads stay randomly initialised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from fashionkit.errors import InvalidDataError
from fashionkit.modeling.checkpoint import CHECKPOINT_FORMAT, read_checkpoint, safe_torch_load

__all__ = ["load_weights", "WeightsReport", "CLASS_SPECIFIC_PREFIXES"]

WeightsKind = Literal["auto", "checkpoint", "detection", "backbone"]

CLASS_SPECIFIC_PREFIXES: tuple[str, ...] = (
    "roi_heads.box_predictor.cls_score.",
    "roi_heads.box_predictor.bbox_pred.",
    "roi_heads.mask_predictor.mask_fcn_logits.",
)
_NEW_IN_FASHIONKIT = ("roi_heads.attribute_predictor.",)


@dataclass
class WeightsReport:
    """What :func:`load_weights` did: tensors ``loaded``, parameters ``reinitialized``
    (class-specific layers whose class count differs), model entries ``not_in_file`` (kept as
    initialised) and file entries ``ignored``."""

    kind: str
    loaded: int = 0
    reinitialized: list[str] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)



def _unwrap(obj, path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return "checkpoint", obj["model"]
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = obj["state_dict"]
        if any(k.startswith("model.") for k in sd):
            return "checkpoint", {k[len("model."):]: v for k, v in sd.items()
                                  if k.startswith("model.")}
        obj = sd
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidDataError.in_file(path, "not a state dict (expected a mapping of names to tensors)")
    keys = list(obj)
    if any(k.startswith("backbone.body.") for k in keys):
        if any(k.startswith("roi_heads.attribute_predictor.") for k in keys):
            return "checkpoint", obj
        return "detection", obj
    if "conv1.weight" in obj and any(k.startswith("layer1.") for k in keys):
        return "backbone", obj
    raise InvalidDataError.in_file(path, "unrecognised weights: neither a fashionkit checkpoint, a torchvision "
                       "detection state dict (backbone.body.*) nor an ImageNet ResNet (conv1.*, "
                       "layer1.*)")


def load_weights(model, path: str | Path, kind: WeightsKind = "auto") -> WeightsReport:
    """Load a local weights file into ``model`` in place; see the module docstring for kinds.

    Raises :class:`InvalidDataError` (naming the file) when the file cannot be read safely or
    does not fit the model's architecture (e.g. R101 weights into an R50 config, v1 heads into
    v2)."""
    path = Path(path)
    if kind == "checkpoint" or kind == "auto":
        raw = safe_torch_load(path)
        if isinstance(raw, dict) and raw.get("format") == CHECKPOINT_FORMAT:
            read_checkpoint(path)  # validates config and ontology version
    else:
        raw = safe_torch_load(path)
    found, state = _unwrap(raw, path)
    if kind != "auto" and kind != found:
        raise InvalidDataError.in_file(path, f"expected {kind} weights, the file looks like {found} weights")
    if found == "backbone":
        return _load_backbone(model, state, path)
    return _load_full(model, state, path, found)


def _load_full(model, state: dict[str, torch.Tensor], path: Path, kind: str) -> WeightsReport:
    report = WeightsReport(kind=kind)
    own = model.state_dict()
    problems = []
    new_state = {}
    for name, value in state.items():
        if name not in own:
            if name.endswith("num_batches_tracked"):
                report.ignored.append(name)
                continue
            problems.append(f"unexpected entry {name}")
            continue
        if own[name].shape != value.shape:
            if kind == "detection" and name.startswith(CLASS_SPECIFIC_PREFIXES):
                report.reinitialized.append(name)
                continue
            problems.append(f"{name}: file {tuple(value.shape)} vs model {tuple(own[name].shape)}")
            continue
        new_state[name] = value
    for name in own:
        if name in state:
            continue
        allowed = name.endswith("num_batches_tracked") or (
            kind == "detection" and name.startswith(_NEW_IN_FASHIONKIT)
        )
        if allowed:
            report.not_in_file.append(name)
        else:
            problems.append(f"missing entry {name}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... {len(problems) - 8} more" if len(problems) > 8
                                           else "")
        raise InvalidDataError.in_file(path, f"{kind} weights do not fit the model config "
                           f"(backbone={model.config.backbone}, heads={model.config.heads}, "
                           f"norm={model.config.norm}): {shown}")
    model.load_state_dict(new_state, strict=False)
    report.loaded = len(new_state)
    return report


def _load_backbone(model, state: dict[str, torch.Tensor], path: Path) -> WeightsReport:
    report = WeightsReport(kind="backbone")
    body = model.backbone.body
    own = body.state_dict()
    problems = []
    new_state = {}
    for name, value in state.items():
        if name not in own:
            report.ignored.append(name)  # the classifier (fc.*) and any unused stage
            continue
        if own[name].shape != value.shape:
            problems.append(f"{name}: file {tuple(value.shape)} vs model {tuple(own[name].shape)}")
            continue
        new_state[name] = value
    for name in own:
        if name not in state:
            if name.endswith("num_batches_tracked"):
                report.not_in_file.append(name)
            else:
                problems.append(f"missing entry {name}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... {len(problems) - 8} more" if len(problems) > 8
                                           else "")
        raise InvalidDataError.in_file(path, f"ImageNet weights do not fit backbone {model.config.backbone}: {shown}")
    body.load_state_dict(new_state, strict=False)
    report.loaded = len(new_state)
    return report
