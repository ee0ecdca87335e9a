"""Evaluation: COCO AP (box/segm) and the Fashionpedia attribute-aware AP, official definitions."""

from fashionkit.evaluation.fashionpedia_ap import FashionpediaAP, evaluate_fashionpedia
from fashionkit.evaluation.records import Detections, GroundTruth

__all__ = ["Detections", "FashionpediaAP", "GroundTruth", "evaluate_fashionpedia"]
