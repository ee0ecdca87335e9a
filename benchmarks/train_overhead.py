"""Training-loop overhead of ``fashionkit.engine.train`` against a bare torchvision-style loop.

Both sides train the same model (cpu-tiny, same seed) on the same synthetic data through the same
``DataLoader`` (dataset, batch sampler, workers), with the same optimiser and schedule, for the
same number of steps. The timed span is the training loop itself: from the first batch request
to the last optimiser step (ours adds what its loop does per epoch: logging, the metrics table,
checkpoints). Runs alternate ours/bare to share the machine's noise; the median of each is used.

Data wait: the share of the loop spent blocked on the next batch (bare loop: time inside
``next(iterator)``; ours: the gap between one batch's end and the next batch's start, which
also holds Lightning's per-step bookkeeping, so it is an upper bound).

    .venv/bin/python benchmarks/train_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from fashionkit.data import read_annotations
from fashionkit.data.synth import generate_world
from fashionkit.engine import apply_overrides, get_recipe, train
from fashionkit.engine.data import FashionDataModule
from fashionkit.engine.module import effective_lr, lr_factor, parameter_groups
from fashionkit.engine.train import model_config_for, resolve_precision
from fashionkit.modeling import build_model


class LoopTimer(L.Callback):
    def __init__(self):
        self.start = self.end = 0.0
        self.batch_end = None
        self.gaps = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self.steps == 0:
            self.start = now  # the first batch is loaded before this hook; see bare_loop
        elif self.batch_end is not None:
            self.gaps += now - self.batch_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps += 1
        self.batch_end = self.end = time.perf_counter()


def ours(recipe, world: Path, out: Path) -> tuple[float, float, int]:
    timer = LoopTimer()
    train(recipe, world / "train.json", None, world / "images", out, evaluate=False,
          progress=False, callbacks=[timer])
    return timer.end - timer.start, timer.gaps, timer.steps


def bare_loop(recipe, world: Path) -> tuple[float, float, int]:
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    train_set, _ = read_annotations(world / "train.json")
    loader = FashionDataModule(recipe, train_set, None, world / "images").train_dataloader()
    model = build_model(model_config_for(recipe)).train()
    cfg = recipe.optim
    # What ours does, by hand: the precision "auto" resolves to, weight decay on weights only,
    # the fused AdamW, the recipe's schedule.
    autocast = resolve_precision(recipe.precision, "cpu") == "bf16-mixed"
    opt = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=effective_lr(recipe, 1),
                            fused=True)
    total = recipe.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, cfg.warmup_steps, cfg.warmup_factor, cfg.decay_at,
                                 cfg.decay_gamma, schedule=cfg.schedule,
                                 final_factor=cfg.final_factor))
    wait = 0.0
    steps = 0
    start = None
    for epoch in range(recipe.epochs):
        loader.dataset.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        it = iter(loader)
        while True:
            t0 = time.perf_counter()
            try:
                images, targets = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            if start is None:
                start = t1  # same convention as ours: the clock starts at the first step
            else:
                wait += t1 - t0
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                losses = model.losses(images, targets)
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            steps += 1
    return time.perf_counter() - start, wait, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args()
    # Epochs of 16+ steps: per-epoch work (the checkpoint) weighs as it would in a real run
    # far less than in a 4-step epoch, but it is still counted.
    n_images, epochs, repeats = (40, 2, 1) if args.quick else (144, 2, 3)
    recipe = apply_overrides(get_recipe("cpu-tiny"), [f"epochs={epochs}", "data.num_workers=1"])
    torch.set_num_threads(2)
    print(f"cpu-tiny, precision {resolve_precision(recipe.precision, 'cpu')} on both sides")
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        generate_world(world, images=n_images, size=recipe.data.image_size, seed=0,
                       val_fraction=0.1)
        ours_t, bare_t, ours_wait, bare_wait = [], [], [], []
        for r in range(repeats):
            t, gaps, steps_ours = ours(recipe, world, Path(tmp) / f"run{r}")
            ours_t.append(t)
            ours_wait.append(gaps / t)
            t, wait, steps_bare = bare_loop(recipe, world)
            bare_t.append(t)
            bare_wait.append(wait / t)
            assert steps_ours == steps_bare, (steps_ours, steps_bare)
            print(f"repeat {r}: ours {ours_t[-1]:.2f} s, bare {bare_t[-1]:.2f} s, "
                  f"{steps_bare} steps")
    ratio = statistics.median(ours_t) / statistics.median(bare_t)
    print(f"ours  median {statistics.median(ours_t):.2f} s  (data wait + bookkeeping "
          f"{100 * statistics.median(ours_wait):.1f}%)")
    print(f"bare  median {statistics.median(bare_t):.2f} s  (data wait "
          f"{100 * statistics.median(bare_wait):.1f}%)")
    print(f"RESULT train_overhead_ratio_vs_bare_loop {ratio:.4f}")
    print(f"RESULT data_wait_share {statistics.median(bare_wait):.4f}")


if __name__ == "__main__":
    main()
