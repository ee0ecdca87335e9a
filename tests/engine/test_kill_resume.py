"""``kill -9`` of a real ``fashionkit train`` process, then ``--resume``: the final weights are
bit-identical to an uninterrupted run (CPU, deterministic), whether the process died in the
middle of an epoch or in the middle of writing a checkpoint (which must leave the previous
checkpoint intact: writes are atomic, see ``fashionkit/engine/checkpoint_io.py``).

The process runs through :mod:`tests.engine.killable`, whose hooks only say where training is
and hold the process at the chosen moment until the test kills it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fashionkit.modeling import read_checkpoint
from fashionkit.modeling.checkpoint import safe_torch_load

from .test_train import TINY

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 2  # 2 batches of 4 images per epoch


def _command(shapes, run: Path, *extra: str) -> list[str]:
    train_json, val_json, images = shapes
    return [sys.executable, "-m", "tests.engine.killable", "train", "--train", str(train_json),
            "--val", str(val_json), "--images", str(images), "--out", str(run),
            "--accelerator", "cpu", "--no-eval", "--no-progress",
            *[a for kv in TINY for a in ("--set", kv)], "--set", f"epochs={EPOCHS}", *extra]


def _env(**hooks: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FK_")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **hooks}


def _run(cmd: list[str], **hooks: str) -> None:
    proc = subprocess.run(cmd, cwd=REPO, env=_env(**hooks), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _run_and_kill(cmd: list[str], progress: Path, when: str, **hooks: str) -> list[str]:
    """Start ``cmd``, SIGKILL it once ``when`` is the last line of the progress file (the hook
    is then holding the process there); returns the progress lines."""
    log = progress.with_suffix(".log")  # a file, not a pipe: a full pipe would stall the run
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(FK_PROGRESS=str(progress), **hooks),
                                stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    try:
        while True:
            lines = progress.read_text().splitlines() if progress.exists() else []
            if lines and lines[-1] == when:
                break
            if proc.poll() is not None:
                raise AssertionError(f"exited ({proc.returncode}) before '{when}': "
                                     f"{lines}\n{log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, f"never reached '{when}': {lines}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return lines


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run / "model.pt")["model"]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The shapes data and the weights of an uninterrupted run."""
    from .conftest import make_shapes_dataset

    root = tmp_path_factory.mktemp("shapes")
    shapes = (make_shapes_dataset(root, 8, seed=0, name="train"),
              make_shapes_dataset(root, 4, seed=1, name="val"), root / "images")
    run = root / "straight"
    _run(_command(shapes, run))
    return shapes, _weights(run)


@pytest.mark.timeout(900)
def test_kill_mid_epoch_and_mid_checkpoint_write_then_resume(straight, tmp_path):
    shapes, expected = straight
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    progress = tmp_path / "progress"

    # 1. Killed inside epoch 2, between its first step's loss and that step's update.
    lines = _run_and_kill(_command(shapes, run), progress, "1 0", FK_STALL_STEP="1 0")
    assert lines == ["0 0", "0 1", "1 0"]
    assert not (run / "model.pt").exists()
    assert safe_torch_load(ckpt)["epoch"] == 0  # epoch 1's checkpoint: what --resume uses

    # 2. Resumed, and killed again while writing epoch 2's checkpoint: half its bytes are in
    # the temporary file when the process dies; the published checkpoint must be untouched.
    progress.unlink()
    before = ckpt.read_bytes()
    lines = _run_and_kill(_command(shapes, run, "--resume"), progress, "saving",
                          FK_STALL_SAVE="1")
    assert lines == ["1 0", "1 1", "saving"]
    assert ckpt.read_bytes() == before
    assert ckpt.with_name("last.ckpt.tmp").stat().st_size < len(before)  # the torn write

    # 3. Resumed to the end: the weights are exactly those of the uninterrupted run.
    _run(_command(shapes, run, "--resume"))
    _assert_same_weights(_weights(run), expected)
    assert safe_torch_load(ckpt)["epoch"] == EPOCHS - 1


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_repeated_kills_at_random_moments_then_resume(straight, tmp_path):
    """Killed again and again at random moments — a random number of steps into each launch,
    plus a random fraction of a second (sometimes inside a checkpoint write) — until it
    finishes, resuming each time (starting over when there is no checkpoint yet): still the
    uninterrupted run's weights."""
    shapes, _ = straight
    epochs = 10
    reference = tmp_path / "reference"
    _run(_command(shapes, reference, "--set", f"epochs={epochs}"))
    run = tmp_path / "run"
    progress = tmp_path / "progress"
    rng = random.Random(0)
    kills = 0
    while not (run / "model.pt").exists():
        resume = (run / "checkpoints" / "last.ckpt").exists()
        cmd = _command(shapes, run, "--set", f"epochs={epochs}", *(["--resume"] if resume else []))
        progress.unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(FK_PROGRESS=str(progress)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        steps = rng.randint(2, 5)
        while proc.poll() is None:
            done = len(progress.read_text().splitlines()) if progress.exists() else 0
            if done >= steps:
                time.sleep(rng.uniform(0.0, 0.5))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        assert proc.wait(timeout=600) in (0, -signal.SIGKILL)
        assert kills < 60
    assert kills >= 3
    _assert_same_weights(_weights(run), _weights(reference))
