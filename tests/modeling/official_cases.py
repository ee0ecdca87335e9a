"""The cases of the official-model parity tests, as rules (numpy only, no TensorFlow).

The golden data in ``golden/official`` was computed by the official TensorFlow code
(``golden/make_official.py``) from the weights :func:`weight_for` gives and the photo
:func:`test_photo` gives; the tests recompute both instead of storing hundreds of megabytes.

The weights are random but shaped so that the random network behaves like a trained one in the
ways the parity tests need: activations O(1) through every stage (inference BatchNorm uses the
stored moving statistics, so nothing renormalises a drifting scale), every BatchNorm's four
statistics non-trivial (a port that swaps gamma/beta or mean/variance, or forgets epsilon, gets
different numbers), RPN logits spread (proposals are not a tie-break lottery), class logits
spread enough that many proposals clear the 0.05 score threshold in several categories, and
attribute logits spread (probabilities far from a uniform 0.5).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "golden" / "official"

# (backbone, input size S, photo (height, width)): photos neither square nor of the input size,
# one landscape (long side = width) and one portrait, so both resize branches are exercised.
CASES: list[tuple[str, int, tuple[int, int]]] = [
    ("r50", 256, (300, 451)),
    ("r50", 384, (517, 389)),
    ("r101", 256, (517, 389)),
    ("r101", 384, (300, 451)),
]

# The value of ``global_step`` in the checkpoints: the R50 schedule's last step
# (``train.total_steps`` of r50fpn_amrcnn.yaml), as in a released checkpoint.
GLOBAL_STEP = 16875

NUM_CLASSES = 47  # background + 46 categories
NUM_ATTRIBUTES = 294


def case_name(backbone: str, size: int) -> str:
    """The stem of a case's golden file: ``r50-256`` → ``golden/official/r50-256.npz``."""
    return f"{backbone}-{size}"


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


# Gains of the prediction layers (spread of the outputs per unit spread of the inputs), set by
# running the official graph and looking at what each stage gives (make_official.py prints the
# properties the tests assert); every other kernel gets He's gain.
_GAIN = {
    "rpn_head/rpn-class": 1.6,
    "rpn_head/rpn-box": 0.15,
    "fast_rcnn_head/class-predict": 2.5,
    "fast_rcnn_head/attribute-predict": 2.0,
    "fast_rcnn_head/box-predict": 0.6,
    "mask_head/mask_fcn_logits": 1.5,
}


def _layer(name: str) -> str:
    return name.rsplit("/", 1)[0]


