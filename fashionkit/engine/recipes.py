"""Training recipes: typed, frozen, loadable from and savable to YAML, overridable by dotted keys.

A :class:`Recipe` groups the model preset (and overrides), the input pipeline, the optimiser and
schedule, and the run's limits. ``RECIPES`` holds the named ones:

- ``paper``: the seed paper — R101-FPN, images resized (bilinear, longest side) and zero-padded
  to 1024×1024, 8 epochs.
- ``fashionpedia-r50-3x`` / ``fashionpedia-r101-3x``: the official Attribute-Mask R-CNN config —
  1024, scale jitter 0.5–2.0, flip, linear warmup, step decay at 2/3 and 8/9 of training,
  weight decay 4e-5, LR scaled linearly by the total batch (0.08 at 256 images per step in the
  official TPU config, i.e. 0.02 at 64).
- ``finetune``: continues a fashionkit checkpoint (``--weights``; a trained model or a converted
  official one) on new photos: the model config and the input transform are the checkpoint's
  (``model_from_weights``), with BatchNorm frozen (``norm="frozen_bn"``: each BatchNorm keeps
  the moving statistics and scale/offset it was trained with — with 2 photos per step on a CPU,
  batch statistics would be noise, and updating the moving averages from them would undo the
  normalisation the rest of the network was trained under) and the ResNet's stem and first
  stage frozen (``trainable_backbone_layers=3``, torchvision's default); lower LR, short schedule.
- ``cpu-tiny``: what learns fastest on 2 CPU cores (small images, light backbone), chosen by
  experiment on the synthetic world (600 steps each, held-out mask AP50; README "Measured
  figures"): AdamW with a cosine schedule, bf16 autocast where the CPU runs bf16
  natively (``precision="auto"``; 1.35× faster steps here), repeat-factor sampling of images
  with rare categories.

``precision`` is Lightning's (``32-true``, ``bf16-mixed``, ``16-mixed``, …) or ``auto``: the
fastest safe choice for the hardware (:func:`fashionkit.engine.train.resolve_precision`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from fashionkit import config_io as dataclass_io
from fashionkit.data.input_recipe import DataConfig

__all__ = [
    "DataConfig",
    "OptimConfig",
    "Recipe",
    "RECIPES",
    "get_recipe",
    "apply_overrides",
    "load_recipe",
    "save_recipe",
]


@dataclass(frozen=True)
class OptimConfig:
    """SGD with momentum (or AdamW), linear warmup, then step decay at fractions of training
    (``schedule="step"``) or a half cosine down to ``final_factor`` × LR (``"cosine"``). With a
    time budget (``max_minutes``) the fractions are of whichever ends first, steps or time.

    ``lr`` is for ``reference_batch`` images per optimiser step; the effective LR is scaled
    linearly by the actual total batch (per-device batch × devices × nodes × accumulation)."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.02
    reference_batch: int = 16
    scale_lr: bool = True
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    warmup_factor: float = 0.001
    decay_at: tuple[float, ...] = (2 / 3, 8 / 9)
    decay_gamma: float = 0.1
    schedule: Literal["step", "cosine"] = "step"
    final_factor: float = 0.0
    grad_clip: float | None = None


@dataclass(frozen=True)
class Recipe:
    """A training run's settings. ``model_preset`` + ``model`` (config overrides) name the
    model; with ``model_from_weights`` and a fashionkit checkpoint as ``--weights``, the model
    is that checkpoint's config with ``model`` applied on top, and the input transform is the
    one its recipe was trained or converted with (``data.transform``; everything else in
    ``data`` stays this recipe's). Other weight files carry no config: the preset applies."""

    name: str
    model_preset: str
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 8
    precision: str = "32-true"
    seed: int = 0
    max_minutes: float | None = None
    accumulate_grad_batches: int = 1
    eval_every: int = 1
    early_stop_patience: int | None = None
    monitor: str = "val_segm_AP"
    model_from_weights: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclass_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return dataclass_io.from_dict(cls, data, "recipe")


def apply_overrides(recipe: Recipe, overrides: list[str] | dict[str, Any]) -> Recipe:
    """Apply ``"optim.lr=0.01"``-style overrides (values parsed as YAML scalars).

    ``model.KEY=VALUE`` sets a model-config override; the model preset checks it when built.
    """
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for text in overrides:
            if "=" not in text:
                raise ValueError(f"override {text!r} is not KEY=VALUE (e.g. optim.lr=0.01)")
            key, raw = text.split("=", 1)
            items.append((key.strip(), yaml.safe_load(raw)))
    data = recipe.to_dict()
    for key, value in items:
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"override {key!r}: {part!r} is not a section of the recipe")
            node = node[part]
        if parts[0] != "model" and parts[-1] not in node:
            raise ValueError(f"override {key!r}: unknown key {parts[-1]!r}")
        node[parts[-1]] = value
    return Recipe.from_dict(data)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")


def load_recipe(path: str | Path) -> Recipe:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    try:
        return Recipe.from_dict(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


_OFFICIAL_OPTIM = OptimConfig(
    lr=0.02,
    reference_batch=64,
    weight_decay=4e-5,
    warmup_steps=1000,
    warmup_factor=0.067,
    decay_at=(2 / 3, 8 / 9),
    grad_clip=None,
)

_OFFICIAL_3X = Recipe(
    name="fashionpedia-r50-3x",
    model_preset="fashionpedia-r50",
    data=DataConfig(transform="jitter", image_size=1024, jitter_min=0.5, jitter_max=2.0),
    optim=_OFFICIAL_OPTIM,
    epochs=36,
    precision="bf16-mixed",
)

RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        model_preset="paper",
        data=DataConfig(transform="paper", image_size=1024, flip_prob=0.5, batch_size=2),
        optim=OptimConfig(lr=0.02, reference_batch=16, weight_decay=1e-4, warmup_steps=500),
        epochs=8,
        precision="bf16-mixed",
    ),
    "fashionpedia-r50-3x": _OFFICIAL_3X,
    "fashionpedia-r101-3x": replace(_OFFICIAL_3X, name="fashionpedia-r101-3x",
                                    model_preset="fashionpedia-r101"),
    "finetune": Recipe(
        name="finetune",
        model_preset="paper",
        model={"norm": "frozen_bn", "trainable_backbone_layers": 3},
        model_from_weights=True,
        data=DataConfig(transform="paper", image_size=1024, batch_size=2),
        optim=OptimConfig(lr=0.002, reference_batch=16, warmup_steps=50, decay_at=(0.75,)),
        epochs=4,
        precision="bf16-mixed",
    ),
    "cpu-tiny": Recipe(
        name="cpu-tiny",
        model_preset="cpu-tiny",
        data=DataConfig(
            transform="paper",
            image_size=160,
            flip_prob=0.5,
            batch_size=8,
            num_workers=1,
            repeat_threshold=0.3,
        ),
        optim=OptimConfig(
            optimizer="adamw",
            lr=2e-3,
            reference_batch=8,
            weight_decay=1e-4,
            warmup_steps=20,
            warmup_factor=0.1,
            schedule="cosine",
            final_factor=0.05,
            grad_clip=10.0,
        ),
        epochs=12,
        precision="auto",
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}") from None
