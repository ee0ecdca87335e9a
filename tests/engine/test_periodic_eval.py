"""Validation-time evaluation: detections in the original images' pixels, scored as
``fashionkit evaluate`` scores them, with the same masks as the Predictor gives."""

import json

import pytest
import torch

from fashionkit.data import read_annotations
from fashionkit.data.dataset import FashionDataset
from fashionkit.data.transforms import build_transforms
from fashionkit.engine.data import FashionDataModule
from fashionkit.engine.periodic_eval import (
    ValidationEvaluator,
    flatten_metrics,
    predict_in_photo_pixels,
)
from fashionkit.ontology import load_ontology
from fashionkit.structures import Detections

from .conftest import make_shapes_dataset

STEPS = 25


def _as_detections(target: dict) -> Detections:
    ont = load_ontology()
    n = len(target["labels"])
    cats = torch.tensor([ont.label_to_category(int(v)) for v in target["labels"]], dtype=torch.int64)
    attrs = target["attributes"]
    ids = [[ont.index_to_attribute(int(j)) for j in torch.nonzero(row).flatten()] for row in attrs]
    h, w = target["masks"].shape[-2:]
    return Detections(boxes=target["boxes"].float(), category_ids=cats,
                      scores=torch.linspace(1.0, 0.5, n) if n else torch.zeros(0),
                      masks=target["masks"].bool(), attribute_scores=attrs.float(),
                      attribute_ids=ids, image_size=(int(h), int(w)))


def test_ground_truth_in_original_pixels_scores_full_ap(tmp_path):
    path = make_shapes_dataset(tmp_path, 6, size=64, seed=3, name="val")
    val, _ = read_annotations(path)
    ds = FashionDataset(val, tmp_path / "images", None)
    ev = ValidationEvaluator(val)
    for i in range(len(ds)):
        _, target = ds[i]
        ev.process([target], [_as_detections(target)])
    metrics = ev.evaluate()
    assert metrics["segm_AP"] == pytest.approx(1.0)
    assert metrics["segm_AP50_iou_f1"] == pytest.approx(1.0)
    assert metrics["attribute_micro_f1"] == pytest.approx(1.0)
    ev.reset()
    assert ev.evaluate() == {}


def test_detections_in_the_models_input_pixels_are_refused(tmp_path):
    path = make_shapes_dataset(tmp_path, 1, size=64, seed=3, name="val")
    val, _ = read_annotations(path)
    _, target = FashionDataset(val, tmp_path / "images", build_transforms("paper", 96, False))[0]
    with pytest.raises(ValueError, match=r"image id \d+: detections refer to a \(96, 96\)"):
        ValidationEvaluator(val).process([target], [_as_detections(target)])


@pytest.mark.parametrize("photo_size", [64, 150])
def test_training_validation_ap_equals_predictor_plus_evaluate(tmp_path, photo_size):
    """The AP logged during training and the AP of ``detect`` + ``evaluate`` come from the
    same mask code: on one random-init model (low thresholds, so that it returns boxes) and
    the same photos, records and metrics are equal. Photos smaller and larger than the
    model's input exercise both directions of the resize."""
    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.evaluation.evaluator import FashionpediaEvaluator
    from fashionkit.inference import Predictor
    from fashionkit.modeling import build_model

    path = make_shapes_dataset(tmp_path, 4, size=photo_size, seed=5, name="val")
    val, _ = read_annotations(path)
    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        "data.image_size=96", "model.box_score_thresh=0.0", "model.box_detections_per_img=20",
        "model.rpn_pre_nms_top_n_test=100", "model.rpn_post_nms_top_n_test=40",
        "model.attribute_score_threshold=0.3",
    ])
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe))
    _fit_briefly(model, FashionDataset(val, tmp_path / "images", recipe.data.transforms(True)))
    model.eval()

    # Training-time validation: the engine's validation dataset, then the engine's call.
    ds = FashionDataModule(recipe, val, val, tmp_path / "images").val_dataset
    assert ds is not None
    periodic = ValidationEvaluator(val)
    for i in range(len(ds)):
        image, target = ds[i]
        periodic.process([target], predict_in_photo_pixels(model, [image], [target]))
    logged = periodic.evaluate()

    # detect + evaluate: the Predictor on the photo files, its result records as JSON.
    predictor = Predictor(model, recipe=recipe, score_threshold=0.0, batch_size=2)
    infos = [ds.image_info(i) for i in range(len(ds))]
    predictions = predictor([tmp_path / "images" / info.file_name for info in infos])
    records = [json.loads(json.dumps(p.to_results(info.id, with_attribute_scores=False)))
               for p, info in zip(predictions, infos, strict=True)]
    evaluator = FashionpediaEvaluator(val, iou_types=("segm",), coco=False)
    evaluator.process([info.id for info in infos], records)
    detected = flatten_metrics(evaluator.evaluate())

    for info, got in zip(infos, records, strict=True):
        want = periodic._records[info.id]
        assert len(got) == len(want) == 20
        assert [r["segmentation"] for r in got] == [r["segmentation"] for r in want]
        assert [r["category_id"] for r in got] == [r["category_id"] for r in want]
        assert [r["attribute_ids"] for r in got] == [r["attribute_ids"] for r in want]
    assert logged["segm_AP50"] > 0  # the comparison is on masks that match something
    assert detected.keys() == logged.keys()
    for key, value in logged.items():  # attribute F1 is NaN when no attribute was listed
        assert detected[key] == pytest.approx(value, abs=0, rel=0, nan_ok=True), key


def _fit_briefly(model, dataset, steps: int = STEPS) -> None:
    """A few optimiser steps on the validation images themselves: enough for some masks to
    overlap their objects, so that AP is not 0 on both sides."""
    samples = [dataset[i] for i in range(len(dataset))]
    images = [image for image, _ in samples]
    targets = [{k: t[k] for k in ("boxes", "labels", "masks", "attributes")} for _, t in samples]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3)
    model.train()
    for _ in range(steps):
        loss = sum(model.losses(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_training_logs_validation_ap_per_epoch(shapes, tmp_path):
    """The engine's validation step feeds the evaluator detections in original pixels."""
    import csv

    from fashionkit.engine import apply_overrides, get_recipe, train

    train_json, val_json, images = shapes
    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        "data.image_size=64", "data.batch_size=4", "data.num_workers=0", "epochs=1",
        "model.rpn_post_nms_top_n_train=50", "model.box_batch_size_per_image=32"])
    train(recipe, train_json, val_json, images, tmp_path / "run", evaluate=True, progress=False)
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        [row] = list(csv.DictReader(fh))
    assert 0.0 <= float(row["val_segm_AP"]) <= 1.0
