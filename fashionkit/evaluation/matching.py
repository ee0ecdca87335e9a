"""Per (image, category) IoU and attribute-F1 matrices, and greedy matching for every threshold
at once.

Definitions follow the official Fashionpedia evaluator (``fashionpedia`` 1.1, ``FPEval``) and,
for categories without attributes, pycocotools' ``COCOeval.evaluateImg``:

* detections of an (image, category) are sorted by score (stable: ties keep result-file order)
  and cut to the top 100; ground truth keeps file order, then moves ignored ones (crowd or
  outside the area range) last, stably;
* each detection in turn scans the ground truth and keeps the candidate that is not yet matched
  and passes both thresholds, replacing it with a later one only if that one's IoU *and* F1 are
  both at least as high (for categories without attributes only IoU counts); a scan that holds a
  regular match stops at the first ignored ground truth;
* the official attribute matching lets a crowd region absorb one detection per threshold, COCO's
  matching lets it absorb any number;
* a threshold of ``-1`` ignores that constraint.

Matching is sequential in detections, so it runs in lock step: all (image, category, area range)
problems with the same padded size and all threshold pairs advance together as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.evaluation.records import GroundTruth, ResultsTable

__all__ = [
    "IOU_THRESHOLDS",
    "F1_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "AREA_LABELS",
    "MAX_DETECTIONS",
    "Units",
    "build_units",
    "attribute_f1",
    "match_all",
    "Matches",
]

# Built exactly as pycocotools/fashionpedia build them: the float values decide ties at edges.
IOU_THRESHOLDS = np.append(
    np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True), -1.0
)
F1_THRESHOLDS = np.append(
    np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True), -1.0
)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = np.array(
    [[0**2, 1e5**2], [0**2, 32**2], [32**2, 96**2], [96**2, 1e5**2]], dtype=np.float64
)
AREA_LABELS = ("all", "small", "medium", "large")
MAX_DETECTIONS = (1, 10, 100)

_NT_IOU = len(IOU_THRESHOLDS)
_NT_F1 = len(F1_THRESHOLDS)
_NO_MATCH = -3.0  # below every threshold (the lowest is -1): marks padding


def attribute_f1(dt_bits: np.ndarray, gt_bits: np.ndarray, num_attributes: int) -> np.ndarray:
    """Official "binary_macro" F1 between attribute sets, element-wise over broadcast rows.

    ``dt_bits``/``gt_bits``: ``(..., W) uint64`` bit sets over ``num_attributes`` attributes.
    sklearn's ``f1_score(true, pred, average="macro")`` on the two multi-hot vectors averages the
    F1 of the classes present: "1" (attribute on) when either side has one, "0" (off) unless
    both sides hold every attribute. Empty vs 3 true attributes: (582/585 + 0) / 2 ≈ 0.497.
    """
    tp = np.bitwise_count(dt_bits & gt_bits).sum(-1, dtype=np.int64)
    n_pred = np.bitwise_count(dt_bits).sum(-1, dtype=np.int64)
    n_true = np.bitwise_count(gt_bits).sum(-1, dtype=np.int64)
    fp = n_pred - tp
    fn = n_true - tp
    tn = num_attributes - tp - fp - fn
    wrong = fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_on = np.where(tp + wrong > 0, 2.0 * tp / (2.0 * tp + wrong), 0.0)
        f1_off = np.where(tn + wrong > 0, 2.0 * tn / (2.0 * tn + wrong), 0.0)
    has_on = tp + wrong > 0
    has_off = tn + wrong > 0
    return (f1_on * has_on + f1_off * has_off) / (has_on.astype(np.int64) + has_off)


@dataclass
class Units:
    """Detections and ground truth grouped by (category, image), the evaluation's unit.

    Detections are ordered by (category, image, score descending, file order) and cut to the
    top ``max_det`` per unit; ``dt_keep (K,)`` are their indices into the input, ``dt_rank (K,)``
    the rank inside the unit. Ground truth is ordered by (category, image, file order):
    ``gt_sel (G,)``. Per unit ``u``: ``category[u]``, ``image[u]``, ``dt_start/dt_count``,
    ``gt_start/gt_count`` into those orders, and ``pair_offset[u]``: where its
    ``dt_count × gt_count`` IoU/F1 matrix (row-major) starts in ``ious``/``f1s``.
    """

    dt_keep: np.ndarray
    dt_rank: np.ndarray
    gt_sel: np.ndarray
    category: np.ndarray
    image: np.ndarray
    dt_start: np.ndarray
    dt_count: np.ndarray
    gt_start: np.ndarray
    gt_count: np.ndarray
    pair_offset: np.ndarray
    ious: np.ndarray
    f1s: np.ndarray


def build_units(
    gt: GroundTruth, dt: ResultsTable, iou_type: str, max_det: int = MAX_DETECTIONS[-1]
) -> Units:
    """Group, sort, truncate, and compute every unit's IoU (pycocotools ``maskUtils.iou``, crowd
    aware) and attribute F1 matrix."""
    n_img = max(gt.num_images, 1)
    # Sort detections by (category, image, -score, file order) in one lexsort.
    order = np.lexsort((dt.order, -dt.scores, dt.image_index, dt.category_ids))
    dkey = dt.category_ids[order] * n_img + dt.image_index[order]
    first = np.concatenate([[True], dkey[1:] != dkey[:-1]]) if len(dkey) else np.zeros(0, bool)
    start_of = (
        np.maximum.accumulate(np.where(first, np.arange(len(dkey)), 0)) if len(dkey) else dkey
    )
    rank = np.arange(len(dkey)) - start_of
    keep = rank < max_det
    dt_keep, dt_rank, dkey = order[keep], rank[keep], dkey[keep]

    gorder = np.lexsort((np.arange(len(gt)), gt.image_index, gt.category_ids))
    gkey = gt.category_ids[gorder] * n_img + gt.image_index[gorder]

    keys = _distinct(np.concatenate([dkey, gkey])).astype(np.int64)
    dt_start = np.searchsorted(dkey, keys, "left")
    dt_count = np.searchsorted(dkey, keys, "right") - dt_start
    gt_start = np.searchsorted(gkey, keys, "left")
    gt_count = np.searchsorted(gkey, keys, "right") - gt_start
    sizes = dt_count * gt_count
    pair_offset = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    total = int(sizes.sum())

    # Attribute F1 for every (detection, ground truth) pair of every unit, in one pass.
    unit_of_pair = np.repeat(np.arange(len(keys)), sizes)
    local = np.arange(total) - pair_offset[unit_of_pair]
    g_of_unit = np.maximum(gt_count, 1)[unit_of_pair]
    pair_dt = dt_keep[dt_start[unit_of_pair] + local // g_of_unit]
    pair_gt = gorder[gt_start[unit_of_pair] + local % g_of_unit]
    f1s = np.empty(total)
    chunk = 1 << 18
    for s in range(0, total, chunk):
        f1s[s : s + chunk] = attribute_f1(
            dt.attributes[pair_dt[s : s + chunk]],
            gt.attributes[pair_gt[s : s + chunk]],
            gt.ontology.num_attributes,
        )

    ious = np.empty(total)
    both = np.flatnonzero(sizes > 0)
    g_regions: Any
    d_regions: Any
    if iou_type == "segm":
        if dt.segmentations is None:
            raise ValueError("segm evaluation needs detections with segmentations")
        g_regions = gt.rles()
        d_regions = dt.segmentations
    else:
        if dt.boxes is None:
            raise ValueError("bbox evaluation needs detections with boxes")
        g_regions = gt.boxes
        d_regions = dt.boxes
    # regions in units order, so that a unit's are one slice; plain ints: the loop runs once per
    # unit, where numpy scalars would cost more than the IoU of a small unit
    if iou_type == "segm":
        d_sorted: Any = list(map(d_regions.__getitem__, dt_keep.tolist()))
        g_sorted: Any = list(map(g_regions.__getitem__, gorder.tolist()))
    else:
        d_sorted, g_sorted = d_regions[dt_keep], g_regions[gorder]
    crowd = gt.iscrowd[gorder].astype(np.uint8).tolist()
    columns = (dt_start, dt_count, gt_start, gt_count, pair_offset)
    for ds, dc, gs, gc, po in zip(*(c[both].tolist() for c in columns), strict=True):
        m = mask_utils.iou(d_sorted[ds : ds + dc], g_sorted[gs : gs + gc], crowd[gs : gs + gc])
        ious[po : po + dc * gc] = np.asarray(m, dtype=np.float64).ravel()

    return Units(
        dt_keep=dt_keep,
        dt_rank=dt_rank,
        gt_sel=gorder,
        category=keys // n_img,
        image=keys % n_img,
        dt_start=dt_start,
        dt_count=dt_count,
        gt_start=gt_start,
        gt_count=gt_count,
        pair_offset=pair_offset,
        ious=ious,
        f1s=f1s,
    )


def _distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` without its import of ``numpy.ma``, which costs
    more than the sort at start-up)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _pow2(x: np.ndarray) -> np.ndarray:
    """The next power of two (≥ 1): bucket sizes, so padding wastes at most half."""
    return (1 << np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64)).astype(np.int64)


@dataclass
class Matches:
    """What matching changed, as events: ``E`` (area range, detection, lane) triples.

    A detection that matches nothing is a false positive, or ignored when its area is outside
    the range; that is every detection's state in every area range and lane except the events.
    ``area (E,)`` area-range index, ``det (E,)`` kept detection (``Units.dt_keep`` order),
    ``lane (E,)`` IoU threshold index × 11 + F1 threshold index, ``tp (E,) bool``: a true
    positive; otherwise the detection is ignored (matched to an ignored ground truth) though
    its area is in the range.
    """

    area: np.ndarray
    det: np.ndarray
    lane: np.ndarray
    tp: np.ndarray


def match_all(
    units: Units,
    gt: GroundTruth,
    dt: ResultsTable,
    attribute_categories: np.ndarray,
    categories: np.ndarray | None = None,
) -> Matches:
    """Match every unit for all area ranges and threshold pairs (``categories``: only the
    units of these categories; the others stay unmatched).

    A detection counts as a true positive when matched to a ground truth with a non-zero id
    (the official evaluator stores matches by id, so a match to id 0 reads as none) that is not
    ignored; one matched to an ignored ground truth is ignored (counts neither way). For
    categories without attributes only the lanes with F1 index 10 ("F1 ignored") are matched:
    COCO matching has no F1.
    """
    gt_area = gt.areas[units.gt_sel]
    gt_crowd = gt.iscrowd[units.gt_sel]
    gt_nonzero = gt.ann_ids[units.gt_sel] != 0
    dt_area = dt.areas[units.dt_keep]
    lo, hi = AREA_RANGES[:, 0], AREA_RANGES[:, 1]
    # (A, G) and (A, K): outside the area range
    gt_ignore = (
        gt_crowd[None, :] | (gt_area[None, :] < lo[:, None]) | (gt_area[None, :] > hi[:, None])
    )
    dt_out = (dt_area[None, :] < lo[:, None]) | (dt_area[None, :] > hi[:, None])

    is_attr = np.isin(units.category, attribute_categories)
    wanted = (units.dt_count > 0) & (units.gt_count > 0)
    if categories is not None:
        wanted &= np.isin(units.category, categories)
    problems = np.flatnonzero(wanted)
    parts: list[tuple[np.ndarray, ...]] = []
    if len(problems):
        dcap = _pow2(units.dt_count[problems])
        gcap = _pow2(units.gt_count[problems])
        # bucket key: (rule, ground-truth cap, detection cap) as one number
        base = int(max(gcap.max(), dcap.max())) + 1
        keys = (is_attr[problems].astype(np.int64) * base + gcap) * base + dcap
        for key in _distinct(keys).tolist():
            sel = problems[keys == key]
            parts.append(
                _match_bucket(
                    units,
                    sel,
                    key >= base * base,
                    (key // base) % base,
                    key % base,
                    gt_ignore,
                    gt_crowd,
                    gt_nonzero,
                    dt_out,
                )
            )
    if not parts:
        empty = np.zeros(0, np.int64)
        return Matches(area=empty, det=empty, lane=empty, tp=np.zeros(0, bool))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    return Matches(area=cols[0], det=cols[1], lane=cols[2], tp=cols[3])


def _match_bucket(
    units, sel, attr_rule, gcap, dcap, gt_ignore, gt_crowd, gt_nonzero, dt_out
) -> tuple[np.ndarray, ...]:
    """Match the units ``sel`` (all with at most ``dcap`` detections and ``gcap`` ground
    truths, padded to that) for every area range and lane; return their events (area, det,
    lane, tp) as :class:`Matches` holds them. ``attr_rule``: the official attribute matching
    (IoU and F1, crowd used once) rather than COCO's (IoU only, crowd reusable)."""
    n_area = gt_ignore.shape[0]
    nu = len(sel)
    dc = units.dt_count[sel]
    gc = units.gt_count[sel]
    d_idx = np.arange(dcap)
    g_idx = np.arange(gcap)
    dvalid = d_idx[None, :] < dc[:, None]  # (U, D)
    gvalid = g_idx[None, :] < gc[:, None]  # (U, G)
    # Unit-local ground truth positions → global (units order) positions, padding at -1.
    gpos = np.where(gvalid, units.gt_start[sel][:, None] + g_idx[None, :], -1)
    dpos = np.where(dvalid, units.dt_start[sel][:, None] + d_idx[None, :], -1)
    pair = (
        units.pair_offset[sel][:, None, None]
        + d_idx[None, :, None] * gc[:, None, None]
        + g_idx[None, None, :]
    )
    pvalid = dvalid[:, :, None] & gvalid[:, None, :]
    iou_u = np.where(pvalid, units.ious[np.where(pvalid, pair, 0)], _NO_MATCH)
    if attr_rule:
        f1_u = np.where(pvalid, units.f1s[np.where(pvalid, pair, 0)], _NO_MATCH)
        thr_iou = np.repeat(IOU_THRESHOLDS, _NT_F1)
        thr_f1 = np.tile(F1_THRESHOLDS, _NT_IOU)
        lane_ids = np.arange(_NT_IOU * _NT_F1)
    else:
        f1_u = np.where(pvalid, 0.0, _NO_MATCH)
        thr_iou = IOU_THRESHOLDS.copy()
        thr_f1 = np.full(_NT_IOU, -1.0)
        lane_ids = np.arange(_NT_IOU) * _NT_F1 + (_NT_F1 - 1)
    start_iou = np.minimum(thr_iou, 1 - 1e-10)
    start_f1 = np.minimum(thr_f1, 1 - 1e-10)

    # Problems are (unit, area range); per area range the ground truth is reordered: ignored last.
    ig = np.where(gvalid[None], gt_ignore[:, np.where(gvalid, gpos, 0)], True)  # (A, U, G)
    perm = np.argsort(ig + (~gvalid[None]).astype(np.int8), axis=2, kind="stable")  # padding last
    npb = n_area * nu
    perm = perm.reshape(npb, gcap)
    rows = np.arange(npb)[:, None]
    ig = ig.reshape(npb, gcap)[rows, perm]
    gpos_p = np.tile(gpos, (n_area, 1))[rows, perm]
    # (P, D, G) with the ground-truth axis permuted per problem: one flat gather each
    src = (
        (np.arange(npb) % nu)[:, None, None] * (dcap * gcap)
        + d_idx[None, :, None] * gcap
        + perm[:, None, :]
    )
    iou_p = iou_u.reshape(-1)[src]
    f1_p = f1_u.reshape(-1)[src]
    if attr_rule:
        reusable = np.zeros((n_area * nu, gcap), dtype=bool)
    else:
        reusable = np.where(gpos_p >= 0, gt_crowd[np.maximum(gpos_p, 0)], False)

    nz = np.where(gpos_p >= 0, gt_nonzero[np.maximum(gpos_p, 0)], False)  # (P, G)
    if gcap == 1:
        hit = _match_single(iou_p[:, :, 0], f1_p[:, :, 0], reusable[:, 0], start_iou, start_f1)
        g_ign = hit & ig[:, 0, None, None]
        counted = hit & nz[:, 0, None, None]
    else:
        result = _match_scan(iou_p, f1_p, ig, reusable, start_iou, start_f1)
        hit = result >= 0
        flat = np.arange(npb)[:, None, None] * gcap + np.maximum(result, 0)
        g_ign = hit & ig.reshape(-1)[flat]
        counted = hit & nz.reshape(-1)[flat]
    # (P, L, D) → events: true positives, and detections ignored though inside the range
    out_p = dt_out[:, np.maximum(dpos, 0)].reshape(npb, 1, dcap)  # problem p = area * nu + unit
    is_tp = counted & ~g_ign
    pp, ll, dd = np.nonzero(is_tp | (g_ign & ~out_p))
    unit = pp % nu
    return pp // nu, dpos[unit, dd], lane_ids[ll], is_tp[pp, ll, dd]


