"""The official RPN (tensorflow/tpu ``modeling/architecture/heads.py`` ``RpnHead``, anchors of
``dataloader/anchor.py``, box coding of ``utils/box_utils.py`` and proposals of
``ops/roi_ops.py`` ``multilevel_propose_rois``), in TensorFlow's [y1, x1, y2, x2] order.

Head: one 3×3 convolution (with bias) shared by all levels, then a BatchNorm + ReLU *per level*
(TF ``rpn-l3-bn`` … ``rpn-l7-bn``), then the shared 1×1 ``rpn-class`` (A logits) and
``rpn-box`` (4A deltas, anchor-major: channel ``4a + j`` is delta ``j`` of anchor ``a``).

Anchors: on level ``l`` (stride ``2**l``) centred at ``stride · (i + ½)``, side
``anchor_size · stride`` (the config's ``anchor_sizes``), for each aspect ratio ``r`` (w/h, in
the config's order) height ``side / √r`` and width ``side · √r``; ordered (row, column,
anchor) like the head's outputs.

Box coding (the legacy "+1" convention, no delta weights for the RPN): an anchor of height
``h = y2 − y1 + 1`` and centre ``y1 + h/2`` decodes ``(dy, dx, dh, dw)`` to centre
``dy·h + cy`` and height ``exp(min(dh, log(1000/16)))·h``, then ``y2 = y1 + height − 1``.

Proposals, for each level: sigmoid of the logits, decode, clip to ``[0, H − 1] × [0, W − 1]``
of the size TF passes as ``image_info[:, 1]`` (the padded input size), the top
``pre_nms_top_n`` (at most the level's anchors) by score, greedy NMS at ``nms_thresh``
keeping at most ``min(anchors, post_nms_top_n)`` boxes; the kept boxes are padded to that count
with empty boxes of score −1 (as the official padded NMS returns them). The levels' lists are
concatenated and the best ``post_nms_top_n`` overall are the proposals. Ties in scores keep
the earlier box first, as ``tf.nn.top_k`` does. The official config has no score or
minimum-size threshold for proposals.

NMS is torchvision's on the boxes in the official order: it suppresses at IoU > threshold where
TF's tiled NMS suppresses at IoU ≥ threshold, and TF adds 1e-8 to the union; both matter only
for an IoU of exactly the threshold. An all-zero box (clipped away entirely) is never kept, as
TF keeps only boxes with a positive coordinate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import nms

from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.official.backbone import batch_norm
from fashionkit.modeling.official.fpn import LEVELS
from fashionkit.modeling.official.tf_weights import (
    VariableMap,
    batch_norm_entries,
    conv_entries,
    convert_variables,
)

__all__ = ["BBOX_XFORM_CLIP", "OfficialRPNHead", "anchors_for_level", "clip_boxes",
           "decode_boxes", "propose", "tf_to_state_dict", "tf_variable_map",
           "tf_variable_names"]

BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)


class OfficialRPNHead(nn.Module):
    """``{3..7: N×C×H×W}`` → ``({level: N×A×H×W logits}, {level: N×4A×H×W deltas})``."""

    def __init__(self, channels: int, anchors_per_location: int, levels: Sequence[int] = LEVELS):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.ModuleDict({str(k): batch_norm(channels) for k in levels})
        self.cls_logits = nn.Conv2d(channels, anchors_per_location, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * anchors_per_location, 1)

    def forward(self, features: Mapping[int, Tensor]) -> tuple[dict[int, Tensor],
                                                               dict[int, Tensor]]:
        scores, deltas = {}, {}
        for level, x in features.items():
            x = F.relu(self.norm[str(level)](self.conv(x)))
            scores[level] = self.cls_logits(x)
            deltas[level] = self.bbox_pred(x)
        return scores, deltas


def anchors_for_level(level: int, size: float, aspect_ratios: Sequence[float],
                      height: int, width: int, device: torch.device | None = None) -> Tensor:
    """``(height·width·A)×4`` float32 [y1, x1, y2, x2] anchors of one level whose feature map
    is ``height×width`` (stride ``2**level``), in (row, column, anchor) order."""
    stride = 2 ** level
    ys = torch.arange(height, dtype=torch.float32, device=device) * stride + stride / 2
    xs = torch.arange(width, dtype=torch.float32, device=device) * stride + stride / 2
    yv, xv = torch.meshgrid(ys, xs, indexing="ij")
    yv, xv = yv.reshape(-1, 1), xv.reshape(-1, 1)
    half_y = torch.tensor([size * r ** -0.5 / 2.0 for r in aspect_ratios], dtype=torch.float32,
                          device=device)
    half_x = torch.tensor([size * r ** 0.5 / 2.0 for r in aspect_ratios], dtype=torch.float32,
                          device=device)
    boxes = torch.stack([yv - half_y, xv - half_x, yv + half_y, xv + half_x], dim=-1)
    return boxes.reshape(-1, 4)


def decode_boxes(deltas: Tensor, anchors: Tensor,
                 weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """The official ``decode_boxes``: ``…×4`` (dy, dx, dh, dw) on ``…×4`` (broadcastable)
    [y1, x1, y2, x2] anchors → [y1, x1, y2, x2] boxes, legacy "+1" sizes. The RPN decodes
    without ``weights``; the Fast R-CNN head with its own."""
    dy, dx, dh, dw = deltas.unbind(-1)
    dy, dx = dy / weights[0], dx / weights[1]
    dh = (dh / weights[2]).clamp(max=BBOX_XFORM_CLIP)
    dw = (dw / weights[3]).clamp(max=BBOX_XFORM_CLIP)
    ay1, ax1, ay2, ax2 = anchors.unbind(-1)
    ah = ay2 - ay1 + 1.0
    aw = ax2 - ax1 + 1.0
    ayc = ay1 + 0.5 * ah
    axc = ax1 + 0.5 * aw
    yc = dy * ah + ayc
    xc = dx * aw + axc
    h = torch.exp(dh) * ah
    w = torch.exp(dw) * aw
    y1 = yc - 0.5 * h
    x1 = xc - 0.5 * w
    return torch.stack([y1, x1, y1 + h - 1.0, x1 + w - 1.0], dim=-1)


def clip_boxes(boxes: Tensor, height: float, width: float) -> Tensor:
    """[y1, x1, y2, x2] boxes clipped to ``[0, height − 1] × [0, width − 1]``."""
    limit = boxes.new_tensor([height - 1.0, width - 1.0, height - 1.0, width - 1.0])
    return torch.maximum(torch.minimum(boxes, limit), boxes.new_zeros(()))


def _top(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` best scores, earlier first among equals (``tf.nn.top_k``).
    Exported to ONNX the sort is ``TopK``, which has no stable form (only exact ties of
    float scores can differ)."""
    if torch.onnx.is_in_onnx_export():
        return torch.sort(scores, descending=True).indices[:k]
    return torch.sort(scores, descending=True, stable=True).indices[:k]


