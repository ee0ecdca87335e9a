"""convert_tf_checkpoint: every variable used or accounted for; a missing, extra, mis-shaped or
truncated one is an error naming it, and nothing is written.

The checkpoints are rebuilt without TensorFlow from the golden manifest of the official R50
checkpoint (every variable TF saved: model variables, ``global_step``, Momentum slots), with
zeros as values: these tests are about names, shapes and bytes, not numbers (the parity tests
in test_official_model.py check the numbers).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionkit.errors import InvalidDataError
from fashionkit.modeling import load_checkpoint
from fashionkit.modeling.official import OfficialAttributeMaskRCNN, convert_tf_checkpoint
from tests.modeling.official_cases import load_manifest
from tests.modeling.tensorbundle_writer import write_bundle

Variables = dict[str, tuple[str, np.ndarray]]


@pytest.fixture(scope="module")
def manifest() -> list[dict]:
    return load_manifest("r50")


def _variables(manifest: list[dict], slots: bool) -> Variables:
    out: Variables = {}
    for var in manifest:
        name, dtype, shape = var["name"], var["dtype"], tuple(var["shape"])
        if not slots and name.endswith("/Momentum"):
            continue
        out[name] = (dtype, np.zeros(shape, dtype=np.int64 if dtype == "int64" else np.float32))
    return out


def _write(tmp_path: Path, variables: Variables) -> Path:
    prefix = tmp_path / "ckpt" / "model.ckpt"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_bundle(prefix, variables)
    return prefix


def _expect_error(prefix: Path, out: Path, *needles: str) -> str:
    with pytest.raises(InvalidDataError) as info:
        convert_tf_checkpoint(prefix, out)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert not out.exists() and not list(out.parent.glob(out.name + "*"))
    return message


def test_full_checkpoint_converts_every_variable_accounted_for(tmp_path, manifest):
    prefix = _write(tmp_path, _variables(manifest, slots=True))
    out = tmp_path / "out" / "model.pt"
    report = convert_tf_checkpoint(prefix, out, image_size=512)
    assert report.out == out and report.backbone == "resnet50"
    names = {v["name"] for v in manifest}
    assert report.variables_used + len(report.variables_skipped) == len(names)
    assert report.variables_skipped["global_step"] == "training step counter"
    slots = {n for n in names if n.endswith("/Momentum")}
    assert slots and slots <= set(report.variables_skipped)
    assert set(report.variables_skipped) == slots | {"global_step"}
    assert report.parameters == 46_365_839
    data = torch.load(out, map_location="cpu", weights_only=True)
    assert data["recipe"]["data"]["transform"] == "official"
    assert data["recipe"]["data"]["image_size"] == 512
    assert data["config"]["architecture"] == "official"
    assert data["config"]["backbone"] == "resnet50"
    model = load_checkpoint(out)
    assert isinstance(model, OfficialAttributeMaskRCNN) and not model.training


@pytest.fixture(scope="module")
def model_variables(manifest) -> Variables:
    return _variables(manifest, slots=False)


def test_missing_variable(tmp_path, model_variables):
    variables = dict(model_variables)
    del variables["fpn/p6/kernel"]
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt", "'fpn/p6/kernel'", "missing")


def test_missing_heads_variable(tmp_path, model_variables):
    variables = dict(model_variables)
    del variables["mask_head/conv5-mask/bias"]
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt", "mask_head/conv5-mask/bias",
                  "missing")


def test_extra_variable(tmp_path, model_variables):
    variables = dict(model_variables)
    variables["fpn/p8/kernel"] = ("float32", np.zeros((3, 3, 256, 256), np.float32))
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt", "'fpn/p8/kernel'", "extra")


def test_slot_of_an_untrained_variable_is_extra(tmp_path, model_variables):
    variables = dict(model_variables)
    variables["fpn/p3-bn/moving_mean/Momentum"] = ("float32", np.zeros(256, np.float32))
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt",
                  "'fpn/p3-bn/moving_mean/Momentum'", "extra")


def test_mis_shaped_variable(tmp_path, model_variables):
    variables = dict(model_variables)
    variables["rpn_head/rpn-class/kernel"] = ("float32", np.zeros((1, 1, 256, 4), np.float32))
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt",
                  "'rpn_head/rpn-class/kernel'", "[1, 1, 256, 4]", "[1, 1, 256, 3]")


def test_mis_shaped_slot(tmp_path, model_variables):
    variables = dict(model_variables)
    variables["fpn/p6/kernel/Momentum"] = ("float32", np.zeros((3, 3, 256, 128), np.float32))
    _expect_error(_write(tmp_path, variables), tmp_path / "m.pt", "'fpn/p6/kernel/Momentum'")


def test_truncated_checkpoint(tmp_path, model_variables):
    prefix = _write(tmp_path, model_variables)
    data = Path(f"{prefix}.data-00000-of-00001")
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) - 1000)
    last = sorted(model_variables)[-1]  # the bundle holds the variables in name order
    _expect_error(prefix, tmp_path / "m.pt", f"'{last}'", "truncated")


def test_corrupted_variable_is_an_error_and_the_old_file_stays(tmp_path, model_variables):
    prefix = _write(tmp_path, model_variables)
    data = Path(f"{prefix}.data-00000-of-00001")
    with open(data, "r+b") as f:
        f.seek(100)
        f.write(b"\x01\x02\x03\x04")
    out = tmp_path / "keep.pt"
    out.write_bytes(b"previous")
    with pytest.raises(InvalidDataError, match="checksum"):
        convert_tf_checkpoint(prefix, out)
    assert out.read_bytes() == b"previous"


def test_not_an_official_checkpoint(tmp_path):
    prefix = _write(tmp_path, {"dense/kernel": ("float32", np.zeros((2, 2), np.float32))})
    _expect_error(prefix, tmp_path / "m.pt", "no ResNet variables")
