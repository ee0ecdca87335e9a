"""``OfficialAttributeMaskRCNN``: the official TensorFlow Attribute-Mask R-CNN of the published
Fashionpedia checkpoints (tensorflow/tpu ``projects/fashionpedia/modeling/model.py``),
assembled from :mod:`.backbone`, :mod:`.fpn`, :mod:`.rpn` and :mod:`.heads`.

It offers the interface of :class:`fashionkit.modeling.AttributeMaskRCNN`: ``config``,
``raw_predictions``, ``predict``, ``forward``, and ``losses`` / ``losses_with_table4`` with the
same target dicts and keys (:data:`~fashionkit.modeling.model.LOSS_NAMES`), each term the
official training loss (:mod:`.losses`) on the official targets (:mod:`.targets`):

=========================  ==============================================================
``rpn_class_loss``         ``RpnScoreLoss``: sigmoid CE of the 256 sampled anchors per image,
                           summed, over ``B · 256``
``rpn_bbox_loss``          ``RpnBoxLoss``: Huber δ = 1/9 over every matched anchor's deltas,
                           mean per level, summed over the levels
``loss_classifier``        ``FastrcnnClassLoss``: softmax CE, mean over the sampled RoIs
``loss_box_reg``           ``FastrcnnBoxLoss``: Huber δ = 1 on the class-specific deltas
                           (weights 10, 10, 5, 5), over 4 × the foreground RoIs
``loss_mask``              ``MaskrcnnLoss``: sigmoid CE on the 28×28 soft targets, mean over
                           the foreground mask RoIs' pixels
``mrcnn_attribute_loss``   ``FastrcnnAttributeLoss``: sigmoid CE, mean over RoIs ×
                           attributes, times ``config.attribute_loss_weight`` (1 officially)
=========================  ==============================================================

As in the official ``model_fn`` in training: the proposals (the ``_train`` counts: 2000 per
level before NMS, 1000 after) do not pass gradients; RoIs are sampled from them plus the ground
truth; the box, class and attribute losses read the box head on the sampled RoIs; the mask
loss the mask head on the first ``mask_rois_per_image`` foreground RoIs. Sampling is the same
whatever ``.training`` is (in eval mode the BatchNorms use their moving statistics): an honest
validation loss. The Table 4 losses come from the same RoIs: class and mask are the official
class and mask losses (matterport's definitions coincide), box is
:func:`fashionkit.modeling.losses.mrcnn_bbox_loss` (smooth-L1 β = 1 averaged over 4 × the
foreground RoIs: the official box loss's value, as Huber δ = 1 is smooth-L1 β = 1). The
``attribute_loss``, ``attribute_loss_normalization`` and focal fields of the config are the
torchvision architecture's; this one always trains with the official attribute loss.

``config.norm``: ``"bn"`` trains the BatchNorms (batch statistics in training mode, the
moving averages updated with the official momentum 0.99), ``"frozen_bn"`` fixes them
(:func:`~fashionkit.modeling.official.backbone.freeze_batch_norms`); ``trainable_backbone_layers``
excludes the lower ResNet stages' parameters from training as torchvision does.

Input: a list of float ``3×H×W`` RGB images in [0, 1], already resized by the ``official``
input transform (:class:`fashionkit.data.transforms.OfficialResize`). The model normalises them
(the official mean and std, per channel, on [0, 1] values) and zero-pads them bottom/right to
a square of the batch's longest side rounded up to ``size_divisible`` (128 = the stride of P7),
as the official ``resize_and_crop_image`` pads the normalised image. Proposals and detections are
clipped to ``S×S``, S the image's long side: the official code clips to ``image_info[:, 1]``,
the desired output size, not to the resized photo inside it (for S a multiple of 128 that is
the padded input).

State-dict layout (the names of converted checkpoints):

- ``backbone.body.*``: the ResNet with torchvision's names (``conv1``, ``bn1``,
  ``layer{1-4}.{block}.conv{1-3}`` / ``bn{1-3}``, ``layer{1-4}.0.downsample.{0,1}``);
- ``backbone.fpn.*``: ``lateral.{3,4,5}``, ``output.{3,4,5}``, ``p6``, ``p7``,
  ``norm.{3..7}``;
- ``rpn.*``: ``conv``, ``norm.{3..7}``, ``cls_logits``, ``bbox_pred``;
- ``roi_heads.*``: :class:`~fashionkit.modeling.official.heads.OfficialRoIHeads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.losses import mrcnn_bbox_loss
from fashionkit.modeling.model import LOSS_NAMES, AttributeMaskRCNN, freeze_backbone_stages
from fashionkit.modeling.official import losses as official_losses
from fashionkit.modeling.official.backbone import OfficialResNet, freeze_batch_norms
from fashionkit.modeling.official.fpn import LEVELS, OfficialFPN, build_fpn
from fashionkit.modeling.official.heads import OfficialRoIHeads
from fashionkit.modeling.official.rpn import OfficialRPNHead, anchors_for_level, propose
from fashionkit.modeling.official.targets import (
    assign_and_sample_rois,
    label_anchors,
    mask_targets,
    xyxy_to_yxyx,
)
from fashionkit.modeling.roi_heads import RoIPredictions

__all__ = ["OfficialAttributeMaskRCNN", "OfficialBackbone", "Preprocessed"]


class OfficialBackbone(nn.Module):
    """ResNet + FPN: a normalised padded ``N×3×H×W`` batch → ``{3..7: N×256×H/2^l×W/2^l}``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.body = OfficialResNet(config.backbone)
        self.fpn: OfficialFPN = build_fpn(config)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        return self.fpn(self.body(x))