def _level_proposals(scores: Tensor, boxes: Tensor, pre_nms_top_n: int, post_nms_top_n: int,
                     nms_thresh: float) -> tuple[Tensor, Tensor]:
    n = scores.shape[0]
    order = _top(scores, min(n, pre_nms_top_n))
    scores, boxes = scores[order], boxes[order]
    slots = min(n, post_nms_top_n)
    candidates = torch.nonzero((boxes > 0).any(dim=1)).flatten()
    xyxy = boxes[candidates][:, [1, 0, 3, 2]]
    # Scores already sorted: rank them so that NMS visits them in this (stable) order.
    rank = -torch.arange(candidates.numel(), dtype=torch.float32, device=boxes.device)
    kept = candidates[nms(xyxy, rank, nms_thresh)[:slots]]
    out_boxes = boxes.new_zeros((slots, 4))
    out_scores = scores.new_full((slots,), -1.0)
    out_boxes[: kept.numel()] = boxes[kept]
    out_scores[: kept.numel()] = scores[kept]
    return out_boxes, out_scores


def propose(scores: Mapping[int, Tensor], deltas: Mapping[int, Tensor],
            anchors: Mapping[int, Tensor], clip_size: tuple[int, int], *,
            pre_nms_top_n: int, post_nms_top_n: int, nms_thresh: float
            ) -> tuple[Tensor, Tensor]:
    """Proposals of one image: ``(R×4 [y1, x1, y2, x2], R scores)``, best first.

    ``scores[level]``: ``A×H×W`` logits, ``deltas[level]``: ``4A×H×W`` (one image's head
    outputs), ``anchors[level]``: ``(H·W·A)×4``; ``clip_size``: ``(H, W)`` boxes are clipped
    to. ``R = min(post_nms_top_n, Σ_level min(anchors, post_nms_top_n))``: as in the official
    code, when NMS keeps fewer boxes the rest are empty boxes with score −1."""
    all_boxes, all_scores = [], []
    for level in sorted(scores):
        logits = scores[level].permute(1, 2, 0).reshape(-1)
        level_deltas = deltas[level].permute(1, 2, 0).reshape(-1, 4)
        boxes = decode_boxes(level_deltas, anchors[level])
        boxes = clip_boxes(boxes, float(clip_size[0]), float(clip_size[1]))
        b, s = _level_proposals(torch.sigmoid(logits), boxes, pre_nms_top_n, post_nms_top_n,
                                nms_thresh)
        all_boxes.append(b)
        all_scores.append(s)
    boxes, scores_ = torch.cat(all_boxes), torch.cat(all_scores)
    order = _top(scores_, min(scores_.shape[0], post_nms_top_n))
    return boxes[order], scores_[order]


def tf_variable_map(config: ModelConfig, prefix: str = "") -> VariableMap:
    out: VariableMap = {}
    out.update(conv_entries("rpn_head/rpn", f"{prefix}conv", bias=True))
    for k in LEVELS:
        out.update(batch_norm_entries(f"rpn_head/rpn-l{k}-bn", f"{prefix}norm.{k}"))
    out.update(conv_entries("rpn_head/rpn-class", f"{prefix}cls_logits", bias=True))
    out.update(conv_entries("rpn_head/rpn-box", f"{prefix}bbox_pred", bias=True))
    return out


def tf_variable_names(config: ModelConfig) -> set[str]:
    return set(tf_variable_map(config))


@functools.lru_cache(maxsize=4)
def _shape_model(channels: int, anchors: int) -> OfficialRPNHead:
    with torch.device("meta"):
        return OfficialRPNHead(channels, anchors)


def tf_to_state_dict(variables: Mapping[str, np.ndarray], config: ModelConfig,
                     source: str = "checkpoint") -> dict[str, Tensor]:
    """The :class:`OfficialRPNHead` state dict from the official TF variables."""
    return convert_variables(variables, tf_variable_map(config),
                             _shape_model(config.fpn_channels, len(config.anchor_aspect_ratios)),
                             source)
