"""Convert an official Attribute-Mask R-CNN TensorFlow checkpoint (the published Fashionpedia
R50-FPN / R101-FPN ``model.ckpt``) into a fashionkit checkpoint, without TensorFlow.

Every variable of the checkpoint is accounted for, or the conversion fails:

- the model's variables (ResNet, FPN, RPN head, RoI heads) are converted (:mod:`.tf_weights`);
- ``global_step`` (the training step counter), the optimizer's slots of trained variables
  (``<variable>/Momentum`` — the official config trains with momentum — or the slots of the
  other optimizers the official code offers) and Adam's ``beta1_power``/``beta2_power`` are
  skipped, each with its reason in the :class:`ConversionReport`;
- anything else is *extra*; a model variable that is absent is *missing*; a variable (or a
  slot) of another shape than the model needs is *mis-shaped*; a shard shorter than the index
  says, or bytes that fail their CRC32C, are *truncated* / *corrupted* — each an
  :class:`~fashionkit.errors.InvalidDataError` naming the variable, and nothing is written.

The backbone (ResNet-50 or -101) is the checkpoint's own: its variables live under
``resnet50/`` or ``resnet101/``. The output is an ordinary fashionkit checkpoint (written
atomically): the ``official-r50`` / ``official-r101`` config, the ontology version, the
weights, and a recipe whose input pipeline is the official one (``DataConfig(transform=
"official", image_size=S)``, S = 1024 as the published models were trained and evaluated
unless ``image_size`` says otherwise); it loads with ``torch.load(weights_only=True)`` and
through :func:`fashionkit.modeling.load_checkpoint` and the Predictor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fashionkit.data.input_recipe import DataConfig
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.modeling.checkpoint import CHECKPOINT, atomic_save
from fashionkit.modeling.config import PRESETS, ModelConfig
from fashionkit.modeling.official import backbone, fpn, heads, rpn
from fashionkit.modeling.official.model import OfficialAttributeMaskRCNN
from fashionkit.modeling.tensorbundle import TensorBundle

__all__ = ["ConversionReport", "convert_tf_checkpoint", "official_state_dict",
           "official_variable_names", "DEFAULT_IMAGE_SIZE"]

#: The published models' input size (``attribute_maskrcnn_parser.output_size``).
DEFAULT_IMAGE_SIZE = 1024

#: Slot names TF optimizers give the copies they keep per trained variable.
_OPTIMIZER_SLOTS = {
    "Momentum": "momentum optimizer slot",
    "Adam": "Adam optimizer slot", "Adam_1": "Adam optimizer slot",
    "RMSProp": "RMSProp optimizer slot", "RMSProp_1": "RMSProp optimizer slot",
    "Adagrad": "Adagrad optimizer slot",
    "Adadelta": "Adadelta optimizer slot", "Adadelta_1": "Adadelta optimizer slot",
    "ExponentialMovingAverage": "moving average of the variable (not what the official "
                                "evaluation uses)",
}
_TRAINING_STATE = {
    "global_step": "training step counter",
    "beta1_power": "Adam optimizer state", "beta2_power": "Adam optimizer state",
}
_NOT_TRAINED = ("/moving_mean", "/moving_variance")


@dataclass
class ConversionReport:
    """What :func:`convert_tf_checkpoint` did: the file written, the backbone found
    (``resnet50``/``resnet101``), how many checkpoint variables became weights, the skipped
    ones with the reason, and the model's parameter count."""

    out: Path
    backbone: str
    variables_used: int
    variables_skipped: dict[str, str] = field(default_factory=dict)
    parameters: int = 0


def _parts(config: ModelConfig):
    return (("backbone.body.", backbone), ("backbone.fpn.", fpn), ("rpn.", rpn),
            ("roi_heads.", heads))


def official_variable_names(config: ModelConfig) -> set[str]:
    """Every TF variable the official model of ``config`` consumes."""
    names: set[str] = set()
    for _, part in _parts(config):
        names |= part.tf_variable_names(config)
    return names


