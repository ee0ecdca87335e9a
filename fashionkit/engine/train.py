"""``train()``: read the data, build the model, run Lightning, write the run folder.

The run folder holds ``config.yaml`` (the recipe as run), ``metrics.csv`` (one row per epoch,
Table 4 columns first), ``loss_curves.png`` (Fig. 10), ``checkpoints/`` (``last.ckpt``
rewritten each epoch, for ``--resume``; ``best.ckpt`` by the monitored metric), ``logs/`` (CSV and TensorBoard),
and ``model.pt``: the final model in fashionkit's checkpoint format (config, ontology version,
weights; loads with ``weights_only=True``).

Multi-GPU / multi-node: ``devices`` and ``num_nodes`` go to Lightning's DDP; started under
``torchrun`` Lightning picks up the rendezvous from the environment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fashionkit.engine.recipes import Recipe, load_recipe, save_recipe

__all__ = ["train", "TrainResult", "RunFolderError", "recipe_for_weights", "resolve_precision"]


class RunFolderError(RuntimeError):
    """The run folder is in a state that the requested action would damage or cannot use."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    model_path: Path
    epochs_completed: int
    metrics: list[dict[str, float]]
    seconds: float


def _quiet_lightning() -> None:
    """Drop Lightning's advertising and a deprecation inside Lightning itself from the output;
    its real messages (devices, DDP set-up, stops) stay."""
    import logging
    import warnings

    class _NoTips(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "Tip:" not in record.getMessage()

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in log.filters):
            log.addFilter(_NoTips())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``"auto"`` becomes what runs fastest without harming training on this hardware: on a
    CUDA GPU ``bf16-mixed`` where it has bf16, else ``16-mixed``; on a CPU ``bf16-mixed``
    only where bf16 is native (AVX512-BF16 or AMX; elsewhere autocast emulates it and is
    slower than fp32), else ``32-true``. Any other value is returned as it is."""
    if precision != "auto":
        return precision
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    native = False
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)  # private probes; absent on other builds
        native = native or bool(check and check())
    return "bf16-mixed" if native else "32-true"


def model_config_for(recipe: Recipe):
    """The model config a recipe asks for: its preset with its overrides."""
    from fashionkit.modeling import model_config_from_preset

    return model_config_from_preset(recipe.model_preset, **recipe.model)


def recipe_for_weights(recipe: Recipe, weights: str | Path | None) -> Recipe:
    """``recipe`` with ``model_from_weights`` resolved against the weights file: for a
    fashionkit checkpoint (or a Lightning checkpoint of this engine), ``model`` becomes the
    checkpoint's whole config with the recipe's overrides on top, and ``data.transform`` the
    checkpoint recipe's; unchanged otherwise (another kind of file, or the flag off). The
    result names every config field, so the saved ``config.yaml`` rebuilds the same model
    (a resumed run does not read the weights again)."""
    if not recipe.model_from_weights:
        return recipe
    if weights is None:
        raise ValueError(f"recipe {recipe.name!r} continues a checkpoint: pass --weights "
                         "MODEL.pt (or set model_from_weights=false and a model_preset)")
    from fashionkit.data.input_recipe import data_config_of
    from fashionkit.errors import InvalidDataError
    from fashionkit.modeling.checkpoint import CHECKPOINT_FORMAT, checked_config, safe_torch_load

    data = safe_torch_load(weights)
    if not isinstance(data, dict) or not (data.get("format") == CHECKPOINT_FORMAT or (
            "config" in data and isinstance(data.get("state_dict"), dict))):
        return recipe
    config = checked_config(data, weights)
    overrides = {**config.to_dict(), **recipe.model}
    if config.norm == "gn" and overrides["norm"] != "gn":
        raise InvalidDataError.in_file(
            weights, f"the model has GroupNorm, recipe {recipe.name!r} sets "
                     f"model.norm={overrides['norm']!r}: add --set model.norm=gn")
    stored = data_config_of(data["recipe"]) if isinstance(data.get("recipe"), dict) else None
    data_config = recipe.data if stored is None else replace(recipe.data,
                                                             transform=stored.transform)
    return replace(recipe, model=overrides, data=data_config)


def train(
    recipe: Recipe | None,
    train_json: str | Path,
    val_json: str | Path | None,
    images_dir: str | Path,
    out_dir: str | Path,
    *,
    val_images_dir: str | Path | None = None,
    epochs: int | None = None,
    max_minutes: float | None = None,
    weights: str | Path | None = None,
    resume: bool = False,
    devices: int | str = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    strategy: str = "auto",
    evaluate: bool = True,
    progress: bool = True,
    max_train_images: int | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train ``recipe`` and write the run folder ``out_dir`` (see the module docstring).

    ``resume`` continues the run in ``out_dir`` from ``checkpoints/last.ckpt`` with the
    recipe saved there (``epochs``/``max_minutes`` may extend it): model, optimiser,
    scheduler, epoch and RNG states are restored, so the result equals an uninterrupted run
    on CPU. ``callbacks`` are extra Lightning callbacks."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from fashionkit.data import read_annotations
    from fashionkit.engine.callbacks import EpochTable, RNGState
    from fashionkit.engine.checkpoint_io import AtomicCheckpointIO
    from fashionkit.engine.data import FashionDataModule
    from fashionkit.engine.module import DetectionModule
    from fashionkit.modeling import build_model, load_weights, save_checkpoint

    _quiet_lightning()
    started = time.monotonic()
    run = Path(out_dir)
    ckpt_dir = run / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume:
        if not last.is_file():
            raise RunFolderError(f"{run}: nothing to resume (no {last.relative_to(run)})")
        # A resumed run continues the recipe it started with; only --epochs/--max-minutes apply.
        recipe = load_recipe(run / "config.yaml")
    elif last.exists():
        raise RunFolderError(
            f"{run} already holds a run ({last.relative_to(run)}); pass --resume to continue it "
            "or choose another --out"
        )
    if recipe is None:
        raise ValueError("a recipe is needed to start a run")
    if not resume:
        recipe = recipe_for_weights(recipe, weights)
    if epochs is not None:
        recipe = replace(recipe, epochs=epochs)
    if max_minutes is not None:
        recipe = replace(recipe, max_minutes=max_minutes)
    # config.yaml records the precision as run (a resumed run keeps it).
    recipe = replace(recipe, precision=resolve_precision(recipe.precision, accelerator))
    run.mkdir(parents=True, exist_ok=True)
    save_recipe(recipe, run / "config.yaml")

    L.seed_everything(recipe.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")

    train_set, _ = read_annotations(train_json)
    val_set = read_annotations(val_json)[0] if val_json else None
    datamodule = FashionDataModule(
        recipe,
        train_set,
        val_set,
        images_dir=Path(images_dir),
        val_images_dir=Path(val_images_dir or images_dir),
        max_train_images=max_train_images,
    )

    model = build_model(model_config_for(recipe))
    if weights is not None and not resume:
        load_weights(model, weights)

    evaluator = None
    if evaluate and val_set is not None:
        from fashionkit.engine.periodic_eval import ValidationEvaluator

        evaluator = ValidationEvaluator(val_set)
    module = DetectionModule(
        model,
        recipe,
        evaluator=evaluator,
    )

    table = EpochTable(run)
    monitor = recipe.monitor if evaluator is not None else "val_loss"
    mode = "min" if monitor.endswith("loss") else "max"
    # Checkpoints are written at the end of the training epoch, after validation and after
    # the epoch's row is in the table, so that a resumed run has every earlier row. (Lightning
    # runs checkpoint callbacks last.)
    all_callbacks: list[Any] = [
        *(callbacks or []),
        table,
        RNGState(),
        # last.ckpt is rewritten every epoch; earlier epochs are not kept (at Fashionpedia
        # scale each is hundreds of MB): best.ckpt keeps the best by the monitored metric.
        # (A "top 1 without a monitor" named last, not save_last=True: with save_top_k=0
        # Lightning writes last.ckpt only when training ends, so a killed run had nothing to
        # resume from.)
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                        enable_version_counter=False, every_n_epochs=1,
                        save_on_train_epoch_end=True),
    ]
    if val_set is not None:
        all_callbacks.append(
            ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode,
                            save_top_k=1, auto_insert_metric_name=False, enable_version_counter=False,
                            save_on_train_epoch_end=True, every_n_epochs=recipe.eval_every)
        )
        if recipe.early_stop_patience:
            all_callbacks.append(EarlyStopping(monitor=monitor, mode=mode,
                                           patience=recipe.early_stop_patience))
    # Each launch (first or resumed) logs into a new version folder; nothing is overwritten.
    loggers: list[Any] = [CSVLogger(run / "logs", name="csv")]
    try:
        loggers.append(TensorBoardLogger(run / "logs", name="tensorboard"))
    except ModuleNotFoundError:
        pass
    trainer = L.Trainer(
        max_epochs=recipe.epochs,
        max_time={"seconds": round(recipe.max_minutes * 60)} if recipe.max_minutes else None,
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=recipe.precision,  # type: ignore[arg-type]  # checked by Lightning
        gradient_clip_val=recipe.optim.grad_clip,
        accumulate_grad_batches=recipe.accumulate_grad_batches,
        check_val_every_n_epoch=recipe.eval_every,
        num_sanity_val_steps=0,
        callbacks=all_callbacks,
        logger=loggers,
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,
        log_every_n_steps=1,
        default_root_dir=run,
        # Checkpoint writes are atomic and durable, reads weights-only (checkpoint_io.py).
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)

    model_path = run / "model.pt"
    if trainer.is_global_zero:
        save_checkpoint(model, model_path, extra={"recipe": recipe.to_dict(),
                                                  "epochs_completed": trainer.current_epoch})
    return TrainResult(
        run_dir=run,
        model_path=model_path,
        epochs_completed=trainer.current_epoch,
        metrics=list(table.rows),
        seconds=time.monotonic() - started,
    )
