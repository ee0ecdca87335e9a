"""``Predictor(image_size=S)`` / ``fashionkit detect --image-size S``: a checkpoint run at
another square input size than its recipe's, and the sizes and recipes that cannot be."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.data.input_recipe import DataConfig
from fashionkit.inference.photos_dataset import ImageSizeError, recipe_at_image_size
from fashionkit.inference.predictor import Predictor
from fashionkit.modeling import load_checkpoint, model_config_from_preset

from .conftest import SIZE, synthetic_photo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PHOTO = synthetic_photo(150, 100, seed=5)


def _backbone_inputs(predictor: Predictor) -> list[tuple[int, ...]]:
    """Records the shape of every batch the model's backbone sees."""
    seen: list[tuple[int, ...]] = []
    predictor.model.backbone.register_forward_pre_hook(  # type: ignore[union-attr]
        lambda _m, args: seen.append(tuple(args[0].shape)))
    return seen


def test_the_model_runs_at_the_size_asked_for(untrained_checkpoint):
    default = Predictor(untrained_checkpoint, score_threshold=0.0)
    resized = Predictor(untrained_checkpoint, score_threshold=0.0, image_size=2 * SIZE)
    seen_default, seen_resized = _backbone_inputs(default), _backbone_inputs(resized)
    [a], [b] = default(PHOTO), resized(PHOTO)
    assert seen_default == [(1, 3, SIZE, SIZE)] and seen_resized == [(1, 3, 2 * SIZE, 2 * SIZE)]
    assert repr(resized.transform) == f"Compose([ResizeLongestAndPad(size={2 * SIZE})])"
    assert resized.data_config.image_size == 2 * SIZE and default.data_config.image_size == SIZE
    # Both in the photo's pixels, but from different inputs: not the same boxes.
    assert a.image_size == b.image_size == PHOTO.shape[:2]
    assert len(a.items) == len(b.items) == 20
    boxes_a = torch.tensor([i.box for i in a.items])
    boxes_b = torch.tensor([i.box for i in b.items])
    assert not torch.allclose(boxes_a, boxes_b, atol=1.0)
    assert max(max(i.box[2] for i in b.items), max(i.box[3] for i in b.items)) <= 150 + 1e-3


def test_equals_a_model_whose_recipe_says_that_size(untrained_checkpoint):
    """Reference: the same weights with the recipe's DataConfig at S, given explicitly."""
    model = load_checkpoint(untrained_checkpoint)
    want = Predictor(model, score_threshold=0.0,
                     recipe=DataConfig(transform="paper", image_size=128))(PHOTO)[0]
    got = Predictor(untrained_checkpoint, score_threshold=0.0, image_size=128)(PHOTO)[0]
    assert [i.category_id for i in got.items] == [i.category_id for i in want.items]
    assert [i.score for i in got.items] == pytest.approx([i.score for i in want.items], abs=1e-6)


@pytest.mark.parametrize("size, message", [
    (0, "positive integer"), (-64, "positive integer"), (100, "not a multiple of 32"),
    (1.5, "positive integer"),
])
def test_sizes_the_model_cannot_run_at(untrained_checkpoint, size, message):
    with pytest.raises(ImageSizeError, match=message):
        Predictor(untrained_checkpoint, image_size=size)


def test_recipes_without_a_square_size_refuse_it():
    config = model_config_from_preset("cpu-tiny")
    keep = DataConfig(transform="keep-ratio", min_size=128, max_size=160)
    with pytest.raises(ImageSizeError, match="'keep-ratio'.*does not apply"):
        recipe_at_image_size(config, keep, 128)
    with pytest.raises(ImageSizeError, match="resizes its inputs itself"):
        recipe_at_image_size(config.replace(resize=True), None, 128)
    # No recipe: the default resize-and-pad, at S; the recipe's other settings are kept.
    assert recipe_at_image_size(config, None, 128) == DataConfig(transform="paper",
                                                                  image_size=128)
    jitter = DataConfig(transform="jitter", image_size=256, jitter_min=0.3)
    assert recipe_at_image_size(config, jitter, 192) == DataConfig(
        transform="jitter", image_size=192, jitter_min=0.3)
    # The official architecture pads to multiples of 128 (P7), whatever size_divisible says.
    official = model_config_from_preset("official-r50")
    recipe = DataConfig(transform="official", image_size=1024)
    assert recipe_at_image_size(official, recipe, 640) == DataConfig(transform="official",
                                                                      image_size=640)
    for bad in (official, official.replace(size_divisible=32)):
        with pytest.raises(ImageSizeError, match="not a multiple of 128"):
            recipe_at_image_size(bad, recipe, 320)


def test_detect_cli_image_size(untrained_checkpoint, tmp_path):
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(PHOTO).save(photo)
    runs = {}
    for size in (None, 128):
        out = tmp_path / f"out-{size}"
        extra = [] if size is None else ["--image-size", str(size)]
        result = CliRunner().invoke(app, ["detect", "--weights", str(untrained_checkpoint),
                                          str(photo), "--out", str(out), "--score-threshold",
                                          "0", "--workers", "0", "--no-visuals", *extra])
        assert result.exit_code == 0, result.output
        runs[size] = json.loads((out / "results.json").read_text())
    want = Predictor(untrained_checkpoint, score_threshold=0.0, image_size=128)(PHOTO)[0]
    assert [r["score"] for r in runs[128]] == pytest.approx([i.score for i in want.items],
                                                             abs=1e-6)
    assert [r["bbox"] for r in runs[128]] != [r["bbox"] for r in runs[None]]
    result = CliRunner().invoke(app, ["detect", "--weights", str(untrained_checkpoint),
                                      str(photo), "--out", str(tmp_path / "bad"),
                                      "--image-size", "100"])
    assert result.exit_code == 2
    assert "--image-size" in result.output and "not a multiple of 32" in result.output