def _match_single(iou, f1, reusable, start_iou, start_f1) -> np.ndarray:
    """Matching with one ground truth per problem: ``iou``/``f1 (P, D)``, ``reusable (P,)``.
    The first detection that passes takes it (a reusable crowd region takes every one that
    passes). Returns ``(P, L, D) bool``: matched."""
    passes = (iou[:, None, :] >= start_iou[None, :, None]) & (
        f1[:, None, :] >= start_f1[None, :, None]
    )
    first = np.argmax(passes, axis=2)
    take = np.zeros_like(passes)
    np.put_along_axis(take, first[:, :, None], True, axis=2)
    take &= passes
    take |= passes & reusable[:, None, None]
    return take


def _match_scan(iou, f1, ig, reusable, start_iou, start_f1) -> np.ndarray:
    """The general scan: ``iou``/``f1 (P, D, G)`` with ground truth ignored-last, ``ig (P, G)``,
    ``reusable (P, G)``, thresholds ``(L,)``. Returns ``(P, L, D)`` matched index or -1."""
    npb, dcap, gcap = iou.shape
    nl = len(start_iou)
    matched = np.zeros((gcap, npb, nl), dtype=bool)
    result = np.full((dcap, npb, nl), -1, dtype=np.int64)
    iou_t = np.ascontiguousarray(iou.transpose(1, 2, 0))[..., None]  # (D, G, P, 1)
    f1_t = np.ascontiguousarray(f1.transpose(1, 2, 0))[..., None]
    ig_t = np.ascontiguousarray(ig.T)[..., None]  # (G, P, 1)
    free_t = np.ascontiguousarray(reusable.T)[..., None]
    lane = np.arange(npb * nl).reshape(npb, nl)
    for d in range(dcap):
        cur_iou = np.broadcast_to(start_iou, (npb, nl)).copy()
        cur_f1 = np.broadcast_to(start_f1, (npb, nl)).copy()
        m = np.full((npb, nl), -1, dtype=np.int64)
        has_regular = np.zeros((npb, nl), dtype=bool)
        for g in range(gcap):
            iou_g, f1_g, ign_g = iou_t[d, g], f1_t[d, g], ig_t[g]
            ok = (iou_g >= cur_iou) & (f1_g >= cur_f1)
            ok &= ~matched[g] | free_t[g]
            # once a regular match is held, the scan stops at the first ignored ground truth
            ok &= ~(has_regular & ign_g)
            np.copyto(cur_iou, np.broadcast_to(iou_g, ok.shape), where=ok)
            np.copyto(cur_f1, np.broadcast_to(f1_g, ok.shape), where=ok)
            m[ok] = g
            has_regular |= ok & ~ign_g
        result[d] = m
        hit = m >= 0
        matched.reshape(-1)[m[hit] * (npb * nl) + lane[hit]] = True
    return result.transpose(1, 2, 0)
