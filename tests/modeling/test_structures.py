import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from fashionkit.ontology import load_ontology
from fashionkit.structures import Detections


def _detections():
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[0, 1:4, 2:5] = True
    masks[1, 0:6, 6:8] = True
    scores = torch.zeros(2, 294)
    ontology = load_ontology()
    scores[0, 4] = 0.9
    scores[0, 10] = 0.3
    return Detections(
        boxes=torch.tensor([[2.0, 1.0, 5.0, 4.0], [6.0, 0.0, 8.0, 6.0]]),
        category_ids=torch.tensor([1, 31]),
        scores=torch.tensor([0.9, 0.4]),
        masks=masks,
        attribute_scores=scores,
        attribute_ids=[[ontology.index_to_attribute(4), ontology.index_to_attribute(10)], []],
        image_size=(6, 8),
    )


def test_to_results_is_the_fashionpedia_result_format():
    det = _detections()
    results = det.to_results(42, with_attribute_scores=True)
    assert len(results) == 2
    r = results[0]
    assert set(r) == {"image_id", "category_id", "attribute_ids", "segmentation", "bbox", "score",
                      "attribute_scores"}
    assert r["image_id"] == 42 and r["category_id"] == 1
    assert r["bbox"] == [2.0, 1.0, 3.0, 3.0]  # XYWH
    assert isinstance(r["segmentation"]["counts"], str) and r["segmentation"]["size"] == [6, 8]
    rle = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
    assert np.array_equal(mask_utils.decode(rle).astype(bool), det.masks[0].numpy())
    assert r["attribute_scores"] == pytest.approx([0.9, 0.3])
    assert results[1]["attribute_ids"] == [] and "attribute_scores" not in det.to_results(1)[0]


def test_shapes_are_checked_and_selection_works():
    det = _detections()
    with pytest.raises(ValueError, match="masks"):
        Detections(det.boxes, det.category_ids, det.scores, det.masks[:, :5], det.attribute_scores,
                   det.attribute_ids, det.image_size)
    top = det[det.scores > 0.5]
    assert len(top) == 1 and top.attribute_ids == det.attribute_ids[:1]
    assert len(Detections.empty((4, 4))) == 0 and Detections.empty((4, 4)).to_results(1) == []
