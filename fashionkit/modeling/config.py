"""``ModelConfig``: every architectural choice of the Attribute-Mask R-CNN, as one frozen dataclass.

A config is plain data: :meth:`ModelConfig.to_dict` gives YAML/JSON-ready builtins (lists, not
tuples) and :meth:`ModelConfig.from_dict` reads them back, rejecting unknown keys. ``PRESETS``
holds the named designs; :func:`model_config_from_preset` applies overrides to one of them.

Presets:

- ``paper``: the seed paper — ResNet-101-FPN (P2–P6), v1 heads, 1024×1024 inputs that the
  dataset already resized (longest side, bilinear) and zero-padded, so the model does not resize.
- ``fashionpedia-r50`` / ``fashionpedia-r101``: Fashionpedia's Attribute-Mask R-CNN — FPN
  P2–P6, a 4-conv + 1-fc box head and a 4-conv mask head with normalisation (torchvision's v2
  heads), 294-way sigmoid attribute head; 1024×1024 inputs.
- ``official-r50`` / ``official-r101``: the official TensorFlow Attribute-Mask R-CNN that the
  published Fashionpedia checkpoints were trained with (``architecture="official"``,
  :mod:`fashionkit.modeling.official`): ResNet with BatchNorm (eps 1e-3) and TensorFlow's
  'SAME' padding, FPN P3–P7 with BatchNorm, an RPN head with one BatchNorm per level, anchors
  of 3 strides side with aspect ratios (1, 2, 0.5), 1000 proposals per level before and 1000
  in all after NMS at 0.7, 4-conv + 1-fc box head and 4-conv mask head with BatchNorm;
  inputs normalised by the model and zero-padded to a multiple of 128 (the official
  resize of the long side is the ``official`` input transform of
  :class:`fashionkit.data.input_recipe.DataConfig`). Converted checkpoints
  (:func:`fashionkit.modeling.official.convert_tf_checkpoint`) carry these configs.
- ``cpu-tiny``: the design that learns fastest on 2 CPU cores: ResNet-18 with plain BatchNorm
  trained from scratch, a 64-channel FPN on P2–P6 with anchors 8–128, 600/200 proposals
  before/after NMS, 128 sampled RoIs per image with half of them positive, a 256-wide two-fc
  box head and a 2-conv 64-wide mask head trained on at most 16 positive RoIs per image, RoIs
  assigned to FPN levels for 160 px inputs (``roi_canonical_scale=56``), the attribute loss
  averaged over RoIs.
  The sizes were chosen by timing training steps (``tests/modeling/profile_step.py``) and by
  held-out mask AP50 after short training runs on the synthetic world
  (``benchmarks/learning_synth.py``; figures in ``benchmarks/RESULTS.md``): the mask head on
  every positive RoI costs as much as the backbone, so it is narrow and capped per image;
  P2–P6 with 8 px anchors finds small parts and shoes; a 64-wide FPN and mask head learn as
  well as 128-wide ones at equal steps.

The ``frozen_bn`` presets (paper, fashionpedia-*) expect pretrained weights
(:func:`fashionkit.modeling.load_weights`: a COCO Mask R-CNN or ImageNet backbone file): frozen
BatchNorm at its initial statistics does not normalise, so a deep ResNet trained from scratch
with it diverges. To train those from scratch, override ``norm="gn"`` (or ``"bn"``) and
``trainable_backbone_layers=5``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from fashionkit import config_io as dataclass_io

__all__ = ["ModelConfig", "PRESETS", "model_config_from_preset"]

Architecture = Literal["torchvision", "official"]
Backbone = Literal["resnet18", "resnet34", "resnet50", "resnet101"]
Heads = Literal["v1", "v2"]
Norm = Literal["frozen_bn", "bn", "gn"]
AttributeLoss = Literal["bce", "focal"]
AttributeNormalization = Literal["elements", "rois"]

_RESNET_CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an Attribute-Mask R-CNN (torchvision ``MaskRCNN`` + attribute head).

    ``architecture``: ``torchvision`` (:class:`fashionkit.modeling.AttributeMaskRCNN`, the
    fields below as documented) or ``official`` (:class:`fashionkit.modeling.official.
    OfficialAttributeMaskRCNN`, the TensorFlow model of the published checkpoints: it needs
    ``fpn_levels=(3, 4, 5)`` — FPN P3–P7 —, one anchor size per level P3..P7 and ``norm``
    ``"bn"`` (its BatchNorms, eps 1e-3, trained) or ``"frozen_bn"`` (every BatchNorm on its
    moving statistics, scale and offset fixed: for fine-tuning with small batches);
    ``trainable_backbone_layers`` applies to its ResNet as to torchvision's; ``heads`` and
    ``resize`` do not apply to it, and of the training fields it reads the RPN and RoI
    sampling ones, ``rpn_pre/post_nms_top_n_train`` and ``mask_rois_per_image``).

    Backbone and FPN
        ``backbone``: a torchvision ResNet. ``norm``: ``frozen_bn`` for pretrained backbones
        (torchvision's default), ``bn`` or ``gn`` (GroupNorm, 32 groups) for training from
        scratch. ``trainable_backbone_layers``: 0..5 ResNet stages trained, counted from the
        top (5 = all, including the stem). ``fpn_levels``: which ResNet outputs C2..C5 feed the
        FPN; the FPN adds one max-pooled level above the highest, so ``(2, 3, 4, 5)`` gives
        P2–P6. ``fpn_channels``: FPN width (256 in the paper).
    Heads
        ``heads``: ``v1`` (torchvision ``maskrcnn_resnet50_fpn``: two-fc box head, plain conv
        mask head) or ``v2`` (``maskrcnn_resnet50_fpn_v2``: conv+fc box head with BatchNorm,
        BatchNorm in the mask head and FPN, 2-conv RPN head). ``box_head_convs`` only applies
        to v2. ``representation_size``: box head fc width, which is also the input of the
        attribute head. ``mask_head_convs`` × ``mask_head_channels``: the mask head's convs.
    Input
        ``resize``: whether the model's own transform resizes (shorter side ``min_size``,
        longer side at most ``max_size``, bilinear). False when the dataset already resized
        (and padded) the images, as in the paper pipeline. Images are always normalised with
        ``image_mean`` / ``image_std`` (inputs are RGB in [0, 1]) and batched with padding to a
        multiple of ``size_divisible``.
    RPN and RoI sampling
        torchvision's names, split into ``_train`` (used by ``losses``) and ``_test`` (used by
        ``predict``). ``anchor_sizes``: one size per FPN level (len(fpn_levels) + 1).
        ``roi_canonical_scale``: the FPN paper's level rule — a RoI of side ``s`` pools from
        level ``4 + log2(s / roi_canonical_scale)`` (clamped to the RoI levels). 224 suits
        ~800–1024 px inputs; for small inputs scale it down with the image, or every RoI pools
        from the finest level.
    Attributes
        ``num_attributes`` sigmoid outputs (class-agnostic) on the box head's RoI
        representation; ``attribute_hidden``: widths of hidden fc layers before the output
        (empty: one linear layer, as in Fashionpedia). ``attribute_loss``: ``bce`` or ``focal``
        (``focal_alpha``, ``focal_gamma``); ``attribute_loss_normalization``: ``elements``
        (mean over RoIs × attributes) or ``rois`` (sum over attributes, mean over RoIs).
        ``attribute_score_threshold``: attributes scored at least this are listed in
        predictions (0.05 as in Fashionpedia).
    """

    architecture: Architecture = "torchvision"
    # backbone and FPN
    backbone: Backbone = "resnet50"
    norm: Norm = "frozen_bn"
    trainable_backbone_layers: int = 3
    fpn_levels: tuple[int, ...] = (2, 3, 4, 5)
    fpn_channels: int = 256
    # heads
    heads: Heads = "v1"
    num_classes: int = 47
    num_attributes: int = 294
    representation_size: int = 1024
    box_head_convs: int = 4
    mask_head_convs: int = 4
    mask_head_channels: int = 256
    mask_threshold: float = 0.5
    # input
    resize: bool = False
    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # RPN
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    anchor_aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    # RoI heads
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    roi_canonical_scale: int = 224
    mask_rois_per_image: int = 0
    # attributes
    attribute_hidden: tuple[int, ...] = ()
    attribute_loss: AttributeLoss = "bce"
    attribute_loss_normalization: AttributeNormalization = "elements"
    attribute_loss_weight: float = 1.0
    attribute_score_threshold: float = 0.05
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # free text, kept in checkpoints
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for name in ("architecture", "backbone", "norm", "heads", "attribute_loss",
                     "attribute_loss_normalization"):
            allowed = typing.get_args(typing.get_type_hints(ModelConfig)[name])
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} (allowed: {', '.join(allowed)})")
        if not 0 <= self.trainable_backbone_layers <= 5:
            problems.append(f"trainable_backbone_layers={self.trainable_backbone_layers} (0..5)")
        levels = tuple(self.fpn_levels)
        if not levels or sorted(set(levels)) != list(levels) or not set(levels) <= {2, 3, 4, 5}:
            problems.append(f"fpn_levels={levels} (increasing, from 2..5)")
        if self.architecture == "official":
            if (levels != (3, 4, 5) or len(self.anchor_sizes) != 5
                    or self.norm not in ("bn", "frozen_bn")):
                problems.append(
                    f"architecture='official' needs fpn_levels=(3, 4, 5) (P3–P7), 5 anchor sizes "
                    f"and norm='bn' or 'frozen_bn'; got fpn_levels={levels}, "
                    f"{len(self.anchor_sizes)} sizes, norm={self.norm!r}")
            if self.backbone not in ("resnet50", "resnet101"):
                problems.append(f"architecture='official' has ResNet-50 or -101, not "
                                f"{self.backbone!r}")
        elif len(self.anchor_sizes) != len(levels) + 1:
            problems.append(
                f"anchor_sizes has {len(self.anchor_sizes)} sizes for {len(levels) + 1} FPN "
                f"levels (fpn_levels={levels} plus the pooled level)"
            )
        if self.norm == "gn" and (self.fpn_channels % 32 or self.mask_head_channels % 32):
            problems.append("norm='gn' needs fpn_channels and mask_head_channels divisible by 32")
        if self.num_classes < 2 or self.num_attributes < 1:
            problems.append("num_classes must be ≥ 2 (with background), num_attributes ≥ 1")
        for name in ("attribute_score_threshold", "mask_threshold", "box_score_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)} (0..1)")
        if self.mask_rois_per_image < 0:
            problems.append(f"mask_rois_per_image={self.mask_rois_per_image} (≥ 0; 0 = all)")
        if self.roi_canonical_scale < 1:
            problems.append(f"roi_canonical_scale={self.roi_canonical_scale} (≥ 1)")
        if self.attribute_loss_weight < 0:
            problems.append(f"attribute_loss_weight={self.attribute_loss_weight} (≥ 0)")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @property
    def backbone_out_channels(self) -> int:
        """Channels of the backbone's last stage (C5)."""
        return _RESNET_CHANNELS[self.backbone]

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (values coerced as in :meth:`from_dict`)."""
        data = self.to_dict()
        data.update(changes)
        return ModelConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Builtins only (tuples become lists), for YAML, JSON and ``weights_only`` checkpoints."""
        return dataclass_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys and wrongly typed values are errors."""
        return dataclass_io.from_dict(cls, data, "model config")


_PAPER = ModelConfig(
    backbone="resnet101",
    norm="frozen_bn",
    heads="v1",
    resize=False,
    min_size=1024,
    max_size=1024,
)

_FASHIONPEDIA_R50 = ModelConfig(
    backbone="resnet50",
    norm="frozen_bn",
    heads="v2",
    resize=False,
    min_size=1024,
    max_size=1024,
    rpn_post_nms_top_n_train=2000,
    rpn_post_nms_top_n_test=1000,
)

# The official config (projects/fashionpedia/configs/model_config.py of tensorflow/tpu):
# anchor_size 3 × stride 2**level on P3..P7, aspect ratios (w/h) in its order 1, 2, 0.5; test
# proposals 1000 per level before NMS, 1000 in all after; postprocess score 0.05, NMS 0.5,
# 100 detections; box head 4 convs + fc 1024, mask head 4 convs of 256 (28×28 masks).
_OFFICIAL_R50 = ModelConfig(
    architecture="official",
    backbone="resnet50",
    norm="bn",
    trainable_backbone_layers=5,
    fpn_levels=(3, 4, 5),
    fpn_channels=256,
    heads="v2",
    num_classes=47,
    num_attributes=294,
    representation_size=1024,
    box_head_convs=4,
    mask_head_convs=4,
    mask_head_channels=256,
    resize=False,
    min_size=1024,
    max_size=1024,
    size_divisible=128,
    image_mean=(0.485, 0.456, 0.406),
    image_std=(0.229, 0.224, 0.225),
    anchor_sizes=(24, 48, 96, 192, 384),
    anchor_aspect_ratios=(1.0, 2.0, 0.5),
    rpn_pre_nms_top_n_train=2000,
    rpn_pre_nms_top_n_test=1000,
    rpn_post_nms_top_n_train=1000,
    rpn_post_nms_top_n_test=1000,
    rpn_nms_thresh=0.7,
    box_batch_size_per_image=512,
    box_positive_fraction=0.25,
    box_score_thresh=0.05,
    box_nms_thresh=0.5,
    box_detections_per_img=100,
    roi_canonical_scale=224,
    mask_rois_per_image=128,
)

PRESETS: dict[str, ModelConfig] = {
    "paper": _PAPER,
    "fashionpedia-r50": _FASHIONPEDIA_R50,
    "fashionpedia-r101": dataclasses.replace(_FASHIONPEDIA_R50, backbone="resnet101"),
    "official-r50": _OFFICIAL_R50,
    "official-r101": dataclasses.replace(_OFFICIAL_R50, backbone="resnet101"),
    # Chosen by profiling on the project's 2-core CPU (see the module docstring).
    "cpu-tiny": ModelConfig(
        backbone="resnet18",
        norm="bn",
        trainable_backbone_layers=5,
        fpn_levels=(2, 3, 4, 5),
        fpn_channels=64,
        heads="v1",
        representation_size=256,
        mask_head_convs=2,
        mask_head_channels=64,
        resize=False,
        min_size=160,
        max_size=160,
        anchor_sizes=(8, 16, 32, 64, 128),
        rpn_pre_nms_top_n_train=600,
        rpn_pre_nms_top_n_test=600,
        rpn_post_nms_top_n_train=200,
        rpn_post_nms_top_n_test=200,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=128,
        box_positive_fraction=0.5,
        roi_canonical_scale=56,
        mask_rois_per_image=16,
        attribute_loss_normalization="rois",
        box_detections_per_img=100,
    ),
}


def model_config_from_preset(name: str, **overrides: Any) -> ModelConfig:
    """``PRESETS[name]`` with ``overrides`` (config field names) applied and checked."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}") from None
    return base.replace(**overrides) if overrides else base