class Preprocessed:
    """A batch ready for the network: ``images`` ``N×3×H×W`` normalised and zero-padded,
    ``sizes`` the images' own ``(H, W)`` (before padding), ``clip_sizes`` the ``(H, W)`` that
    boxes are clipped to: the official ``image_info[:, 1]``, the desired square ``S×S``, whose
    side is the long side of an image the ``official`` transform resized."""

    def __init__(self, images: Tensor, sizes: list[tuple[int, int]],
                 clip_sizes: list[tuple[int, int]]):
        self.images = images
        self.sizes = sizes
        self.clip_sizes = clip_sizes


class OfficialAttributeMaskRCNN(nn.Module):
    """The official Attribute-Mask R-CNN (module docstring). Call in eval mode: every
    BatchNorm then uses its moving statistics, as the official inference does."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.architecture != "official":
            raise ValueError(f"OfficialAttributeMaskRCNN needs architecture='official', got "
                             f"{config.architecture!r}")
        self.config = config
        self.backbone = OfficialBackbone(config)
        self.rpn = OfficialRPNHead(config.fpn_channels, len(config.anchor_aspect_ratios))
        self.roi_heads = OfficialRoIHeads(config)
        self.register_buffer("image_mean", torch.tensor(config.image_mean).view(3, 1, 1),
                             persistent=False)
        self.register_buffer("image_std", torch.tensor(config.image_std).view(3, 1, 1),
                             persistent=False)
        freeze_backbone_stages(self.backbone.body, config.trainable_backbone_layers)
        if config.norm == "frozen_bn":
            freeze_batch_norms(self)

    # -- stages (also used by the parity tests) ---------------------------------------------
    def preprocess(self, images: Sequence[Tensor]) -> Preprocessed:
        """Normalise and zero-pad a list of ``3×H×W`` images in [0, 1] into one batch."""
        if not images:
            raise ValueError("no images")
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
                raise ValueError(f"image {i}: expected float 3×H×W, got {image.dtype} "
                                 f"{tuple(image.shape)}")
        div = self.config.size_divisible
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        # A square canvas, as the official resize_and_crop_image pads to S×S: padding only to the
        # photo's own short side would change the anchors, proposals and detections of the
        # canvas below it, all of which the official model keeps.
        height = width = -(-max(max(h, w) for h, w in sizes) // div) * div
        mean, std = self.image_mean, self.image_std
        assert isinstance(mean, Tensor) and isinstance(std, Tensor)
        batch = []
        for image in images:
            image = (image.to(mean) - mean) / std
            batch.append(F.pad(image, (0, width - image.shape[-1], 0, height - image.shape[-2])))
        clip = [(max(h, w), max(h, w)) for h, w in sizes]
        return Preprocessed(torch.stack(batch), sizes, clip)

    def anchors(self, features: Mapping[int, Tensor]) -> dict[int, Tensor]:
        """The anchors of each level ([y1, x1, y2, x2], model-input pixels)."""
        return {
            level: anchors_for_level(level, float(size), self.config.anchor_aspect_ratios,
                                     int(features[level].shape[-2]),
                                     int(features[level].shape[-1]),
                                     device=features[level].device)
            for level, size in zip(LEVELS, self.config.anchor_sizes, strict=True)
        }

    def proposals(self, features: Mapping[int, Tensor], clip_sizes: Sequence[tuple[int, int]]
                  ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image the proposals (``R×4`` [y1, x1, y2, x2], official order) and their
        scores, from the RPN head's outputs on ``features``."""
        scores, deltas = self.rpn(features)
        anchors = self.anchors(features)
        boxes_out, scores_out = [], []
        for i, clip in enumerate(clip_sizes):
            boxes, s = propose({k: v[i] for k, v in scores.items()},
                               {k: v[i] for k, v in deltas.items()}, anchors, clip,
                               pre_nms_top_n=self.config.rpn_pre_nms_top_n_test,
                               post_nms_top_n=self.config.rpn_post_nms_top_n_test,
                               nms_thresh=self.config.rpn_nms_thresh)
            boxes_out.append(boxes)
            scores_out.append(s)
        return boxes_out, scores_out

    # -- losses ------------------------------------------------------------------------------
    def losses(self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
               ) -> dict[str, Tensor]:
        """The six scalar terms of the official objective (keys :data:`LOSS_NAMES`), whatever
        ``.training`` is. ``images``: float ``3×H×W`` in [0, 1] as the ``official`` transform
        gives them; ``targets``: as :class:`~fashionkit.modeling.AttributeMaskRCNN`'s (boxes
        XYXY in the image's pixels, labels 1..C−1, masks G×H×W uint8, attributes G×A)."""
        return self.losses_with_table4(images, targets)[0]

    def losses_with_table4(self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
                           ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """:meth:`losses` and, from the same sampled RoIs, the Table 4 losses (keys
        :data:`~fashionkit.modeling.losses.TABLE4_LOSS_NAMES`, detached)."""
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        checked = [AttributeMaskRCNN._check_target(self, i, img, t)  # type: ignore[arg-type]
                   for i, (img, t) in enumerate(zip(images, targets, strict=True))]
        cfg = self.config
        batch = self.preprocess(images)
        features = self.backbone(batch.images)
        device = batch.images.device
        scores, deltas = self.rpn(features)
        anchors = self.anchors(features)
        n = batch.images.shape[0]
        # Per level B×(H·W·A) logits and B×(H·W·A)×4 deltas, rows in the anchors' order.
        logits = [scores[k].permute(0, 2, 3, 1).reshape(n, -1) for k in LEVELS]
        box_deltas = [deltas[k].permute(0, 2, 3, 1).reshape(n, -1, 4) for k in LEVELS]
        all_anchors = torch.cat([anchors[k] for k in LEVELS])
        per_level = [anchors[k].shape[0] for k in LEVELS]
        gt_boxes = [xyxy_to_yxyx(t["boxes"].to(device)) for t in checked]
        score_targets, box_targets = [], []
        for gt in gt_boxes:
            s, b = label_anchors(all_anchors, gt, matched_threshold=cfg.rpn_fg_iou_thresh,
                                 unmatched_threshold=cfg.rpn_bg_iou_thresh,
                                 batch_size=cfg.rpn_batch_size_per_image,
                                 positive_fraction=cfg.rpn_positive_fraction)
            score_targets.append(s.split(per_level))
            box_targets.append(b.split(per_level))
        levels = range(len(LEVELS))
        rpn_class = official_losses.rpn_score_loss(
            logits, [torch.stack([t[k] for t in score_targets]) for k in levels],
            cfg.rpn_batch_size_per_image)
        rpn_box = official_losses.rpn_box_loss(
            box_deltas, [torch.stack([t[k] for t in box_targets]) for k in levels])

        samples = []
        for i, (t, gt) in enumerate(zip(checked, gt_boxes, strict=True)):
            with torch.no_grad():  # the official stop_gradient on the proposals
                proposals, _ = propose({k: v[i].float() for k, v in scores.items()},
                                       {k: v[i].float() for k, v in deltas.items()}, anchors,
                                       batch.clip_sizes[i],
                                       pre_nms_top_n=cfg.rpn_pre_nms_top_n_train,
                                       post_nms_top_n=cfg.rpn_post_nms_top_n_train,
                                       nms_thresh=cfg.rpn_nms_thresh)
            samples.append(assign_and_sample_rois(
                proposals, gt, t["labels"].to(device), t["attributes"].to(device),
                num_samples=cfg.box_batch_size_per_image, fg_fraction=cfg.box_positive_fraction,
                fg_iou_thresh=cfg.box_fg_iou_thresh, bg_iou_thresh_hi=cfg.box_bg_iou_thresh))
        class_logits, roi_deltas, attribute_logits = self.roi_heads.box_outputs(
            features, [xyxy_to_yxyx(s.rois) for s in samples])
        classes = torch.cat([s.classes for s in samples])
        roi_targets = torch.cat([s.box_targets for s in samples])
        class_loss = official_losses.fast_rcnn_class_loss(class_logits, classes)
        box_loss = official_losses.fast_rcnn_box_loss(roi_deltas, classes, roi_targets)
        attribute_loss = official_losses.attribute_loss(
            attribute_logits, torch.cat([s.attributes for s in samples]))

        masks = [mask_targets(s, gt, t["masks"].to(device), cfg.mask_rois_per_image)
                 for s, gt, t in zip(samples, gt_boxes, checked, strict=True)]
        mask_logits = self.roi_heads.class_mask_logits(
            features, [xyxy_to_yxyx(rois) for rois, _, _ in masks], [c for _, c, _ in masks])
        mask_classes = torch.cat([c for _, c, _ in masks])
        mask_loss = official_losses.mask_loss(mask_logits, torch.cat([m for _, _, m in masks]),
                                              mask_classes)
        out = {
            "rpn_class_loss": rpn_class,
            "rpn_bbox_loss": rpn_box,
            "loss_classifier": class_loss,
            "loss_box_reg": box_loss,
            "loss_mask": mask_loss,
            "mrcnn_attribute_loss": attribute_loss * cfg.attribute_loss_weight,
        }
        table4 = {
            "mrcnn_class_loss": class_loss.detach(),
            "mrcnn_bbox_loss": mrcnn_bbox_loss(roi_deltas.detach().float(), classes,
                                               roi_targets),
            "mrcnn_mask_loss": mask_loss.detach(),
        }
        return {name: out[name] for name in LOSS_NAMES}, table4

    # -- inference ---------------------------------------------------------------------------
    def raw_predictions(self, images: Sequence[Tensor]
                        ) -> tuple[list[tuple[int, int]], list[RoIPredictions]]:
        """``(sizes (H, W) the model ran at — the images' own, as it does not resize —, one
        RoIPredictions per image)``, boxes XYXY in model-input pixels."""
        batch = self.preprocess(images)
        features = self.backbone(batch.images)
        proposals, _ = self.proposals(features, batch.clip_sizes)
        xyxy = [p[:, [1, 0, 3, 2]] for p in proposals]
        raw = self.roi_heads(features, xyxy, batch.clip_sizes)
        return batch.sizes, raw

    predict = AttributeMaskRCNN.predict
    forward = AttributeMaskRCNN.forward
