"""Training targets of the official Attribute-Mask R-CNN (tensorflow/tpu): anchor labels, RoI
sampling and mask targets, as pure functions of one image, boxes in the official
``[y1, x1, y2, x2]`` order (model-input pixels).

What the official code does, and therefore what these functions do:

- **Anchors** (``dataloader/anchor.py`` ``RpnAnchorLabeler``, object-detection ``ArgMaxMatcher``
  and ``FasterRcnnBoxCoder``): IoU without the "+1" (an intersection of 0 gives IoU 0); each
  anchor takes the ground truth of largest IoU (the first on ties); IoU ≥ 0.7 is positive,
  < 0.3 negative, between ignored; then every ground truth *forces* its own best anchor to
  match it, whatever the IoU (an anchor that is several boxes' best goes to the first of
  them). Box targets of matched anchors are ``((yc−yca)/ha, (xc−xca)/wa, log(h/ha), log(w/wa))``
  with sizes ``y2 − y1`` (no "+1", 1e-8 added to every size, no weights); unmatched and
  ignored anchors get 0. Of the labelled anchors, 256 are sampled at random: at most half
  positive, the rest negative (score targets 1 / 0, and −1 for the others). Every matched
  anchor keeps its box target, sampled or not (the official box loss reads all of them).
- **RoIs** (``projects/fashionpedia/ops/roi_sampler.py``): the ground-truth boxes are appended
  to the proposals; IoU with a 1e-8 term in the union; each box takes the ground truth of
  largest IoU; IoU > 0.5 (strictly) is foreground, 0 ≤ IoU < 0.5 background (class 0, ground
  truth index 0). A box of IoU ≤ 0 gets the zero box, class 0, no attributes and index −1;
  a background box of 0 < IoU < 0.5 keeps its ground truth's box and *attributes* (the official
  attribute loss then trains background RoIs towards the attributes of the garment they
  overlap). The static sampler (``BalancedPositiveNegativeSampler(is_static=True)``) draws
  512 per image, at most 25 % foreground; when fewer boxes are labelled than it needs, the
  first unlabelled ones (IoU exactly 0.5) join the negatives. The samples keep the boxes'
  order (the official ``top_k`` of the sampled indicator).
- **Box targets** (``utils/box_utils.py`` ``encode_boxes``): the "+1" convention (``h = y2 −
  y1 + 1``), weights 10, 10, 5, 5, zero for background RoIs.
- **Mask targets** (``ops/target_ops.py`` ``MaskSampler``): the first 128 foreground RoIs (in
  sample order); each ground-truth mask is cropped to its box and resized to 112×112
  (``tf.image.crop_and_resize``, bilinear, the box normalised by the image size), then the
  RoI's 28×28 target is sampled from that crop padded by 2 zeros (``crop_mask_in_target_box``,
  one bilinear sample at each bin centre with the clamping of the official RoIAlign): soft
  values in [0, 1], not thresholded.

Deliberate differences: the official input pipeline pads every image's ground truth to 100
instances with −1 boxes, and those padded boxes, appended to the proposals, become background
RoI candidates of IoU 0; here only real boxes are appended. The official parser crops the masks
at the photo's original resolution; here they are cropped from the masks in model-input pixels
(what the dataset's transform gives). When the sampler finds fewer negatives than the slots left
after the foreground quota, the official static sampler's remaining slots go to further
positives (the end of its sorted list) and one slot to the first box; here they go to further
positives drawn at random. With fewer boxes than samples (a reduced proposal count), all boxes
are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fashionkit.modeling.official.heads import BOX_CODING_WEIGHTS, _axis_samples

__all__ = [
    "ANCHOR_EPSILON",
    "MASK_CROP_SIZE",
    "RoISamples",
    "anchor_iou",
    "crop_and_resize_masks",
    "crop_masks_in_rois",
    "encode_anchor_boxes",
    "encode_boxes",
    "label_anchors",
    "mask_targets",
    "match_anchors",
    "match_rois",
    "roi_iou",
    "sample_anchors",
    "sample_rois",
    "xyxy_to_yxyx",
]

#: ``FasterRcnnBoxCoder``'s EPSILON, added to every height and width before dividing.
ANCHOR_EPSILON = 1e-8
#: ``attribute_maskrcnn_parser.mask_crop_size``: ground-truth masks are first cut to this.
MASK_CROP_SIZE = 112
#: ``spatial_transform_ops._EPSILON`` of ``crop_mask_in_target_box``.
_CROP_EPSILON = 1e-8


def xyxy_to_yxyx(boxes: Tensor) -> Tensor:
    """``…×4`` XYXY → the official ``[y1, x1, y2, x2]`` (and back: the swap is its own inverse)."""
    return boxes[..., [1, 0, 3, 2]]


# --------------------------------------------------------------------------- anchors


def anchor_iou(gt: Tensor, anchors: Tensor) -> Tensor:
    """``G×N`` IoU of ``G×4`` ground truth with ``N×4`` anchors (``box_list_ops.iou``: sizes
    without "+1", 0 where the intersection is 0)."""
    y1 = torch.maximum(gt[:, None, 0], anchors[None, :, 0])
    x1 = torch.maximum(gt[:, None, 1], anchors[None, :, 1])
    y2 = torch.minimum(gt[:, None, 2], anchors[None, :, 2])
    x2 = torch.minimum(gt[:, None, 3], anchors[None, :, 3])
    inter = (y2 - y1).clamp(min=0) * (x2 - x1).clamp(min=0)
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    union = area_g[:, None] + area_a[None, :] - inter
    return torch.where(inter == 0, torch.zeros_like(inter), inter / union)


def match_anchors(iou: Tensor, matched_threshold: float = 0.7,
                  unmatched_threshold: float = 0.3) -> Tensor:
    """``N`` int64 match of each anchor from the ``G×N`` IoU: the ground-truth index (≥ 0),
    −1 (negative: IoU below ``unmatched_threshold``) or −2 (ignored: between the thresholds),
    with the official forced match of every ground truth's best anchor."""
    g, n = iou.shape
    if g == 0:
        return torch.full((n,), -1, dtype=torch.int64, device=iou.device)
    best, matches = iou.max(dim=0)
    matches = torch.where(best < unmatched_threshold, torch.full_like(matches, -1), matches)
    between = (best >= unmatched_threshold) & (best < matched_threshold)
    matches = torch.where(between, torch.full_like(matches, -2), matches)
    # Each row's best column; a column several rows pick goes to the lowest row (TF's argmax
    # over the one-hot rows).
    columns = iou.argmax(dim=1)
    forced = torch.full((n,), g, dtype=torch.int64, device=iou.device)
    forced.scatter_reduce_(0, columns, torch.arange(g, device=iou.device), reduce="amin")
    return torch.where(forced < g, forced, matches)


