"""Attribute precision/recall/F1/AP over matched detections, on hand-made and generated cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fashionkit.evaluation.attributes import attribute_metrics, average_precision
from fashionkit.evaluation.results import load_ground_truth, results_from_records
from fashionkit.ontology import load_ontology

ONT = load_ontology()


def box_gt(anns: list[tuple[int, list[float], list[int]]], crowd: tuple[int, ...] = ()) -> dict:
    """One 100×100 image; annotations (category, XYWH box, attribute ids), boxes as polygons."""
    out = []
    for k, (cat, (x, y, w, h), atts) in enumerate(anns):
        out.append(
            {
                "id": k + 1,
                "image_id": 1,
                "category_id": cat,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": int(k in crowd),
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                "attribute_ids": atts,
            }
        )
    return {"images": [{"id": 1, "height": 100, "width": 100}], "annotations": out}


def det(cat, box, atts, score, att_scores=None):
    r = {"image_id": 1, "category_id": cat, "bbox": box, "attribute_ids": atts, "score": score}
    if att_scores is not None:
        r["attribute_scores"] = att_scores
    return r


def test_hand_made_counts():
    a, b, c = ONT.attribute_ids[:3]
    gt = box_gt(
        [(0, [0, 0, 40, 40], [a, b]), (1, [50, 50, 40, 40], [a]), (0, [50, 0, 40, 40], [c])]
    )
    res = [
        det(0, [0, 0, 40, 40], [a], 0.9),  # matches gt 1: a right, b missed
        det(1, [52, 52, 40, 40], [a, c], 0.8),  # matches gt 2: a right, c wrong
        det(0, [60, 60, 10, 10], [b], 0.7),  # no match: does not count
        det(13, [50, 0, 40, 40], [c], 0.6),  # wrong category (accessory): does not count
    ]
    g = load_ground_truth(gt)
    m = attribute_metrics(g, results_from_records(res, g), "bbox")
    i = {aid: k for k, aid in enumerate(m.attribute_ids)}
    assert m.num_matched == 2
    assert (m.support[i[a]], m.predicted[i[a]], m.true_positives[i[a]]) == (2, 2, 2)
    assert (m.support[i[b]], m.predicted[i[b]], m.true_positives[i[b]]) == (1, 0, 0)
    assert (m.support[i[c]], m.predicted[i[c]], m.true_positives[i[c]]) == (0, 1, 0)
    assert m.precision[i[a]] == 1.0 and m.recall[i[b]] == 0.0 and math.isnan(m.precision[i[b]])
    s = m.summary()
    assert s["attribute_micro_precision"] == pytest.approx(2 / 3)
    assert s["attribute_micro_recall"] == pytest.approx(2 / 3)
    assert s["attribute_macro_recall"] == pytest.approx((1.0 + 0.0) / 2)  # a and b are present


def test_crowd_and_low_iou_are_not_matched():
    a = ONT.attribute_ids[0]
    gt = box_gt([(0, [0, 0, 40, 40], [a]), (0, [50, 50, 40, 40], [a])], crowd=(1,))
    res = [
        det(0, [50, 50, 40, 40], [a], 0.9),
        det(0, [20, 20, 40, 40], [a], 0.8),
    ]  # IoU 1/7 with gt 1
    g = load_ground_truth(gt)
    assert attribute_metrics(g, results_from_records(res, g), "bbox").num_matched == 0


def test_attribute_scores_threshold_and_ap():
    a, b = ONT.attribute_ids[:2]
    gt = box_gt([(0, [0, 0, 30, 30], [a]), (0, [40, 0, 30, 30], [b]), (0, [0, 40, 30, 30], [a, b])])
    res = [
        det(0, [0, 0, 30, 30], [a, b], 0.9, [0.8, 0.3]),
        det(0, [40, 0, 30, 30], [a, b], 0.9, [0.6, 0.7]),
        det(0, [0, 40, 30, 30], [a, b], 0.9, [0.4, 0.9]),
    ]
    g = load_ground_truth(gt)
    m = attribute_metrics(g, results_from_records(res, g), "bbox", attribute_threshold=0.5)
    i = {aid: k for k, aid in enumerate(m.attribute_ids)}
    # a: scores 0.8 (true), 0.6 (false), 0.4 (true) → predicted at 0.5: first two
    assert (m.predicted[i[a]], m.true_positives[i[a]]) == (2, 1)
    assert m.ap[i[a]] == pytest.approx(
        average_precision(np.array([1, 0, 1], bool), np.array([0.8, 0.6, 0.4]))
    )
    assert m.ap[i[b]] == pytest.approx(1.0)  # 0.9, 0.7 true, 0.3 false


def test_average_precision_matches_sklearn_with_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        y = rng.random(n) < 0.4
        s = np.round(rng.random(n), 1)
        if y.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert average_precision(y, s) == pytest.approx(
                    average_precision_score(y, s), abs=1e-12
                )
    assert math.isnan(average_precision(np.zeros(3, bool), np.ones(3)))


def test_score_threshold_drops_low_scoring_detections():
    a = ONT.attribute_ids[0]
    gt = box_gt([(0, [0, 0, 40, 40], [a]), (0, [50, 50, 40, 40], [a])])
    res = [det(0, [0, 0, 40, 40], [a], 0.9), det(0, [50, 50, 40, 40], [], 0.4)]
    g = load_ground_truth(gt)
    d = results_from_records(res, g)
    assert attribute_metrics(g, d, "bbox").num_matched == 2
    m = attribute_metrics(g, d, "bbox", score_threshold=0.5)
    assert m.num_matched == 1 and m.summary()["attribute_micro_recall"] == 1.0


def test_no_matched_detection_gives_undefined_metrics():
    a = ONT.attribute_ids[0]
    gt = box_gt([(0, [0, 0, 40, 40], [a])])
    g = load_ground_truth(gt)
    for res in ([], [det(0, [60, 60, 30, 30], [a], 0.9)]):
        m = attribute_metrics(g, results_from_records(res, g), "bbox")
        s = m.summary()
        assert m.num_matched == 0 and s["matched_detections"] == 0
        assert math.isnan(s["attribute_mAP"]) and math.isnan(s["attribute_micro_f1"])
