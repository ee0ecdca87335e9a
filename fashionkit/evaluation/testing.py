"""Generated evaluation cases and the official evaluator as a reference, for tests and benchmarks.

:func:`make_case` draws a ground-truth file (Fashionpedia JSON) and a results list (Fashionpedia
result format) from a seed: polygon, compressed-RLE and crowd (uncompressed RLE) ground truth,
jittered detections with perturbed attributes, false positives, optional tied scores.
:func:`run_official` runs the official ``fashionpedia`` 1.1 evaluator on them (it needs
``numpy.float``, removed in numpy 1.24, so it is shimmed for the call). The official package is a
test-only dependency: only :func:`run_official` imports it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS, load_ontology

__all__ = ["CaseSpec", "make_case", "run_official"]


@dataclass(frozen=True)
class CaseSpec:
    """How to draw one case. Sizes in pixels; rates are probabilities per instance."""

    num_images: int = 6
    image_size: tuple[int, int] = (48, 160)  # min, max side
    instances_per_image: float = 4.0
    categories: tuple[int, ...] | None = None  # None: all 46, attribute categories weighted up
    crowd_rate: float = 0.08
    rle_gt_rate: float = 0.3
    images_without_gt: int = 1
    detections_per_gt: tuple[int, int] = (0, 3)
    false_positives_per_image: tuple[int, int] = (0, 4)
    max_detections_per_image: int | None = None  # pad images with low-score detections
    padding_near_gt: float = 0.0  # share of padding that loosely re-detects ground truth
    attribute_pool: int = 12  # attributes drawn from the first N ids: keeps F1 spread wide
    max_attributes: int = 5
    empty_attribute_rate: float = 0.15
    tied_scores: bool = False
    jitter: float = 0.15  # relative shift/scale of detections


def _polygon(rng: np.random.Generator, w: int, h: int, scale: float) -> list[float]:
    """A random star-shaped polygon inside the image, as a flat ``[x0, y0, x1, y1, ...]``."""
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    n = int(rng.integers(3, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.4, 1.0, n) * scale * min(w, h)
    xs = np.clip(cx + rad * np.cos(ang), 0, w - 1)
    ys = np.clip(cy + rad * np.sin(ang), 0, h - 1)
    return [float(round(v, 2)) for xy in zip(xs, ys, strict=True) for v in xy]


def _jitter(
    poly: list[float], rng: np.random.Generator, w: int, h: int, amount: float
) -> list[float]:
    pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    c = pts.mean(0)
    size = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1.0)
    pts = c + (pts - c) * rng.uniform(1 - amount, 1 + amount)
    pts = pts + rng.normal(0, amount * size, 2) + rng.normal(0, amount * size / 4, pts.shape)
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    return [float(round(v, 2)) for v in pts.ravel()]


def _rle(poly: list[float], h: int, w: int) -> dict:
    return mask_utils.merge(mask_utils.frPyObjects([poly], h, w))


def _attributes(rng: np.random.Generator, spec: CaseSpec, attr_ids: list[int]) -> list[int]:
    if rng.random() < spec.empty_attribute_rate:
        return []
    k = int(rng.integers(1, spec.max_attributes + 1))
    pool = attr_ids[: spec.attribute_pool]
    return sorted(int(a) for a in rng.choice(pool, size=min(k, len(pool)), replace=False))


def _perturb_attributes(rng: np.random.Generator, spec: CaseSpec, true: list[int], attr_ids):
    out = set(true)
    pool = attr_ids[: spec.attribute_pool]
    for _ in range(int(rng.integers(0, 3))):
        a = int(rng.choice(pool))
        out.symmetric_difference_update({a})
    if rng.random() < spec.empty_attribute_rate:
        out = set()
    return sorted(out)


def make_case(seed: int, spec: CaseSpec | None = None) -> tuple[dict, list[dict]]:
    """``(gt, results)``: a Fashionpedia GT dict (with all 46 categories and 294 attributes) and
    a results list (``image_id, category_id, attribute_ids, segmentation`` (compressed RLE,
    counts str), ``bbox`` XYWH, ``score``)."""
    spec = spec or CaseSpec()
    rng = np.random.default_rng(seed)
    ont = load_ontology()
    attr_ids = list(ont.attribute_ids)
    if spec.categories is not None:
        cats = np.asarray(spec.categories)
        cat_p = np.full(len(cats), 1.0 / len(cats))
    else:
        cats = np.arange(46)
        weight = np.where(np.isin(cats, ATTRIBUTE_CATEGORY_IDS), 3.0, 1.0)
        cat_p = weight / weight.sum()

    images, anns, results = [], [], []
    ann_id = 1
    lo, hi = spec.image_size
    for i in range(spec.num_images):
        image_id = 1000 + 7 * i
        w, h = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": w, "height": h})
        n_gt = 0 if i < spec.images_without_gt else int(rng.poisson(spec.instances_per_image))
        gts = []
        for _ in range(n_gt):
            cat = int(rng.choice(cats, p=cat_p))
            scale = float(rng.choice([0.08, 0.2, 0.45]))
            poly = _polygon(rng, w, h, scale)
            rle = _rle(poly, h, w)
            crowd = int(rng.random() < spec.crowd_rate)
            if crowd:
                # COCO writes crowd regions as uncompressed RLE.
                m = mask_utils.decode(rle)
                seg: Any = _uncompressed_rle(m)
            elif rng.random() < spec.rle_gt_rate:
                seg = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            else:
                seg = [poly]
            atts = (
                _attributes(rng, spec, attr_ids)
                if cat in ATTRIBUTE_CATEGORY_IDS or rng.random() < 0.2
                else []
            )
            x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
            anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cat,
                    "segmentation": seg,
                    "bbox": [x, y, bw, bh],
                    "area": float(mask_utils.area(rle)),
                    "iscrowd": crowd,
                    "attribute_ids": atts,
                }
            )
            ann_id += 1
            gts.append((cat, poly, atts))

        dets = []
        for cat, poly, atts in gts:
            for _ in range(
                int(rng.integers(spec.detections_per_gt[0], spec.detections_per_gt[1] + 1))
            ):
                dcat = cat if rng.random() > 0.1 else int(rng.choice(cats, p=cat_p))
                dets.append(
                    (
                        dcat,
                        _jitter(poly, rng, w, h, spec.jitter),
                        _perturb_attributes(rng, spec, atts, attr_ids),
                        rng.uniform(0.3, 1.0),
                    )
                )
        n_fp = int(
            rng.integers(spec.false_positives_per_image[0], spec.false_positives_per_image[1] + 1)
        )
        for _ in range(n_fp):
            cat = int(rng.choice(cats, p=cat_p))
            dets.append(
                (
                    cat,
                    _polygon(rng, w, h, float(rng.choice([0.08, 0.2, 0.45]))),
                    _attributes(rng, spec, attr_ids),
                    rng.uniform(0.0, 0.7),
                )
            )
        if spec.max_detections_per_image is not None:
            while len(dets) < spec.max_detections_per_image:
                if gts and spec.padding_near_gt > 0 and rng.random() < spec.padding_near_gt:
                    # as a model's low-score tail: loose duplicates and confusions of real items
                    cat, poly, atts = gts[int(rng.integers(len(gts)))]
                    if rng.random() < 0.3:
                        cat = int(rng.choice(cats, p=cat_p))
                    poly = _jitter(poly, rng, w, h, 2.5 * spec.jitter)
                    atts = _perturb_attributes(rng, spec, atts, attr_ids)
                    dets.append((cat, poly, atts, rng.uniform(0.0, 0.5)))
                    continue
                cat = int(rng.choice(cats, p=cat_p))
                dets.append(
                    (
                        cat,
                        _polygon(rng, w, h, 0.1),
                        _attributes(rng, spec, attr_ids),
                        rng.uniform(0.0, 0.3),
                    )
                )
            dets = sorted(dets, key=lambda d: -d[3])[: spec.max_detections_per_image]
        for cat, poly, atts, score in dets:
            rle = _rle(poly, h, w)
            if spec.tied_scores:
                score = round(score * 4) / 4
            results.append(
                {
                    "image_id": image_id,
                    "category_id": cat,
                    "attribute_ids": atts,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "score": float(round(score, 6)),
                }
            )
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    gt = {
        "info": {"description": f"generated evaluation case, seed {seed}"},
        "images": images,
        "annotations": anns,
        "categories": ont.categories_json(),
        "attributes": ont.attributes_json(),
    }
    return gt, results


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """``H×W`` mask → COCO uncompressed RLE (``counts`` a list of run lengths, column-major)."""
    flat = np.asfortranarray(mask).ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}


def run_official(gt: dict, results: list[dict], iou_type: str, per_class: bool = False) -> dict:
    """The official evaluator's ``{"iou_f1": results, "iou": resultDet, "f1": resultF1}``
    (plus ``"per_class"``: ``results_per_class`` when asked). Quiet: its prints are swallowed."""
    from fashionpedia.fp import Fashionpedia
    from fashionpedia.fp_eval import FPEval

    had_float = hasattr(np, "float")
    if not had_float:
        np.float = float  # type: ignore[attr-defined]  # removed in numpy 1.24; fp_eval uses it
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp_gt = Fashionpedia()
            fp_gt.dataset = copy.deepcopy(gt)
            fp_gt.createIndex()
            fp_dt = fp_gt.loadRes(copy.deepcopy(results))
            ev = FPEval(fp_gt, fp_dt, iou_type)
            ev.run()
            out = {"iou_f1": dict(ev.results), "iou": dict(ev.resultDet), "f1": dict(ev.resultF1)}
            if per_class:
                ev.summarize_class()
                out["per_class"] = ev.results_per_class
    finally:
        if not had_float:
            del np.float  # type: ignore[attr-defined]
    return out
