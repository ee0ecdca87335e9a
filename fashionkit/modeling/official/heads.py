"""The RoI heads of the official Fashionpedia Attribute-Mask R-CNN (TF ``tensorflow/tpu``), from
the proposals on: RoIAlign, box head with attributes, post-processing, mask head.

What the official code does, and therefore what this module does:

- **RoIAlign** (``multilevel_crop_and_resize``): a RoI of ``[y1, x1, y2, x2]`` model-input
  pixels pools from level ``floor(log2(sqrt(h·w) / 224)) + 4``, clamped to the pyramid's levels
  (non-finite logs, from empty or inverted boxes, go to the lowest level). On that level
  (coordinates divided by ``2**level``, no half-pixel shift) each of the ``S×S`` bins takes ONE
  bilinear sample at its centre. The neighbours are ``y0 = min(max(floor(y), 0), H−1)``,
  ``y1 = min(y0 + 1, H−1)`` and the weights ``y − y0`` / ``1 − (y − y0)`` use the *clamped*
  ``y0``: left of or above the map the sample extrapolates linearly from the first two
  rows/columns, right of or below it it takes the edge value. torchvision's ``roi_align``
  differs (it clamps negative samples to 0, returns 0 beyond −1 and widens RoIs narrower than
  one feature pixel to one), so it is not used.
- **Box head**: 4 × (3×3 conv with bias, BatchNorm, ReLU), flatten, fc 1024 with bias,
  BatchNorm, ReLU; three linear outputs on that 1024-vector: class logits (47, class 0 the
  background), attribute logits (294, one sigmoid each, class-agnostic) and box deltas
  (``47 × [dy, dx, dh, dw]``, weights 10, 10, 5, 5). Every BatchNorm has eps 1e-3 (and, for
  training, the official momentum 0.99).
- **Post-processing** (``GenericDetectionGenerator`` of the Fashionpedia project): softmax over
  the classes, background dropped; each proposal decoded once per class with the legacy
  "+1" box convention (``h = y2 − y1 + 1``, ``y2' = y1' + h' − 1``; ``dh, dw ≤ log(1000/16)``),
  clipped to ``[0, H−1] × [0, W−1]`` of the given image size (the official code passes its
  ``image_info[:, 1]``, which its inference preprocessing, ``resize_and_crop_image``, sets to
  the padded ``S×S`` input, not to the resized photo inside it); per class the top
  ``pre_nms_per_class`` scores, those ``> box_score_thresh``, greedy NMS at
  ``box_nms_thresh``; then the ``box_detections_per_img`` best over all classes (ties: lower
  class, then higher rank first). A detection's attributes are the sigmoid of its proposal's
  attribute logits.
- **Mask head** on the *detections* (not the proposals): RoIAlign 14×14 with the same rule,
  4 × (3×3 conv, BatchNorm, ReLU), 2×2 stride-2 transposed conv, BatchNorm, ReLU, 1×1 conv to
  47 channels; the channel of the detected class, sigmoid: 28×28 probabilities relative to
  the box.

Boxes cross this module's boundary as XYXY (fashionkit's convention); inside, the official
``[y1, x1, y2, x2]`` order is kept where the official arithmetic depends on it (decoding).

Weights come from the TF checkpoint through :func:`tf_to_state_dict` (variable names as the
official graph creates them: ``fast_rcnn_head/conv_0/kernel``,
``fast_rcnn_head/batch_normalization_4/gamma``, ``mask_head/conv5-mask/kernel``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.nms import classwise_nms
from fashionkit.modeling.official.backbone import BATCH_NORM_MOMENTUM
from fashionkit.modeling.official.rpn import clip_boxes, decode_boxes
from fashionkit.modeling.official.tf_weights import (
    VariableMap,
    batch_norm_entries,
    conv_entries,
    convert_variables,
    dense_entries,
    tf_shape,
)
from fashionkit.modeling.roi_heads import RoIPredictions

__all__ = [
    "OfficialRoIHeads",
    "official_roi_align",
    "roi_levels",
    "tf_to_state_dict",
    "tf_variable_names",
]

#: Box coding weights of the official Fast R-CNN head, in its ``[y, x, h, w]`` order.
BOX_CODING_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
#: Official ``postprocess.pre_nms_num_boxes``: candidates per class before NMS.
PRE_NMS_PER_CLASS = 1000
BOX_ROI_SIZE = 7
MASK_ROI_SIZE = 14
CANONICAL_LEVEL = 4
BN_EPS = 1e-3


# --------------------------------------------------------------------------- RoIAlign


def roi_levels(boxes_yxyx: Tensor, min_level: int, max_level: int,
               canonical_scale: float = 224.0) -> Tensor:
    """The pyramid level each ``[y1, x1, y2, x2]`` box pools from, int64, as the official code
    computes it: ``floor(log(sqrt(h·w) / canonical_scale) / log(2)) + 4`` in float32, clamped
    to ``[min_level, max_level]``. A non-finite value (empty or inverted box) becomes
    ``min_level``, as TF's float→int32 cast of ±inf/NaN followed by the clamp gives."""
    b = boxes_yxyx.float()
    h = b[:, 2] - b[:, 0]
    w = b[:, 3] - b[:, 1]
    level = torch.floor(torch.log(torch.sqrt(h * w) / canonical_scale) / math.log(2.0)) \
        + CANONICAL_LEVEL
    level = torch.where(torch.isfinite(level), level, torch.full_like(level, min_level))
    return level.clamp(min_level, max_level).to(torch.int64)


