"""Fashionpedia AP: detection AP with localisation (IoU) and attribute (F1) constraints.

The definitions, thresholds, super classes and key names are the official evaluator's
(``fashionpedia`` 1.1 ``FPEval``), which is the reference: :func:`evaluate_fashionpedia` gives
the same numbers (tests compare every key). Three result groups, as the official
``results``/``resultDet``/``resultF1``:

* ``"iou_f1"``: a detection counts when IoU ≥ t_IoU and attribute F1 ≥ t_F1, averaged over
  t_IoU, t_F1 ∈ .50:.05:.95 (categories without attributes: IoU only);
* ``"iou"``: F1 ignored (the official ``f1Thr = -1`` slot);
* ``"f1"``: IoU ignored (``iouThr = -1``: any overlap, even none, localises).

Keys: ``AP``, ``AP_IOU50``, ``AP_IOU75``, ``AP_F150``, ``AP_F175``, ``AP_IOU50_F150`` …,
``APs``/``APm``/``APl``, ``AR@1``/``AR@10``/``AR@100``, ``ARs@100``/``ARm@100``/``ARl@100``, and
per super class ``APo`` (outerwear: ids 0–12), ``APa`` (accessory: 13–26; ``"iou"`` only) and
``APp`` (part: 27–45). A value of ``-1`` means "nothing to average" (e.g. no ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fashionkit.evaluation.matching import (
    AREA_LABELS,
    AREA_RANGES,
    F1_THRESHOLDS,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    RECALL_THRESHOLDS,
    Units,
    build_units,
    match_all,
)
from fashionkit.evaluation.records import GroundTruth, ResultsTable
from fashionkit.ontology import ACCESSORY_IDS, ATTRIBUTE_CATEGORY_IDS, MAIN_GARMENT_IDS, PART_IDS

__all__ = ["FashionpediaAP", "accumulate", "evaluate_fashionpedia", "SUPER_CLASSES"]

IouType = Literal["segm", "bbox"]

# (key letter, name, category ids) in the official order.
SUPER_CLASSES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("o", "outerwear", MAIN_GARMENT_IDS),
    ("a", "accessory", ACCESSORY_IDS),
    ("p", "part", PART_IDS),
)
_NUM_CATEGORIES = 46
_ATTR_CATS = np.asarray(ATTRIBUTE_CATEGORY_IDS)


def _precision_recall(
    tp: np.ndarray, ign: np.ndarray, num_gt: int
) -> tuple[np.ndarray, np.ndarray]:
    """COCO accumulation for ``L`` lanes of score-sorted detections.

    ``tp``/``ign``: ``(L, n) bool``. Returns ``precision (L, 101)`` at the recall thresholds
    (interpolated: the best precision at any recall at or above) and ``recall (L,)``.
    """
    n_lanes, n = tp.shape
    if n == 0:
        return np.zeros((n_lanes, len(RECALL_THRESHOLDS))), np.zeros(n_lanes)
    fp = ~tp & ~ign
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(fp, axis=1, dtype=np.float64)
    recall = tp_sum[:, -1] / num_gt
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    # searchsorted(tp_sum / num_gt, r) is the first position where the true-positive count
    # reaches the least k with k / num_gt >= r: the position of the k-th true positive.
    k_needed = np.searchsorted(np.arange(num_gt + 1) / num_gt, RECALL_THRESHOLDS, side="left")
    counts = tp_sum[:, -1].astype(np.int64)
    rows, cols = np.nonzero(tp)
    row_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    reach = k_needed[None, :] <= counts[:, None]
    nth = np.where(reach, row_start[:, None] + np.maximum(k_needed[None, :] - 1, 0), 0)
    pos = np.where(k_needed[None, :] == 0, 0, cols[nth] if len(cols) else 0)
    precision = np.where(reach, np.take_along_axis(pr, pos, 1), 0.0)
    return precision, recall


def _unique_lanes(fn, tp: np.ndarray, ign: np.ndarray, num_gt: int):
    """``fn`` on the distinct (tp, ign) rows only: many threshold pairs give identical rows."""
    if tp.shape[0] <= 1 or tp.shape[1] == 0:
        return fn(tp, ign, num_gt)
    bits = np.ascontiguousarray(np.packbits(np.concatenate([tp, ign], axis=1), axis=1))
    rows = bits.view(np.dtype((np.void, bits.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    pr, rc = fn(tp[first], ign[first], num_gt)
    return pr[inverse], rc[inverse]


@dataclass
class FashionpediaAP:
    """Accumulated Fashionpedia evaluation.

    ``precision (T_iou=11, T_f1=11, R=101, K=46, A=4, M=3)`` and ``recall (11, 11, 46, 4, 3)``
    laid out as the official ``eval["precision"]``/``eval["recall"]`` (threshold ``-1`` last on
    both threshold axes; categories by id; areas all/small/medium/large; maxDets 1/10/100), with
    ``-1`` where nothing was computed. Categories without attributes fill only F1 index ``-1``.
    """

    precision: np.ndarray
    recall: np.ndarray
    iou_type: str
    category_names: dict[int, str] = field(default_factory=dict)
    _sums: dict = field(default_factory=dict, repr=False, compare=False)

    # -- the official _summarize ---------------------------------------------------------------
    def _category_sums(
        self, kind, iou_thr, f1_thr, f1, iou, area, max_dets
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per category: the sum and the count of the selected entries that are not ``-1``,
        selected as the official ``FPEval._summarize`` selects them (cached per selection)."""
        key = (kind, iou_thr, f1_thr, f1, iou, area, max_dets)
        if key in self._sums:
            return self._sums[key]
        a = AREA_LABELS.index(area)
        m = MAX_DETECTIONS.index(max_dets)
        if kind == "ap":
            s = self.precision[..., a, m]  # (T_iou, T_f1, R, K)
        else:
            s = self.recall[:, :, None, :, a, m]  # (T_iou, T_f1, 1, K)
        if iou and iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRESHOLDS)[0]]
        elif iou:
            s = s[:-1]
        else:
            s = s[[-1]]
        # Which F1 slots count, per category: categories without attributes only have "ignored".
        use = np.zeros((len(F1_THRESHOLDS), _NUM_CATEGORIES), dtype=bool)
        use[-1, :] = True
        if f1:
            attr = np.zeros(_NUM_CATEGORIES, dtype=bool)
            attr[_ATTR_CATS] = True
            slots = (
                np.where(f1_thr == F1_THRESHOLDS)[0]
                if f1_thr is not None
                else np.arange(len(F1_THRESHOLDS) - 1)
            )
            use[:, attr] = False
            use[np.ix_(slots, np.flatnonzero(attr))] = True
        valid = (s > -1) & use[None, :, None, :]
        out = np.where(valid, s, 0.0).sum(axis=(0, 1, 2)), valid.sum(axis=(0, 1, 2))
        self._sums[key] = out
        return out

    def _summarize(
        self,
        kind,
        iou_thr=None,
        f1_thr=None,
        f1=True,
        iou=True,
        area="all",
        max_dets=100,
        super_idx=None,
        cat_id=None,
    ) -> float:
        """The official ``FPEval._summarize``: the mean of the selected precision (``"ap"``) or
        recall (``"ar"``) entries that are not ``-1``; ``-1`` when there are none."""
        sums, counts = self._category_sums(kind, iou_thr, f1_thr, f1, iou, area, max_dets)
        if cat_id is not None:
            cats = np.array([cat_id])
        elif super_idx is not None:
            cats = np.asarray(SUPER_CLASSES[super_idx][2])
        else:
            cats = np.arange(_NUM_CATEGORIES)
        n = counts[cats].sum()
        return float(sums[cats].sum() / n) if n else -1.0

    def summary(
        self,
        f1: bool = True,
        iou: bool = True,
        cat_id: int | None = None,
        super_idx: int | None = None,
    ) -> dict[str, float]:
        """One result group with the official keys and key order (``_summarize_with_cat``)."""
        if not f1 and not iou:
            raise ValueError("at least one of the IoU and F1 constraints must be on")
        out: dict[str, float] = {}
        kw: dict[str, Any] = {"f1": f1, "iou": iou}
        if cat_id is None and super_idx is None:
            for idx, (letter, _, _) in enumerate(SUPER_CLASSES):
                if idx == 1 and f1:
                    continue  # accessories carry no attributes
                out["AP" + letter] = self._summarize("ap", super_idx=idx, **kw)
        kw.update(super_idx=super_idx, cat_id=cat_id)
        out["AP"] = self._summarize("ap", **kw)
        if iou:
            out["AP_IOU50"] = self._summarize("ap", iou_thr=0.5, **kw)
            out["AP_IOU75"] = self._summarize("ap", iou_thr=0.75, **kw)
        if f1:
            for t in (0.5, 0.75):
                out[f"AP_F1{int(t * 100):d}"] = self._summarize("ap", f1_thr=t, **kw)
        if f1 and iou:
            for ti in (0.5, 0.75):
                for tf in (0.5, 0.75):
                    out[f"AP_IOU{int(ti * 100):d}_F1{int(tf * 100):d}"] = self._summarize(
                        "ap", iou_thr=ti, f1_thr=tf, **kw
                    )
        out["APs"] = self._summarize("ap", area="small", **kw)
        out["APm"] = self._summarize("ap", area="medium", **kw)
        out["APl"] = self._summarize("ap", area="large", **kw)
        for m in MAX_DETECTIONS:
            out[f"AR@{m}"] = self._summarize("ar", max_dets=m, **kw)
        for area in ("small", "medium", "large"):
            out[f"AR{area[0]}@100"] = self._summarize("ar", area=area, **kw)
        return out

    def results(self) -> dict[str, dict[str, float]]:
        """``{"iou_f1": results, "iou": resultDet, "f1": resultF1}`` as the official names them."""
        return {
            "iou_f1": self.summary(),
            "iou": self.summary(f1=False),
            "f1": self.summary(iou=False),
        }

    def per_super_class(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{"supercls-outerwear": {"iou", "f1", "iou + f1"}, ...}`` (accessory: ``"iou"``
        only), as the official ``summarize_class(perCls=False)``."""
        out = {}
        for idx, (_, name, _) in enumerate(SUPER_CLASSES):
            group = {"iou": self.summary(f1=False, super_idx=idx)}
            if idx != 1:
                group["f1"] = self.summary(iou=False, super_idx=idx)
                group["iou + f1"] = self.summary(super_idx=idx)
            out[f"supercls-{name}"] = group
        return out

    def per_category(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{category name: {"iou_f1", "f1", "iou"}}`` (categories without attributes:
        ``"iou"`` only), as the official ``summarize_class(perSuperClass=False)``."""
        out = {}
        for c in range(_NUM_CATEGORIES):
            name = self.category_names.get(c, str(c))
            det = self.summary(f1=False, cat_id=c)
            if c in ATTRIBUTE_CATEGORY_IDS:
                out[name] = {
                    "iou_f1": self.summary(cat_id=c),
                    "f1": self.summary(iou=False, cat_id=c),
                    "iou": det,
                }
            else:
                out[name] = {"iou": det}
        return out


def accumulate(
    units: Units,
    gt: GroundTruth,
    dt: ResultsTable,
    tp: np.ndarray,
    ign: np.ndarray,
    attribute_categories: np.ndarray,
    categories: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per threshold pair, category, area range and detection limit from
    :func:`~fashionkit.evaluation.matching.match_all`'s ``tp``/``ign`` (same
    ``attribute_categories``; ``categories``: only these, the others stay ``-1``). Returns ``precision (11, 11, 101, 46, 4, 3)`` and ``recall
    (11, 11, 46, 4, 3)`` laid out as :class:`FashionpediaAP`'s; categories outside
    ``attribute_categories`` fill only F1 index ``-1`` (COCO accumulation)."""
    n_iou, n_f1, n_rec = len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_area, n_m = len(AREA_RANGES), len(MAX_DETECTIONS)
    precision = np.full((n_iou, n_f1, n_rec, _NUM_CATEGORIES, n_area, n_m), -1.0)
    recall = np.full((n_iou, n_f1, _NUM_CATEGORIES, n_area, n_m), -1.0)

    dt_cat = dt.category_ids[units.dt_keep]
    dt_score = dt.scores[units.dt_keep]
    gt_cat = gt.category_ids
    lo, hi = AREA_RANGES[:, 0], AREA_RANGES[:, 1]
    gt_counted = ~(
        gt.iscrowd[None, :] | (gt.areas[None, :] < lo[:, None]) | (gt.areas[None, :] > hi[:, None])
    )
    all_lanes = np.arange(n_iou * n_f1)
    coco_lanes = np.arange(n_iou) * n_f1 + (n_f1 - 1)
    attr_set = set(np.asarray(attribute_categories).tolist())
    for c in range(_NUM_CATEGORIES) if categories is None else np.asarray(categories).tolist():
        attr = c in attr_set
        lanes = all_lanes if attr else coco_lanes
        cs, ce = np.searchsorted(dt_cat, [c, c + 1])
        rank = units.dt_rank[cs:ce]
        cols_by_m = []
        for m in MAX_DETECTIONS:
            sel = cs + np.flatnonzero(rank < m)
            cols_by_m.append(sel[np.argsort(-dt_score[sel], kind="stable")])
        for a in range(n_area):
            num_gt = int(np.count_nonzero(gt_counted[a] & (gt_cat == c)))
            if num_gt == 0:
                continue
            prev = None
            for mi, cols in enumerate(cols_by_m):
                if prev is not None and len(prev[0]) == len(cols):
                    pr, rc = prev[1], prev[2]  # no unit had more detections: same curve
                else:
                    tp_rows = (tp[a, cols] if attr else tp[a, cols][:, lanes]).T
                    ign_rows = (ign[a, cols] if attr else ign[a, cols][:, lanes]).T
                    if attr:
                        pr, rc = _unique_lanes(_precision_recall, tp_rows, ign_rows, num_gt)
                    else:  # few lanes: finding the distinct ones costs more than it saves
                        pr, rc = _precision_recall(tp_rows, ign_rows, num_gt)
                prev = (cols, pr, rc)
                if attr:
                    precision[:, :, :, c, a, mi] = pr.reshape(n_iou, n_f1, n_rec)
                    recall[:, :, c, a, mi] = rc.reshape(n_iou, n_f1)
                else:
                    precision[:, -1, :, c, a, mi] = pr
                    recall[:, -1, c, a, mi] = rc
    return precision, recall


def evaluate_fashionpedia(
    gt: GroundTruth, dt: ResultsTable, iou_type: IouType = "segm", units: Units | None = None
) -> FashionpediaAP:
    """Evaluate detections against ground truth (all of ``gt``'s images) the official way.
    ``units``: :func:`~fashionkit.evaluation.matching.build_units` of the same inputs, if
    already computed."""
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', not {iou_type!r}")
    if units is None:
        units = build_units(gt, dt, iou_type)
    tp, ign = match_all(units, gt, dt, _ATTR_CATS)
    precision, recall = accumulate(units, gt, dt, tp, ign, _ATTR_CATS)
    names = {c: gt.category_name(c) for c in range(_NUM_CATEGORIES)}
    return FashionpediaAP(
        precision=precision, recall=recall, iou_type=iou_type, category_names=names
    )
