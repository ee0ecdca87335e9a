"""Sharded detection in two processes, merged: the same files as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.errors import InvalidDataError
from fashionkit.inference.detect_job import DetectJob, merge_shards, run_detect

from .conftest import synthetic_photo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _load(path):
    return json.loads(path.read_text())


def test_two_processes_merge_to_the_single_process_result(untrained_checkpoint, tmp_path):
    photos = tmp_path / "photos"
    (photos / "b").mkdir(parents=True)
    for k, name in enumerate(["p1.jpg", "p2.png", "b/p1.jpg", "p4.jpg"]):
        Image.fromarray(synthetic_photo(70 + 6 * k, 60, seed=k)).save(photos / name)
    (photos / "p3.jpg").write_text("not a photo")
    # One photo per forward pass on both sides: a batch's partner changes oneDNN's blocking and
    # so the last bits of the features, which flip mask pixels of an untrained model (all
    # probabilities near 0.5). The merge, not the arithmetic, is under test.
    single = run_detect(DetectJob(untrained_checkpoint, tmp_path / "single", [str(photos)],
                                  score_threshold=0.0, batch_size=1))
    assert single.images_done == 4 and len(single.failures) == 1

    out = tmp_path / "sharded"
    args = ["detect", "--weights", str(untrained_checkpoint), str(photos), "--out", str(out),
            "--score-threshold", "0", "--workers", "0", "--batch-size", "1"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    # Shard 0 in a second process, shard 1 here at the same time (torchrun-style env).
    other = subprocess.Popen([sys.executable, "-m", "fashionkit.cli", *args, "--shard", "0/2"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    here = CliRunner().invoke(app, args, env={"RANK": "1", "WORLD_SIZE": "2"})
    _, err = other.communicate(timeout=300)
    # photos sorted: b/p1.jpg p1.jpg p2.png p3.jpg p4.jpg → shard 1 has p1.jpg and p3.jpg.
    assert other.returncode == 0, err
    assert here.exit_code == 1 and "p3.jpg" in here.output
    with pytest.raises(InvalidDataError, match="missing or not finished"):
        (out / "shards" / "000-of-002" / "done.json").rename(out / "moved.json")
        merge_shards(out)
    (out / "moved.json").rename(out / "shards" / "000-of-002" / "done.json")
    merged = CliRunner().invoke(app, ["detect-merge", "--out", str(out)])
    assert merged.exit_code == 0, merged.output

    assert _load(out / "images.json")["images"] == _load(tmp_path / "single" / "images.json")[
        "images"]
    got, want = _load(out / "results.json"), _load(tmp_path / "single" / "results.json")
    assert [(r["image_id"], r["category_id"], r["segmentation"]) for r in got] == [
        (r["image_id"], r["category_id"], r["segmentation"]) for r in want]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)
    assert [d["image_id"] for d in _load(out / "predictions.json")] == [1, 2, 3, 5]
    assert [p["source"] for p in _load(out / "failures.json")["problems"]] == [
        str(photos / "p3.jpg")]
    names = sorted(p.name for p in (out / "visuals").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "single" / "visuals").iterdir())
    assert "p1-2_overlay.png" in names  # the second p1.jpg, named as in a single run
