"""Fine-tuning a person's detector on their corrected photos, within a wall-clock budget.

:func:`finetune_personal` starts from a base checkpoint (fashionkit's format, torchvision
architecture) and trains it on a dataset folder in the Fashionpedia format —
``DIR/annotations.json`` and ``DIR/images/``, what ``fashionkit wardrobe export-dataset`` and
the synthetic closet's splits write — for at most ``max_minutes`` of wall time *in all*
(reading, training and writing). The result is written to ``out_path`` in fashionkit's
checkpoint format (the base's architecture and input recipe, so the Predictor reads photos the
same way) atomically and only when training ends by itself: a cancelled or failed run leaves
nothing at ``out_path``.

How it trains (:class:`FinetuneSettings`, defaults :data:`PERSONAL_SETTINGS`): AdamW with a
short warmup and a cosine decay that follows the clock (the engine's time-budget schedule,
:class:`~fashionkit.engine.recipes.OptimConfig`), the top ResNet stages, the FPN and every head
trained, the lower stages frozen with their BatchNorm statistics kept (a few dozen photos move
running statistics far from what the frozen weights expect). The input size is the base's,
so the personal model reads photos as the base does. How much a budget gains is measured on the
synthetic closet (``benchmarks/personal_finetune.py``; figures in ``benchmarks/RESULTS.md``).

Progress is reported as ``progress(fraction, message)`` with a non-decreasing ``fraction`` in
[0, 1] (the larger of steps done and time used, as a share of the budget); ``cancel`` (a
:class:`threading.Event`) stops training at the next step and the call returns
``FinetuneResult(cancelled=True, path=None)``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fashionkit.errors import InvalidDataError

__all__ = [
    "FinetuneSettings",
    "FinetuneResult",
    "PERSONAL_SETTINGS",
    "finetune_personal",
    "dataset_photos",
    "mask_ap",
    "measure_personal_gain",
]

Progress = Callable[[float, str], None]
#: Seconds of the budget kept for writing the checkpoint after training stops.
_SAVE_RESERVE_S = 2.0


@dataclass(frozen=True)
class FinetuneSettings:
    """How a personal model is trained. ``trainable_backbone_layers``: ResNet stages trained,
    counted from the top (0: FPN and heads only; 5: everything); ``lr``: AdamW's peak rate for
    ``batch_size`` photos per step; ``warmup_steps`` of linear warmup from 10 %; the cosine
    ends at ``final_factor`` × ``lr`` when the budget does; ``image_size``: the input size
    (``None``: the base model's, so the personal model reads photos as the base did);
    ``max_epochs`` caps passes over the photos (the clock normally ends training first)."""

    trainable_backbone_layers: int = 3
    lr: float = 1e-3
    batch_size: int = 4
    warmup_steps: int = 10
    final_factor: float = 0.05
    weight_decay: float = 1e-4
    grad_clip: float | None = 10.0
    flip_prob: float = 0.5
    image_size: int | None = None
    max_epochs: int = 10_000


PERSONAL_SETTINGS = FinetuneSettings()


@dataclass(frozen=True)
class FinetuneResult:
    """``path``: the written checkpoint (``None`` when cancelled); ``minutes``: wall time of the
    whole call; ``steps``: optimiser steps taken; ``photos``: photos trained on."""

    path: Path | None
    minutes: float
    steps: int
    cancelled: bool
    photos: int = 0


class _Monotone:
    """Forwards ``(fraction, message)`` with the fraction clipped to [0, 1] and never lower
    than one already reported."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.fraction = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        if not math.isfinite(fraction):
            fraction = self.fraction
        self.fraction = max(self.fraction, min(1.0, max(0.0, fraction)))
        if self.progress is not None:
            self.progress(self.fraction, message)


def dataset_photos(dataset_dir: str | Path) -> int:
    """How many photos with at least one annotated object the dataset folder holds
    (:class:`InvalidDataError` naming the file when it has no readable ``annotations.json``)."""
    from fashionkit.data import read_annotations

    path = Path(dataset_dir) / "annotations.json"
    if not path.is_file():
        raise InvalidDataError.in_file(
            path, "no annotations.json: export the corrected photos first "
                  "(fashionkit wardrobe export-dataset)")
    annotations, _ = read_annotations(path)
    return sum(1 for i in annotations.image_ids if len(annotations.rows(i)))


def _base_model(base_checkpoint: Path, trainable_layers: int):
    """The base checkpoint's model rebuilt with ``trainable_layers`` ResNet stages trainable,
    its weights loaded, and its stored recipe dict (or ``None``)."""
    from fashionkit.modeling import build_model, read_checkpoint
    from fashionkit.modeling.checkpoint import checked_config

    data = read_checkpoint(base_checkpoint)
    config = checked_config(data, base_checkpoint)
    if config.architecture != "torchvision":
        raise InvalidDataError.in_file(
            base_checkpoint, f"fine-tuning needs a model of the torchvision architecture, this "
                             f"one is {config.architecture!r}")
    model = build_model(config.replace(trainable_backbone_layers=trainable_layers))
    try:
        model.load_state_dict(data["model"], strict=True)
    except RuntimeError as err:
        raise InvalidDataError.in_file(
            base_checkpoint, f"weights do not fit the checkpoint's own config: {err}") from None
    recipe = data.get("recipe")
    return model, recipe if isinstance(recipe, dict) else None


def _recipe(base_recipe: dict | None, model, photos: int, settings: FinetuneSettings,
            seed: int, minutes: float):
    from fashionkit.data.input_recipe import DataConfig, data_config_of
    from fashionkit.engine.recipes import OptimConfig, Recipe
    from fashionkit.engine.train import resolve_precision

    config = model.config
    data = data_config_of(base_recipe) or DataConfig(transform="paper", image_size=config.max_size)
    data = replace(
        data,
        image_size=settings.image_size or data.image_size,
        batch_size=max(1, min(settings.batch_size, photos)),
        # In-process loading: a service's worker thread must not fork loader processes.
        num_workers=0,
        flip_prob=settings.flip_prob,
        repeat_threshold=0.0,
    )
    return Recipe(
        name="personal",
        model_preset=str((base_recipe or {}).get("model_preset", "cpu-tiny")),
        model={"trainable_backbone_layers": settings.trainable_backbone_layers},
        data=data,
        optim=OptimConfig(
            optimizer="adamw", lr=settings.lr, reference_batch=data.batch_size, scale_lr=False,
            weight_decay=settings.weight_decay, warmup_steps=settings.warmup_steps,
            warmup_factor=0.1, schedule="cosine", final_factor=settings.final_factor,
            grad_clip=settings.grad_clip,
        ),
        epochs=settings.max_epochs,
        precision=resolve_precision("auto"),
        seed=seed,
        max_minutes=minutes,
    )


def _frozen_norms(model) -> list[Any]:
    """BatchNorm layers none of whose parameters train (kept in eval mode while training)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return [m for m in model.modules() if isinstance(m, _BatchNorm)
            and not any(p.requires_grad for p in m.parameters())]


def finetune_personal(
    base_checkpoint: str | Path,
    dataset_dir: str | Path,
    out_path: str | Path,
    *,
    max_minutes: float = 5.0,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    settings: FinetuneSettings = PERSONAL_SETTINGS,
    max_steps: int | None = None,
) -> FinetuneResult:
    """Fine-tune ``base_checkpoint`` on ``dataset_dir`` for at most ``max_minutes`` of wall
    time and write the personal checkpoint to ``out_path`` (see the module docstring).
    ``max_steps`` ends training after that many optimiser steps if the clock has not.

    Raises :class:`InvalidDataError` (naming the file) for an unreadable base checkpoint or a
    dataset without photos; nothing is written then."""
    import lightning as L
    import torch

    from fashionkit.data import read_annotations
    from fashionkit.engine.data import FashionDataModule
    from fashionkit.engine.module import DetectionModule
    from fashionkit.modeling import save_checkpoint

    started = time.monotonic()
    if not max_minutes > 0:
        raise ValueError(f"max_minutes must be > 0, got {max_minutes}")
    report = _Monotone(progress)
    report(0.0, "reading the photos")
    base_checkpoint, dataset_dir, out_path = Path(base_checkpoint), Path(dataset_dir), Path(out_path)
    photos = dataset_photos(dataset_dir)
    if photos == 0:
        raise InvalidDataError.in_file(dataset_dir / "annotations.json",
                                       "no photo with a corrected item to learn from")
    train_set, _ = read_annotations(dataset_dir / "annotations.json")
    model, base_recipe = _base_model(base_checkpoint, settings.trainable_backbone_layers)
    budget_s = max_minutes * 60.0
    train_s = max(1.0, budget_s - (time.monotonic() - started) - _SAVE_RESERVE_S)
    recipe = _recipe(base_recipe, model, photos, settings, seed, train_s / 60.0)
    frozen = _frozen_norms(model)
    control = _control_class()(report, cancel, frozen, started, budget_s, max_steps)

    L.seed_everything(seed, workers=True, verbose=False)
    datamodule = FashionDataModule(recipe, train_set, None, images_dir=dataset_dir / "images")
    module = DetectionModule(model, recipe)
    with tempfile.TemporaryDirectory(prefix="fashionkit-finetune-") as scratch, \
            _quiet_lightning():
        trainer = L.Trainer(
            max_epochs=recipe.epochs,
            max_steps=max_steps if max_steps is not None else -1,
            max_time=dt.timedelta(seconds=train_s),
            accelerator="auto",
            devices=1,
            precision=recipe.precision,  # type: ignore[arg-type]  # checked by Lightning
            gradient_clip_val=recipe.optim.grad_clip,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            callbacks=[control],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            default_root_dir=scratch,
        )
        report(0.01, "training")
        trainer.fit(module, datamodule=datamodule)
    steps = int(trainer.global_step)
    if cancel is not None and cancel.is_set():
        return FinetuneResult(None, (time.monotonic() - started) / 60.0, steps, True, photos)
    report(control.fraction(steps), "saving the model")
    model.eval()
    with torch.no_grad():
        save_checkpoint(model, out_path, extra={
            "recipe": recipe.to_dict(),
            "personal": {"base": str(base_checkpoint), "photos": photos, "steps": steps,
                         "seed": seed},
        })
    minutes = (time.monotonic() - started) / 60.0
    report(1.0, f"done: {steps} steps on {photos} photos in {minutes:.1f} min")
    return FinetuneResult(out_path, minutes, steps, False, photos)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's start-up notices (devices, tips) and a deprecation inside Lightning itself
    are left out of a person's output and the service's log; its warnings stay."""
    loggers = [logging.getLogger(name) for name in (
        "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


@functools.cache
def _control_class() -> type:
    """The Lightning callback class (built on first use: importing this module must not
    import Lightning, as the service and the CLI import it for its settings)."""
    import lightning as L

    class _Control(L.Callback):
        """Progress, cooperative cancel, and frozen BatchNorm layers kept in eval mode."""

        def __init__(self, report: _Monotone, cancel: threading.Event | None, frozen: list[Any],
                     started: float, budget_s: float, max_steps: int | None):
            self.report = report
            self.cancel = cancel
            self.frozen = frozen
            self.started = started
            self.budget_s = budget_s
            self.max_steps = max_steps
            self._step_started = started
            self._longest_step = 0.0

        def fraction(self, steps: int) -> float:
            by_time = (time.monotonic() - self.started) / self.budget_s
            by_steps = steps / self.max_steps if self.max_steps else 0.0
            return min(0.99, max(by_time, by_steps))

        def _stop_if_cancelled(self, trainer: L.Trainer) -> None:
            if self.cancel is not None and self.cancel.is_set():
                trainer.should_stop = True

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._stop_if_cancelled(trainer)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            # Lightning puts the whole model in training mode at each epoch start.
            for norm in self.frozen:
                norm.eval()
            self._step_started = time.monotonic()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            now = time.monotonic()
            steps = int(trainer.global_step)
            self.report(self.fraction(steps), f"training: step {steps}")
            self._stop_if_cancelled(trainer)
            # Lightning's clock stops training only after the step that crosses it: stop
            # before a step that would end past the budget (steps are slow on a busy CPU).
            self._longest_step = max(self._longest_step, now - self._step_started)
            if now - self.started + self._longest_step + _SAVE_RESERVE_S > self.budget_s:
                trainer.should_stop = True

    return _Control


def mask_ap(checkpoint: str | Path, dataset_dir: str | Path) -> dict[str, float]:
    """Mask AP of ``checkpoint`` on the dataset folder (``annotations.json`` + ``images/``),
    through the checkpoint's own input recipe and the evaluator training validation uses:
    ``{"segm_AP50", "segm_AP", ...}`` (:func:`~fashionkit.engine.periodic_eval.flatten_metrics`)."""
    import torch

    from fashionkit.data import read_annotations
    from fashionkit.data.input_recipe import data_config_of
    from fashionkit.engine.data import FashionDataModule
    from fashionkit.engine.periodic_eval import ValidationEvaluator, predict_in_photo_pixels
    from fashionkit.engine.recipes import Recipe
    from fashionkit.modeling import model_from_checkpoint, read_checkpoint

    data = read_checkpoint(checkpoint)
    model = model_from_checkpoint(data, checkpoint)
    data_config = data_config_of(data.get("recipe"))
    if data_config is None:
        from fashionkit.data.input_recipe import DataConfig

        data_config = DataConfig(transform="paper", image_size=model.config.max_size)
    recipe = Recipe(name="evaluate", model_preset="cpu-tiny",
                    data=replace(data_config, num_workers=0, batch_size=4))
    dataset_dir = Path(dataset_dir)
    annotations, _ = read_annotations(dataset_dir / "annotations.json")
    loader = FashionDataModule(recipe, annotations, annotations,
                               dataset_dir / "images").val_dataloader()
    evaluator = ValidationEvaluator(annotations)
    with torch.inference_mode():
        for images, targets in loader:
            evaluator.process(targets, predict_in_photo_pixels(model, images, targets))
    return evaluator.evaluate()


def measure_personal_gain(
    base_checkpoint: str | Path,
    labelled_dir: str | Path,
    new_dir: str | Path,
    *,
    max_minutes: float = 5.0,
    seed: int = 0,
    out_path: str | Path | None = None,
    settings: FinetuneSettings = PERSONAL_SETTINGS,
    progress: Progress | None = None,
) -> dict[str, float]:
    """The issue's measurement: fine-tune ``base_checkpoint`` on the person's labelled photos
    (``labelled_dir``) for at most ``max_minutes``, then mask AP50 / AP of the base and of the
    personal model on the person's new photos (``new_dir``; same base, same photos).

    Returns ``{"base_ap50", "base_ap", "personal_ap50", "personal_ap", "personal_ap50_gain",
    "finetune_minutes", "steps", "photos"}``."""
    base = mask_ap(base_checkpoint, new_dir)
    with tempfile.TemporaryDirectory(prefix="fashionkit-gain-") as tmp:
        target = Path(out_path) if out_path is not None else Path(tmp) / "personal.pt"
        result = finetune_personal(base_checkpoint, labelled_dir, target,
                                   max_minutes=max_minutes, seed=seed, settings=settings,
                                   progress=progress)
        assert result.path is not None
        personal = mask_ap(result.path, new_dir)
    return {
        "base_ap50": base.get("segm_AP50", 0.0),
        "base_ap": base.get("segm_AP", 0.0),
        "personal_ap50": personal.get("segm_AP50", 0.0),
        "personal_ap": personal.get("segm_AP", 0.0),
        "personal_ap50_gain": personal.get("segm_AP50", 0.0) - base.get("segm_AP50", 0.0),
        "finetune_minutes": result.minutes,
        "steps": float(result.steps),
        "photos": float(result.photos),
    }
