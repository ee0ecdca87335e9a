"""The golden data of the official-model parity tests (``golden/official``), without TensorFlow.

The checkpoints the official code ran are not committed (hundreds of megabytes): the tests rebuild
them from the variables manifest and the weight rule (``official_cases.weight_for``) with
``tensorbundle_writer.write_bundle``. The manifest holds the SHA-256 of the two files TensorFlow's
``tf.train.Saver`` wrote, so a rebuilt checkpoint that hashes the same is that checkpoint, byte for
byte: what the parity tests load is what TensorFlow ran. The slow test reruns the generator with
TensorFlow (``~/tfref``) and compares everything with the committed files.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from fashionkit.modeling.tensorbundle import TensorBundle
from tests.modeling.official_cases import (
    CASES,
    GLOBAL_STEP,
    GOLDEN,
    NUM_ATTRIBUTES,
    NUM_CLASSES,
    case_name,
    checkpoint_variables,
    load_manifest,
    test_photo,
    weight_for,
)
from tests.modeling.tensorbundle_writer import write_bundle

TFREF = Path.home() / "tfref" / "bin" / "python"
SCRIPT = Path(__file__).parent / "golden" / "make_official.py"
# The official model's variables for the two backbones: (count, parameters) as its smoke.py
# prints them (395 / 46.4M and 650 / 65.5M), exactly.
MODEL_VARIABLES = {"r50": (395, 46_430_735), "r101": (650, 65_475_087)}
LEVELS = range(3, 8)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_bn_statistic(name: str) -> bool:
    return name.endswith(("/moving_mean", "/moving_variance"))


@pytest.mark.parametrize("backbone", ["r50", "r101"])
def test_manifest_is_a_training_checkpoint(backbone):
    variables = {v["name"]: v for v in load_manifest(backbone)}
    assert variables.pop("global_step") == {"name": "global_step", "shape": [], "dtype": "int64"}
    slots = {n: v for n, v in variables.items() if n.endswith("/Momentum")}
    model = {n: v for n, v in variables.items() if n not in slots}
    count, params = MODEL_VARIABLES[backbone]
    assert len(model) == count
    assert sum(int(np.prod(v["shape"])) for v in model.values()) == params
    assert all(v["dtype"] == "float32" for v in variables.values())
    # one Momentum slot per trainable variable (all but the BatchNorm moving statistics)
    trainable = {n for n in model if not _is_bn_statistic(n)}
    assert {n[: -len("/Momentum")] for n in slots} == trainable
    for name, slot in slots.items():
        assert slot["shape"] == model[name[: -len("/Momentum")]]["shape"], name


@pytest.fixture(scope="module", params=["r50", "r101"])
def rebuilt(request, tmp_path_factory):
    backbone = request.param
    prefix = tmp_path_factory.mktemp(backbone) / "model.ckpt"
    write_bundle(prefix, {name: (dtype, value) for name, dtype, value in
                          checkpoint_variables(backbone)})
    return backbone, prefix


def test_rebuilt_checkpoint_is_byte_identical_to_the_one_tensorflow_saved(rebuilt):
    backbone, prefix = rebuilt
    with open(GOLDEN / f"{backbone}-variables.json", encoding="utf-8") as f:
        sha = json.load(f)["tf_checkpoint_sha256"]
    if sha is None:
        pytest.skip(f"{backbone}: the TF checkpoint's SHA-256 is not recorded yet (make_official.py)")
    assert _sha256(Path(f"{prefix}.index")) == sha["index"]
    assert _sha256(Path(f"{prefix}.data-00000-of-00001")) == sha["data-00000-of-00001"]


def test_rebuilt_checkpoint_reads_back_through_fashionkit(rebuilt):
    backbone, prefix = rebuilt
    bundle = TensorBundle(prefix)
    manifest = load_manifest(backbone)
    assert bundle.names() == [v["name"] for v in manifest]
    for var in manifest:
        entry = bundle.entry(var["name"])
        assert (entry.dtype, list(entry.shape)) == (var["dtype"], var["shape"]), var["name"]
    assert bundle.read("global_step") == GLOBAL_STEP
    picks = [v for v in manifest if v["name"] != "global_step"][::37]
    picks += [v for v in manifest if v["name"].startswith("fast_rcnn_head/class-predict")]
    for var in picks:
        want = weight_for(var["name"], tuple(var["shape"]))
        np.testing.assert_array_equal(bundle.read(var["name"]), want, err_msg=var["name"])


def test_weight_rule_is_deterministic_and_distinct_per_name():
    a = weight_for("resnet50/conv2d_3/kernel", (3, 3, 64, 64))
    np.testing.assert_array_equal(a, weight_for("resnet50/conv2d_3/kernel", (3, 3, 64, 64)))
    b = weight_for("resnet50/conv2d_7/kernel", (3, 3, 64, 64))
    assert a.dtype == np.float32 and not np.allclose(a, b)
    stats = [weight_for(f"fpn/p3-bn/{s}", (256,)) for s in
             ("gamma", "beta", "moving_mean", "moving_variance")]
    for i in range(4):  # four distinct, non-trivial BatchNorm statistics
        assert stats[i].std() > 0.05
        for j in range(i):
            assert not np.allclose(stats[i], stats[j])
    assert (stats[3] > 0).all()
    with pytest.raises(ValueError, match="no weight rule"):
        weight_for("fpn/l3/unknown", (3,))


def _load(backbone: str, size: int) -> dict[str, np.ndarray]:
    path = GOLDEN / f"{case_name(backbone, size)}.npz"
    if not path.exists():
        pytest.skip(f"{path.name} not generated yet (make_official.py)")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize(("backbone", "size", "photo_hw"), CASES,
                         ids=[case_name(b, s) for b, s, _ in CASES])
def test_golden_case_is_complete_and_meaningful(backbone, size, photo_hw):
    d = _load(backbone, size)
    h, w = photo_hw
    assert d["photo_shape"].tolist() == [h, w]
    assert int(d["photo_crc32"]) == zlib.crc32(test_photo(h, w).tobytes())
    scale = min(size / h, size / w)
    scaled = np.round(np.array([h, w]) * scale)
    np.testing.assert_allclose(d["image_info"], [[h, w], [size, size], scaled / [h, w], [0, 0]],
                               rtol=1e-6)
    assert d["image"].shape == (size, size, 3) and d["image"].dtype == np.float32
    sh, sw = int(scaled[0]), int(scaled[1])
    assert (d["image"][sh:] == 0).all() and (d["image"][:, sw:] == 0).all()  # zero padding
    assert np.abs(d["image"][:sh, :sw]).mean() > 0.3
    for lv in LEVELS:
        side = size // 2**lv
        channels = 256 if size == 256 else 16
        assert d[f"fpn_{lv}"].shape == (side, side, channels)
        assert d[f"rpn_scores_{lv}"].shape == (side, side, 3)
        assert d[f"rpn_boxes_{lv}"].shape == (side, side, 12)
        rms = np.sqrt(np.mean(d[f"fpn_{lv}"] ** 2))
        assert 0.2 < rms < 5, (lv, rms)  # O(1) activations
    # what make_official.py's docstring says: clipping to the whole S×S canvas, proposals
    # sorted by score and inside the canvas
    assert d["rpn_clip_shape"].tolist() == [size, size]
    assert (np.diff(d["proposal_scores"]) <= 0).all()
    assert d["proposals"].min() >= 0 and d["proposals"].max() <= size - 1
    rpn = np.concatenate([d[f"rpn_scores_{lv}"].ravel() for lv in LEVELS])
    assert rpn.std() > 1.0  # spread RPN logits: proposals are not decided by ties
    assert d["proposals"].shape == (1000, 4) and d["proposal_scores"].shape == (1000,)
    assert d["roi_features"].shape == (4, 7, 7, channels)
    k = 100 if size == 256 else 50
    assert d["class_logits"].shape == (k, NUM_CLASSES)
    assert d["box_deltas"].shape == (k, 4 * NUM_CLASSES)
    assert d["attribute_logits"].shape == (k, NUM_ATTRIBUTES)
    n = int(d["num_detections"])
    assert n >= 20, n
    assert d["detection_boxes"].shape == d["detection_boxes_photo"].shape == (n, 4)
    assert d["detection_attributes"].shape == (n, NUM_ATTRIBUTES)
    assert d["detection_masks"].shape == (n, 28, 28)
    classes = d["detection_classes"]
    assert ((classes >= 1) & (classes <= 46)).all() and len(np.unique(classes)) >= 5
    scores = d["detection_scores"]
    assert (np.diff(scores) <= 0).all() and scores[-1] >= 0.05
    # scores not tied: no two equal, and most detections more than 1e-4 (nearly half more than
    # 1e-3) from both neighbours, so their order does not hang on rounding
    gaps = -np.diff(scores)
    assert gaps.min() > 1e-6
    for tol, share in ((1e-4, 0.8), (1e-3, 0.45)):
        apart = np.ones(n, bool)
        apart[1:] &= gaps > tol
        apart[:-1] &= gaps > tol
        assert apart.sum() >= share * n, (tol, apart.sum())
    p5, p95 = np.percentile(d["detection_attributes"], [5, 95])
    assert p5 < 0.2 and p95 > 0.7  # attribute probabilities spread, not all about 0.5
    m5, m95 = np.percentile(d["detection_masks"], [5, 95])
    assert m5 < 0.2 and m95 > 0.8


@pytest.mark.slow
@pytest.mark.skipif(not TFREF.exists(), reason="needs the reference venv ~/tfref (TensorFlow)")
def test_golden_data_is_what_the_official_code_computes(tmp_path):
    """Reruns the generator with TensorFlow and compares every file with the committed one."""
    out = tmp_path / "official"
    subprocess.run([str(TFREF), str(SCRIPT), "--out", str(out)], check=True, timeout=7200)
    for backbone in ("r50", "r101"):
        name = f"{backbone}-variables.json"
        assert json.loads((out / name).read_text()) == json.loads((GOLDEN / name).read_text())
    for backbone, size, _ in CASES:
        want = _load(backbone, size)
        with np.load(out / f"{case_name(backbone, size)}.npz") as z:
            got = {k: z[k] for k in z.files}
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
            else:
                np.testing.assert_array_equal(got[key], value, err_msg=key)
