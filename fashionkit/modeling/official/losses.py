"""The training losses of the official Attribute-Mask R-CNN (tensorflow/tpu
``modeling/losses.py`` and ``projects/fashionpedia/modeling/attribute_loss.py``), as pure
functions over a whole batch. Their sum is the official ``model_loss`` (the official weight
decay is the optimiser's, not a loss term here).

TensorFlow's reductions, which set each loss's scale: ``SUM`` is the sum of the weighted
element losses; ``SUM_BY_NONZERO_WEIGHTS`` divides that sum by the number of elements whose
weight is non-zero (0 when there is none). TF's Huber loss of an error ``e`` is ``½e²`` for
``|e| ≤ δ`` and ``δ(|e| − ½δ)`` beyond (``torch.nn.functional.huber_loss``, not smooth-L1's
``½e²/β``). Sigmoid cross-entropies are on logits.

Layouts: fashionkit's, flattened over the batch (TF's ``[batch, boxes, …]`` normalised over the
batch gives the same numbers): RPN outputs per level ``B×N_l`` logits and ``B×N_l×4`` deltas
(``N_l`` = the level's anchors in (row, column, anchor) order); RoI outputs ``R×…`` over the
sampled RoIs of all images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "RPN_BOX_HUBER_DELTA",
    "FAST_RCNN_BOX_HUBER_DELTA",
    "attribute_loss",
    "fast_rcnn_box_loss",
    "fast_rcnn_class_loss",
    "mask_loss",
    "rpn_box_loss",
    "rpn_score_loss",
]

#: ``rpn_box_loss.huber_loss_delta`` and ``frcnn_box_loss.huber_loss_delta`` of the official
#: config.
RPN_BOX_HUBER_DELTA = 1.0 / 9.0
FAST_RCNN_BOX_HUBER_DELTA = 1.0


def _sum_by_nonzero(losses: Tensor, weights: Tensor) -> Tensor:
    # With no weight the sum is 0 as well: 0 / 1, TF's safe division.
    return (losses * weights).sum() / torch.count_nonzero(weights).clamp(min=1)


def rpn_score_loss(logits: Sequence[Tensor], targets: Sequence[Tensor],
                   batch_size_per_image: int = 256) -> Tensor:
    """``RpnScoreLoss``: per level the sigmoid cross-entropy summed over the anchors whose
    target is 1 or 0 (−1 is ignored), divided by ``B · batch_size_per_image``; summed over
    the levels. ``logits[l]`` and ``targets[l]``: ``B×N_l``."""
    total = logits[0].new_zeros((), dtype=torch.float32)
    for x, t in zip(logits, targets, strict=True):
        valid = ((t == 1) | (t == 0)).float()
        ce = F.binary_cross_entropy_with_logits(x.float(), t.clamp(min=0).float(),
                                                reduction="none")
        total = total + (ce * valid).sum() / float(x.shape[0] * batch_size_per_image)
    return total


def rpn_box_loss(deltas: Sequence[Tensor], targets: Sequence[Tensor],
                 delta: float = RPN_BOX_HUBER_DELTA) -> Tensor:
    """``RpnBoxLoss``: per level the Huber loss (``delta``) summed over the elements whose
    target is non-zero (the matched anchors' coordinates), divided by their count; summed over
    the levels. ``deltas[l]`` and ``targets[l]``: ``B×N_l×4``."""
    total = deltas[0].new_zeros((), dtype=torch.float32)
    for d, t in zip(deltas, targets, strict=True):
        t = t.float()
        huber = F.huber_loss(d.float(), t, reduction="none", delta=delta)
        total = total + _sum_by_nonzero(huber, (t != 0).float())
    return total


def fast_rcnn_class_loss(logits: Tensor, classes: Tensor) -> Tensor:
    """``FastrcnnClassLoss``: softmax cross-entropy, mean over the ``R`` RoIs (``logits``
    R×C, ``classes`` R int64, 0 = background)."""
    return F.cross_entropy(logits.float(), classes.long(), reduction="mean")


def fast_rcnn_box_loss(deltas: Tensor, classes: Tensor, targets: Tensor,
                       delta: float = FAST_RCNN_BOX_HUBER_DELTA) -> Tensor:
    """``FastrcnnBoxLoss``: the Huber loss (``delta``) of each foreground RoI's deltas for its
    class against its targets, divided by 4 × the foreground RoIs (0 without any). ``deltas``
    R×4C (class-major, ``[dy, dx, dh, dw]``), ``classes`` R, ``targets`` R×4 (weights 10, 10,
    5, 5 already applied)."""
    r = deltas.shape[0]
    picked = deltas.float().reshape(r, -1, 4)[torch.arange(r, device=deltas.device),
                                              classes.long()]
    huber = F.huber_loss(picked, targets.float(), reduction="none", delta=delta)
    weights = (classes > 0).float()[:, None].expand(-1, 4)
    return _sum_by_nonzero(huber, weights)


def mask_loss(logits: Tensor, targets: Tensor, classes: Tensor) -> Tensor:
    """``MaskrcnnLoss``: sigmoid cross-entropy of the ``M×S×S`` mask logits (of each RoI's
    class) against the soft ``M×S×S`` targets, mean over the pixels of the RoIs whose class is
    > 0 (0 without any)."""
    if logits.shape[0] == 0:
        return logits.sum().float() * 0.0
    ce = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    weights = (classes > 0).float()[:, None, None].expand_as(ce)
    return _sum_by_nonzero(ce, weights)


def attribute_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """``FastrcnnAttributeLoss``: sigmoid cross-entropy, mean over all RoIs × attributes
    (``logits`` and ``targets`` R×A; background RoIs included, with the targets the sampler
    gave them)."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="mean")
