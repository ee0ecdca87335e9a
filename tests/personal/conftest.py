"""A tiny base detector and tiny corrected-photo datasets for the personal-model tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fashionkit.engine import apply_overrides, get_recipe
from fashionkit.modeling import build_model, model_config_from_preset, save_checkpoint
from tests.engine.conftest import make_shapes_dataset

# A cpu-tiny model at 64² that takes a fraction of a second per step on 2 cores.
TINY_MODEL = {"rpn_post_nms_top_n_train": 50, "rpn_pre_nms_top_n_train": 100,
              "box_batch_size_per_image": 32, "min_size": 64, "max_size": 64}
TINY_DATA = ["data.image_size=64", "data.batch_size=4", "data.num_workers=0"]


def make_base_checkpoint(path: Path, seed: int = 0) -> Path:
    """An untrained (seeded) cpu-tiny checkpoint at 64² with its recipe, as training writes."""
    torch.manual_seed(seed)
    model = build_model(model_config_from_preset("cpu-tiny", **TINY_MODEL))
    recipe = apply_overrides(get_recipe("cpu-tiny"), TINY_DATA)
    return save_checkpoint(model, path, extra={"recipe": recipe.to_dict()})


def make_dataset(root: Path, photos: int, seed: int = 0) -> Path:
    """``root/annotations.json`` + ``root/images/``: the export-dataset layout."""
    make_shapes_dataset(root, photos, size=64, seed=seed, name="annotations")
    return root


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    return make_base_checkpoint(tmp_path_factory.mktemp("base") / "base.pt")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("photos"), 6)


@pytest.fixture
def base_copy(tiny_base, tmp_path) -> Path:
    target = tmp_path / "base.pt"
    shutil.copyfile(tiny_base, target)
    return target


def wardrobe_with_photos(wardrobe, folder: Path, photos: int, size: int = 96) -> int:
    """Add ``photos`` synthetic photos to ``wardrobe`` with their true items (as a person who
    corrected every detection would have them); returns the photos added."""
    from fashionkit.wardrobe.ingest import ingest_photos
    from tests.service.fakes import TruthPredictor

    truth = TruthPredictor()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(photos):
        path = folder / f"photo-{index}.png"
        path.write_bytes(truth.photo(index, size=size))
        paths.append(path)
    report = ingest_photos(wardrobe, truth, paths, min_score=0.5)
    assert not report.problems
    return len(paths) - len(report.skipped)
