"""The evaluator object: batches, reset, model-style array outputs, official loadability."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fashionkit.evaluation import FashionpediaEvaluator
from fashionkit.evaluation.evaluator import evaluate_all
from fashionkit.evaluation.results import (
    load_ground_truth,
    predictions_to_results,
    results_from_records,
    write_results,
)
from fashionkit.evaluation.testing import CaseSpec, make_case, run_official

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def case():
    return make_case(12, CaseSpec(num_images=6, image_size=(40, 200), jitter=0.05))


def by_image(results):
    out: dict[int, list[dict]] = {}
    for r in results:
        out.setdefault(r["image_id"], []).append(r)
    return out


def test_batches_equal_one_pass_and_reset_forgets(case):
    gt, res = case
    ev = FashionpediaEvaluator(gt, iou_types=("segm",), coco=False, attributes=False)
    groups = by_image(res)
    image_ids = [im["id"] for im in gt["images"]]
    ev.process(image_ids[:3], [groups.get(i, []) for i in image_ids[:3]])
    ev.process(image_ids[3:], [groups.get(i, []) for i in image_ids[3:]])
    got = ev.evaluate()["segm"]
    g = load_ground_truth(gt)
    whole = evaluate_all(
        g,
        results_from_records(res, g, "segm"),
        "segm",
        coco=False,
        attributes=False,
        per_class=False,
    )
    assert got == whole
    ev.reset()
    with pytest.raises(RuntimeError):
        ev.evaluate()


def test_subset_of_images_is_scored_on_that_subset(case):
    gt, res = case
    keep = [im["id"] for im in gt["images"]][:3]
    sub_gt = {
        **gt,
        "images": [im for im in gt["images"] if im["id"] in keep],
        "annotations": [a for a in gt["annotations"] if a["image_id"] in keep],
    }
    sub_res = [r for r in res if r["image_id"] in keep]
    ev = FashionpediaEvaluator(gt, iou_types=("bbox",), coco=False, attributes=False)
    groups = by_image(sub_res)
    ev.process(keep, [groups.get(i, []) for i in keep])
    got = ev.evaluate()["bbox"]["iou_f1"]
    ref = run_official(sub_gt, sub_res, "bbox")["iou_f1"]
    assert got == pytest.approx(ref, abs=1e-6)


def test_array_predictions_torch_and_numpy(case):
    torch = pytest.importorskip("torch")
    gt, res = case
    groups = by_image(res)
    images, preds = [], []
    for im in gt["images"]:
        rs = groups.get(im["id"], [])
        masks = (
            np.stack([mask_utils.decode(r["segmentation"]) for r in rs])
            if rs
            else np.zeros((0, im["height"], im["width"]), np.uint8)
        )
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in rs)]).reshape(
            -1, 4
        )
        preds.append(
            {
                "boxes": torch.as_tensor(boxes, dtype=torch.float64),
                "labels": torch.as_tensor([r["category_id"] for r in rs], dtype=torch.int64),
                "scores": torch.as_tensor([r["score"] for r in rs], dtype=torch.float64),
                "masks": torch.as_tensor(
                    masks[:, None].astype(np.float32)
                ),  # N×1×H×W probabilities
                "attribute_ids": [r["attribute_ids"] for r in rs],
            }
        )
        images.append({"id": im["id"]})
    ev = FashionpediaEvaluator(gt, iou_types=("segm", "bbox"), coco=True, attributes=True)
    ev.process(images, preds)
    got = ev.evaluate()
    ref = run_official(gt, res, "segm")
    for group in ("iou_f1", "iou", "f1"):
        for k, v in ref[group].items():
            assert got["segm"][group][k] == pytest.approx(v, abs=1e-6), (group, k)
    assert set(got) == {"segm", "bbox"} and got["bbox"]["coco"]["AP"] > 0


def test_written_results_load_in_the_official_api(case, tmp_path):
    from fashionpedia.fp import Fashionpedia

    gt, res = case
    im = gt["images"][1]
    rs = [r for r in res if r["image_id"] == im["id"]]
    pred = {
        "boxes": np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in rs)]),
        "category_ids": np.array([r["category_id"] for r in rs]),
        "scores": np.array([r["score"] for r in rs]),
        "masks": [
            {**r["segmentation"], "counts": r["segmentation"]["counts"].encode()} for r in rs
        ],
        "attribute_ids": [r["attribute_ids"] for r in rs],
        "attribute_scores": [[0.9] * len(r["attribute_ids"]) for r in rs],
    }
    records = predictions_to_results(im["id"], pred)
    path = tmp_path / "res.json"
    write_results(path, records)
    loaded = json.loads(path.read_text())
    assert loaded[0].keys() >= {
        "image_id",
        "category_id",
        "attribute_ids",
        "segmentation",
        "bbox",
        "score",
    }
    with contextlib.redirect_stdout(io.StringIO()):
        fg = Fashionpedia()
        fg.dataset = copy.deepcopy(gt)
        fg.createIndex()
        fr = fg.loadRes(str(path))
    assert len(fr.anns) == len(records)
    g = load_ground_truth(gt)
    assert len(results_from_records(loaded, g, "segm")) == len(records)
