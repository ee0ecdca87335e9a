"""The variables of the TensorFlow-written test checkpoint (``golden/tensorbundle``), as a rule."""

import numpy as np


def expected_variables() -> dict[str, tuple[str, object]]:
    """name → (dtype, values). Names are long and share prefixes, and there are enough of them
    to fill several index blocks, as in a real detector's checkpoint."""
    out: dict[str, tuple[str, object]] = {}
    rng = np.random.RandomState(7)
    for level in range(2, 7):
        for j in range(12):
            base = f"resnet50/block_group{level}/conv2d_{j}"
            out[f"{base}/kernel"] = ("float32", rng.randn(3, 3, 2, j + 1).astype(np.float32))
            out[f"{base}/kernel/Momentum"] = ("float32", np.zeros((3, 3, 2, j + 1), np.float32))
            out[f"{base}/batch_normalization/moving_variance"] = (
                "float32", (rng.rand(j + 1) + 0.5).astype(np.float32))
    out["global_step"] = ("int64", np.int64(270000))
    out["scalar"] = ("float32", np.float32(-1.5))
    out["empty"] = ("float32", np.zeros((0, 4), np.float32))
    out["half"] = ("float16", np.linspace(-2, 2, 7).astype(np.float16))
    # bfloat16 values exactly representable (8 significant bits), so widening is exact
    out["bf16"] = ("bfloat16", (np.arange(-8, 8) * 0.25).astype(np.float32).reshape(4, 4))
    out["int32"] = ("int32", np.arange(-3, 3, dtype=np.int32).reshape(2, 3))
    out["flags"] = ("bool", np.array([True, False, True]))
    out["names"] = ("string", np.array([b"a", b"bc"]))
    return out