def official_state_dict(variables: Mapping[str, np.ndarray], config: ModelConfig,
                        source: str = "checkpoint") -> dict[str, Tensor]:
    """The :class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN` state dict from
    the TF variables (extra ones are ignored here; :func:`convert_tf_checkpoint` checks them).
    Raises :class:`InvalidDataError` naming every missing or mis-shaped variable."""
    state: dict[str, Tensor] = {}
    problems: list[Problem] = []
    for prefix, part in _parts(config):
        try:
            state.update({prefix + k: v
                          for k, v in part.tf_to_state_dict(variables, config, source).items()})
        except InvalidDataError as err:
            problems.extend(err.problems)
    if problems:
        raise InvalidDataError(problems)
    return state


def _backbone_of(names: list[str], source: str) -> str:
    found = sorted({name.split("/", 1)[0] for name in names
                    if name.split("/", 1)[0] in ("resnet50", "resnet101")})
    if len(found) != 1:
        what = "no ResNet variables (resnet50/… or resnet101/…)" if not found else (
            f"variables of both {' and '.join(found)}")
        raise InvalidDataError([Problem(source, "variables",
                                        f"not an official R50/R101 Attribute-Mask R-CNN "
                                        f"checkpoint: it has {what}")])
    return found[0]


def _account(bundle: TensorBundle, expected: set[str], shapes: dict[str, tuple[int, ...]],
             source: str) -> dict[str, str]:
    """The skipped variables with their reasons; every other problem raised together."""
    names = set(bundle.names())
    problems: list[Problem] = [Problem(source, f"variable {name!r}", "missing")
                               for name in sorted(expected - names)]
    skipped: dict[str, str] = {}
    for name in sorted(names - expected):
        base, _, slot = name.rpartition("/")
        if name in _TRAINING_STATE:
            skipped[name] = _TRAINING_STATE[name]
        elif slot in _OPTIMIZER_SLOTS and base in expected and not base.endswith(_NOT_TRAINED):
            have = tuple(bundle.entry(name).shape)
            if have != shapes[base]:
                problems.append(Problem(source, f"variable {name!r}",
                                        f"has shape {list(have)}, its variable {base!r} has "
                                        f"{list(shapes[base])}"))
            skipped[name] = _OPTIMIZER_SLOTS[slot]
        else:
            problems.append(Problem(source, f"variable {name!r}",
                                    "extra: not a variable of the official model, an optimizer "
                                    "slot or the step counter"))
    if problems:
        raise InvalidDataError(problems)
    return skipped


def convert_tf_checkpoint(prefix: str | Path, out: str | Path, *,
                          image_size: int | None = None) -> ConversionReport:
    """Convert the official TF checkpoint ``prefix`` (``…/model.ckpt``) into the fashionkit
    checkpoint ``out`` (module docstring). ``image_size``: the square input size the recipe
    stores (default :data:`DEFAULT_IMAGE_SIZE`); a multiple of 128 (the stride of P7)."""
    size = DEFAULT_IMAGE_SIZE if image_size is None else int(image_size)
    if size < 128 or size % 128:
        raise ValueError(f"image_size must be a positive multiple of 128, got {image_size}")
    bundle = TensorBundle(prefix)
    source = str(bundle.index_path)
    depth = _backbone_of(bundle.names(), source)
    config = PRESETS["official-r50" if depth == "resnet50" else "official-r101"]
    expected = official_variable_names(config)
    shapes = {name: tuple(bundle.entry(name).shape) for name in expected if name in bundle}
    skipped = _account(bundle, expected, shapes, source)
    variables = {name: bundle.read(name) for name in sorted(expected)}
    state = official_state_dict(variables, config, source)
    _check_complete(state, config)
    recipe = {"data": DataConfig(transform="official", image_size=size).to_dict()}
    payload = {**CHECKPOINT.header(config), "model": state, "recipe": recipe,
               "converted_from": {"kind": "tf-fashionpedia", "checkpoint": Path(prefix).name,
                                  "backbone": depth}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(payload, out)
    parameters = sum(v.numel() for k, v in state.items()
                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    return ConversionReport(out=out, backbone=depth, variables_used=len(expected),
                            variables_skipped=skipped, parameters=parameters)


def _check_complete(state: Mapping[str, Tensor], config: ModelConfig) -> None:
    """The state dict has exactly the model's keys and shapes (a bug otherwise)."""
    with torch.device("meta"):
        expected = OfficialAttributeMaskRCNN(config).state_dict()
    wrong = sorted(set(expected) ^ set(state)) + sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if wrong:
        raise AssertionError(f"converted state dict does not fit the model: {wrong[:5]}")
