"""RoI heads with an attribute branch, and an RPN whose mode is an argument, not ``.training``.

Both subclass torchvision's modules and reuse their parts (matching, sampling, box coding,
``fastrcnn_loss``, ``maskrcnn_loss``, ``maskrcnn_inference``). What changes is the entry points:
``losses(...)`` and ``predict(...)`` are separate calls, so that losses can be computed on a
model in eval mode (honest validation loss) without touching ``.training``.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    fastrcnn_loss,
    maskrcnn_inference,
    maskrcnn_loss,
)
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers
from torchvision.ops import boxes as box_ops

from fashionkit.modeling.attribute_head import AttributeHead, attribute_loss, attribute_targets
from fashionkit.modeling.losses import mrcnn_bbox_loss
from fashionkit.modeling.nms import batched_nms_without_branches, classwise_nms

__all__ = ["AttributeRoIHeads", "ExplicitRPN", "RoIPredictions"]

# Which proposal counts the RPN uses. torchvision reads them from ``self.training`` deep inside
# ``filter_proposals``; a context variable lets ``losses`` use the training counts on a model in
# eval mode, and stays correct when several threads share one model.
_SAMPLING_MODE: contextvars.ContextVar[str] = contextvars.ContextVar("rpn_mode", default="testing")


class ExplicitRPN(RegionProposalNetwork):
    """torchvision's RPN with explicit calls: :meth:`losses` and :meth:`proposals`.

    torchvision's RPN returns losses or proposals depending on ``.training`` and picks its
    proposal counts the same way; explicit calls let validation compute losses on a model in
    eval mode. :meth:`filter_proposals` also gives the ONNX export a graph without the
    data-dependent ``If`` that torchvision's ``batched_nms`` exports."""

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n[_SAMPLING_MODE.get()]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n[_SAMPLING_MODE.get()]

    def filter_proposals(self, proposals: Tensor, objectness: Tensor,
                         image_shapes: list[tuple[int, int]],
                         num_anchors_per_level: list[int]) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's; when exported to ONNX, the same steps with the per-level NMS as
        :func:`~fashionkit.modeling.nms.batched_nms_without_branches` (torchvision's
        ``batched_nms`` exports an ``If`` on empty input, which NNCF's quantisation cannot
        read)."""
        if not torch.onnx.is_in_onnx_export():
            return super().filter_proposals(proposals, objectness, image_shapes,
                                            num_anchors_per_level)
        objectness = objectness.detach().reshape(proposals.shape[0], -1)
        levels = torch.cat([torch.full((n,), k, dtype=torch.int64, device=proposals.device)
                            for k, n in enumerate(num_anchors_per_level)])
        levels = levels.reshape(1, -1).expand_as(objectness)
        top_n = self._get_top_n_idx(objectness, num_anchors_per_level)
        batch = torch.arange(proposals.shape[0], device=proposals.device)[:, None]
        objectness, levels, proposals = (objectness[batch, top_n], levels[batch, top_n],
                                         proposals[batch, top_n])
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, shape in zip(proposals, torch.sigmoid(objectness), levels,
                                             image_shapes, strict=True):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            keep = box_ops.remove_small_boxes(boxes, self.min_size)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = torch.where(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms_without_branches(boxes, scores, lvl, self.nms_thresh)
            keep = keep[: self.post_nms_top_n()]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores

    def _run(self, images: ImageList, features: dict[str, Tensor]):
        feats = list(features.values())
        objectness, deltas = self.head(feats)
        anchors = self.anchor_generator(images, feats)
        num_anchors_per_level = [o[0].numel() for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        # Faster R-CNN does not backprop through the proposals.
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes,
                                         num_anchors_per_level)
        return boxes, objectness, deltas, anchors

    def proposals(self, images: ImageList, features: dict[str, Tensor]) -> list[Tensor]:
        """Inference proposals: per image ``P × 4`` XYXY in the batched image's pixels."""
        token = _SAMPLING_MODE.set("testing")
        try:
            return self._run(images, features)[0]
        finally:
            _SAMPLING_MODE.reset(token)

    def losses(
        self, images: ImageList, features: dict[str, Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Training proposals and ``{"rpn_class_loss", "rpn_bbox_loss"}``."""
        token = _SAMPLING_MODE.set("training")
        try:
            boxes, objectness, deltas, anchors = self._run(images, features)
        finally:
            _SAMPLING_MODE.reset(token)
        labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
        regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
        cls_loss, box_loss = self.compute_loss(objectness, deltas, labels, regression_targets)
        return boxes, {"rpn_class_loss": cls_loss, "rpn_bbox_loss": box_loss}


@dataclass
class RoIPredictions:
    """Detections of one image in the (batched) model input frame, before pasting masks.

    ``boxes`` N×4 XYXY float; ``labels`` N int64 contiguous (1..num_classes-1); ``scores`` N;
    ``mask_probs`` N×1×M×M float in [0, 1] (M = 28, relative to the box);
    ``attribute_scores`` N×A sigmoid probabilities.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    mask_probs: Tensor
    attribute_scores: Tensor


class AttributeRoIHeads(RoIHeads):
    """torchvision's box + mask RoI heads with a class-agnostic attribute head on the box
    head's RoI representation (Attribute-Mask R-CNN).

    Extra arguments: ``attribute_predictor`` (an :class:`AttributeHead`), the loss ``kind``,
    its ``normalization`` and focal parameters, and ``mask_rois_per_image`` (at most this many
    positive RoIs per image train the mask branch, drawn at random; 0 = all). All others are
    torchvision's ``RoIHeads``.
    """

    def __init__(self, *args, attribute_predictor: AttributeHead,
                 attribute_loss_kind: Literal["bce", "focal"] = "bce",
                 attribute_loss_normalization: Literal["elements", "rois"] = "elements",
                 focal_alpha: float = 0.25,
                 focal_gamma: float = 2.0, mask_rois_per_image: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask_rois_per_image = mask_rois_per_image
        self.attribute_predictor = attribute_predictor
        self.attribute_loss_kind = attribute_loss_kind
        self.attribute_loss_normalization = attribute_loss_normalization
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    def losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The optimised losses ``loss_classifier``, ``loss_box_reg``, ``loss_mask`` (torchvision's
        definitions) and ``mrcnn_attribute_loss`` (unweighted), and the Table 4 losses
        ``mrcnn_class_loss``, ``mrcnn_bbox_loss``, ``mrcnn_mask_loss`` (matterport's definitions,
        detached; see :mod:`fashionkit.modeling.losses`), on RoIs sampled from ``proposals`` +
        ground truth.

        ``targets[i]`` needs ``boxes`` (G×4 XYXY float), ``labels`` (G int64), ``masks``
        (G×H×W uint8) and ``attributes`` (G×A float multi-hot)."""
        for i, t in enumerate(targets):
            if "attributes" not in t:
                raise ValueError(f"target {i} has no 'attributes' (G×{self.num_attributes})")
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(
            proposals, targets
        )
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        class_loss, box_loss = fastrcnn_loss(class_logits, box_regression, labels,
                                             regression_targets)

        attr_logits = self.attribute_predictor(box_features)
        attr_targets = attribute_targets(labels, matched_idxs, [t["attributes"] for t in targets])
        attr_loss = attribute_loss(attr_logits, attr_targets, self.attribute_loss_kind,
                                   self.attribute_loss_normalization, self.focal_alpha,
                                   self.focal_gamma)

        # The mask branch sees only positive RoIs: when mask_rois_per_image is set, a uniform
        # random subset of at most that many per image (each image's RoIs are then fairly
        # represented; an image with many positives weighs less in the batch mean than it
        # would uncapped).
        mask_proposals, pos_matched_idxs = [], []
        cap = self.mask_rois_per_image
        for props, lab, idx in zip(proposals, labels, matched_idxs, strict=True):
            pos = torch.where(lab > 0)[0]
            if cap and len(pos) > cap:
                pos = pos[torch.randperm(len(pos), device=pos.device)[:cap]]
            mask_proposals.append(props[pos])
            pos_matched_idxs.append(idx[pos])
        mask_logits = self.mask_predictor(
            self.mask_head(self.mask_roi_pool(features, mask_proposals, image_shapes))
        )
        mask_loss = maskrcnn_loss(mask_logits, mask_proposals, [t["masks"] for t in targets],
                                  [t["labels"] for t in targets], pos_matched_idxs)
        objective = {
            "loss_classifier": class_loss,
            "loss_box_reg": box_loss,
            "loss_mask": mask_loss,
            "mrcnn_attribute_loss": attr_loss,
        }
        table4 = {
            "mrcnn_class_loss": class_loss.detach(),
            "mrcnn_bbox_loss": mrcnn_bbox_loss(box_regression.detach(), torch.cat(labels),
                                               torch.cat(regression_targets)),
            "mrcnn_mask_loss": mask_loss.detach(),
        }
        return objective, table4

    @property
    def num_attributes(self) -> int:
        return self.attribute_predictor.logits.out_features

    def predict(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> list[RoIPredictions]:
        """Scored, NMS-filtered detections per image, with mask probabilities and attribute
        scores of the proposal each detection came from."""
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        attr_scores = torch.sigmoid(self.attribute_predictor(box_features).float())
        kept = self._postprocess(class_logits, box_regression, proposals, image_shapes)

        per_image_attr = attr_scores.split([p.shape[0] for p in proposals])
        boxes = [k[0] for k in kept]
        labels = [k[2] for k in kept]
        # When traced for export the graph must hold the mask branch whatever the example
        # input detected (an empty branch would be frozen in); on no RoIs it yields N = 0.
        if torchvision._is_tracing() or sum(b.shape[0] for b in boxes):
            mask_logits = self.mask_predictor(
                self.mask_head(self.mask_roi_pool(features, boxes, image_shapes))
            )
            mask_probs = maskrcnn_inference(mask_logits.float(), labels)
        else:
            mask_probs = [b.new_zeros((0, 1, 28, 28)) for b in boxes]
        return [
            RoIPredictions(
                boxes=b.float(),
                labels=lab,
                scores=s.float(),
                mask_probs=m,
                attribute_scores=attr[src],
            )
            for (b, s, lab, src), m, attr in zip(kept, mask_probs, per_image_attr, strict=True)
        ]

    def _postprocess(self, class_logits, box_regression, proposals, image_shapes):
        """torchvision's ``postprocess_detections`` (score threshold, boxes under 0.01 px
        dropped, NMS per class, the best ``detections_per_img``), also returning for each
        detection the index of the proposal it came from (to attach that proposal's
        attribute scores). The candidates stay a classes × proposals grid for
        :func:`~fashionkit.modeling.nms.classwise_nms` (one cheap NMS op when exported)."""
        per_image = [p.shape[0] for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression.float(), proposals)
        pred_scores = F.softmax(class_logits.float(), -1)
        out = []
        for boxes, scores, shape in zip(pred_boxes.split(per_image), pred_scores.split(per_image),
                                        image_shapes, strict=True):
            # Background column dropped; every (class, proposal) pair is a candidate. (The
            # reshape: decode leaves no proposals as N×4C, not N×C×4.)
            boxes = boxes.reshape(scores.shape[0], scores.shape[1], 4)
            boxes = box_ops.clip_boxes_to_image(boxes, shape)[:, 1:].transpose(0, 1)
            scores = scores[:, 1:].transpose(0, 1)
            candidate = ((scores > self.score_thresh)
                         & (boxes[..., 2] - boxes[..., 0] >= 1e-2)
                         & (boxes[..., 3] - boxes[..., 1] >= 1e-2))
            kept = classwise_nms(boxes, torch.where(candidate, scores, -1.0), self.nms_thresh,
                                 self.detections_per_img)
            order = torch.sort(scores[kept[:, 0], kept[:, 1]], descending=True)[1]
            kept = kept[order[: self.detections_per_img]]
            cls, source = kept[:, 0], kept[:, 1]
            out.append((boxes[cls, source], scores[cls, source], cls + 1, source))
        return out
