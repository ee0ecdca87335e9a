"""Predictor: the checkpoint's input transform, mapping back to photo pixels, names, links,
batching and per-photo errors; checked against the model's own mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashionkit.data.transforms import build_transforms
from fashionkit.errors import InvalidDataError
from fashionkit.inference.photos_dataset import input_transform_for
from fashionkit.inference.predictor import Predictor
from fashionkit.modeling import load_checkpoint, model_config_from_preset
from fashionkit.ontology import PART_IDS, load_ontology

from .conftest import SIZE, synthetic_photo


@pytest.fixture(scope="module")
def predictor(untrained_checkpoint):
    return Predictor(untrained_checkpoint, score_threshold=0.0, batch_size=2)


def _model_input(pixels: np.ndarray) -> tuple[torch.Tensor, float]:
    """The recipe's evaluation transform, as the training loop's validation applies it."""
    h, w = pixels.shape[:2]
    image = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    target = {"masks": torch.zeros((0, h, w), dtype=torch.uint8), "scale": torch.tensor(1.0)}
    image, target = build_transforms("paper", SIZE, train=False)(image, target)
    return image.float() / 255, float(target["scale"])


def test_uses_the_checkpoints_recipe_transform(predictor):
    assert repr(predictor.transform) == f"Compose([ResizeLongestAndPad(size={SIZE})])"
    # Without a recipe: no transform for self-resizing models, the paper's resize otherwise.
    assert input_transform_for(model_config_from_preset("cpu-tiny", resize=True)) is None
    assert "ResizeLongestAndPad(size=160)" in repr(
        input_transform_for(model_config_from_preset("cpu-tiny")))


@pytest.mark.parametrize("shape", [(150, 100), (70, 130)])
def test_results_equal_the_models_own_mapping_to_photo_pixels(untrained_checkpoint, predictor,
                                                              shape):
    """Reference: ``model.predict`` on the transformed image, asked for the original size
    (it pastes every mask at once at full resolution)."""
    pixels = synthetic_photo(*shape, seed=shape[0])
    [prediction] = predictor(pixels)
    assert prediction.ok and prediction.image_size == shape
    image, scale = _model_input(pixels)
    model = load_checkpoint(untrained_checkpoint)
    [det] = model.predict([image], original_sizes=[shape], scales=[scale])
    got = prediction.to_results(7)
    want = det.to_results(7, with_attribute_scores=True)
    assert len(got) == len(want) == 20
    for g, r in zip(got, want, strict=True):
        assert g["category_id"] == r["category_id"] and g["image_id"] == 7
        assert g["score"] == pytest.approx(r["score"], abs=1e-6)
        np.testing.assert_allclose(g["bbox"], r["bbox"], atol=1e-3)
        assert g["segmentation"] == r["segmentation"]
        assert g["segmentation"]["size"] == list(shape)
        assert g["attribute_ids"] == r["attribute_ids"]
        np.testing.assert_allclose(g["attribute_scores"], r["attribute_scores"], atol=1e-6)
    for item in prediction.items:
        x0, y0, x1, y1 = item.box
        assert 0 <= x0 <= x1 <= shape[1] and 0 <= y0 <= y1 <= shape[0]



def test_items_carry_fashionpedia_names_attributes_and_links(predictor):
    ontology = load_ontology()
    [prediction] = predictor(synthetic_photo(96, 96, seed=1))
    scores = [item.score for item in prediction.items]
    assert scores == sorted(scores, reverse=True)
    for i, item in enumerate(prediction.items):
        category = ontology.category(item.category_id)
        assert item.index == i
        assert (item.name, item.supercategory, item.group) == (
            category.name, category.supercategory, category.group)
        assert item.mask_array().shape == (96, 96)
        attribute_scores = [a.score for a in item.attributes]
        assert attribute_scores == sorted(attribute_scores, reverse=True)
        assert all(s >= predictor.attribute_threshold for s in attribute_scores)
        assert all(a.name == ontology.attribute(a.id).name for a in item.attributes)
        if item.parent is not None:
            assert item.category_id in PART_IDS
            assert prediction.items[item.parent].category_id not in PART_IDS
            assert item in prediction.parts_of(item.parent)


def test_score_threshold_filters(untrained_checkpoint, predictor):
    pixels = synthetic_photo(96, 96, seed=2)
    [everything] = predictor(pixels)
    cut = sorted(i.score for i in everything.items)[10]
    [some] = Predictor(untrained_checkpoint, score_threshold=cut)(pixels)
    assert len(some.items) == sum(i.score >= cut for i in everything.items)
    assert [i.score for i in some.items] == [i.score for i in everything.items][: len(some.items)]


def test_batching_and_workers_do_not_change_results(untrained_checkpoint, tmp_path):
    paths = []
    for k, shape in enumerate([(96, 64), (64, 96), (80, 80)]):
        paths.append(tmp_path / f"p{k}.png")
        Image.fromarray(synthetic_photo(*shape, seed=10 + k)).save(paths[-1])
    one = Predictor(untrained_checkpoint, score_threshold=0.0, batch_size=1)(paths)
    many = Predictor(untrained_checkpoint, score_threshold=0.0, batch_size=3,
                     num_workers=2)(paths)
    for a, b in zip(one, many, strict=True):
        assert a.name == b.name and a.image_size == b.image_size
        assert [i.mask for i in a.items] == [i.mask for i in b.items]
        np.testing.assert_allclose([i.score for i in a.items], [i.score for i in b.items],
                                   atol=1e-5)


def test_bad_photos_raise_or_are_reported_in_place(predictor, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(synthetic_photo(64, 64)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(InvalidDataError, match=r"bad\.jpg: image: not an image file"):
        predictor([good, bad])
    results = predictor([bad, good, tmp_path / "missing.png"], on_error="skip")
    assert [r.ok for r in results] == [False, True, False]
    assert results[0].error.source == str(bad) and results[0].items == []
    assert "file not found" in results[2].error.message
    assert results[1].name == str(good) and results[1].items


def test_exif_rotated_photo_is_predicted_upright(predictor, tmp_path):
    stored = synthetic_photo(60, 100, seed=5)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    [prediction] = predictor(path)
    assert prediction.image_size == (100, 60)
    assert all(item.mask["size"] == [100, 60] for item in prediction.items)


def test_rejects_bad_arguments(untrained_checkpoint):
    with pytest.raises(ValueError, match="unknown backend"):
        Predictor(untrained_checkpoint, backend="tensorrt")
    with pytest.raises(ValueError, match="CUDA"):
        Predictor(untrained_checkpoint, backend="fp16")
    with pytest.raises(InvalidDataError, match="weights file not found"):
        Predictor(untrained_checkpoint.with_name("nope.pt"))
