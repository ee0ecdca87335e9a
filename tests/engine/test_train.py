"""End-to-end training on a tiny shapes set: run folder contents, resume equality, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from fashionkit.engine import RunFolderError, apply_overrides, get_recipe, train
from fashionkit.engine.callbacks import TABLE4_COLUMNS
from fashionkit.modeling import load_checkpoint, model_config_from_preset, read_checkpoint

TINY = ["data.image_size=64", "data.batch_size=4", "data.num_workers=0", "epochs=2",
        "model.rpn_post_nms_top_n_train=50", "model.box_batch_size_per_image=32"]


def tiny_recipe(*extra: str):
    return apply_overrides(get_recipe("cpu-tiny"), [*TINY, *extra])


class StopAfterFirstEpoch(L.Callback):
    """Simulates an interruption right after epoch 1's checkpoint."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


class BatchLog(L.Callback):
    """The image ids of every training batch, by epoch."""

    def __init__(self):
        self.batches: list[tuple[int, list[int]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((trainer.current_epoch, [int(t["image_id"]) for t in batch[1]]))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def test_run_folder_has_table4_metrics_curves_config_and_a_safe_checkpoint(shapes, tmp_path):
    train_json, val_json, images = shapes
    run = tmp_path / "run"
    result = train(tiny_recipe("eval_every=2", "epochs=3"), train_json, val_json, images, run,
                   evaluate=False, progress=False)
    assert result.epochs_completed == 3
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    header = list(rows[0])
    assert header[1:7] == list(TABLE4_COLUMNS)
    for col in (*TABLE4_COLUMNS[:3], "train_rpn_class_loss", "train_mrcnn_attribute_loss",
                "train_loss_box_reg", "train_loss_classifier", "train_loss_mask"):
        values = [float(r[col]) for r in rows]
        assert all(v == v and v >= 0 for v in values), col  # finite, not NaN
    # Validation ran only after epoch 2: epochs 1 and 3 have no val numbers (not stale ones).
    for col in (*TABLE4_COLUMNS[3:], "val_rpn_class_loss", "val_mrcnn_attribute_loss"):
        assert float(rows[0][col]) != float(rows[0][col]), col  # NaN
        assert float(rows[1][col]) >= 0, col
        assert float(rows[2][col]) != float(rows[2][col]), col
    assert (run / "loss_curves.png").stat().st_size > 10_000
    from fashionkit.engine import load_recipe
    from fashionkit.engine.train import resolve_precision

    # config.yaml is the recipe as run: "auto" precision recorded as what it resolved to.
    assert load_recipe(run / "config.yaml").precision == resolve_precision("auto") != "auto"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # Both the Lightning checkpoint and model.pt load with weights_only=True.
    torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    model = load_checkpoint(run / "model.pt")
    recipe = tiny_recipe()
    assert model.config == model_config_from_preset(recipe.model_preset, **recipe.model)
    with pytest.raises(RunFolderError, match="--resume"):
        train(tiny_recipe(), train_json, val_json, images, run, evaluate=False, progress=False)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(shapes, tmp_path):
    train_json, val_json, images = shapes
    log_a, log_b, log_c = BatchLog(), BatchLog(), BatchLog()
    straight = train(tiny_recipe(), train_json, val_json, images, tmp_path / "a",
                     evaluate=False, progress=False, callbacks=[log_a])
    part = train(tiny_recipe(), train_json, val_json, images, tmp_path / "b", evaluate=False,
                 progress=False, callbacks=[StopAfterFirstEpoch(), log_b])
    assert part.epochs_completed == 1
    resumed = train(None, train_json, val_json, images, tmp_path / "b", resume=True,
                    evaluate=False, progress=False, callbacks=[log_c])
    assert resumed.epochs_completed == 2
    # Each epoch draws its own batch order, and the resumed epoch draws the same one.
    by_epoch = [[ids for e, ids in log_a.batches if e == k] for k in (0, 1)]
    assert by_epoch[0] != by_epoch[1]
    assert log_b.batches + log_c.batches == log_a.batches
    a, b = _weights(straight.model_path), _weights(resumed.model_path)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The resumed table keeps epoch 1 and adds epoch 2, identical to the straight run.
    assert [r["epoch"] for r in resumed.metrics] == [1.0, 2.0]
    for col in TABLE4_COLUMNS:
        assert resumed.metrics[1][col] == pytest.approx(straight.metrics[1][col], rel=1e-6)


@pytest.mark.timeout(600)
def test_ddp_two_cpu_processes_train_and_write_one_checkpoint(shapes, tmp_path):
    train_json, val_json, images = shapes
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "fashionkit.cli", "train", "--train", str(train_json),
           "--val", str(val_json), "--images", str(images), "--out", str(run),
           "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--no-eval",
           "--no-progress", *[a for kv in TINY for a in ("--set", kv)], "--set", "epochs=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=540)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert "All distributed processes registered. Starting with 2 processes" in proc.stderr + proc.stdout
    # One process writes: last and best (by val_loss).
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    assert (run / "model.pt").is_file()
    with (run / "metrics.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 1


class LRLog(L.Callback):
    """The LR of every optimiser step and the module's budget clock at each batch."""

    def __init__(self):
        self.lrs: list[float] = []
        self.clock: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.clock.append(pl_module._train_seconds())


def test_time_budget_drives_the_schedule_to_its_end(shapes, tmp_path, monkeypatch):
    from fashionkit.engine.module import DetectionModule, effective_lr

    train_json, val_json, images = shapes
    recipe = tiny_recipe("optim.schedule=cosine", "optim.final_factor=0", "optim.warmup_steps=0",
                         "max_minutes=10")
    base = effective_lr(recipe, 1)
    # The real clock is read from Lightning's Timer: it runs and is what the schedule sees.
    real = LRLog()
    train(recipe, train_json, val_json, images, tmp_path / "real", evaluate=False,
          progress=False, callbacks=[real])
    assert real.clock[0] >= 0 and real.clock[-1] > real.clock[0]
    # 4 steps (2 epochs × 2 batches). By steps alone the cosine is at 1, .85, .5, .15; with a
    # clock that spends the 10-minute budget by step 2 it is at 1, .5, 0, 0.
    monkeypatch.setattr(DetectionModule, "_train_seconds", lambda self: self.global_step * 300.0)
    fake = LRLog()
    train(recipe, train_json, val_json, images, tmp_path / "fake", evaluate=False,
          progress=False, callbacks=[fake])
    assert [lr / base for lr in fake.lrs] == pytest.approx([1.0, 0.5, 0.0, 0.0], abs=1e-6)
    steps_only = LRLog()
    monkeypatch.setattr(DetectionModule, "_train_seconds", lambda self: 0.0)
    train(recipe, train_json, val_json, images, tmp_path / "steps", evaluate=False,
          progress=False, callbacks=[steps_only])
    assert [lr / base for lr in steps_only.lrs] == pytest.approx(
        [1.0, 0.853553, 0.5, 0.146447], abs=1e-5)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gradient_clipping_applies_with_the_fused_optimizer(shapes, tmp_path, precision):
    # SGD at LR 1 with gradients clipped to norm 1e-9 barely moves the weights; unclipped it
    # moves them a lot. Runs through the same fused optimizer the recipes use.
    train_json, val_json, images = shapes
    moved = {}
    for clip in ("1.0e-9", "null"):
        recipe = tiny_recipe("epochs=1", f"precision={precision}", "optim.optimizer=sgd",
                             "optim.lr=1.0", "optim.scale_lr=false", "optim.warmup_steps=0",
                             "optim.momentum=0.0", "optim.weight_decay=0.0",
                             f"optim.grad_clip={clip}")
        torch.manual_seed(0)
        from fashionkit.engine.train import model_config_for
        from fashionkit.modeling import build_model

        L.seed_everything(recipe.seed, workers=True, verbose=False)
        start = build_model(model_config_for(recipe)).state_dict()
        result = train(recipe, train_json, val_json, images, tmp_path / clip, evaluate=False,
                       progress=False)
        end = _weights(result.model_path)
        key = "roi_heads.box_predictor.cls_score.weight"
        moved[clip] = float((end[key] - start[key]).abs().max())
    assert moved["1.0e-9"] < 1e-6 < 1e-2 < moved["null"]


@pytest.mark.parametrize("text", ["²", "two", "1.5", "0,", "-2"])
def test_train_cli_rejects_a_bad_device_count_by_name(shapes, tmp_path, text):
    from typer.testing import CliRunner

    from fashionkit.cli import app
    from fashionkit.cli.train import parse_devices

    train_json, _, images = shapes
    result = CliRunner().invoke(app, ["train", "--train", str(train_json), "--images",
                                      str(images), "--out", str(tmp_path / "r"),
                                      "--devices", text])
    assert result.exit_code == 2, result.output
    assert "--devices" in result.output and "device count" in result.output
    assert not (tmp_path / "r").exists()
    assert parse_devices("2") == 2 and parse_devices("-1") == -1
    assert parse_devices("auto") == "auto" and parse_devices("0,1") == "0,1"
