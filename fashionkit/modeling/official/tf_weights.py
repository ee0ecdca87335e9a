"""How a TensorFlow variable of the official model becomes a PyTorch state-dict entry.

TensorFlow stores a convolution kernel as HWIO and a dense kernel as (in, out); PyTorch wants
OIHW and (out, in). A BatchNorm layer's ``gamma``/``beta``/``moving_mean``/``moving_variance``
are ``weight``/``bias``/``running_mean``/``running_var``; ``num_batches_tracked`` has no
TensorFlow counterpart (and no effect in evaluation), so it is set to 0.

Each part of the model (backbone, FPN, RPN head, RoI heads) describes its variables as a
:data:`VariableMap` (TF name → (state-dict key, :data:`Kind`)); :func:`convert_variables` checks
every variable's presence and shape against the PyTorch module and converts it, collecting every
problem before raising one :class:`~fashionkit.errors.InvalidDataError` that names them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from fashionkit.errors import InvalidDataError, Problem

__all__ = ["Kind", "VariableMap", "batch_norm_entries", "conv_entries", "convert_variables",
           "dense_entries",
           "tf_shape"]

Kind = Literal["conv", "dense", "vector"]
VariableMap = dict[str, tuple[str, Kind]]

_BN_NAMES = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
             ("moving_variance", "running_var"))


def conv_entries(tf_scope: str, key: str, bias: bool) -> VariableMap:
    """``{scope}/kernel`` (and ``{scope}/bias``) → ``{key}.weight`` (and ``.bias``)."""
    out: VariableMap = {f"{tf_scope}/kernel": (f"{key}.weight", "conv")}
    if bias:
        out[f"{tf_scope}/bias"] = (f"{key}.bias", "vector")
    return out


def dense_entries(tf_scope: str, key: str) -> VariableMap:
    return {f"{tf_scope}/kernel": (f"{key}.weight", "dense"),
            f"{tf_scope}/bias": (f"{key}.bias", "vector")}


def batch_norm_entries(tf_scope: str, key: str) -> VariableMap:
    """The four variables of a TF BatchNormalization layer → a ``BatchNorm2d``'s entries."""
    return {f"{tf_scope}/{tf}": (f"{key}.{pt}", "vector") for tf, pt in _BN_NAMES}


def tf_shape(torch_shape: tuple[int, ...], kind: Kind) -> tuple[int, ...]:
    """The shape TensorFlow stores a tensor of ``torch_shape`` and ``kind`` in."""
    if kind == "conv":
        o, i, h, w = torch_shape
        return (h, w, i, o)
    if kind == "dense":
        o, i = torch_shape
        return (i, o)
    return tuple(torch_shape)


def _to_torch(value: np.ndarray, kind: Kind) -> Tensor:
    array = np.asarray(value, dtype=np.float32)
    if kind == "conv":
        array = array.transpose(3, 2, 0, 1)
    elif kind == "dense":
        array = array.T
    return torch.from_numpy(np.ascontiguousarray(array))


def convert_variables(variables: Mapping[str, np.ndarray], mapping: VariableMap,
                      module: nn.Module, source: str = "checkpoint") -> dict[str, Tensor]:
    """The full state dict of ``module`` from the TF ``variables`` named in ``mapping``.

    Every key of ``module.state_dict()`` must be the target of one mapping entry, except
    BatchNorm's ``num_batches_tracked`` (set to 0). A missing variable, or one whose shape is
    not what ``module`` needs, is a problem naming the variable; all are raised together.
    ``module`` may live on the meta device (only shapes are read)."""
    expected = module.state_dict()
    problems: list[Problem] = []
    out: dict[str, Tensor] = {}
    targets = {key for key, _ in mapping.values()}
    unmapped = [k for k in expected if k not in targets and not k.endswith("num_batches_tracked")]
    if unmapped:  # a bug in a variable map, not in the checkpoint
        raise AssertionError(f"no TensorFlow variable maps to {unmapped[:5]}")
    for name, (key, kind) in mapping.items():
        want = tf_shape(tuple(expected[key].shape), kind)
        if name not in variables:
            problems.append(Problem(source, f"variable {name!r}", "missing"))
            continue
        value = variables[name]
        if not np.issubdtype(np.asarray(value).dtype, np.floating):
            problems.append(Problem(source, f"variable {name!r}",
                                    f"has dtype {np.asarray(value).dtype}, the model needs "
                                    "floats"))
            continue
        if tuple(value.shape) != want:
            problems.append(Problem(source, f"variable {name!r}",
                                    f"has shape {list(value.shape)}, the model needs "
                                    f"{list(want)}"))
            continue
        out[key] = _to_torch(value, kind)
    if problems:
        raise InvalidDataError(problems)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=value.dtype)
    return out
