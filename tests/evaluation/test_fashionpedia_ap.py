"""Our Fashionpedia AP against the official evaluator (fashionpedia 1.1), key by key."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fashionkit.evaluation.fashionpedia_ap import evaluate_fashionpedia
from fashionkit.evaluation.results import load_ground_truth, results_from_records
from fashionkit.evaluation.testing import CaseSpec, make_case, run_official
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS

pytest.importorskip("fashionpedia")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NON_ATTRIBUTE_CATEGORIES = tuple(c for c in range(46) if c not in ATTRIBUTE_CATEGORY_IDS)


def ours(gt: dict, results: list[dict], iou_type: str, per_class: bool = False) -> dict:
    g = load_ground_truth(gt)
    d = results_from_records(results, g, iou_type=iou_type)
    fp = evaluate_fashionpedia(g, d, iou_type)
    out = fp.results()
    if per_class:
        out["per_class"] = {**fp.per_super_class(), **fp.per_category()}
    return out


def assert_same(ref: dict, got: dict, path: str = "") -> int:
    """Every key equal within 1e-6, same key order; returns the number of values compared."""
    assert list(ref) == list(got), f"{path}: keys differ: {list(ref)} vs {list(got)}"
    n = 0
    for k, v in ref.items():
        if isinstance(v, dict):
            n += assert_same(v, got[k], f"{path}/{k}")
        else:
            assert math.isclose(float(v), float(got[k]), abs_tol=1e-6), (
                f"{path}/{k}: official {v}, ours {got[k]}"
            )
            n += 1
    return n


def check(gt: dict, results: list[dict], iou_type: str, per_class: bool = False) -> dict:
    ref = run_official(gt, results, iou_type, per_class=per_class)
    got = ours(gt, results, iou_type, per_class=per_class)
    assert assert_same(ref, got) > 0
    return got


def spread(result: dict) -> set[float]:
    return {round(float(v), 6) for group in ("iou_f1", "iou", "f1") for v in result[group].values()}


@pytest.mark.parametrize("seed", range(16))
def test_random_cases_match_official(seed: int) -> None:
    iou_type = "segm" if seed % 2 == 0 else "bbox"
    spec = CaseSpec(
        image_size=(40, 360), jitter=0.04 + 0.02 * (seed % 4), tied_scores=seed % 5 == 0
    )
    got = check(*make_case(seed, spec), iou_type)
    # A case whose values are all 0/-1 would prove little.
    assert len(spread(got) - {0.0, -1.0}) > 5


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_per_class_and_super_class_match_official(iou_type: str) -> None:
    spec = CaseSpec(num_images=8, image_size=(40, 300), jitter=0.05)
    check(*make_case(100, spec), iou_type, per_class=True)


EDGE_CASES = {
    "crowd ground truth": CaseSpec(crowd_rate=0.5, jitter=0.05),
    "tied scores": CaseSpec(tied_scores=True, jitter=0.05),
    "over 100 detections per image and category": CaseSpec(
        num_images=3,
        categories=(0,),
        instances_per_image=6,
        max_detections_per_image=130,
        jitter=0.05,
    ),
    "empty attribute lists on both sides": CaseSpec(empty_attribute_rate=0.6, jitter=0.05),
    "categories without attributes only": CaseSpec(
        categories=NON_ATTRIBUTE_CATEGORIES, jitter=0.05
    ),
    "polygon and RLE ground truth mixed": CaseSpec(rle_gt_rate=0.5, crowd_rate=0.2, jitter=0.05),
    "many images without ground truth": CaseSpec(num_images=8, images_without_gt=5, jitter=0.05),
    "all areas": CaseSpec(image_size=(20, 600), jitter=0.05),
    "single category, crowded": CaseSpec(categories=(1,), instances_per_image=8, jitter=0.03),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_edge_cases_match_official(name: str, iou_type: str) -> None:
    seed = 7 + list(EDGE_CASES).index(name)
    check(*make_case(seed, EDGE_CASES[name]), iou_type)


def test_more_than_100_detections_are_cut_per_image_and_category() -> None:
    name = "over 100 detections per image and category"
    gt, res = make_case(7 + list(EDGE_CASES).index(name), EDGE_CASES[name])
    per_unit: dict[tuple[int, int], int] = {}
    for r in res:
        per_unit[r["image_id"], r["category_id"]] = (
            per_unit.get((r["image_id"], r["category_id"]), 0) + 1
        )
    assert max(per_unit.values()) > 100  # the case exercises the cut


def test_detections_only_on_images_without_ground_truth() -> None:
    gt, res = make_case(21, CaseSpec(num_images=5, images_without_gt=2, jitter=0.05))
    empty = {im["id"] for im in gt["images"]} - {a["image_id"] for a in gt["annotations"]}
    only = [r for r in res if r["image_id"] in empty]
    assert only
    got = check(gt, only, "segm")
    assert got["iou"]["AP"] == 0.0


def test_ground_truth_id_zero_reads_as_unmatched_like_the_official() -> None:
    # The official stores matches by annotation id, so a match to id 0 counts as none.
    gt, res = make_case(5, CaseSpec(jitter=0.03))
    gt["annotations"][0]["id"] = 0
    check(gt, res, "segm")


def test_no_detections_at_all() -> None:
    gt, _ = make_case(4)
    g = load_ground_truth(gt)
    result = evaluate_fashionpedia(g, results_from_records([], g), "segm").results()
    values = {v for group in result.values() for v in group.values()}
    assert values <= {0.0, -1.0}
    assert result["iou"]["AP"] == 0.0 and result["iou_f1"]["AR@100"] == 0.0


def test_perfect_detections_score_one() -> None:
    gt, _ = make_case(6, CaseSpec(crowd_rate=0.0))
    res = []
    for a in gt["annotations"]:
        from pycocotools import mask as mask_utils

        im = next(i for i in gt["images"] if i["id"] == a["image_id"])
        seg = a["segmentation"]
        rle = (
            mask_utils.merge(mask_utils.frPyObjects(seg, im["height"], im["width"]))
            if isinstance(seg, list)
            else seg
        )
        counts = rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
        res.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "attribute_ids": a["attribute_ids"],
                "segmentation": {"size": [im["height"], im["width"]], "counts": counts},
                "bbox": a["bbox"],
                "score": 0.9,
            }
        )
    got = check(gt, res, "segm")
    assert got["iou_f1"]["AP"] == pytest.approx(1.0)
    assert got["f1"]["AP"] == pytest.approx(1.0)


def test_precision_array_layout_matches_official() -> None:
    """Not only the summaries: the accumulated precision/recall arrays agree element-wise."""
    import contextlib
    import copy
    import io
    import warnings

    from fashionpedia.fp import Fashionpedia
    from fashionpedia.fp_eval import FPEval

    gt, res = make_case(11, CaseSpec(jitter=0.05))
    np.float = float  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fg = Fashionpedia()
            fg.dataset = copy.deepcopy(gt)
            fg.createIndex()
            ev = FPEval(fg, fg.loadRes(copy.deepcopy(res)), "segm")
            ev.evaluate()
            ev.accumulate()
    finally:
        del np.float  # type: ignore[attr-defined]
    g = load_ground_truth(gt)
    fp = evaluate_fashionpedia(g, results_from_records(res, g), "segm")
    np.testing.assert_allclose(fp.precision, ev.eval["precision"], atol=1e-9)
    np.testing.assert_allclose(fp.recall, ev.eval["recall"], atol=1e-9)


def test_results_with_polygons_and_uncompressed_rle_match_official() -> None:
    from pycocotools import mask as mask_utils

    from fashionkit.evaluation.testing import _uncompressed_rle

    gt, res = make_case(41, CaseSpec(jitter=0.05))
    for k, r in enumerate(res):
        if k % 3 == 1:  # uncompressed RLE
            r["segmentation"] = _uncompressed_rle(mask_utils.decode(r["segmentation"]))
        elif k % 3 == 2:  # the detection's box as a polygon
            x, y, w, h = r["bbox"]
            r["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    check(gt, res, "segm")
