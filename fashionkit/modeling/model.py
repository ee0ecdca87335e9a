"""``AttributeMaskRCNN``: torchvision's Mask R-CNN parts wired with an attribute head, and
``build_model(config)``.

The model has two explicit calls and no training/eval-dependent return types:

- ``model.losses(images, targets) -> dict[str, Tensor]``: the six terms of the training
  objective (:data:`LOSS_NAMES`; the RoI-head terms under torchvision's names and definitions,
  the attribute loss already multiplied by ``config.attribute_loss_weight``); their sum is what
  training minimises. ``model.losses_with_table4`` also returns the seed paper's Table 4 losses
  (matterport's definitions, :mod:`fashionkit.modeling.losses`), for logging. It samples anchors and RoIs exactly as in training whatever
  ``.training`` is, so in eval mode (BatchNorm on running statistics, nothing updated) it gives
  an honest validation loss; wrap it in ``torch.no_grad()`` for validation.
- ``model.predict(images) -> list[Detections]``: inference (proposal counts of the ``_test``
  settings). Call it in eval mode when the backbone uses BatchNorm.

Parameter names follow torchvision's ``MaskRCNN`` (``backbone.body.*``, ``backbone.fpn.*``,
``rpn.*``, ``roi_heads.*``), so torchvision detection checkpoints load by name; the attribute
head is ``roi_heads.attribute_predictor``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import (
    FastRCNNConvFCHead,
    FastRCNNPredictor,
    TwoMLPHead,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import (
    GeneralizedRCNNTransform,
    _resize_image_and_masks,
    resize_boxes,
)
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from fashionkit.modeling.attribute_head import AttributeHead
from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.photo_pixels import boxes_to_photo, paste_masks
from fashionkit.modeling.roi_align import FPNRoIAlign
from fashionkit.modeling.roi_heads import AttributeRoIHeads, ExplicitRPN, RoIPredictions
from fashionkit.ontology import load_ontology
from fashionkit.structures import Detections

__all__ = ["AttributeMaskRCNN", "build_model", "freeze_backbone_stages", "LOSS_NAMES"]

LOSS_NAMES: tuple[str, ...] = (
    "rpn_class_loss",
    "rpn_bbox_loss",
    "loss_classifier",
    "loss_box_reg",
    "loss_mask",
    "mrcnn_attribute_loss",
)


class InputTransform(GeneralizedRCNNTransform):
    """Normalise, optionally resize (deterministically: the same in training and inference),
    and batch with zero padding to a multiple of ``size_divisible``."""

    def __init__(self, config: ModelConfig):
        super().__init__(config.min_size, config.max_size, list(config.image_mean),
                         list(config.image_std), size_divisible=config.size_divisible)
        self.resize_images = config.resize

    def resize(self, image, target=None):
        if not self.resize_images:
            return image, target
        # torchvision picks a random ``min_size`` in training mode; always using one size keeps
        # the transform independent of ``.training``.
        h, w = image.shape[-2:]
        image, target = _resize_image_and_masks(image, self.min_size[-1], self.max_size, target)
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target


class AttributeMaskRCNN(nn.Module):
    """Attribute-Mask R-CNN. Inputs are lists of float ``3×H×W`` RGB images in [0, 1] (not
    normalised; sizes may differ) and, for :meth:`losses`, target dicts with ``boxes`` (G×4
    XYXY float32, image pixels), ``labels`` (G int64, 1..num_classes-1), ``masks`` (G×H×W
    uint8) and ``attributes`` (G×A float32 multi-hot over contiguous attribute indices)."""

    def __init__(self, config: ModelConfig, transform: InputTransform, backbone: nn.Module,
                 rpn: ExplicitRPN, roi_heads: AttributeRoIHeads):
        super().__init__()
        self.config = config
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    # -- losses ----------------------------------------------------------------------------
    def losses(self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
               ) -> dict[str, Tensor]:
        """The six scalar terms of the objective (keys :data:`LOSS_NAMES`), whatever
        ``.training`` is."""
        return self.losses_with_table4(images, targets)[0]

    def losses_with_table4(self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
                           ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """:meth:`losses` and, from the same sampled RoIs, the Table 4 losses (keys
        :data:`~fashionkit.modeling.losses.TABLE4_LOSS_NAMES`, detached)."""
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        checked = [self._check_target(i, img, t)
                   for i, (img, t) in enumerate(zip(images, targets, strict=True))]
        batch, resized = self.transform(list(images), checked)
        assert resized is not None
        features = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn.losses(batch, features, resized)
        roi_losses, table4 = self.roi_heads.losses(features, proposals, batch.image_sizes,
                                                   resized)
        roi_losses["mrcnn_attribute_loss"] = (
            roi_losses["mrcnn_attribute_loss"] * self.config.attribute_loss_weight
        )
        out = {**rpn_losses, **roi_losses}
        return {name: out[name] for name in LOSS_NAMES}, table4

    def _check_target(self, i: int, image: Tensor, target: dict[str, Tensor]) -> dict[str, Tensor]:
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"image {i}: expected float 3×H×W, got {image.dtype} "
                             f"{tuple(image.shape)}")
        missing = [k for k in ("boxes", "labels", "masks", "attributes") if k not in target]
        if missing:
            raise ValueError(f"target {i}: missing {missing}")
        boxes, labels = target["boxes"], target["labels"]
        n = boxes.shape[0]
        a = self.config.num_attributes
        h, w = image.shape[-2:]
        if boxes.shape != (n, 4) or labels.shape != (n,):
            raise ValueError(f"target {i}: boxes {tuple(boxes.shape)} / labels "
                             f"{tuple(labels.shape)} are not N×4 / N")
        if target["masks"].shape != (n, h, w):
            raise ValueError(f"target {i}: masks {tuple(target['masks'].shape)}, expected "
                             f"({n}, {h}, {w}) like the image")
        if target["attributes"].shape != (n, a):
            raise ValueError(f"target {i}: attributes {tuple(target['attributes'].shape)}, "
                             f"expected ({n}, {a})")
        if n and (int(labels.min()) < 1 or int(labels.max()) >= self.config.num_classes):
            raise ValueError(f"target {i}: labels must be in 1..{self.config.num_classes - 1}")
        if n and bool((boxes[:, 2:] <= boxes[:, :2]).any()):
            raise ValueError(f"target {i}: boxes need x1 > x0 and y1 > y0 (XYXY)")
        return {
            "boxes": boxes.float(),
            "labels": labels.long(),
            "masks": target["masks"],
            "attributes": target["attributes"].float(),
        }

    # -- inference -------------------------------------------------------------------------
    def raw_predictions(self, images: Sequence[Tensor]
                        ) -> tuple[list[tuple[int, int]], list[RoIPredictions]]:
        """The RoI-level predictions before anything is mapped to photo pixels: ``(sizes
        (H, W) the model ran at, one RoIPredictions per image)``. Callers wrap it in
        ``torch.no_grad()`` / ``inference_mode()``; :meth:`predict` and the Predictor map the
        result with :mod:`fashionkit.modeling.photo_pixels`."""
        batch, _ = self.transform(list(images))
        features = self.backbone(batch.tensors)
        proposals = self.rpn.proposals(batch, features)
        raw = self.roi_heads.predict(features, proposals, batch.image_sizes)
        return [(int(size[0]), int(size[1])) for size in batch.image_sizes], raw

    @torch.no_grad()
    def predict(
        self,
        images: Sequence[Tensor],
        *,
        original_sizes: Sequence[tuple[int, int]] | None = None,
        scales: Sequence[float] | None = None,
        attribute_threshold: float | None = None,
    ) -> list[Detections]:
        """Detections per image.

        By default coordinates and masks refer to the input images. With ``original_sizes``
        ((h, w) per image) and ``scales`` (input pixels per original pixel, as the dataset's
        ``orig_size`` and ``scale``), they refer to the original photos instead: boxes are
        divided by the scale and mask probabilities are pasted directly at the original
        resolution (the zero padding is cut off), by :mod:`fashionkit.modeling.photo_pixels`
        as for the Predictor. ``attribute_threshold`` defaults to the config's.
        """
        if self.training and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                 for m in self.modules()):
            warnings.warn("predict() on a model in training mode: BatchNorm normalises with "
                          "batch statistics and updates its running averages; call "
                          "model.eval() first", stacklevel=2)
        threshold = (self.config.attribute_score_threshold if attribute_threshold is None
                     else attribute_threshold)
        input_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        if (original_sizes is None) != (scales is None):
            raise ValueError("pass both original_sizes and scales, or neither")
        if original_sizes is not None and scales is not None and (
                len(original_sizes) != len(images) or len(scales) != len(images)):
            raise ValueError("original_sizes and scales need one entry per image")
        model_sizes, raw = self.raw_predictions(images)

        ontology = load_ontology()
        category_of = torch.tensor([0] + [ontology.label_to_category(k)
                                          for k in range(1, self.config.num_classes)])
        attribute_of = ontology.attribute_ids
        out = []
        for i, r in enumerate(raw):
            out_size, scale = input_sizes[i], 1.0
            if original_sizes is not None and scales is not None:
                out_size = (int(original_sizes[i][0]), int(original_sizes[i][1]))
                scale = float(scales[i])
            boxes = boxes_to_photo(r.boxes, model_sizes[i], input_sizes[i], out_size, scale)
            masks = paste_masks(r.mask_probs, boxes, out_size, self.config.mask_threshold)
            attr = r.attribute_scores
            attribute_ids = []
            for row in attr.cpu():
                idx = torch.where(row >= threshold)[0]
                idx = idx[torch.argsort(row[idx], descending=True, stable=True)]
                attribute_ids.append([attribute_of[j] for j in idx.tolist()]
                                     if len(attribute_of) == attr.shape[1] else idx.tolist())
            out.append(Detections(
                boxes=boxes.cpu(),
                category_ids=category_of[r.labels.cpu()],
                scores=r.scores.cpu(),
                masks=masks.cpu(),
                attribute_scores=attr.cpu(),
                attribute_ids=attribute_ids,
                image_size=out_size,
            ))
        return out

    def forward(self, images: Sequence[Tensor]) -> list[Detections]:
        """Same as :meth:`predict` (losses have their own call, :meth:`losses`)."""
        return self.predict(images)


# -- construction ------------------------------------------------------------------------------
def _norm_layer(kind: str):
    if kind == "frozen_bn":
        return FrozenBatchNorm2d
    if kind == "bn":
        return nn.BatchNorm2d
    return lambda channels: nn.GroupNorm(32, channels)


def freeze_backbone_stages(body: nn.Module, trainable_layers: int) -> None:
    """torchvision's rule (``_resnet_fpn_extractor``): of a ResNet with torchvision's names
    (``conv1``, ``bn1``, ``layer1``..``layer4``), train the top ``trainable_layers`` stages
    (5 = all, the stem included) and exclude the others' parameters from training. Moving
    statistics of BatchNorms in excluded stages still update in training mode, as in
    torchvision."""
    stages = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        stages.append("bn1")
    for name, param in body.named_parameters():
        if all(not name.startswith(s) for s in stages):
            param.requires_grad_(False)


def _build_backbone(config: ModelConfig) -> BackboneWithFPN:
    norm = _norm_layer(config.norm)
    body = getattr(torchvision.models, config.backbone)(weights=None, norm_layer=norm)
    freeze_backbone_stages(body, config.trainable_backbone_layers)
    c5 = config.backbone_out_channels
    return_layers = {f"layer{level - 1}": str(k) for k, level in enumerate(config.fpn_levels)}
    in_channels = [c5 // 2 ** (5 - level) for level in config.fpn_levels]
    fpn_norm = None
    if config.heads == "v2":
        fpn_norm = nn.BatchNorm2d if config.norm != "gn" else norm
    return BackboneWithFPN(body, return_layers, in_channels, config.fpn_channels,
                           extra_blocks=LastLevelMaxPool(), norm_layer=fpn_norm)


def build_model(config: ModelConfig) -> AttributeMaskRCNN:
    """An untrained :class:`AttributeMaskRCNN` for ``config`` (random init everywhere; load
    weights with :func:`fashionkit.modeling.load_weights`), or for ``architecture="official"``
    an :class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN` (same inference
    interface; its weights come from :func:`~fashionkit.modeling.official.convert_tf_checkpoint`)."""
    if config.architecture == "official":
        # Imported here: the official model reuses this module's predict().
        from fashionkit.modeling.official.model import OfficialAttributeMaskRCNN

        return OfficialAttributeMaskRCNN(config)  # type: ignore[return-value]
    backbone = _build_backbone(config)
    channels = config.fpn_channels
    n_levels = len(config.fpn_levels) + 1
    featmap_names = [str(k) for k in range(len(config.fpn_levels))]
    anchors = AnchorGenerator(tuple((s,) for s in config.anchor_sizes),
                              (tuple(config.anchor_aspect_ratios),) * n_levels)
    n_anchors = anchors.num_anchors_per_location()[0]
    v2 = config.heads == "v2"
    head_norm = None
    if v2:
        head_norm = nn.BatchNorm2d if config.norm != "gn" else _norm_layer("gn")
    rpn = ExplicitRPN(
        anchors,
        RPNHead(channels, n_anchors, conv_depth=2 if v2 else 1),
        fg_iou_thresh=config.rpn_fg_iou_thresh,
        bg_iou_thresh=config.rpn_bg_iou_thresh,
        batch_size_per_image=config.rpn_batch_size_per_image,
        positive_fraction=config.rpn_positive_fraction,
        pre_nms_top_n={"training": config.rpn_pre_nms_top_n_train,
                       "testing": config.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": config.rpn_post_nms_top_n_train,
                        "testing": config.rpn_post_nms_top_n_test},
        nms_thresh=config.rpn_nms_thresh,
    )
    box_pool = FPNRoIAlign(featmap_names, output_size=7, sampling_ratio=2,
                           canonical_scale=config.roi_canonical_scale)
    mask_pool = FPNRoIAlign(featmap_names, output_size=14, sampling_ratio=2,
                            canonical_scale=config.roi_canonical_scale)
    rep = config.representation_size
    if v2:
        box_head = FastRCNNConvFCHead((channels, 7, 7), [channels] * config.box_head_convs, [rep],
                                      norm_layer=head_norm)
    else:
        box_head = TwoMLPHead(channels * 7 * 7, rep)
    mask_head = MaskRCNNHeads(channels, [config.mask_head_channels] * config.mask_head_convs, 1,
                              norm_layer=head_norm)
    roi_heads = AttributeRoIHeads(
        box_pool,
        box_head,
        FastRCNNPredictor(rep, config.num_classes),
        config.box_fg_iou_thresh,
        config.box_bg_iou_thresh,
        config.box_batch_size_per_image,
        config.box_positive_fraction,
        None,
        config.box_score_thresh,
        config.box_nms_thresh,
        config.box_detections_per_img,
        mask_roi_pool=mask_pool,
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(config.mask_head_channels, config.mask_head_channels,
                                         config.num_classes),
        attribute_predictor=AttributeHead(rep, config.num_attributes, config.attribute_hidden),
        attribute_loss_kind=config.attribute_loss,
        attribute_loss_normalization=config.attribute_loss_normalization,
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
        mask_rois_per_image=config.mask_rois_per_image,
    )
    return AttributeMaskRCNN(config, InputTransform(config), backbone, rpn, roi_heads)
