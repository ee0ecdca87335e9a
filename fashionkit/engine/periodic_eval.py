"""Periodic evaluation during training: detections of the validation batches in the original
images' pixels (:func:`predict_in_photo_pixels`, the mapping the Predictor uses too), scored
with :class:`~fashionkit.evaluation.evaluator.FashionpediaEvaluator` against the validation
annotation set (the same numbers ``fashionkit detect`` + ``fashionkit evaluate`` give)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from fashionkit.data.annotations import AnnotationSet
from fashionkit.structures import Detections

__all__ = ["ValidationEvaluator", "flatten_metrics", "predict_in_photo_pixels"]


def predict_in_photo_pixels(model: Any, images: Sequence[Tensor], targets: Sequence[dict]
                            ) -> list[Detections]:
    """The model's detections for a validation batch, in each original image's pixels: the
    targets' ``orig_size`` ``(H, W)`` and ``scale`` (input pixels per original pixel) say how
    the dataset's transform resized them, and ``model.predict`` pastes the mask probabilities
    straight at the original resolution, as the Predictor does."""
    sizes = [(int(t["orig_size"][0]), int(t["orig_size"][1])) for t in targets]
    return model.predict(images, original_sizes=sizes, scales=[float(t["scale"]) for t in targets])


def flatten_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The few numbers worth a column per epoch, from ``FashionpediaEvaluator.evaluate()``:
    ``segm_AP``/``segm_AP50``/``segm_AP75`` (IoU only, COCO-style), ``segm_AP_iou_f1``,
    ``segm_AP50_iou_f1`` (IoU+F1, the Fashionpedia metric) and the attribute F1 over matched
    detections."""
    segm = result["segm"]
    out = {
        "segm_AP": segm["iou"]["AP"],
        "segm_AP50": segm["iou"]["AP_IOU50"],
        "segm_AP75": segm["iou"]["AP_IOU75"],
        "segm_AP_iou_f1": segm["iou_f1"]["AP"],
        "segm_AP50_iou_f1": segm["iou_f1"]["AP_IOU50_F150"],
    }
    attributes = segm.get("attributes") or {}
    for key in ("attribute_micro_f1", "attribute_macro_f1", "attribute_mAP"):
        if key in attributes:
            out[key] = attributes[key]
    return {k: float(v) for k, v in out.items()}


class ValidationEvaluator:
    """Collects a validation pass's detections, in original-image pixels
    (:func:`predict_in_photo_pixels`), as result records; ``evaluate()`` returns
    :func:`flatten_metrics` of the pass.

    Under DDP each process sees a shard: :meth:`gather` pools the records on every process
    before rank 0 evaluates."""

    def __init__(self, val_set: AnnotationSet):
        from fashionkit.evaluation.evaluator import FashionpediaEvaluator

        self._evaluator = FashionpediaEvaluator(val_set, iou_types=("segm",), coco=False)
        self.reset()

    def reset(self) -> None:
        self._records: dict[int, list[dict]] = {}

    def process(self, targets: Sequence[dict], detections: Sequence[Detections]) -> None:
        for target, det in zip(targets, detections, strict=True):
            image_id = int(target["image_id"])
            size = (int(target["orig_size"][0]), int(target["orig_size"][1]))
            if tuple(det.image_size) != size:
                raise ValueError(f"image id {image_id}: detections refer to a {det.image_size} "
                                 f"image, the original is {size} (H, W): map them with "
                                 "predict_in_photo_pixels")
            self._records[image_id] = det.to_results(image_id)

    def gather(self) -> None:
        import torch.distributed as dist

        parts: list[dict[int, list[dict]] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self._records)
        merged: dict[int, list[dict]] = {}
        for part in parts:
            merged.update(part or {})
        self._records = merged

    def evaluate(self) -> dict[str, float]:
        if not self._records:
            return {}
        ids = sorted(self._records)
        self._evaluator.reset()
        self._evaluator.process(ids, [self._records[i] for i in ids])
        return flatten_metrics(self._evaluator.evaluate())
