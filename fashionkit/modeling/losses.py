"""The seed paper's Table 4 box loss (matterport Mask R-CNN's definition), for logging.

Two definitions of the RoI-head losses are in play:

- **Optimised** (torchvision's ``fastrcnn_loss`` / ``maskrcnn_loss``), logged as
  ``loss_classifier``, ``loss_box_reg``, ``loss_mask``. ``loss_box_reg`` is smooth-L1
  (``beta = 1/9``) *summed* over the positive RoIs' class-specific deltas and divided by *all*
  sampled RoIs, so it grows with the share of positives as the proposals improve.
- **Table 4** (matterport's ``mrcnn_*_loss_graph``), logged as ``mrcnn_class_loss``,
  ``mrcnn_bbox_loss``, ``mrcnn_mask_loss``: class is the cross-entropy over the sampled RoIs,
  mean; box is :func:`mrcnn_bbox_loss`, a mean over positive RoIs; mask is the binary
  cross-entropy of the class-specific mask over the positive RoIs' pixels, mean. The class and
  mask definitions coincide with torchvision's, so those two columns carry the optimised values;
  only the box loss is computed separately. Both box losses read the deltas of the same box
  coder (weights 10, 10, 5, 5, which is matterport's ``BBOX_STD_DEV`` of 0.1, 0.1, 0.2, 0.2).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["TABLE4_LOSS_NAMES", "mrcnn_bbox_loss"]

TABLE4_LOSS_NAMES: tuple[str, ...] = ("mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")


def mrcnn_bbox_loss(box_regression: Tensor, labels: Tensor, regression_targets: Tensor) -> Tensor:
    """matterport's ``mrcnn_bbox_loss_graph``: smooth-L1 with ``beta = 1`` on each of the 4
    coordinates of every positive RoI's deltas for its ground-truth class, averaged over the
    ``P × 4`` elements (P positive RoIs); 0 when there is no positive RoI.

    ``box_regression`` N×4C predicted deltas, ``labels`` N int64 (0 = background),
    ``regression_targets`` N×4 encoded targets, over the N sampled RoIs of the batch."""
    if box_regression.ndim != 2 or box_regression.shape[1] % 4:
        raise ValueError(f"box_regression must be N×4C, got {tuple(box_regression.shape)}")
    if labels.shape != (box_regression.shape[0],) or regression_targets.shape != (
            box_regression.shape[0], 4):
        raise ValueError(f"labels {tuple(labels.shape)} and regression_targets "
                         f"{tuple(regression_targets.shape)} must be N and N×4 for "
                         f"box_regression {tuple(box_regression.shape)}")
    pos = (labels > 0).nonzero().squeeze(1)
    if pos.numel() == 0:
        return box_regression.sum() * 0.0
    deltas = box_regression.reshape(box_regression.shape[0], -1, 4)[pos, labels[pos]]
    return F.smooth_l1_loss(deltas, regression_targets[pos], beta=1.0, reduction="mean")