def _kernel(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    layer = _layer(name)
    if len(shape) == 4:
        kh, kw, cin, cout = shape
        if layer == "mask_head/conv5-mask":  # conv2d_transpose: (h, w, out, in), stride 2
            fan_in = cout
        else:
            fan_in = kh * kw * cin
    elif len(shape) == 2:
        fan_in = shape[0]
    else:
        raise ValueError(f"{name}: a kernel of shape {shape}")
    gain = _GAIN.get(layer, np.sqrt(2.0))  # He's gain: followed by BatchNorm + ReLU
    w = rng.standard_normal(shape) * (gain / np.sqrt(fan_in))
    # Each output's weights sum to zero over its inputs. Most inputs are ReLU outputs, all
    # positive: uncentred weights turn their common level into a large per-channel constant that
    # no BatchNorm removes at inference (the moving mean is random, not the data's), and the
    # constant, not the image, would then decide the ranking of classes, boxes and mask pixels.
    axes = (3,) if layer == "mask_head/conv5-mask" else tuple(range(w.ndim - 1))
    w -= w.mean(axis=axes, keepdims=True)
    return w.astype(np.float32)


def _bias(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    layer = _layer(name)
    if layer == "fast_rcnn_head/class-predict":
        b = rng.normal(0.0, 0.3, shape)
        # background: a strong prior, as a trained detector has; most proposals are background
        # and a few dozen clear the 0.05 score threshold, fewer than the 100 kept, so which
        # detections make the cut is not decided by near-ties at the 100th place
        b[0] = 14.0
        return b.astype(np.float32)
    if layer == "fast_rcnn_head/attribute-predict":
        return rng.normal(-1.0, 1.0, shape).astype(np.float32)
    if layer == "rpn_head/rpn-class":
        return rng.normal(0.0, 0.5, shape).astype(np.float32)
    return rng.normal(0.0, 0.1, shape).astype(np.float32)


_RESNET_BLOCKS = {"50": (3, 4, 6, 3), "101": (3, 4, 23, 3)}


def _resnet_roles(depth: str) -> list[tuple[int, str]]:
    """(stage, role) of ``resnet<depth>/conv2d_<i>`` and ``batch_normalization_<i>`` by index i
    (TF numbers layers in creation order, a BatchNorm after every conv): the stem (stage 1), then
    per bottleneck block of stages 2..5 the projection shortcut (first block only) and the
    branch's a, b, c."""
    roles = [(1, "stem")]
    for stage, blocks in enumerate(_RESNET_BLOCKS[depth], start=2):
        for b in range(blocks):
            roles += [(stage, r) for r in (["projection"] if b == 0 else []) + ["a", "b", "c"]]
    return roles


def _role(name: str, group: bool = False) -> str | None:
    """A ResNet layer's role (``"c"``), or with ``group`` its depth and stage (``"101/4"``)."""
    m = re.match(r"resnet(\d+)/(?:conv2d|batch_normalization)(?:_(\d+))?/", name)
    if not m or m.group(1) not in _RESNET_BLOCKS:
        return None
    stage, role = _resnet_roles(m.group(1))[int(m.group(2) or 0)]
    return f"{m.group(1)}/{stage}" if group else role


def _batch_norm(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    stat = name.rsplit("/", 1)[1]
    # gamma / sqrt(moving_variance) is about 1.1 on average: with He-scaled kernels a conv +
    # BatchNorm + ReLU then about keeps the spread of its input (smaller, the image's signal
    # fades layer after layer under the constant offsets that beta and the moving mean add, and
    # the offsets, not the image, decide the outputs). Offsets stay small for the same reason.
    if stat == "gamma":
        # The branch's last BatchNorm feeds the residual sum: smaller, so that the sum's scale
        # does not grow block after block (what a trained ResNet's small gammas there do).
        if _role(name) == "c":
            if _role(name, group=True) == "101/4":  # 23 blocks, not 6: a quarter of the variance
                return rng.uniform(0.15, 0.3, shape).astype(np.float32)
            return rng.uniform(0.3, 0.6, shape).astype(np.float32)
        # The FPN's BatchNorms (no ReLU after them) bring the pyramid back to about unit scale.
        if name.startswith("fpn/"):
            return rng.uniform(0.3, 0.5, shape).astype(np.float32)
        return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    if stat == "beta":
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if stat == "moving_mean":
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if stat == "moving_variance":
        return rng.uniform(0.6, 1.0, shape).astype(np.float32)
    raise ValueError(f"{name}: not a BatchNorm statistic")


_BN = re.compile(r"(^|/)(batch_normalization(_\d+)?|[a-z0-9-]*-bn(-\d+)?)/"
                 r"(gamma|beta|moving_mean|moving_variance)$")


def weight_for(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 value of the checkpoint variable ``name`` (no ``:0``) of shape ``shape``.

    Deterministic from the name (seeded by its CRC-32), so a test can rebuild any variable, and
    a port that mixes up two variables of the same shape gets different numbers. Momentum slots
    (``<var>/Momentum``) get small values of their own: a converter must skip them, not load them.
    ``global_step`` is not a float: see :data:`GLOBAL_STEP`.
    """
    shape = tuple(int(d) for d in shape)
    if name == "global_step":
        raise ValueError("global_step is an int64 scalar: use GLOBAL_STEP")
    rng = _rng(name)
    if name.endswith("/Momentum"):
        return (rng.standard_normal(shape) * 1e-3).astype(np.float32)
    if _BN.search(name):
        return _batch_norm(name, shape, rng)
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "kernel":
        return _kernel(name, shape, rng)
    if leaf == "bias":
        return _bias(name, shape, rng)
    raise ValueError(f"{name}: no weight rule for this variable")


def load_manifest(backbone: str) -> list[dict]:
    """The variables of the ``backbone`` checkpoint: ``[{"name", "shape", "dtype"}]`` by name."""
    with open(GOLDEN / f"{backbone}-variables.json", encoding="utf-8") as f:
        return json.load(f)["variables"]


def checkpoint_variables(backbone: str) -> Iterator[tuple[str, str, np.ndarray]]:
    """(name, dtype, value) of every variable of the ``backbone`` checkpoint, from the manifest
    and the weight rule: what ``tensorbundle_writer.write_bundle`` needs to rebuild the checkpoint
    TensorFlow saved."""
    for var in load_manifest(backbone):
        name, dtype, shape = var["name"], var["dtype"], tuple(var["shape"])
        if name == "global_step":
            yield name, dtype, np.array(GLOBAL_STEP, dtype=np.int64)
        else:
            yield name, dtype, weight_for(name, shape)


def test_photo(height: int, width: int) -> np.ndarray:
    """A smooth, textured RGB photo (uint8 H×W×3), deterministic from its size.

    Smooth enough that resizing is well-conditioned (no aliasing lottery between two correct
    bilinear implementations), textured enough that features differ from place to place: a few
    soft blobs of different colours over gradients and slow stripes.
    """
    y = np.linspace(0.0, 1.0, height, dtype=np.float64)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float64)[None, :]
    r = 0.5 + 0.3 * np.sin(2 * np.pi * (1.5 * x + 0.7 * y)) + 0.2 * (y - 0.5)
    g = 0.5 + 0.3 * np.cos(2 * np.pi * (2.3 * y - 0.4 * x)) - 0.2 * (x - 0.5)
    b = 0.5 + 0.25 * np.sin(2 * np.pi * (3.1 * x * y + 0.2)) + 0.1 * np.cos(9 * x)
    img = np.stack([r + 0 * x, g + 0 * y, b], axis=-1)
    blobs = [  # (cy, cx, radius, colour)
        (0.30, 0.35, 0.12, (0.9, 0.1, 0.1)),
        (0.65, 0.60, 0.18, (0.1, 0.2, 0.8)),
        (0.45, 0.80, 0.08, (0.95, 0.9, 0.2)),
        (0.80, 0.25, 0.10, (0.1, 0.7, 0.3)),
        (0.15, 0.70, 0.06, (0.05, 0.05, 0.05)),
    ]
    for cy, cx, rad, colour in blobs:
        w = np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (2 * rad**2)))[..., None]
        img = img * (1 - w) + np.asarray(colour)[None, None, :] * w
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


test_photo.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
