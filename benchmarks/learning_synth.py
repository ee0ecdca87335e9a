"""Does the model learn? ``cpu-tiny`` on the synthetic world, a fixed wall-clock budget on this
machine, then held-out mask AP and attribute F1.

Generates ``--train-images`` + ``--val-images`` synthetic pictures (seeded), trains ``cpu-tiny``
through the same ``fashionkit.engine.train`` the CLI uses for at most ``--minutes`` of wall time
(evaluating the held-out set after each epoch), and reports the held-out figures of the final
model with the evaluator that ``fashionkit evaluate`` uses:

- ``mask_ap50``, ``mask_ap``: COCO-style mask AP at IoU 0.5 and 0.5:0.95 (IoU only),
- ``mask_ap_iou_f1``: the Fashionpedia AP with IoU and attribute-F1 constraints,
- ``attribute_f1``: micro F1 of attributes (score ≥ 0.5) over matched detections.

Requirement (issue 4): mask AP50 ≥ 0.5, AP ≥ 0.3, attribute F1 > 0.5 after ≤ 8 minutes on 2 cores.

    .venv/bin/python benchmarks/learning_synth.py [--quick] [--minutes 8] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch

from fashionkit.data.synth import generate_world
from fashionkit.engine import apply_overrides, get_recipe, train


def final_metrics(model_path: Path, world: Path, recipe) -> dict[str, float]:
    """Held-out metrics of the saved model, computed afresh (not read from the log)."""
    from fashionkit.data import read_annotations
    from fashionkit.engine.data import FashionDataModule
    from fashionkit.engine.validation import ValidationEvaluator
    from fashionkit.modeling import load_checkpoint

    model = load_checkpoint(model_path).eval()
    val_set, _ = read_annotations(world / "val.json")
    train_set, _ = read_annotations(world / "train.json")
    loader = FashionDataModule(recipe, train_set, val_set, world / "images").val_dataloader()
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
    parser.add_argument("--epochs", type=int, default=None, help="epoch cap (default: recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="keep the world and run here")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.train_images, args.val_images = 1.0, 48, 16

    recipe = get_recipe("cpu-tiny")
    overrides = [f"seed={args.seed}", *args.set]
    if args.epochs:
        overrides.append(f"epochs={args.epochs}")
    recipe = apply_overrides(recipe, overrides)
    total = args.train_images + args.val_images
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        world = root / "world"
        t0 = time.perf_counter()
        generate_world(world, images=total, size=recipe.data.image_size, seed=args.seed,
                       val_fraction=args.val_images / total)
        print(f"world: {args.train_images} train + {args.val_images} val images of "
              f"{recipe.data.image_size}² in {time.perf_counter() - t0:.1f} s")
        run = root / "run"
        result = train(recipe, world / "train.json", world / "val.json", world / "images", run,
                       max_minutes=args.minutes, progress=False)
        print(f"trained {result.epochs_completed} epochs in {result.seconds / 60:.1f} min "
              f"(budget {args.minutes} min)")
        with (run / "metrics.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        print("epoch  train_loss  val_loss  segm_AP50  segm_AP  AP_iou_f1  attr_f1")
        for r in rows:
            print(f"{int(r['epoch']):5d}  {float(r['train_loss']):10.3f}  {float(r['val_loss']):8.3f}"
                  f"  {float(r.get('val_segm_AP50', 'nan')):9.3f}  {float(r.get('val_segm_AP', 'nan')):7.3f}"
                  f"  {float(r.get('val_segm_AP_iou_f1', 'nan')):9.3f}"
                  f"  {float(r.get('val_attribute_micro_f1', 'nan')):7.3f}")
        metrics = final_metrics(result.model_path, world, recipe)
    print(f"RESULT mask_ap50 {metrics.get('segm_AP50', 0.0):.4f}")
    print(f"RESULT mask_ap {metrics.get('segm_AP', 0.0):.4f}")
    print(f"RESULT mask_ap_iou_f1 {metrics.get('segm_AP_iou_f1', 0.0):.4f}")
    print(f"RESULT attribute_f1 {metrics.get('attribute_micro_f1', 0.0):.4f}")


if __name__ == "__main__":
    main()
