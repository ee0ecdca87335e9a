"""Evaluation: Fashionpedia AP with IoU and attribute-F1 constraints (the official definitions),
COCO AP for boxes and masks, attribute metrics, and an evaluator object for training loops.

Typical use::

    gt = load_ground_truth("instances_attributes_val2020.json")
    dt = read_results("results.json", gt, iou_type="segm")
    evaluate_fashionpedia(gt, dt, "segm").results()   # {"iou_f1": {...}, "iou": {...}, "f1": {...}}
"""

from fashionkit.evaluation.attributes import AttributeMetrics, attribute_metrics
from fashionkit.evaluation.coco import COCO_KEYS, coco_ap
from fashionkit.evaluation.evaluator import FashionpediaEvaluator, evaluate_all
from fashionkit.evaluation.fashionpedia_ap import FashionpediaAP, evaluate_fashionpedia
from fashionkit.evaluation.records import GroundTruth, ResultsTable
from fashionkit.evaluation.results import (
    load_ground_truth,
    predictions_to_results,
    read_results,
    results_from_records,
    write_results,
)

__all__ = [
    "AttributeMetrics",
    "COCO_KEYS",
    "ResultsTable",
    "FashionpediaAP",
    "FashionpediaEvaluator",
    "GroundTruth",
    "attribute_metrics",
    "coco_ap",
    "evaluate_all",
    "evaluate_fashionpedia",
    "load_ground_truth",
    "predictions_to_results",
    "read_results",
    "results_from_records",
    "write_results",
]
