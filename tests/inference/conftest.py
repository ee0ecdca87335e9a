"""A small trained checkpoint for inference tests: ``cpu-tiny`` at 96 px, trained for a few
steps on a synthetic world (one figure per picture), with a low box score threshold so that
every image yields detections to map, link, draw and compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

SIZE = 96


@dataclass(frozen=True)
class World:
    root: Path
    train_json: Path
    val_json: Path
    images: Path
    checkpoint: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """A synthetic world and a ``cpu-tiny`` model trained on it for about four minutes of CPU
    (slow tests only): confident enough detections to compare backends on."""
    from fashionkit.data.synth import generate_world
    from fashionkit.engine import apply_overrides, get_recipe, train

    root = tmp_path_factory.mktemp("inference_world")
    generate_world(root, images=48, size=128, seed=3, max_figures=1)
    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        "data.image_size=128", "data.batch_size=4", "data.num_workers=0", "epochs=40",
        "max_minutes=4", "model.box_detections_per_img=30",
    ])
    result = train(recipe, root / "train.json", root / "val.json", root / "images", root / "run",
                   evaluate=False, progress=False)
    return World(root, root / "train.json", root / "val.json", root / "images",
                 result.model_path)


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """An untrained ``cpu-tiny`` model at 96 px (fixed seed) whose box score threshold is 0, so
    that it returns its 20 best boxes on any image: enough to check the plumbing (transform,
    mapping back, RLE, names, links) in well under a second per call."""
    import torch

    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.modeling import build_model, save_checkpoint

    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        f"data.image_size={SIZE}", "model.box_score_thresh=0.0", "model.box_detections_per_img=20",
        "model.rpn_pre_nms_top_n_test=100", "model.rpn_post_nms_top_n_test=40",
    ])
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe)).eval()
    path = tmp_path_factory.mktemp("untrained") / "model.pt"
    save_checkpoint(model, path, extra={"recipe": recipe.to_dict()})
    return path


def synthetic_photo(height: int, width: int, seed: int = 0):
    """An ``H×W×3 uint8`` picture with a few bright blobs on a dark background."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    for _ in range(3):
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        h, w = rng.integers(height // 4, height // 2), rng.integers(width // 4, width // 2)
        pixels[y0:y0 + h, x0:x0 + w] = rng.integers(120, 255, 3, dtype=np.uint8)
    return pixels
