"""Does the model learn? ``cpu-tiny`` on the synthetic world, a fixed wall-clock budget on this
machine, then held-out mask AP and attribute F1.

Generates ``--train-images`` + ``--val-images`` synthetic pictures (seeded), trains ``cpu-tiny``
through the same ``fashionkit.engine.train`` the CLI uses for at most ``--minutes`` of wall time,
and reports the held-out figures of the final model with the evaluator that ``fashionkit
evaluate`` uses:

- ``mask_ap50``, ``mask_ap``: COCO-style mask AP at IoU 0.5 and 0.5:0.95 (IoU only),
- ``mask_ap_iou_f1``: the Fashionpedia AP with IoU and attribute-F1 constraints,
- ``attribute_f1``: micro F1 of attributes (score ≥ 0.5) over matched detections.

The learning curve costs the training nothing: the weights are copied in memory every
``--curve-every`` epochs and evaluated after the clock has stopped.

The goal: mask AP50 ≥ 0.5, AP ≥ 0.3, attribute F1 > 0.5 after ≤ 8 minutes on 2 cores.

    .venv/bin/python benchmarks/learning_synth.py [--quick] [--minutes 8] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from fashionkit.data.synth import generate_world
from fashionkit.engine import apply_overrides, get_recipe, train


class Snapshots(L.Callback):
    """In-memory copies of the model's weights every ``every`` epochs, with the step count and
    the training seconds at which they were taken."""

    def __init__(self, every: int):
        self.every = every
        self.taken: list[tuple[int, int, float, dict[str, torch.Tensor]]] = []
        self._start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every == 0:
            state = copy.deepcopy(pl_module.model.state_dict())
            self.taken.append((epoch, trainer.global_step, time.monotonic() - self._start, state))


def held_out_metrics(model, loader, val_set) -> dict[str, float]:
    """Held-out metrics of ``model``, computed afresh (not read from the training log)."""
    from fashionkit.engine.periodic_eval import ValidationEvaluator

    model.eval()
    evaluator = ValidationEvaluator(val_set)
    with torch.inference_mode():
        for images, targets in loader:
            evaluator.process(targets, model.predict(images))
    return evaluator.evaluate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 1-minute smoke run")
    parser.add_argument("--minutes", type=float, default=8.0, help="training wall-clock budget")
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=100,
                        help="epoch cap (default 100: the clock, not the cap, ends the run; the "
                             "cosine schedule follows the clock)")
    parser.add_argument("--curve-every", type=int, default=4, help="epochs between curve points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="keep the world and run here")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.train_images, args.val_images = 1.0, 48, 16

    from fashionkit.data import read_annotations
    from fashionkit.engine.data import FashionDataModule
    from fashionkit.modeling import load_checkpoint

    recipe = get_recipe("cpu-tiny")
    # Validation losses every epoch would spend the budget's minutes on val images; the curve
    # comes from the snapshots instead (override with --set eval_every=N).
    overrides = [f"seed={args.seed}", "eval_every=100000", *args.set]
    if args.epochs:  # the recipe's cap would stop cpu-tiny before the budget on an idle machine
        overrides.append(f"epochs={args.epochs}")
    recipe = apply_overrides(recipe, overrides)
    total = args.train_images + args.val_images
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        world = root / "world"
        t0 = time.perf_counter()
        generate_world(world, images=total, size=recipe.data.image_size, seed=args.seed,
                       val_fraction=args.val_images / total, workers=2)
        print(f"world: {args.train_images} train + {args.val_images} val images of "
              f"{recipe.data.image_size}² in {time.perf_counter() - t0:.1f} s")
        run = root / "run"
        snapshots = Snapshots(args.curve_every)
        result = train(recipe, world / "train.json", world / "val.json", world / "images", run,
                       max_minutes=args.minutes, progress=False, evaluate=False,
                       callbacks=[snapshots])
        steps = snapshots.taken[-1][1] if snapshots.taken else 0
        print(f"trained {result.epochs_completed} epochs in {result.seconds / 60:.1f} min "
              f"(budget {args.minutes} min; the last curve point at step {steps})")

        val_set, _ = read_annotations(world / "val.json")
        train_set, _ = read_annotations(world / "train.json")
        loader = FashionDataModule(recipe, train_set, val_set, world / "images").val_dataloader()
        model = load_checkpoint(result.model_path)
        print("epoch   step  train_s  segm_AP50  segm_AP  AP_iou_f1  attr_f1")
        for epoch, step, seconds, state in snapshots.taken:
            model.load_state_dict(state)
            m = held_out_metrics(model, loader, val_set)
            print(f"{epoch:5d}  {step:5d}  {seconds:7.0f}  {m.get('segm_AP50', 0.0):9.3f}  "
                  f"{m.get('segm_AP', 0.0):7.3f}  {m.get('segm_AP_iou_f1', 0.0):9.3f}  "
                  f"{m.get('attribute_micro_f1', 0.0):7.3f}")
        metrics = held_out_metrics(load_checkpoint(result.model_path), loader, val_set)
    print(f"final ({result.epochs_completed} epochs): " + ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items()))
    print(f"RESULT mask_ap50 {metrics.get('segm_AP50', 0.0):.4f}")
    print(f"RESULT mask_ap {metrics.get('segm_AP', 0.0):.4f}")
    print(f"RESULT mask_ap_iou_f1 {metrics.get('segm_AP_iou_f1', 0.0):.4f}")
    print(f"RESULT attribute_f1 {metrics.get('attribute_micro_f1', 0.0):.4f}")


if __name__ == "__main__":
    main()
