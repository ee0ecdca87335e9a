"""The evaluator object for training loops and benchmarks: ``reset() / process() / evaluate()``.

It collects predictions image by image and evaluates them against the ground truth of the
images it has seen (so a validation pass over a subset is scored on that subset).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fashionkit.evaluation.attributes import attribute_metrics
from fashionkit.evaluation.coco import coco_ap
from fashionkit.evaluation.fashionpedia_ap import evaluate_fashionpedia
from fashionkit.evaluation.gc_pause import collector_paused
from fashionkit.evaluation.matching import build_units
from fashionkit.evaluation.records import GroundTruth
from fashionkit.evaluation.results import (
    load_ground_truth,
    predictions_to_results,
    results_from_records,
)

__all__ = ["FashionpediaEvaluator", "evaluate_all"]


@collector_paused()
def evaluate_all(
    gt: GroundTruth,
    dt,
    iou_type: str,
    coco: bool = True,
    attributes: bool = True,
    per_class: bool = True,
) -> dict[str, Any]:
    """Every metric of one IoU type as one JSON-ready dict: ``"iou_f1"``, ``"iou"``, ``"f1"``
    (official Fashionpedia keys), ``"per_super_class"``/``"per_category"`` (official
    ``summarize_class`` layout), ``"coco"`` (:data:`~fashionkit.evaluation.coco.COCO_KEYS`) and
    ``"attributes"`` (:meth:`AttributeMetrics.summary`) with ``"per_attribute"``
    (:meth:`AttributeMetrics.per_attribute`, keyed by attribute id, plus its name)."""
    units = build_units(gt, dt, iou_type)  # IoU and F1 matrices, shared by the metrics below
    fp = evaluate_fashionpedia(gt, dt, iou_type, units=units)  # type: ignore[arg-type]
    out: dict[str, Any] = dict(fp.results())
    if per_class:
        out["per_super_class"] = fp.per_super_class()
        out["per_category"] = fp.per_category()
    if coco:
        out["coco"] = coco_ap(gt, dt, iou_type, units=units, fashionpedia=fp) if len(dt) else None
    if attributes:
        am = attribute_metrics(gt, dt, iou_type, units=units)
        out["attributes"] = am.summary()
        out["per_attribute"] = {
            str(aid): {"name": gt.ontology.attribute(aid).name, **vals}
            for aid, vals in am.per_attribute().items()
        }
    return out


class FashionpediaEvaluator:
    """Fashionpedia AP (IoU+F1, IoU only, F1 only), COCO AP and attribute metrics.

    ``ground_truth``: a GT file path, its dict, an ``AnnotationSet`` or a :class:`GroundTruth`.
    ``iou_types``: any of ``"segm"``, ``"bbox"``.
    """

    def __init__(
        self,
        ground_truth: Any,
        iou_types: Sequence[str] = ("segm", "bbox"),
        coco: bool = True,
        attributes: bool = True,
    ):
        self.gt = load_ground_truth(ground_truth)
        for t in iou_types:
            if t not in ("segm", "bbox"):
                raise ValueError(f"unknown iou type {t!r}: use 'segm' or 'bbox'")
        self.iou_types = tuple(iou_types)
        self.coco = coco
        self.attributes = attributes
        self.reset()

    def reset(self) -> None:
        """Forget everything processed so far."""
        self._records: list[dict] = []
        self._image_ids: set[int] = set()

    def process(self, images: Sequence[Any], predictions: Sequence[Any]) -> None:
        """Add one batch. ``images[i]`` is an image id, or a mapping with ``"image_id"`` or
        ``"id"``, or an object with ``.id`` (``ImageInfo``). ``predictions[i]`` is that image's
        output: a mapping of arrays (see :func:`~fashionkit.evaluation.results.predictions_to_results`)
        or a list of result records (their ``image_id`` is set to the image's)."""
        if len(images) != len(predictions):
            raise ValueError(f"{len(images)} images but {len(predictions)} predictions")
        for image, pred in zip(images, predictions, strict=True):
            image_id = _image_id(image)
            self._image_ids.add(image_id)
            if isinstance(pred, Mapping):
                self._records.extend(predictions_to_results(image_id, pred))
            else:
                self._records.extend({**dict(r), "image_id": image_id} for r in pred)

    def evaluate(self) -> dict[str, Any]:
        """``{iou_type: evaluate_all(...)}`` over the processed images."""
        if not self._image_ids:
            raise RuntimeError("nothing processed: call process() before evaluate()")
        gt = self.gt.subset(self._image_ids)
        out = {}
        for t in self.iou_types:
            dt = results_from_records(self._records, gt, iou_type=t, source="predictions")
            out[t] = evaluate_all(
                gt, dt, t, coco=self.coco, attributes=self.attributes, per_class=False
            )
        return out


def _image_id(image: Any) -> int:
    if isinstance(image, Mapping):
        return int(image["image_id"] if "image_id" in image else image["id"])
    if hasattr(image, "id"):
        return int(image.id)
    return int(image)