def encode_anchor_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """``FasterRcnnBoxCoder.encode`` without scale factors: ``…×4`` boxes against ``…×4``
    anchors (both ``[y1, x1, y2, x2]``) → ``(ty, tx, th, tw)``."""
    ha = anchors[..., 2] - anchors[..., 0] + ANCHOR_EPSILON
    wa = anchors[..., 3] - anchors[..., 1] + ANCHOR_EPSILON
    yca = anchors[..., 0] + 0.5 * (anchors[..., 2] - anchors[..., 0])
    xca = anchors[..., 1] + 0.5 * (anchors[..., 3] - anchors[..., 1])
    h = boxes[..., 2] - boxes[..., 0] + ANCHOR_EPSILON
    w = boxes[..., 3] - boxes[..., 1] + ANCHOR_EPSILON
    yc = boxes[..., 0] + 0.5 * (boxes[..., 2] - boxes[..., 0])
    xc = boxes[..., 1] + 0.5 * (boxes[..., 3] - boxes[..., 1])
    return torch.stack([(yc - yca) / ha, (xc - xca) / wa, torch.log(h / ha), torch.log(w / wa)],
                       dim=-1)


def sample_anchors(matches: Tensor, batch_size: int = 256, positive_fraction: float = 0.5,
                   generator: torch.Generator | None = None) -> Tensor:
    """``N`` int64 score targets: 1 for the sampled positives (at most ``batch_size ·
    positive_fraction``, drawn at random among ``matches ≥ 0``), 0 for the sampled negatives
    (``batch_size`` minus the positives drawn, at random among ``matches == −1``), −1 for the
    rest (the official non-static ``BalancedPositiveNegativeSampler``)."""
    positive = torch.nonzero(matches >= 0).flatten()
    negative = torch.nonzero(matches == -1).flatten()
    n_pos = min(int(batch_size * positive_fraction), positive.numel())
    positive = positive[_permutation(positive.numel(), generator, matches.device)[:n_pos]]
    n_neg = min(batch_size - n_pos, negative.numel())
    negative = negative[_permutation(negative.numel(), generator, matches.device)[:n_neg]]
    out = torch.full_like(matches, -1)
    out[positive] = 1
    out[negative] = 0
    return out


