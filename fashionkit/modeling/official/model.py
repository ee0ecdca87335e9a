"""``OfficialAttributeMaskRCNN``: the official TensorFlow Attribute-Mask R-CNN of the published
Fashionpedia checkpoints (tensorflow/tpu ``projects/fashionpedia/modeling/model.py``),
assembled from :mod:`.backbone`, :mod:`.fpn`, :mod:`.rpn` and :mod:`.heads`.

It offers the inference interface of :class:`fashionkit.modeling.AttributeMaskRCNN`
(``config``, ``raw_predictions``, ``predict``, ``forward``); training losses are not part of it.

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
from fashionkit.modeling.model import AttributeMaskRCNN
from fashionkit.modeling.official.backbone import OfficialResNet
from fashionkit.modeling.official.fpn import LEVELS, OfficialFPN, build_fpn
from fashionkit.modeling.official.heads import OfficialRoIHeads
from fashionkit.modeling.official.rpn import OfficialRPNHead, anchors_for_level, propose
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
