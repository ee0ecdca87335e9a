"""The attribute head of Fashionpedia's Attribute-Mask R-CNN and its loss, as pure functions.

The head reads the box head's per-RoI representation (``R × representation_size``) and gives
``R × num_attributes`` logits, one independent sigmoid per attribute and not conditioned on the
class (multi-label, class-agnostic). RoIs matched to background get all-zero targets.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

__all__ = ["AttributeHead", "attribute_loss", "attribute_targets"]


class AttributeHead(nn.Module):
    """``R × in_features`` RoI representations → ``R × num_attributes`` logits.

    ``hidden``: widths of hidden fc + ReLU layers before the output layer (empty: one linear
    layer). The output bias starts at ``prior_logit`` so that initial probabilities are small
    (most attributes are absent), which keeps the first BCE/focal steps from being dominated by
    the 294 negatives (the focal-loss paper's prior initialisation).
    """

    def __init__(self, in_features: int, num_attributes: int, hidden: tuple[int, ...] = (),
                 prior: float = 0.01):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.hidden = nn.Sequential(*layers)
        self.logits = nn.Linear(width, num_attributes)
        nn.init.normal_(self.logits.weight, std=0.01)
        nn.init.constant_(self.logits.bias, float(torch.logit(torch.tensor(prior))))

    def forward(self, features: Tensor) -> Tensor:
        return self.logits(self.hidden(features.flatten(start_dim=1)))


def attribute_targets(
    labels: list[Tensor], matched_idxs: list[Tensor], gt_attributes: list[Tensor]
) -> Tensor:
    """Multi-hot targets for sampled RoIs, concatenated over images: ``R × A`` float.

    ``labels[i]``: int64 ``R_i`` class of each sampled RoI (0 = background);
    ``matched_idxs[i]``: int64 ``R_i`` index of the matched ground truth (any value for
    background); ``gt_attributes[i]``: float ``G_i × A`` multi-hot of the image's ground truth.
    Background RoIs get all zeros.
    """
    out = []
    for lab, idx, gt in zip(labels, matched_idxs, gt_attributes, strict=True):
        if gt.shape[0] == 0:
            out.append(gt.new_zeros((lab.shape[0], gt.shape[1])))
            continue
        t = gt[idx.clamp(min=0)].to(torch.float32)
        out.append(t * (lab > 0).unsqueeze(1).to(t.dtype))
    return torch.cat(out, dim=0)


def attribute_loss(
    logits: Tensor,
    targets: Tensor,
    kind: Literal["bce", "focal"] = "bce",
    normalization: Literal["elements", "rois"] = "elements",
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> Tensor:
    """Multi-label attribute loss of ``R × A`` logits against ``R × A`` {0, 1} targets.

    ``bce``: sigmoid binary cross-entropy; ``focal``: sigmoid focal loss (Lin et al.; ``alpha``
    weights the positives, ``gamma`` down-weights easy examples). ``normalization``:
    ``elements`` averages over all R·A terms; ``rois`` sums over attributes and averages over
    RoIs (A times larger). With no RoIs the loss is an exact 0 that still carries a gradient
    path to ``logits``.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    if logits.numel() == 0:
        return logits.sum() * 0.0
    logits = logits.float()
    targets = targets.to(logits.dtype)
    if kind == "bce":
        per_term = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    elif kind == "focal":
        per_term = sigmoid_focal_loss(logits, targets, alpha=focal_alpha, gamma=focal_gamma,
                                      reduction="none")
    else:
        raise ValueError(f"attribute loss kind must be 'bce' or 'focal', not {kind!r}")
    if normalization == "elements":
        return per_term.mean()
    if normalization == "rois":
        return per_term.sum(dim=1).mean()
    raise ValueError(f"normalization must be 'elements' or 'rois', not {normalization!r}")
