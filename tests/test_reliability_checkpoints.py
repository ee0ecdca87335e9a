"""Every way a weights file gets loaded refuses a crafted pickle — a file that would run code
when unpickled — with a message naming the file, and runs none of it: ``load_checkpoint``,
``load_weights``, the ``Predictor``, ``fashionkit detect --weights``, ``fashionkit wardrobe
add --weights``, ``fashionkit serve --weights`` (the service), ``fashionkit train --weights``
and ``fashionkit train --resume`` (a crafted ``last.ckpt``)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.errors import InvalidDataError

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")


class _Exploit:
    """Unpickling this creates the file ``path``: proof that code ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(params=["pickle", "torch.save", "lightning"])
def crafted(request, tmp_path) -> tuple[Path, Path]:
    """``(crafted file, marker)``: a plain pickle, a torch zip file, and a Lightning-style
    training checkpoint, each with an object that would create ``marker`` when unpickled."""
    marker = tmp_path / "exploit-ran"
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    exploit = _Exploit(marker)
    if request.param == "pickle":
        with path.open("wb") as fh:
            pickle.dump({"format": "fashionkit-checkpoint", "model": exploit}, fh)
    elif request.param == "torch.save":
        torch.save({"format": "fashionkit-checkpoint", "config": {}, "model": exploit}, path)
    else:
        torch.save({"epoch": 0, "global_step": 2, "state_dict": {"model.x": torch.zeros(1)},
                    "loops": exploit, "pytorch-lightning_version": "2.6.0"}, path)
    assert not marker.exists()
    return path, marker


def _refused(err: BaseException | None, path: Path) -> None:
    assert isinstance(err, InvalidDataError), repr(err)
    [problem] = err.problems
    assert problem.source == str(path)
    assert problem.message.startswith("refused: the file holds Python objects"), problem
    assert "may run code" in problem.message


def test_library_loaders_refuse(crafted):
    from fashionkit.inference import Predictor
    from fashionkit.modeling import build_model, load_checkpoint, load_weights
    from fashionkit.modeling import model_config_from_preset as preset

    path, marker = crafted
    for load in (load_checkpoint, lambda p: load_weights(build_model(preset("cpu-tiny")), p),
                 Predictor):
        with pytest.raises(InvalidDataError) as err:
            load(path)
        _refused(err.value, path)
    assert not marker.exists()


def test_service_refuses(crafted, tmp_path):
    from fashionkit.service import create_app

    path, marker = crafted
    with pytest.raises(InvalidDataError) as err:
        create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data", path)
    _refused(err.value, path)
    assert not marker.exists()


@pytest.mark.parametrize("crafted", ["torch.save"], indirect=True)
def test_cli_commands_refuse(crafted, tmp_path):
    from tests.engine.conftest import make_shapes_dataset

    path, marker = crafted
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 30, 30)).save(photo)
    train_json = make_shapes_dataset(tmp_path / "data", 2)
    commands = [
        ["detect", str(photo), "--weights", str(path), "--out", str(tmp_path / "out")],
        ["wardrobe", "add", str(photo), "--weights", str(path),
         "--db", f"sqlite:///{tmp_path / 'w.sqlite'}"],
        ["serve", "--weights", str(path), "--db", f"sqlite:///{tmp_path / 's.sqlite'}",
         "--data-dir", str(tmp_path / "service"), "--port", "1"],
        ["train", "--train", str(train_json), "--images", str(tmp_path / "data" / "images"),
         "--out", str(tmp_path / "run"), "--weights", str(path), "--no-progress"],
    ]
    for args in commands:
        result = CliRunner().invoke(app, args)
        _refused(result.exception, path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Checkpoint directory")
@pytest.mark.parametrize("crafted", ["lightning", "pickle"], indirect=True)
def test_resume_refuses_a_crafted_last_checkpoint(crafted, tmp_path):
    from fashionkit.engine import apply_overrides, get_recipe, save_recipe, train
    from tests.engine.conftest import make_shapes_dataset

    path, marker = crafted
    run = path.parent.parent  # the crafted file is RUN/checkpoints/last.ckpt
    recipe = apply_overrides(get_recipe("cpu-tiny"), ["data.image_size=64", "data.num_workers=0",
                                                      "epochs=2"])
    save_recipe(recipe, run / "config.yaml")
    train_json = make_shapes_dataset(tmp_path / "data", 2)
    with pytest.raises(InvalidDataError) as err:
        train(None, train_json, None, tmp_path / "data" / "images", run, resume=True,
              evaluate=False, progress=False)
    _refused(err.value, path)
    assert not marker.exists()


def test_the_command_line_says_so_and_exits_2(tmp_path):
    """End to end in a real process: the message, the file, exit code 2, no traceback."""
    marker = tmp_path / "exploit-ran"
    path = tmp_path / "model.pt"
    torch.save({"model": _Exploit(marker)}, path)
    from PIL import Image

    Image.new("RGB", (32, 24)).save(tmp_path / "photo.png")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "fashionkit.cli", "detect", str(tmp_path),
                           "--weights", str(path), "--out", str(tmp_path / "out")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{path}: file: refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
