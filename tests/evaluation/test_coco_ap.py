"""COCO AP (our matching with the COCO rule) against pycocotools' COCOeval on the same inputs."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fashionkit.evaluation.coco import COCO_KEYS, coco_ap
from fashionkit.evaluation.fashionpedia_ap import evaluate_fashionpedia
from fashionkit.evaluation.matching import build_units
from fashionkit.evaluation.results import load_ground_truth, results_from_records
from fashionkit.evaluation.testing import CaseSpec, make_case

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def pycocotools_stats(gt: dict, res: list[dict], iou_type: str) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(copy.deepcopy(res)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_coco_ap_matches_pycocotools(seed: int, iou_type: str) -> None:
    gt, res = make_case(seed, CaseSpec(image_size=(30, 400), crowd_rate=0.15, jitter=0.05))
    g = load_ground_truth(gt)
    got = coco_ap(g, results_from_records(res, g, iou_type=iou_type), iou_type, per_category=True)
    ref = pycocotools_stats(gt, res, iou_type)
    np.testing.assert_allclose([got[k] for k in COCO_KEYS], ref, atol=1e-6)
    assert 0 < got["AP"] < 1
    present = {a["category_id"] for a in gt["annotations"] if not a["iscrowd"]}
    assert {c for c, v in got["per_category"].items() if v >= 0} == present


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_coco_ap_reusing_fashionpedia_ap_is_the_same(iou_type: str) -> None:
    gt, res = make_case(7, CaseSpec(image_size=(30, 300), crowd_rate=0.2, jitter=0.05))
    g = load_ground_truth(gt)
    d = results_from_records(res, g, iou_type=iou_type)
    units = build_units(g, d, iou_type)
    alone = coco_ap(g, d, iou_type, per_category=True, units=units)
    fp = evaluate_fashionpedia(g, d, iou_type, units=units)
    assert coco_ap(g, d, iou_type, per_category=True, units=units, fashionpedia=fp) == alone
    np.testing.assert_allclose(
        [alone[k] for k in COCO_KEYS], pycocotools_stats(gt, res, iou_type), atol=1e-6
    )
