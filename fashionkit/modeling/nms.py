"""Per-class non-maximum suppression over class-specific boxes, exported as one ONNX
``NonMaxSuppression`` whose batch axis is the class.

Mask R-CNN's box head regresses one box per (proposal, class) pair. torchvision's
``postprocess_detections`` flattens the pairs into one candidate list and calls
``batched_nms``; traced for export, that becomes the coordinate-offset trick: one NMS over all
``N·C`` candidates (proposals × classes when the score threshold is 0), a noticeable share of
an exported run. Greedy NMS only compares
boxes of one class, and the model keeps the ``k`` best detections overall, so no class can
contribute more than ``k``: ONNX's op with boxes ``C×N×4``, scores ``C×1×N`` and
``max_output_boxes_per_class = k`` keeps the same detections at a fraction of the work.

Eager, the same function runs torchvision's ``nms`` class by class, as ``batched_nms`` does
on the CPU for large inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import nms

__all__ = ["batched_nms_without_branches", "classwise_nms"]


def _eager(boxes: Tensor, scores: Tensor, iou_threshold: float, max_per_class: int) -> Tensor:
    kept = [boxes.new_zeros((0, 2), dtype=torch.int64)]
    for c in range(boxes.shape[0]):
        index = torch.nonzero(scores[c] >= 0).flatten()
        if not index.numel():
            continue
        keep = index[nms(boxes[c, index], scores[c, index], iou_threshold)[:max_per_class]]
        kept.append(torch.stack([torch.full_like(keep, c), keep], dim=1))
    return torch.cat(kept)


class _ClasswiseNMS(torch.autograd.Function):
    """Eager: :func:`_eager`. Exported (TorchScript ONNX exporter): ONNX NonMaxSuppression
    with the classes as batches, its ``(batch, class, box)`` rows narrowed to ``(class, box)``.
    Candidates have scores ≥ 0; the score threshold −0.5 drops the masked ones (−1)."""

    @staticmethod
    def forward(ctx, boxes, scores, iou_threshold: float, max_per_class: int):  # type: ignore[override]
        return _eager(boxes, scores, iou_threshold, max_per_class)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float, max_per_class: int):  # pragma: no cover - runs inside torch.onnx.export
        def const(value, dtype):
            return g.op("Constant", value_t=torch.tensor(value, dtype=dtype))

        scores = g.op("Unsqueeze", scores, const([1], torch.int64))
        selected = g.op("NonMaxSuppression", boxes, scores, const([max_per_class], torch.int64),
                        const([iou_threshold], torch.float32), const([-0.5], torch.float32))
        return g.op("Gather", selected, const([0, 2], torch.int64), axis_i=1)


def classwise_nms(boxes: Tensor, scores: Tensor, iou_threshold: float,
                  max_per_class: int) -> Tensor:
    """Greedy NMS within each class. ``boxes`` ``C×N×4`` XYXY (class ``c``'s box for each of
    ``N`` proposals), ``scores`` ``C×N``; a negative score marks a pair that is not a
    candidate (below the score threshold, or an empty box). At most ``max_per_class`` boxes
    are kept per class (the highest-scored survivors, as greedy NMS yields them). Returns the
    kept pairs as ``K×2`` int64 rows ``(class, proposal)``, in no particular order."""
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:2]:
        raise ValueError(f"boxes must be C×N×4 and scores C×N, got {tuple(boxes.shape)} and "
                         f"{tuple(scores.shape)}")
    if torch.onnx.is_in_onnx_export():
        return _ClasswiseNMS.apply(boxes, scores, float(iou_threshold), int(max_per_class))
    return _eager(boxes, scores, iou_threshold, max_per_class)


def batched_nms_without_branches(boxes: Tensor, scores: Tensor, groups: Tensor,
                                 iou_threshold: float) -> Tensor:
    """torchvision's ``batched_nms`` by the coordinate offset trick (each group's boxes moved
    apart so that no two groups overlap), without its branch on empty input: the largest
    coordinate is taken over the boxes and a zero, so that no input is empty. Indices of the
    kept boxes by decreasing score. Used for export, where torchvision's version becomes an
    ONNX ``If``."""
    largest = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes) * (largest + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
