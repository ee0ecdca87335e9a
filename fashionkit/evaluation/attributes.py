"""Attribute metrics over matched detections: what the wardrobe needs to trust an attribute.

Detections with ``score >= score_threshold`` are matched to ground truth of their category
(COCO greedy by score, IoU ≥ ``iou_threshold``, crowd regions never matched). Over the matched
pairs of categories that carry attributes, each attribute is scored as a binary classifier:

* predicted when its attribute score is ≥ ``attribute_threshold`` (results with
  ``attribute_scores``) or when listed in ``attribute_ids`` (results without);
* precision, recall, F1 per attribute (``nan`` where undefined), their macro average over the
  attributes present in the matched ground truth, and the micro average;
* AP per attribute ranks the matched pairs by the attribute's score (scikit-learn's
  ``average_precision_score`` definition: Σ (Rₙ − Rₙ₋₁) Pₙ over distinct scores); attribute mAP
  averages it over the attributes present. Without attribute scores, the 0/1 prediction is the
  score.

Ground truth that no detection matched does not count: localisation is the AP metrics' job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashionkit.evaluation.matching import Units, build_units
from fashionkit.evaluation.records import GroundTruth, ResultsTable
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS

__all__ = ["AttributeMetrics", "attribute_metrics", "average_precision", "unpack_attributes"]


def unpack_attributes(bits: np.ndarray, num_attributes: int) -> np.ndarray:
    """``(N, W) uint64`` bit sets → ``(N, num_attributes) bool`` multi-hot rows."""
    if len(bits) == 0:
        return np.zeros((0, num_attributes), dtype=bool)
    as_bytes = np.ascontiguousarray(bits).astype("<u8").view(np.uint8).reshape(len(bits), -1)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :num_attributes].astype(bool)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP of a ranking (scikit-learn's ``average_precision_score`` for one binary column):
    ``labels (M,)`` bool, ``scores (M,)`` float. ``nan`` without positives."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    y = labels[order]
    s = np.asarray(scores, dtype=np.float64)[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie].astype(np.float64)
    precision = tps / (last_of_tie + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass
class AttributeMetrics:
    """Per-attribute results, arrays over the ontology's attributes in id order (``(A,)``).

    ``support``: matched ground truth carrying the attribute; ``predicted``: matched detections
    predicting it; ``true_positives``: both. ``precision``/``recall``/``f1``/``ap`` are ``nan``
    where undefined. ``num_matched``: matched pairs in attribute-carrying categories.
    """

    attribute_ids: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    true_positives: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    ap: np.ndarray
    num_matched: int

    def summary(self) -> dict[str, float]:
        present = self.support > 0

        def mean(x: np.ndarray) -> float:
            x = np.where(np.isnan(x), 0.0, x)[present]
            return float(x.mean()) if x.size else float("nan")

        tp, pred, sup = self.true_positives.sum(), self.predicted.sum(), self.support.sum()
        micro_p = tp / pred if pred else float("nan")
        micro_r = tp / sup if sup else float("nan")
        micro_f1 = 2 * tp / (pred + sup) if pred + sup else float("nan")
        ap = self.ap[present]
        return {
            "attribute_mAP": float(ap.mean()) if ap.size else float("nan"),
            "attribute_macro_precision": mean(self.precision),
            "attribute_macro_recall": mean(self.recall),
            "attribute_macro_f1": mean(self.f1),
            "attribute_micro_precision": float(micro_p),
            "attribute_micro_recall": float(micro_r),
            "attribute_micro_f1": float(micro_f1),
            "matched_detections": float(self.num_matched),
        }

    def per_attribute(self) -> dict[int, dict[str, float]]:
        """``{attribute id: {"support", "precision", "recall", "f1", "ap"}}`` for attributes
        that occur in the matched ground truth or the predictions."""
        out = {}
        for i, aid in enumerate(self.attribute_ids):
            if self.support[i] or self.predicted[i]:
                out[int(aid)] = {
                    "support": int(self.support[i]),
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "ap": float(self.ap[i]),
                }
        return out


def _greedy_pairs(
    units, iou_threshold: float, gt: GroundTruth, dt_scores: np.ndarray, score_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching at one IoU threshold of the detections scoring at least
    ``score_threshold`` → (kept-detection positions, gt indices)."""
    crowd = gt.iscrowd[units.gt_sel]
    confident = dt_scores[units.dt_keep] >= score_threshold
    attr_units = np.flatnonzero(
        np.isin(units.category, ATTRIBUTE_CATEGORY_IDS)
        & (units.dt_count > 0)
        & (units.gt_count > 0)
    )
    d_out, g_out = [], []
    for u in attr_units:
        dc, gc = int(units.dt_count[u]), int(units.gt_count[u])
        iou = (
            units.ious[units.pair_offset[u] : units.pair_offset[u] + dc * gc].reshape(dc, gc).copy()
        )
        gs = units.gt_start[u]
        iou[:, crowd[gs : gs + gc]] = -1.0
        ds = units.dt_start[u]
        for d in range(dc):  # detections are already in score order
            if not confident[ds + d]:
                break
            g = int(np.argmax(iou[d]))
            if iou[d, g] >= iou_threshold:
                d_out.append(units.dt_start[u] + d)
                g_out.append(gs + g)
                iou[:, g] = -1.0
    return np.asarray(d_out, dtype=np.int64), np.asarray(g_out, dtype=np.int64)


def attribute_metrics(
    gt: GroundTruth,
    dt: ResultsTable,
    iou_type: str = "segm",
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    attribute_threshold: float = 0.5,
    units: Units | None = None,
) -> AttributeMetrics:
    """Per-attribute precision/recall/F1/AP over detections matched to ground truth.

    ``units``: the :func:`~fashionkit.evaluation.matching.build_units` of ``gt``/``dt`` for
    ``iou_type`` when already computed (the Fashionpedia AP computes them)."""
    num_attributes = gt.ontology.num_attributes
    sub = dt
    if units is None:
        units = build_units(gt, dt, iou_type)
    d_pos, g_pos = _greedy_pairs(units, iou_threshold, gt, dt.scores, score_threshold)
    d_idx = units.dt_keep[d_pos]
    g_idx = units.gt_sel[g_pos]
    truth = unpack_attributes(gt.attributes[g_idx], num_attributes)
    if sub.attr_scores is not None:
        scores = np.zeros((len(d_idx), num_attributes))
        for row, k in enumerate(d_idx):
            lo, hi = sub.attr_offsets[k], sub.attr_offsets[k + 1]
            scores[row, sub.attr_index[lo:hi]] = sub.attr_scores[lo:hi]
        pred = scores >= attribute_threshold
    else:
        pred = unpack_attributes(sub.attributes[d_idx], num_attributes)
        scores = pred.astype(np.float64)
    tp = (pred & truth).sum(0)
    n_pred = pred.sum(0)
    support = truth.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred > 0, tp / n_pred, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(n_pred + support > 0, 2 * tp / (n_pred + support), np.nan)
    ap = np.array([average_precision(truth[:, a], scores[:, a]) for a in range(num_attributes)])
    return AttributeMetrics(
        attribute_ids=np.asarray(gt.ontology.attribute_ids),
        support=support,
        predicted=n_pred,
        true_positives=tp,
        precision=precision,
        recall=recall,
        f1=f1,
        ap=ap,
        num_matched=len(d_idx),
    )
