"""The LightningModule: one training step, one validation step, the optimiser. Kept small;
files, tables and plots are callbacks (:mod:`fashionkit.engine.callbacks`)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from fashionkit.engine.periodic_eval import predict_in_photo_pixels
from fashionkit.engine.recipes import Recipe

__all__ = ["DetectionModule", "effective_lr", "lr_factor", "parameter_groups"]


def effective_lr(recipe: Recipe, world_size: int) -> float:
    """The recipe's LR scaled linearly by the total batch per optimiser step (per-process
    batch × processes × gradient accumulation) against ``optim.reference_batch``."""
    cfg = recipe.optim
    if not cfg.scale_lr:
        return cfg.lr
    total_batch = recipe.data.batch_size * world_size * recipe.accumulate_grad_batches
    return cfg.lr * total_batch / cfg.reference_batch


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser groups of ``model``'s trained parameters: weight decay on weights, none on
    biases and normalisation parameters (1-d)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, total_steps: int, warmup_steps: int, warmup_factor: float,
              decay_at: tuple[float, ...], gamma: float, *, schedule: str = "step",
              final_factor: float = 0.0, progress: float | None = None) -> float:
    """Multiplier of the base LR at optimiser step ``step``: linear warmup from
    ``warmup_factor`` to 1 over ``warmup_steps``, times the decay at ``progress`` (the share of
    training done, ``step / total_steps`` unless given): for ``schedule="step"`` ×``gamma`` at
    each fraction in ``decay_at``; for ``"cosine"`` a half cosine from 1 down to
    ``final_factor`` at the end."""
    factor = 1.0
    if warmup_steps > 0 and step < warmup_steps:
        alpha = step / warmup_steps
        factor = warmup_factor * (1 - alpha) + alpha
    done = step / max(1, total_steps) if progress is None else progress
    done = min(max(done, 0.0), 1.0)
    if schedule == "cosine":
        return factor * (final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * done)))
    if schedule != "step":
        raise ValueError(f"unknown LR schedule {schedule!r} (step or cosine)")
    for frac in decay_at:
        # Compare in steps, as the fractions are documented: decay from step floor(frac·total).
        if (progress is None and step >= math.floor(frac * total_steps)) or (
                progress is not None and done >= frac):
            factor *= gamma
    return factor


class DetectionModule(L.LightningModule):
    """Trains an Attribute-Mask R-CNN through its explicit ``losses`` call.

    ``evaluator`` (optional) follows the evaluator protocol (``reset / process / evaluate``); its
    results are logged as ``val_<key>`` each validation epoch."""

    def __init__(self, model: Any, recipe: Recipe, evaluator: Any | None = None):
        super().__init__()
        # An AttributeMaskRCNN (typed Any: its explicit losses/predict calls are not Module API).
        self.model = model
        self.recipe = recipe
        self.evaluator = evaluator

    def on_train_epoch_start(self) -> None:
        # Augmentation draws are a function of (seed, epoch, index): resumed runs and DDP
        # workers see the same stream as an uninterrupted single run.
        from fashionkit.engine.data import set_loader_epoch

        loader = self.trainer.train_dataloader
        if loader is not None:
            set_loader_epoch(loader, self.current_epoch)

    # -- steps -----------------------------------------------------------------------------
    def _log_losses(self, split: str, losses: dict[str, torch.Tensor],
                    table4: dict[str, torch.Tensor], batch_size: int) -> torch.Tensor:
        # The total is the objective's; the Table 4 losses are logged beside it, not added.
        total = torch.stack([v for v in losses.values()]).sum()
        for name, value in {**losses, **table4}.items():
            self.log(f"{split}_{name}", value.detach(), on_step=False, on_epoch=True,
                     batch_size=batch_size, sync_dist=True)
        self.log(f"{split}_loss", total.detach(), on_step=split == "train", on_epoch=True,
                 prog_bar=True, batch_size=batch_size, sync_dist=True)
        return total

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses, table4 = self.model.losses_with_table4(images, targets)
        total = self._log_losses("train", losses, table4, len(images))
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"non-finite training loss at step {self.global_step}: "
                + ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
                + " (lower optim.lr or enable optim.grad_clip)"
            )
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)
        self.log("lr", optimizer.param_groups[0]["lr"], on_step=False, on_epoch=True,
                 batch_size=len(images))
        return total

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        # The RoI sampling inside the loss is random; drawing from a forked, seeded generator
        # keeps validation deterministic and leaves the training RNG stream untouched, so
        # that runs with and without validation (or resumed runs) train identically.
        # On a GPU, torchvision samples with that device's generator: fork it too.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(self.recipe.seed * 100003 + batch_idx)
            losses, table4 = self.model.losses_with_table4(images, targets)
        self._log_losses("val", losses, table4, len(images))
        if self.evaluator is not None:
            detections = predict_in_photo_pixels(self.model, images, targets)
            self.evaluator.process(targets, detections)

    def on_validation_epoch_start(self) -> None:
        if self.evaluator is not None:
            self.evaluator.reset()

    def on_validation_epoch_end(self) -> None:
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        if self.trainer.world_size > 1:
            self.evaluator.gather()
        metrics = self.evaluator.evaluate() if self.trainer.is_global_zero else {}
        metrics = self.trainer.strategy.broadcast(metrics, src=0)
        for key, value in metrics.items():
            if math.isfinite(value):  # e.g. attribute F1 is undefined with no matched detection
                self.log(f"val_{key}", float(value), sync_dist=False, rank_zero_only=False)

    # -- optimiser -------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.recipe.optim
        groups = parameter_groups(self.model, cfg.weight_decay)
        lr = effective_lr(self.recipe, self.trainer.world_size)
        # The fused kernels update all parameters in one vectorised pass instead of a
        # per-tensor loop; same update rule. Not under fp16 loss
        # scaling, where Lightning unscales before clipping and a fused step would not.
        fused = self.device.type in ("cpu", "cuda") and self.recipe.precision != "16-mixed"
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, fused=fused or None)
        else:
            opt = torch.optim.AdamW(groups, lr=lr, fused=fused or None)
        # Counted from the batch sampler, not Lightning's estimated_stepping_batches: that
        # would build and iterate the train loader before a resumed run's epoch is restored.
        per_epoch = self.trainer.datamodule.steps_per_epoch(self.trainer.world_size)
        total = max(1, math.ceil(per_epoch / self.recipe.accumulate_grad_batches)
                    * self.trainer.max_epochs)

        budget = self.recipe.max_minutes * 60 if self.recipe.max_minutes else None

        def schedule(step: int) -> float:
            # Under a time budget the schedule runs over whichever ends first, the epochs or
            # the minutes: a run stopped by the clock still reaches its low-LR end.
            progress = None
            if budget is not None:
                progress = max(step / total, self._train_seconds() / budget)
            return lr_factor(step, total, cfg.warmup_steps, cfg.warmup_factor, cfg.decay_at,
                             cfg.decay_gamma, schedule=cfg.schedule,
                             final_factor=cfg.final_factor, progress=progress)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _train_seconds(self) -> float:
        """Training time so far as Lightning's ``max_time`` counts it (validation included;
        carried over a resume), 0 without a time limit."""
        from lightning.pytorch.callbacks import Timer

        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, Timer):
                return float(callback.time_elapsed("train"))
        return 0.0

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None) -> None:
        # Without loss scaling (fp32, bf16) the gradients are the true ones: clip them here.
        # Lightning's AMP plugin refuses to clip for any fused optimizer, even in bf16 where
        # nothing is scaled.
        if gradient_clip_val and getattr(self.trainer.precision_plugin, "scaler", None) is None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    # -- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from fashionkit.ontology import load_ontology

        checkpoint["recipe"] = self.recipe.to_dict()
        checkpoint["config"] = self.model.config.to_dict()
        checkpoint["ontology_version"] = load_ontology().version
