"""COCO AP/AR for boxes and masks (pycocotools' ``COCOeval`` definitions).

Computed by the same IoU grouping and matching as Fashionpedia AP
(:mod:`fashionkit.evaluation.matching`), with COCO's matching rule for every category: crowd
regions absorb any number of detections and attributes play no part. The tests compare every
key with pycocotools.

Keys follow detectron2's naming: ``AP`` (IoU .50:.05:.95), ``AP50``, ``AP75``, ``APs``/``APm``/
``APl`` (area < 32², 32²–96², > 96²), ``AR1``/``AR10``/``AR100`` (max detections per image and
category), ``ARs``/``ARm``/``ARl``. Values are fractions in [0, 1]; ``-1`` means no ground truth
to average over. Categories are Fashionpedia ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fashionkit.evaluation.fashionpedia_ap import FashionpediaAP, accumulate
from fashionkit.evaluation.matching import (
    AREA_LABELS,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    Units,
    build_units,
    match_all,
)
from fashionkit.evaluation.records import GroundTruth, ResultsTable
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS

__all__ = ["COCO_KEYS", "coco_ap"]

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")

_NO_ATTRIBUTE_CATEGORIES = np.zeros(0, np.int64)
_ATTRIBUTE_CATEGORIES = np.asarray(ATTRIBUTE_CATEGORY_IDS, np.int64)


def _mean_valid(values: np.ndarray) -> float:
    """pycocotools' ``_summarize``: the mean of the entries that are not ``-1``, else ``-1``."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def coco_ap(
    gt: GroundTruth,
    dt: ResultsTable,
    iou_type: str = "segm",
    per_category: bool = False,
    units: Units | None = None,
    fashionpedia: FashionpediaAP | None = None,
) -> dict[str, Any]:
    """COCO summary metrics (``COCO_KEYS``) of ``dt`` against ``gt``; with ``per_category``, also
    ``"per_category": {category id: AP}`` (IoU .50:.95, all areas, 100 detections).
    ``units``: :func:`~fashionkit.evaluation.matching.build_units` of the same inputs, if
    already computed. ``fashionpedia``: the Fashionpedia AP of the same inputs, if computed: its
    categories without attributes were matched and accumulated by COCO's rule already, so only
    the categories with attributes are matched again."""
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', not {iou_type!r}")
    if units is None:
        units = build_units(gt, dt, iou_type)
    redo = None if fashionpedia is None else _ATTRIBUTE_CATEGORIES
    matches = match_all(units, gt, dt, _NO_ATTRIBUTE_CATEGORIES, categories=redo)
    precision, recall = accumulate(
        units, gt, dt, matches, _NO_ATTRIBUTE_CATEGORIES, categories=redo
    )
    # COCO's thresholds are the first ten (the last, -1, is Fashionpedia's "IoU ignored");
    # COCO matching fills only the "F1 ignored" slot.
    n_t = len(IOU_THRESHOLDS) - 1
    p = precision[:n_t, -1]  # (T, R, K, A, M)
    r = recall[:n_t, -1]  # (T, K, A, M)
    if fashionpedia is not None:
        keep = np.ones(p.shape[2], dtype=bool)
        keep[_ATTRIBUTE_CATEGORIES] = False
        p[:, :, keep] = fashionpedia.precision[:n_t, -1][:, :, keep]
        r[:, keep] = fashionpedia.recall[:n_t, -1][:, keep]
    a_all, m_100 = AREA_LABELS.index("all"), MAX_DETECTIONS.index(100)
    t50 = int(np.flatnonzero(IOU_THRESHOLDS == 0.5)[0])
    t75 = int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])
    stats = [
        _mean_valid(p[..., a_all, m_100]),
        _mean_valid(p[t50, ..., a_all, m_100]),
        _mean_valid(p[t75, ..., a_all, m_100]),
        *(_mean_valid(p[..., AREA_LABELS.index(a), m_100]) for a in ("small", "medium", "large")),
        *(_mean_valid(r[..., a_all, MAX_DETECTIONS.index(m)]) for m in MAX_DETECTIONS),
        *(_mean_valid(r[..., AREA_LABELS.index(a), m_100]) for a in ("small", "medium", "large")),
    ]
    out: dict[str, Any] = dict(zip(COCO_KEYS, stats, strict=True))
    if per_category:
        cats = [c.id for c in gt.ontology.categories]
        out["per_category"] = {int(c): _mean_valid(p[:, :, c, a_all, m_100]) for c in cats}
    return out