def _axis_samples(start: Tensor, size: Tensor, bins: int, bound: Tensor
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Along one axis, for ``K`` RoIs: the neighbours ``(low, high)`` (int64, ``K×bins``) and
    their weights ``(w_low, w_high)`` of each bin's centre sample, with the official clamping
    (weights from the clamped ``low``, so they extrapolate below 0)."""
    centre = torch.arange(bins, dtype=start.dtype, device=start.device) + 0.5
    v = start[:, None] + centre[None, :] * size[:, None] / bins
    low = torch.floor(v).clamp(min=0)
    low = torch.minimum(low, bound[:, None])
    high = torch.minimum(low + 1, bound[:, None])
    w_high = v - low
    return low.to(torch.int64), high.to(torch.int64), 1.0 - w_high, w_high


def official_roi_align(features: Mapping[int, Tensor], boxes_yxyx: Tensor, batch_index: Tensor,
                       output_size: int, canonical_scale: float = 224.0) -> Tensor:
    """The official ``multilevel_crop_and_resize``: ``K×C×S×S`` features of ``K`` boxes
    (``[y1, x1, y2, x2]`` in model-input pixels, ``K×4`` float; ``batch_index`` ``K`` int64)
    from ``features`` (level → ``N×C×H×W``, level ``l`` of stride ``2**l``). See the module
    docstring for the sampling. The levels must halve exactly from the lowest one (inputs
    padded to a multiple of ``2**max_level``), since the official code derives each level's
    bounds from the lowest level's size."""
    levels = sorted(features)
    lo, hi = levels[0], levels[-1]
    if levels != list(range(lo, hi + 1)):
        raise ValueError(f"feature levels must be consecutive, got {levels}")
    n, c, h_lo, w_lo = features[lo].shape
    for lv in levels:
        f = features[lv]
        k = 2 ** (lv - lo)
        if f.shape[0] != n or f.shape[1] != c or f.shape[2] * k != h_lo or f.shape[3] * k != w_lo:
            raise ValueError(
                f"level {lv} features are {tuple(f.shape)}; with level {lo} at "
                f"{tuple(features[lo].shape)} they must be {(n, c, h_lo / k, w_lo / k)} "
                "(pad the input to a multiple of the largest stride)")
    dtype = features[lo].dtype
    k_boxes = boxes_yxyx.shape[0]
    if k_boxes == 0:
        return features[lo].new_zeros((0, c, output_size, output_size))
    boxes = boxes_yxyx.float()
    level = roi_levels(boxes, lo, hi, canonical_scale)
    scale = torch.pow(2.0, level.float())
    height = (boxes[:, 2] - boxes[:, 0]) / scale
    width = (boxes[:, 3] - boxes[:, 1]) / scale
    y0 = boxes[:, 0] / scale
    x0 = boxes[:, 1] / scale
    shrink = torch.pow(2.0, (level - lo).float())
    bound_y = h_lo / shrink - 1.0
    bound_x = w_lo / shrink - 1.0
    ylo, yhi, wylo, wyhi = _axis_samples(y0, height, output_size, bound_y)
    xlo, xhi, wxlo, wxhi = _axis_samples(x0, width, output_size, bound_x)

    # One table of feature rows (level-major, then image, y, x) read as weighted bags of the
    # four neighbours of each sample.
    tables, offsets, start = [], [], 0
    for lv in levels:
        f = features[lv]
        tables.append(f.permute(0, 2, 3, 1).reshape(-1, c))
        offsets.append(start)
        # Plain ints: under tracing shape entries are tensors, and ``+=`` on the first one
        # would alias every later level's offset to the same value.
        start = start + int(f.shape[0]) * int(f.shape[2]) * int(f.shape[3])
    table = torch.cat(tables)
    level_offset = torch.tensor(offsets, device=boxes.device)[level - lo]
    level_w = torch.tensor([features[lv].shape[3] for lv in levels], device=boxes.device)[level - lo]
    level_hw = torch.tensor([features[lv].shape[2] * features[lv].shape[3] for lv in levels],
                            device=boxes.device)[level - lo]
    base = level_offset + batch_index.to(torch.int64) * level_hw  # K

    def rows(yi: Tensor, xi: Tensor) -> Tensor:  # K×S, K×S -> K×S×S
        return base[:, None, None] + yi[:, :, None] * level_w[:, None, None] + xi[:, None, :]

    index = torch.stack([rows(ylo, xlo), rows(ylo, xhi), rows(yhi, xlo), rows(yhi, xhi)], -1)
    weight = torch.stack([wylo[:, :, None] * wxlo[:, None, :], wylo[:, :, None] * wxhi[:, None, :],
                          wyhi[:, :, None] * wxlo[:, None, :], wyhi[:, :, None] * wxhi[:, None, :]],
                         -1)
    weight = weight.reshape(-1, 4).to(table.dtype)
    if torch.onnx.is_in_onnx_export():  # exported, embedding_bag becomes a Loop over bags
        out = (table[index.reshape(-1, 4)] * weight[:, :, None]).sum(dim=1)
    else:
        out = F.embedding_bag(index.reshape(-1, 4), table, mode="sum", per_sample_weights=weight)
    return out.reshape(k_boxes, output_size, output_size, c).permute(0, 3, 1, 2).to(dtype)


# --------------------------------------------------------------------------- box coding


def _xyxy_to_yxyx(boxes: Tensor) -> Tensor:
    return boxes[:, [1, 0, 3, 2]]


def _order(values: Tensor, dim: int = 0, descending: bool = True) -> Tensor:
    """Indices that sort ``values``; ties keep their order (TF's ``top_k``: lower index first).
    Exported to ONNX the sort is ``TopK``, which has no stable form (ties of float scores
    are the only case where it matters)."""
    if torch.onnx.is_in_onnx_export():
        return torch.sort(values, dim=dim, descending=descending).indices
    return torch.sort(values, dim=dim, descending=descending, stable=True).indices


# --------------------------------------------------------------------------- modules


class _ConvBN(nn.Module):
    """A conv (with bias, as TF's ``tf.layers.conv2d``) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, conv: nn.Module, channels: int):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BATCH_NORM_MOMENTUM)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class OfficialRoIHeads(nn.Module):
    """Box, attribute and mask heads with the official post-processing (module docstring).

    Sizes from ``config``: ``fpn_channels`` in, ``box_head_convs`` × ``fpn_channels`` convs,
    ``representation_size`` fc, ``num_classes`` (with background), ``num_attributes``,
    ``mask_head_convs`` × ``mask_head_channels``; post-processing from ``box_score_thresh``,
    ``box_nms_thresh``, ``box_detections_per_img`` and ``roi_canonical_scale``. Call in eval
    mode (BatchNorm on its moving statistics, as the official inference)."""

    def __init__(self, config: ModelConfig, *, pre_nms_per_class: int = PRE_NMS_PER_CLASS):
        super().__init__()
        self.config = config
        self.pre_nms_per_class = pre_nms_per_class
        c, filters = config.fpn_channels, config.fpn_channels
        self.box_convs = nn.ModuleList(
            _ConvBN(nn.Conv2d(c if i == 0 else filters, filters, 3, padding=1), filters)
            for i in range(config.box_head_convs))
        flat = (filters if config.box_head_convs else c) * BOX_ROI_SIZE ** 2
        self.box_fc = nn.Linear(flat, config.representation_size)
        self.box_fc_bn = nn.BatchNorm1d(config.representation_size, eps=BN_EPS,
                                       momentum=BATCH_NORM_MOMENTUM)
        self.class_logits = nn.Linear(config.representation_size, config.num_classes)
        self.attribute_logits = nn.Linear(config.representation_size, config.num_attributes)
        self.box_deltas = nn.Linear(config.representation_size, 4 * config.num_classes)
        m = config.mask_head_channels
        self.mask_convs = nn.ModuleList(
            _ConvBN(nn.Conv2d(c if i == 0 else m, m, 3, padding=1), m)
            for i in range(config.mask_head_convs))
        m_in = m if config.mask_head_convs else c
        self.mask_deconv = _ConvBN(nn.ConvTranspose2d(m_in, m, 2, stride=2), m)
        self.mask_logits = nn.Conv2d(m, config.num_classes, 1)

    # ------------------------------------------------------------------ stages

    def _pool(self, features: Mapping[int, Tensor], boxes_xyxy: list[Tensor],
              size: int) -> Tensor:
        if len(boxes_xyxy) != next(iter(features.values())).shape[0]:
            raise ValueError(f"{len(boxes_xyxy)} box lists for a batch of "
                             f"{next(iter(features.values())).shape[0]} images")
        device = next(iter(features.values())).device
        boxes = torch.cat([b.reshape(-1, 4).float().to(device) for b in boxes_xyxy])
        batch = torch.cat([torch.full((b.shape[0],), i, dtype=torch.int64, device=device)
                           for i, b in enumerate(boxes_xyxy)])
        return official_roi_align(features, _xyxy_to_yxyx(boxes), batch, size,
                                  float(self.config.roi_canonical_scale))

    def box_outputs(self, features: Mapping[int, Tensor], rois_per_image: list[Tensor]
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """Box-head outputs on the RoIs of every image (XYXY, model-input pixels), in image
        order: ``class_logits`` R×C, ``box_deltas`` R×4C (official layout: class-major,
        ``[dy, dx, dh, dw]``, unweighted), ``attribute_logits`` R×A."""
        x = self._pool(features, rois_per_image, BOX_ROI_SIZE)
        for layer in self.box_convs:
            x = layer(x)
        x = F.relu(self.box_fc_bn(self.box_fc(x.flatten(1))))
        return self.class_logits(x), self.box_deltas(x), self.attribute_logits(x)

    def mask_probs(self, features: Mapping[int, Tensor], boxes_per_image: list[Tensor],
                   labels_per_image: list[Tensor]) -> list[Tensor]:
        """Mask probabilities (R×28×28 per image, relative to each box) of the given boxes
        (XYXY, model-input pixels) for the given classes (1..C−1)."""
        counts = [b.shape[0] for b in boxes_per_image]
        picked = self.class_mask_logits(features, boxes_per_image, labels_per_image)
        return list(torch.sigmoid(picked).split(counts))

    def class_mask_logits(self, features: Mapping[int, Tensor], boxes_per_image: list[Tensor],
                          labels_per_image: list[Tensor]) -> Tensor:
        """The mask logits (R×28×28 over all images, in order) of the given boxes (XYXY,
        model-input pixels), each for its class (1..C−1): what :meth:`mask_probs` takes the
        sigmoid of and the mask loss reads."""
        x = self._pool(features, boxes_per_image, MASK_ROI_SIZE)
        for layer in self.mask_convs:
            x = layer(x)
        logits = self.mask_logits(self.mask_deconv(x))
        labels = torch.cat([lab.reshape(-1).to(torch.int64) for lab in labels_per_image]
                           ).to(logits.device)
        if labels.numel() != logits.shape[0]:
            raise ValueError(f"{labels.numel()} labels for {logits.shape[0]} boxes")
        return logits[torch.arange(logits.shape[0], device=logits.device), labels]

    def postprocess(self, class_logits: Tensor, box_deltas: Tensor, attribute_logits: Tensor,
                    proposals_xyxy: Tensor, valid_size: tuple[int, int]
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One image's detections from its box-head outputs: ``(boxes XYXY, labels 1..C−1,
        scores, attribute probabilities)``, best first, at most ``box_detections_per_img``."""
        cfg = self.config
        num_classes = class_logits.shape[1]
        r = class_logits.shape[0]
        scores = torch.softmax(class_logits.float(), dim=1)[:, 1:]  # R×(C−1)
        deltas = box_deltas.float().reshape(r, num_classes, 4)[:, 1:]
        anchors = _xyxy_to_yxyx(proposals_xyxy.float())[:, None, :]
        boxes = clip_boxes(decode_boxes(deltas, anchors, BOX_CODING_WEIGHTS),
                           float(valid_size[0]), float(valid_size[1]))  # R×(C−1)×4, yxyx
        attributes = torch.sigmoid(attribute_logits.float())

        # Candidates per class: within its top ``pre_nms_per_class`` scores (ties: lower
        # proposal first, as TF's top_k), above the threshold strictly, and not the all-zero
        # box (TF's padded NMS counts a kept box only if a coordinate is > 0).
        order = _order(scores, dim=0)
        rank = torch.empty_like(order)
        rank.scatter_(0, order, torch.arange(r, device=order.device)[:, None].expand_as(order))
        candidate = ((rank < self.pre_nms_per_class) & (scores > cfg.box_score_thresh)
                     & (boxes > 0).any(dim=-1))
        nms_scores = torch.where(candidate, scores, torch.full_like(scores, -1.0)).T
        nms_boxes = boxes.permute(1, 0, 2)[:, :, [1, 0, 3, 2]].contiguous()  # (C−1)×R×4 XYXY
        kept = classwise_nms(nms_boxes, nms_scores, cfg.box_nms_thresh, cfg.box_detections_per_img)
        cls, prop = kept[:, 0], kept[:, 1]
        kept_scores = nms_scores[cls, prop]
        # The official order: classes concatenated (each by decreasing score, ties by rank),
        # then a stable sort by score.
        key = rank[prop, cls].to(torch.float64) + cls.to(torch.float64) * (r + 1)
        by_class = _order(key, descending=False)
        cls, prop, kept_scores = cls[by_class], prop[by_class], kept_scores[by_class]
        best = _order(kept_scores)
        best = best[: cfg.box_detections_per_img]
        cls, prop, kept_scores = cls[best], prop[best], kept_scores[best]
        out_boxes = boxes[prop, cls][:, [1, 0, 3, 2]]
        return out_boxes, cls + 1, kept_scores, attributes[prop]

    def forward(self, features: Mapping[int, Tensor], proposals: list[Tensor],
                valid_sizes: list[tuple[int, int]]) -> list[RoIPredictions]:
        """Detections per image. ``features``: level 3..7 → N×256×H×W; ``proposals``: per image
        R×4 XYXY model-input pixels; ``valid_sizes``: per image the ``(H, W)`` detections are
        clipped to (for parity with the official code: the padded input size, its
        ``image_info[:, 1]``)."""
        if not (len(proposals) == len(valid_sizes)):
            raise ValueError(f"{len(proposals)} proposal lists for {len(valid_sizes)} sizes")
        class_logits, box_deltas, attribute_logits = self.box_outputs(features, proposals)
        counts = [p.shape[0] for p in proposals]
        detections = [
            self.postprocess(cl, bd, al, p.to(cl.device), size)
            for cl, bd, al, p, size in zip(class_logits.split(counts), box_deltas.split(counts),
                                           attribute_logits.split(counts), proposals,
                                           valid_sizes, strict=True)]
        masks = self.mask_probs(features, [d[0] for d in detections], [d[1] for d in detections])
        return [RoIPredictions(boxes=b, labels=lab, scores=s, mask_probs=m[:, None],
                               attribute_scores=a)
                for (b, lab, s, a), m in zip(detections, masks, strict=True)]


# --------------------------------------------------------------------------- TF weights


def tf_variable_map(config: ModelConfig) -> VariableMap:
    """TF variable → (state-dict key, kind). The deconvolution's TF kernel (h, w, out, in) takes
    the convolution's transpose to ConvTranspose2d's (in, out, h, w); ``fc6`` is a dense kernel
    whose rows :func:`tf_to_state_dict` then reorders (see there)."""
    out: VariableMap = {}

    def bn_scope(scope: str, index: int) -> str:
        return f"{scope}/batch_normalization" + (f"_{index}" if index else "")

    for i in range(config.box_head_convs):
        out.update(conv_entries(f"fast_rcnn_head/conv_{i}", f"box_convs.{i}.conv", bias=True))
        out.update(batch_norm_entries(bn_scope("fast_rcnn_head", i), f"box_convs.{i}.bn"))
    out.update(dense_entries("fast_rcnn_head/fc6", "box_fc"))
    out.update(batch_norm_entries(bn_scope("fast_rcnn_head", config.box_head_convs), "box_fc_bn"))
    for key, name in (("class_logits", "class-predict"), ("attribute_logits", "attribute-predict"),
                      ("box_deltas", "box-predict")):
        out.update(dense_entries(f"fast_rcnn_head/{name}", key))
    for i in range(config.mask_head_convs):
        out.update(conv_entries(f"mask_head/mask-conv-l{i}", f"mask_convs.{i}.conv", bias=True))
        out.update(batch_norm_entries(bn_scope("mask_head", i), f"mask_convs.{i}.bn"))
    out.update(conv_entries("mask_head/conv5-mask", "mask_deconv.conv", bias=True))
    out.update(batch_norm_entries(bn_scope("mask_head", config.mask_head_convs),
                                  "mask_deconv.bn"))
    out.update(conv_entries("mask_head/mask_fcn_logits", "mask_logits", bias=True))
    return out


def _shape_model(config: ModelConfig) -> OfficialRoIHeads:
    with torch.device("meta"):
        return OfficialRoIHeads(config)


def tf_variable_shapes(config: ModelConfig | None = None) -> dict[str, tuple[int, ...]]:
    """The TF variables :func:`tf_to_state_dict` consumes, with the shapes TF stores them in."""
    config = config or ModelConfig()
    expected = _shape_model(config).state_dict()
    return {name: tf_shape(tuple(expected[key].shape), kind)
            for name, (key, kind) in tf_variable_map(config).items()}


def tf_variable_names(config: ModelConfig | None = None) -> set[str]:
    """The TF checkpoint variables :func:`tf_to_state_dict` consumes (no optimizer slots)."""
    return set(tf_variable_map(config or ModelConfig()))


def tf_to_state_dict(variables: Mapping[str, np.ndarray], config: ModelConfig | None = None,
                     source: str = "checkpoint") -> dict[str, Tensor]:
    """:class:`OfficialRoIHeads` state dict (keys relative to it) from TF checkpoint variables
    (name → array; other variables are ignored: the caller accounts for them). Raises
    :class:`~fashionkit.errors.InvalidDataError` naming every missing or mis-shaped variable.
    ``config``: the sizes (default: the official 47 classes, 294 attributes, 256/1024 widths).
    BatchNorm's ``num_batches_tracked`` is 0 (TF keeps no such count)."""
    config = config or ModelConfig()
    state = convert_variables(variables, tf_variable_map(config), _shape_model(config), source)
    # TF flattens the RoI features as (y, x, channel), PyTorch as (channel, y, x).
    fc = state["box_fc.weight"]
    channels = fc.shape[1] // BOX_ROI_SIZE ** 2
    state["box_fc.weight"] = (fc.reshape(fc.shape[0], BOX_ROI_SIZE, BOX_ROI_SIZE, channels)
                              .permute(0, 3, 1, 2).reshape(fc.shape[0], -1).contiguous())
    return state
