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
    Matches,
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
    def _threshold_sums(self, kind, area, max_dets) -> tuple[np.ndarray, np.ndarray]:
        """Per (IoU threshold, F1 threshold, category): the sum and the count of the precision
        (``"ap"``, over the recall thresholds) or recall (``"ar"``) entries that are not ``-1``
        for one area range and detection limit; every selection below adds these up."""
        key = (kind, area, max_dets)
        if key not in self._sums:
            a = AREA_LABELS.index(area)
            m = MAX_DETECTIONS.index(max_dets)
            if kind == "ap":
                s = self.precision[..., a, m]  # (T_iou, T_f1, R, K)
            else:
                s = self.recall[:, :, None, :, a, m]  # (T_iou, T_f1, 1, K)
            valid = s > -1
            self._sums[key] = np.where(valid, s, 0.0).sum(axis=2), valid.sum(axis=2)
        return self._sums[key]

    def _category_sums(
        self, kind, iou_thr, f1_thr, f1, iou, area, max_dets
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per category: the sum and the count of the selected entries that are not ``-1``,
        selected as the official ``FPEval._summarize`` selects them (cached per selection)."""
        key = (kind, iou_thr, f1_thr, f1, iou, area, max_dets)
        if key in self._sums:
            return self._sums[key]
        sums, counts = self._threshold_sums(kind, area, max_dets)
        if iou and iou_thr is not None:
            rows = np.flatnonzero(iou_thr == IOU_THRESHOLDS)
        elif iou:
            rows = np.arange(len(IOU_THRESHOLDS) - 1)
        else:
            rows = np.array([len(IOU_THRESHOLDS) - 1])
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
        out = (
            np.where(use, sums[rows], 0.0).sum(axis=(0, 1)),
            np.where(use, counts[rows], 0).sum(axis=(0, 1)),
        )
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
    matches: Matches,
    attribute_categories: np.ndarray,
    categories: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall per threshold pair, category, area range and detection limit from
    :func:`~fashionkit.evaluation.matching.match_all`'s matches (same ``attribute_categories``;
    ``categories``: only these, the others stay ``-1``). Returns ``precision (11, 11, 101, 46,
    4, 3)`` and ``recall (11, 11, 46, 4, 3)`` laid out as :class:`FashionpediaAP`'s; categories
    outside ``attribute_categories`` fill only F1 index ``-1`` (COCO accumulation). With no
    ``attribute_categories`` (COCO AP) that slot is all there is: the F1 axis has length 1.

    COCO's accumulation ranks a category's detections by score (per image its top ``m``; equal
    scores in image order) and reads the precision ``tp / (tp + fp)`` at each recall threshold,
    interpolated: the best precision at that recall or beyond. Precision rises only at a true
    positive, so the curve is known from the true positives alone: the ``k``-th has precision
    ``k / (k + fp)``, ``fp`` the false positives ranked above it, which are the detections
    ranked above less the true positives and the ignored. Unmatched detections are false
    positives or, outside the area range, ignored, so only the matches (few) are visited one by
    one; the others are counted by a cumulative sum per area range.
    """
    n_iou, n_f1, n_rec = len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_area, n_m = len(AREA_RANGES), len(MAX_DETECTIONS)
    n_lanes = n_iou * n_f1
    f1_axis = n_f1 if len(attribute_categories) else 1
    # filled as (area, limit, category, ...) blocks, returned as views in the official order
    precision = np.full((n_area, n_m, _NUM_CATEGORIES, n_iou, f1_axis, n_rec), -1.0)
    recall = np.full((n_area, n_m, _NUM_CATEGORIES, n_iou, f1_axis), -1.0)

    dt_cat = dt.category_ids[units.dt_keep]
    lo, hi = AREA_RANGES[:, 0], AREA_RANGES[:, 1]
    dt_area = dt.areas[units.dt_keep]
    dt_out = (dt_area[None, :] < lo[:, None]) | (dt_area[None, :] > hi[:, None])  # (A, K)
    gt_counted = ~(
        gt.iscrowd[None, :] | (gt.areas[None, :] < lo[:, None]) | (gt.areas[None, :] > hi[:, None])
    )
    num_gt = np.stack(
        [np.bincount(gt.category_ids[row], minlength=_NUM_CATEGORIES) for row in gt_counted]
    )  # (A, C)
    wanted = np.zeros(_NUM_CATEGORIES, dtype=bool)
    wanted[np.arange(_NUM_CATEGORIES) if categories is None else np.asarray(categories)] = True
    is_attr = np.zeros(_NUM_CATEGORIES, dtype=bool)
    is_attr[np.asarray(attribute_categories, dtype=np.int64)] = True
    coco_lanes = np.arange(n_iou) * n_f1 + (n_f1 - 1)

    # Detections ranked per category by score: units are (category, image, score, file order),
    # so a stable sort by (category, -score) keeps image order among equal scores.
    k_all = len(dt_cat)
    order = np.lexsort((np.arange(k_all), -dt.scores[units.dt_keep], dt_cat))
    rank_of = np.empty(k_all, np.int64)
    rank_of[order] = np.arange(k_all)
    cat_o = dt_cat[order]
    unit_rank_o = units.dt_rank[order]
    # events by (area, category, lane, rank): one sort serves every detection limit, since a
    # limit keeps a subsequence of the ranking
    ev_cat = dt_cat[matches.det]
    keep = wanted[ev_cat] & (is_attr[ev_cat] | (matches.lane % n_f1 == n_f1 - 1))
    ev_area, ev_lane, ev_cat = matches.area[keep], matches.lane[keep], ev_cat[keep]
    ev_rank, ev_tp = rank_of[matches.det[keep]], matches.tp[keep]
    group = (ev_area * _NUM_CATEGORIES + ev_cat) * n_lanes + ev_lane
    by = np.argsort(group * max(k_all, 1) + ev_rank)
    ev_area, ev_lane, ev_cat = ev_area[by], ev_lane[by], ev_cat[by]
    ev_rank, ev_tp, group = ev_rank[by], ev_tp[by], group[by]
    area_start = np.searchsorted(ev_area, np.arange(n_area + 1))
    for a in range(n_area):
        e = slice(area_start[a], area_start[a + 1])
        out_o = dt_out[a, order]
        # ignored in the area range: the unmatched outside it, the events inside it; the true
        # positives outside it are not
        ev_ign = (~ev_tp[e]).astype(np.int64) - out_o[ev_rank[e]]
        for mi, m in enumerate(MAX_DETECTIONS):
            inc = unit_rank_o < m
            at = np.cumsum(inc) - 1  # rank among the included detections
            sel = inc[ev_rank[e]]
            _accumulate_one(
                at[ev_rank[e][sel]],
                ev_lane[e][sel],
                ev_cat[e][sel],
                group[e][sel],
                ev_tp[e][sel],
                ev_ign[sel],
                cat_o[inc],
                out_o[inc],
                num_gt[a] * wanted,
                is_attr,
                coco_lanes,
                precision[a, mi],
                recall[a, mi],
            )
    return precision.transpose(3, 4, 5, 2, 0, 1), recall.transpose(3, 4, 2, 0, 1)


def _accumulate_one(
    rank, lane, cat, group, is_tp, ign_delta, cat_o, out_o, num_gt, is_attr, coco_lanes,
    precision, recall,
) -> None:
    """One area range and detection limit. Events ``rank``/``lane``/``cat``/``group``/``is_tp``
    grouped by ``group`` (category, lane), by ``rank`` within; ``ign_delta``: ignored minus
    ignored when unmatched (-1, 0 or 1). ``cat_o``/``out_o``: category and outside-the-range of
    the ranked detections. ``num_gt (C,)``: ground truth counted per category (0: skip).
    Writes ``precision (C, 11, 11, 101)`` and ``recall (C, 11, 11)``."""
    counted = num_gt[cat] > 0  # whole (category, lane) groups: the others have nothing to rank
    rank, lane, cat, group = rank[counted], lane[counted], cat[counted], group[counted]
    is_tp, ign_delta = is_tp[counted], ign_delta[counted]
    n_iou, n_f1, n_rec = len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(RECALL_THRESHOLDS)
    n_lanes = n_iou * n_f1
    cat_first = np.searchsorted(cat_o, np.arange(_NUM_CATEGORIES))
    out_above = np.concatenate([[0], np.cumsum(out_o)])  # out-of-range detections ranked above
    cats = np.flatnonzero(num_gt > 0)
    width = num_gt[cats]
    base = np.zeros(_NUM_CATEGORIES, np.int64)
    base[cats] = np.concatenate([[0], np.cumsum(width * n_lanes)[:-1]])
    curve = np.zeros(int((width * n_lanes).sum()))  # per category (lane, k): precision at TP k
    tp_flat = np.zeros(_NUM_CATEGORIES * n_lanes, np.int64)
    if len(rank):
        starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
        gid = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rank))))

        def within_group_cumsum(x: np.ndarray) -> np.ndarray:
            c = np.cumsum(x, dtype=np.int64)
            return c - (c - x)[starts][gid]

        k = within_group_cumsum(is_tp)
        ignored = within_group_cumsum(ign_delta)
        t = np.flatnonzero(is_tp)
        c_t, r_t, k_t = cat[t], rank[t], k[t]
        first = cat_first[c_t]
        ignored_t = out_above[r_t + 1] - out_above[first] + ignored[t]
        if (k_t > num_gt[c_t]).any():
            raise AssertionError("more true positives than ground truth: matching is broken")
        fp = (r_t - first + 1) - k_t - ignored_t
        kf = k_t.astype(np.float64)
        # the same float operations as COCO's tp / (fp + tp + eps)
        pr = kf / (fp.astype(np.float64) + kf + np.spacing(1))
        curve[base[c_t] + lane[t] * num_gt[c_t] + k_t - 1] = pr
        tp_flat += np.bincount(cat[t] * n_lanes + lane[t], minlength=len(tp_flat))
    tp_count = tp_flat.reshape(_NUM_CATEGORIES, n_lanes)
    for c, w in zip(cats.tolist(), width.tolist(), strict=True):
        block = curve[base[c] : base[c] + w * n_lanes].reshape(n_lanes, w)
        best = np.maximum.accumulate(block[:, ::-1], axis=1)[:, ::-1]
        k_needed = np.searchsorted(np.arange(w + 1) / w, RECALL_THRESHOLDS, side="left")
        n_tp = tp_count[c]
        prec = np.where(
            k_needed[None, :] <= n_tp[:, None], best[:, np.maximum(k_needed - 1, 0)], 0.0
        )
        rec = n_tp / w
        if is_attr[c]:
            precision[c] = prec.reshape(n_iou, n_f1, n_rec)
            recall[c] = rec.reshape(n_iou, n_f1)
        else:
            precision[c, :, -1] = prec[coco_lanes]
            recall[c, :, -1] = rec[coco_lanes]


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
    matches = match_all(units, gt, dt, _ATTR_CATS)
    precision, recall = accumulate(units, gt, dt, matches, _ATTR_CATS)
    names = {c: gt.category_name(c) for c in range(_NUM_CATEGORIES)}
    return FashionpediaAP(
        precision=precision, recall=recall, iou_type=iou_type, category_names=names
    )
