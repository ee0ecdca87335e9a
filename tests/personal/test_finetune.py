"""finetune_personal on a tiny dataset with a tiny model: it trains, writes a checkpoint the
Predictor reads, reports monotone progress, stops on cancel leaving nothing, refuses bad input."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from fashionkit.errors import InvalidDataError
from fashionkit.inference import Predictor
from fashionkit.modeling import read_checkpoint
from fashionkit.personal.finetune import dataset_photos, finetune_personal


def test_finetune_trains_writes_a_usable_checkpoint_and_reports_monotone_progress(
        tiny_base, tiny_dataset, tmp_path):
    seen: list[tuple[float, str]] = []
    out = tmp_path / "personal.pt"
    result = finetune_personal(tiny_base, tiny_dataset, out, max_minutes=2.0, max_steps=3,
                               progress=lambda f, m: seen.append((f, m)))
    assert not result.cancelled and result.path == out and result.steps == 3
    assert result.photos == dataset_photos(tiny_dataset) == 6
    assert 0 < result.minutes < 2.0
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any("step" in m for _, m in seen)
    base, personal = read_checkpoint(tiny_base), read_checkpoint(out)
    # Same architecture and input recipe as the base; the trained layers moved, the frozen not.
    assert personal["recipe"]["data"]["image_size"] == base["recipe"]["data"]["image_size"]
    assert personal["personal"]["photos"] == 6 and personal["personal"]["steps"] == 3
    moved = [k for k in base["model"] if not torch.equal(base["model"][k], personal["model"][k])]
    assert any(k.startswith("roi_heads.") for k in moved)
    assert any(k.startswith("backbone.body.layer4.") for k in moved)
    assert not any(k.startswith(("backbone.body.conv1.", "backbone.body.layer1."))
                   for k in moved), "frozen stages (and their BatchNorm statistics) stay"
    # The Predictor reads it as any checkpoint.
    photo = next((tiny_dataset / "images").iterdir())
    assert len(Predictor(out, score_threshold=0.0)([str(photo)])) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_cancel_stops_training_and_writes_nothing(tiny_base, tiny_dataset, tmp_path):
    cancel = threading.Event()
    steps: list[str] = []

    def progress(fraction: float, message: str) -> None:
        steps.append(message)
        if message.startswith("training: step 1"):
            cancel.set()

    out = tmp_path / "personal.pt"
    result = finetune_personal(tiny_base, tiny_dataset, out, max_minutes=2.0, max_steps=50,
                               progress=progress, cancel=cancel)
    assert result.cancelled and result.path is None
    assert result.steps == 1, "stops at the step after the request"
    assert list(tmp_path.iterdir()) == []


def test_cancelled_before_training_takes_no_step(tiny_base, tiny_dataset, tmp_path):
    cancel = threading.Event()
    cancel.set()
    result = finetune_personal(tiny_base, tiny_dataset, tmp_path / "p.pt", max_minutes=1.0,
                               cancel=cancel)
    assert result.cancelled and result.steps == 0 and not (tmp_path / "p.pt").exists()


def test_bad_input_is_refused_naming_the_file(tiny_base, tiny_dataset, tmp_path):
    with pytest.raises(InvalidDataError, match="annotations.json"):
        finetune_personal(tiny_base, tmp_path / "nowhere", tmp_path / "p.pt")
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    data = json.loads((tiny_dataset / "annotations.json").read_text())
    (empty / "annotations.json").write_text(json.dumps({**data, "annotations": []}))
    with pytest.raises(InvalidDataError, match="no photo with a corrected item"):
        finetune_personal(tiny_base, empty, tmp_path / "p.pt")
    not_a_model = tmp_path / "junk.pt"
    not_a_model.write_bytes(b"junk")
    with pytest.raises(InvalidDataError, match="junk.pt"):
        finetune_personal(not_a_model, tiny_dataset, tmp_path / "p.pt")
    assert not (tmp_path / "p.pt").exists()


def test_the_time_budget_bounds_the_whole_call(tiny_base, tiny_dataset, tmp_path):
    import time

    started = time.monotonic()
    marks: list[float] = []
    result = finetune_personal(
        tiny_base, tiny_dataset, tmp_path / "p.pt", max_minutes=0.25,
        progress=lambda f, m: marks.append(time.monotonic()) if "train" in m else None)
    assert result.steps >= 1 and result.path is not None
    # It stops before a step that would end past the budget; only reading the data and the
    # first step, taken whatever they cost, may carry it over (on a busy machine they can).
    total = time.monotonic() - started
    first_step_done = marks[1] - started
    assert total <= max(15.0, first_step_done) + 3.0, (total, first_step_done)
    assert result.minutes * 60 <= total