def label_anchors(anchors: Tensor, gt_boxes: Tensor, *, matched_threshold: float = 0.7,
                  unmatched_threshold: float = 0.3, batch_size: int = 256,
                  positive_fraction: float = 0.5, generator: torch.Generator | None = None
                  ) -> tuple[Tensor, Tensor]:
    """The RPN targets of one image: ``(score_targets N int64 in {1, 0, −1}, box_targets
    N×4)`` for ``N×4`` anchors (all levels, in the head's order) and ``G×4`` ground truth."""
    matches = match_anchors(anchor_iou(gt_boxes, anchors), matched_threshold,
                            unmatched_threshold)
    matched = matches >= 0
    if gt_boxes.shape[0]:
        encoded = encode_anchor_boxes(gt_boxes[matches.clamp(min=0)], anchors)
        box_targets = torch.where(matched[:, None], encoded, torch.zeros_like(encoded))
    else:
        box_targets = anchors.new_zeros(anchors.shape)
    return sample_anchors(matches, batch_size, positive_fraction, generator), box_targets


# --------------------------------------------------------------------------- RoIs


def roi_iou(boxes: Tensor, gt: Tensor) -> Tensor:
    """``N×G`` IoU of ``N×4`` boxes with ``G×4`` ground truth (``box_utils.bbox_overlap``:
    sizes without "+1", 1e-8 added to the union)."""
    y1 = torch.maximum(boxes[:, None, 0], gt[None, :, 0])
    x1 = torch.maximum(boxes[:, None, 1], gt[None, :, 1])
    y2 = torch.minimum(boxes[:, None, 2], gt[None, :, 2])
    x2 = torch.minimum(boxes[:, None, 3], gt[None, :, 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    return inter / (area_b[:, None] + area_g[None, :] - inter + 1e-8)


@dataclass
class RoISamples:
    """The sampled RoIs of one image, in sample order: ``rois`` K×4 ``[y1, x1, y2, x2]``,
    ``gt_boxes`` K×4 (matched ground truth; zero for IoU ≤ 0), ``classes`` K int64 (0 =
    background), ``attributes`` K×A float, ``gt_indices`` K int64 (−1 for IoU ≤ 0, 0 for
    other background) and ``box_targets`` K×4 (weights 10, 10, 5, 5; zero for background)."""

    rois: Tensor
    gt_boxes: Tensor
    classes: Tensor
    attributes: Tensor
    gt_indices: Tensor
    box_targets: Tensor


def match_rois(boxes: Tensor, gt_boxes: Tensor, gt_classes: Tensor, gt_attributes: Tensor,
               fg_iou_thresh: float = 0.5, bg_iou_thresh_hi: float = 0.5,
               bg_iou_thresh_lo: float = 0.0
               ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The official ``box_matching`` and labelling of ``N×4`` boxes against ``G×4`` ground truth
    (``G`` classes int64 1..C−1, ``G×A`` attributes): ``(matched_boxes N×4, classes N,
    attributes N×A, gt_indices N, matched_iou N, positive N bool, negative N bool)``."""
    n, g = boxes.shape[0], gt_boxes.shape[0]
    if g == 0:
        matched_iou = boxes.new_full((n,), -1.0)
        index = torch.zeros(n, dtype=torch.int64, device=boxes.device)
        gt_boxes = boxes.new_zeros((1, 4))
        gt_classes = torch.zeros(1, dtype=torch.int64, device=boxes.device)
        gt_attributes = gt_attributes.new_zeros((1, gt_attributes.shape[1]))
    else:
        matched_iou, index = roi_iou(boxes, gt_boxes).max(dim=1)
    background = matched_iou <= 0.0
    matched_boxes = torch.where(background[:, None], torch.zeros_like(boxes), gt_boxes[index])
    classes = torch.where(background, torch.zeros_like(index), gt_classes[index])
    attributes = torch.where(background[:, None], torch.zeros_like(gt_attributes[index]),
                             gt_attributes[index])
    indices = torch.where(background, torch.full_like(index, -1), index)
    positive = matched_iou > fg_iou_thresh
    negative = (matched_iou >= bg_iou_thresh_lo) & (matched_iou < bg_iou_thresh_hi)
    classes = torch.where(negative, torch.zeros_like(classes), classes)
    indices = torch.where(negative, torch.zeros_like(indices), indices)
    return matched_boxes, classes, attributes, indices, matched_iou, positive, negative


def sample_rois(positive: Tensor, negative: Tensor, ignored: Tensor, num_samples: int = 512,
                fg_fraction: float = 0.25, generator: torch.Generator | None = None) -> Tensor:
    """Indices (ascending, ``min(num_samples, N)`` of them) of the sampled boxes, from ``N``
    bool masks: the official static balanced sampler (module docstring)."""
    n = positive.shape[0]
    k = min(num_samples, n)
    candidate = (positive | negative) & ~ignored
    deficit = k - int(candidate.sum())
    if deficit > 0:
        candidate = candidate | (torch.cumsum((~candidate).to(torch.int64), 0) <= deficit)
    pos = torch.nonzero(candidate & positive).flatten()
    neg = torch.nonzero(candidate & ~positive).flatten()
    device = positive.device
    pos = pos[_permutation(pos.numel(), generator, device)]
    neg = neg[_permutation(neg.numel(), generator, device)]
    n_pos = min(int(k * fg_fraction), pos.numel())
    n_neg = min(k - n_pos, neg.numel())
    extra = k - n_pos - n_neg  # too few negatives: further positives fill the slots
    chosen = torch.cat([pos[: n_pos + extra], neg[:n_neg]])
    return torch.sort(chosen).values


def encode_boxes(boxes: Tensor, anchors: Tensor,
                 weights: tuple[float, float, float, float] | None = BOX_CODING_WEIGHTS
                 ) -> Tensor:
    """The official ``box_utils.encode_boxes``: ``…×4`` boxes against ``…×4`` anchors (both
    ``[y1, x1, y2, x2]``, "+1" sizes) → ``(dy, dx, dh, dw)`` times ``weights``; the inverse of
    :func:`~fashionkit.modeling.official.rpn.decode_boxes`."""
    bh = boxes[..., 2] - boxes[..., 0] + 1.0
    bw = boxes[..., 3] - boxes[..., 1] + 1.0
    ah = anchors[..., 2] - anchors[..., 0] + 1.0
    aw = anchors[..., 3] - anchors[..., 1] + 1.0
    dy = (boxes[..., 0] + 0.5 * bh - (anchors[..., 0] + 0.5 * ah)) / ah
    dx = (boxes[..., 1] + 0.5 * bw - (anchors[..., 1] + 0.5 * aw)) / aw
    dh = torch.log(bh / ah)
    dw = torch.log(bw / aw)
    out = torch.stack([dy, dx, dh, dw], dim=-1)
    if weights:
        out = out * out.new_tensor(weights)
    return out


def assign_and_sample_rois(proposals: Tensor, gt_boxes: Tensor, gt_classes: Tensor,
                           gt_attributes: Tensor, *, num_samples: int = 512,
                           fg_fraction: float = 0.25, fg_iou_thresh: float = 0.5,
                           bg_iou_thresh_hi: float = 0.5, bg_iou_thresh_lo: float = 0.0,
                           generator: torch.Generator | None = None) -> RoISamples:
    """The sampled RoIs of one image and their targets: the ground truth appended to the
    ``R×4`` proposals, matched (:func:`match_rois`), sampled (:func:`sample_rois`), box targets
    encoded (:func:`encode_boxes`)."""
    boxes = torch.cat([proposals, gt_boxes.to(proposals)])
    matched, classes, attributes, indices, iou, positive, negative = match_rois(
        boxes, gt_boxes.to(proposals), gt_classes, gt_attributes, fg_iou_thresh,
        bg_iou_thresh_hi, bg_iou_thresh_lo)
    keep = sample_rois(positive, negative, iou < 0.0, num_samples, fg_fraction, generator)
    rois, matched, classes = boxes[keep], matched[keep], classes[keep]
    targets = encode_boxes(matched, rois)
    targets = torch.where((classes == 0)[:, None], torch.zeros_like(targets), targets)
    return RoISamples(rois=rois, gt_boxes=matched, classes=classes, attributes=attributes[keep],
                      gt_indices=indices[keep], box_targets=targets)


# --------------------------------------------------------------------------- masks


def crop_and_resize_masks(masks: Tensor, boxes: Tensor, size: int = MASK_CROP_SIZE) -> Tensor:
    """``tf.image.crop_and_resize`` (bilinear, extrapolation 0) of ``G×H×W`` masks to ``G×size×
    size``, each in its own ``[y1, x1, y2, x2]`` pixel box, normalised by ``(H, W)`` as the
    official parser normalises it: sample ``i`` of an axis reads image coordinate
    ``y1/H·(H−1) + i·(y2−y1)/H·(H−1)/(size−1)``."""
    g, h, w = masks.shape
    if g == 0:
        return masks.new_zeros((0, size, size), dtype=torch.float32)
    m = masks.float()
    b = boxes.float() / boxes.new_tensor([h, w, h, w]).float()
    steps = torch.arange(size, dtype=torch.float32, device=masks.device)

    def axis(lo: Tensor, hi: Tensor, extent: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        v = lo[:, None] * (extent - 1) + steps[None, :] * ((hi - lo) * (extent - 1) / (size - 1)
                                                           )[:, None]
        inside = (v >= 0) & (v <= extent - 1)
        low = torch.floor(v).clamp(0, extent - 1)
        high = torch.ceil(v).clamp(0, extent - 1)
        return low.long(), high.long(), v - torch.floor(v), inside

    ylo, yhi, ly, yin = axis(b[:, 0], b[:, 2], h)
    xlo, xhi, lx, xin = axis(b[:, 1], b[:, 3], w)
    idx = torch.arange(g, device=masks.device)[:, None, None]

    def at(yi: Tensor, xi: Tensor) -> Tensor:
        return m[idx, yi[:, :, None], xi[:, None, :]]

    top = at(ylo, xlo) + (at(ylo, xhi) - at(ylo, xlo)) * lx[:, None, :]
    bottom = at(yhi, xlo) + (at(yhi, xhi) - at(yhi, xlo)) * lx[:, None, :]
    out = top + (bottom - top) * ly[:, :, None]
    return torch.where(yin[:, :, None] & xin[:, None, :], out, torch.zeros_like(out))


def crop_masks_in_rois(masks: Tensor, boxes: Tensor, rois: Tensor, output_size: int = 28
                       ) -> Tensor:
    """The official ``crop_mask_in_target_box`` (``sample_offset=0.5``): ``M×h×w`` masks that
    fill their ``M×4`` boxes (the :func:`crop_and_resize_masks` crops and their ground-truth
    boxes) sampled in the ``M×4`` RoIs → ``M×S×S``. The masks are padded by 2 zeros; each
    output bin takes one bilinear sample at its centre with the clamping of the official
    RoIAlign. (The official code scales the RoI's y offset by the crop's height and its height
    by the crop's width, and the same for x; the crops are square, so the two agree.)"""
    m_count, h, w = masks.shape
    if m_count == 0:
        return masks.new_zeros((0, output_size, output_size), dtype=torch.float32)
    padded = torch.nn.functional.pad(masks.float(), (2, 2, 2, 2))
    gy1, gx1, gy2, gx2 = boxes.float().unbind(-1)
    by1, bx1, by2, bx2 = rois.float().unbind(-1)
    y = (by1 - gy1) * h / (gy2 - gy1 + _CROP_EPSILON) + 2
    x = (bx1 - gx1) * h / (gx2 - gx1 + _CROP_EPSILON) + 2
    hh = (by2 - by1) * w / (gy2 - gy1 + _CROP_EPSILON)
    ww = (bx2 - bx1) * w / (gx2 - gx1 + _CROP_EPSILON)
    ylo, yhi, wylo, wyhi = _axis_samples(y, hh, output_size, y.new_full((m_count,), h + 3.0))
    xlo, xhi, wxlo, wxhi = _axis_samples(x, ww, output_size, x.new_full((m_count,), w + 3.0))
    idx = torch.arange(m_count, device=masks.device)[:, None, None]

    def at(yi: Tensor, xi: Tensor) -> Tensor:
        return padded[idx, yi[:, :, None], xi[:, None, :]]

    return (at(ylo, xlo) * wylo[:, :, None] * wxlo[:, None, :]
            + at(ylo, xhi) * wylo[:, :, None] * wxhi[:, None, :]
            + at(yhi, xlo) * wyhi[:, :, None] * wxlo[:, None, :]
            + at(yhi, xhi) * wyhi[:, :, None] * wxhi[:, None, :])


def mask_targets(samples: RoISamples, gt_boxes: Tensor, gt_masks: Tensor, max_rois: int = 128,
                 output_size: int = 28) -> tuple[Tensor, Tensor, Tensor]:
    """The mask branch's RoIs of one image: ``(rois M×4, classes M, targets M×S×S)`` for the
    first ``max_rois`` (0: all) foreground samples, the targets cut from ``G×H×W`` masks
    (:func:`crop_and_resize_masks` then :func:`crop_masks_in_rois`)."""
    fg = torch.nonzero(samples.classes > 0).flatten()
    if max_rois:
        fg = fg[:max_rois]
    rois, gt_index = samples.rois[fg], samples.gt_indices[fg]
    crops = crop_and_resize_masks(gt_masks, gt_boxes)
    targets = crop_masks_in_rois(crops[gt_index], gt_boxes[gt_index].to(rois), rois, output_size)
    return rois, samples.classes[fg], targets


def _permutation(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    # Drawn on the CPU: the same stream on any device for a given seed.
    return torch.randperm(n, generator=generator).to(device)
