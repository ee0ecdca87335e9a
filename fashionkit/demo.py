"""The main job on the embedded default (``make demo``), offline on the CPU:

1. the synthetic world (``OUT/world``);
2. ``cpu-tiny`` trained on it (``OUT/run``: Table 4 ``metrics.csv``, Fig. 10 ``loss_curves.png``);
3. held-out evaluation (AP and AP IoU+F1, ``OUT/evaluation.json``);
4. detection on held-out photos with the Fig. 7/8/9 outputs (``OUT/detect``);
5. a wardrobe built from those photos, plus the hand-entered example items shipped with the
   package (``resources/example_wardrobe.json``), in ``OUT/wardrobe.sqlite``;
6. outfit suggestions for two conditions;
7. ``OUT/report.html`` showing all of it.

The model is trained on synthetic data only; for real photos, train on Fashionpedia (README).
"""

from __future__ import annotations

import html
import json
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["DemoResult", "run_demo", "CONDITIONS"]

# The two outfit requests the demo shows.
CONDITIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("summer day, 26 °C, casual", {"season": "summer", "temperature": 26.0, "occasion": "casual"}),
    ("winter office, 3 °C", {"season": "winter", "temperature": 3.0, "occasion": "work"}),
)


# Report label → key of :func:`fashionkit.engine.periodic_eval.flatten_metrics`.
_METRIC_LABELS: tuple[tuple[str, str], ...] = (
    ("mask AP", "segm_AP"),
    ("mask AP50", "segm_AP50"),
    ("mask AP IoU+F1", "segm_AP_iou_f1"),
    ("mask AP50 IoU+F1 (F1 ≥ 0.5)", "segm_AP50_iou_f1"),
    ("attribute F1 (matched)", "attribute_micro_f1"),
)


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    report: Path
    metrics: dict[str, float]
    detections: int
    wardrobe_items: int
    outfits: dict[str, list[dict]]
    seconds: float


def run_demo(out_dir: str | Path = "demo", images: int = 300, minutes: float = 5.0,
             seed: int = 0, detect_images: int = 8, size: int | None = None,
             progress: bool = True) -> DemoResult:
    """Run every stage (see the module docstring) and write ``out_dir/report.html``.

    ``images`` synthetic pictures (80% train); training stops after ``minutes``;
    ``detect_images`` held-out photos go through detection and into the wardrobe. ``size``
    overrides the recipe's image size (tests use a small one)."""
    from rich.console import Console

    from fashionkit.data.synth import generate_world
    from fashionkit.engine import apply_overrides, get_recipe, train

    console = Console()
    started = time.monotonic()
    out = Path(out_dir)
    overrides = [f"seed={seed}"] + ([f"data.image_size={size}"] if size else [])
    recipe = apply_overrides(get_recipe("cpu-tiny"), overrides)
    for stale in ("run", "detect", "wardrobe.sqlite", "wardrobe_images"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    console.rule("1/6 synthetic world")
    world = out / "world"
    summary = generate_world(world, images=images, size=recipe.data.image_size, seed=seed,
                             workers=2)
    console.print(f"{summary.train_images} train / {summary.val_images} val images, "
                  f"{summary.train_annotations + summary.val_annotations} annotations → {world}")

    console.rule(f"2/6 training cpu-tiny on 2 CPU cores (at most {minutes:g} min)")
    run = out / "run"
    trained = train(recipe, world / "train.json", world / "val.json", world / "images", run,
                    max_minutes=minutes, progress=progress, evaluate=False)

    console.rule("3/6 held-out evaluation")
    detect_dir = out / "detect"
    metrics = _evaluate(trained.model_path, world, detect_dir, console)

    console.rule(f"4/6 detection on {detect_images} held-out photos (Fig. 7, 8, 9)")
    photos = _held_out_photos(world, detect_images)
    from fashionkit.inference import Predictor, save_visuals

    predictor = Predictor(trained.model_path, score_threshold=0.3)
    predictions = predictor([str(p) for p in photos], on_error="skip")
    visuals = out / "detect" / "visuals"
    n_found = 0
    for path, prediction in zip(photos, predictions, strict=True):
        if prediction.ok:
            save_visuals(prediction, visuals, path.stem)
            n_found += len(prediction.items)
    console.print(f"{n_found} items found; pictures in {visuals}")

    console.rule("5/6 wardrobe from those photos (+ hand-entered example items)")
    wardrobe_items, ingest_note = _build_wardrobe(out, predictor, photos)
    console.print(ingest_note)

    console.rule("6/6 outfit suggestions")
    outfits = _suggest(out)
    for label, suggestions in outfits.items():
        console.print(f"[bold]{label}[/]")
        for o in suggestions[:3]:
            console.print(f"  {o['score']:.3f}  {', '.join(o['items'])} — {o['explanation']}")

    report = _write_report(out, world, run, metrics, photos, visuals, outfits, ingest_note,
                           trained.epochs_completed)
    console.print(f"\n[bold]The model was trained on synthetic data only[/] ({minutes:g} min on "
                  f"this CPU). Report: {report}\nFor real photos, train on Fashionpedia: "
                  "fashionkit train --recipe paper ... (README, 'On the real Fashionpedia').")
    return DemoResult(out, report, metrics, n_found, wardrobe_items, outfits,
                      time.monotonic() - started)


def _evaluate(model_path: Path, world: Path, detect_dir: Path, console) -> dict[str, float]:
    from fashionkit.engine.periodic_eval import flatten_metrics
    from fashionkit.evaluation.evaluator import evaluate_all
    from fashionkit.evaluation.results import load_ground_truth, read_results
    from fashionkit.inference.detect_job import DetectJob, run_detect

    job = DetectJob(weights=model_path, out_dir=detect_dir / "val", dataset=world / "val.json",
                    images_dir=world / "images", visuals=False, score_threshold=0.05)
    summary = run_detect(job)
    gt = load_ground_truth(world / "val.json")
    dt = read_results(summary.results_path, gt, iou_type="segm")
    result = evaluate_all(gt, dt, "segm", coco=False, per_class=False)
    (detect_dir.parent / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    flat = flatten_metrics({"segm": result})  # the numbers training logs per epoch
    metrics = {label: flat.get(key, float("nan")) for label, key in _METRIC_LABELS}
    for key, value in metrics.items():
        console.print(f"{key:30s} {value:.4f}")
    return metrics


def _held_out_photos(world: Path, n: int) -> list[Path]:
    val = json.loads((world / "val.json").read_text())
    return [world / "images" / im["file_name"] for im in val["images"][:n]]


def _build_wardrobe(out: Path, predictor, photos: list[Path]) -> tuple[int, str]:
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.exchange import import_wardrobe
    from fashionkit.wardrobe.ingest import ingest_photos

    wardrobe = Wardrobe(f"sqlite:///{out / 'wardrobe.sqlite'}", image_dir=out / "wardrobe_images")
    report = ingest_photos(wardrobe, predictor, photos, min_score=0.3)
    detected = len(wardrobe.items())
    example = resources.files("fashionkit.resources").joinpath("example_wardrobe.json")
    with resources.as_file(example) as path:
        added = import_wardrobe(wardrobe, path, replace=False)
    total = len(wardrobe.items())
    note = (f"{detected} items detected in {len(photos)} photos "
            f"({len(report.problems)} photos failed); {added} hand-entered example items added; "
            f"{total} items in the wardrobe")
    return total, note


def _suggest(out: Path) -> dict[str, list[dict]]:
    from fashionkit.outfits import Conditions
    from fashionkit.outfits.search import suggest_for_wardrobe
    from fashionkit.wardrobe import Wardrobe

    wardrobe = Wardrobe(f"sqlite:///{out / 'wardrobe.sqlite'}", image_dir=out / "wardrobe_images")
    return {label: [o.to_json() for o in suggest_for_wardrobe(wardrobe, Conditions(**cond), k=5)]
            for label, cond in CONDITIONS}


def _write_report(out: Path, world: Path, run: Path, metrics: dict[str, float],
                  photos: list[Path], visuals: Path, outfits: dict[str, list[dict]],
                  ingest_note: str, epochs: int) -> Path:
    import csv

    def rel(path: Path) -> str:
        return html.escape(str(path.relative_to(out)))

    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    from fashionkit.engine.callbacks import TABLE4_COLUMNS

    table4 = "".join(
        "<tr><td>{}</td>{}</tr>".format(r["epoch"], "".join(
            f"<td>{float(r[c]):.4f}</td>" for c in TABLE4_COLUMNS)) for r in rows)
    metric_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>"
                          for k, v in metrics.items())
    figures = []
    for photo in photos:
        stem = photo.stem
        cut_dir = visuals / f"{stem}_items"
        cuts = "".join(f'<img class="cut" src="{rel(p)}">' for p in sorted(cut_dir.glob("*.png"))[:8])
        parts = [f'<img src="{rel(world / "images" / photo.name)}" title="photo">']
        for suffix in ("overlay", "supercategories"):
            found = sorted(visuals.glob(f"{stem}_{suffix}*.png"))
            if found:
                parts.append(f'<img src="{rel(found[0])}" title="{suffix}">')
        figures.append(f'<div class="photo">{"".join(parts)}<div>{cuts}</div></div>')
    outfit_html = "".join(
        f"<h3>{html.escape(label)}</h3><ol>" + "".join(
            f"<li><b>{html.escape(', '.join(o['items']))}</b> ({o['score']:.3f}): "
            f"{html.escape(o['explanation'])}</li>" for o in suggestions) + "</ol>"
        for label, suggestions in outfits.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fashionkit demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
.photo img{{height:220px;margin:2px}} img.cut{{height:90px;background:#eee}}
.note{{background:#fff4d6;padding:.6em 1em;border-left:4px solid #e0a800}}</style></head><body>
<h1>fashionkit demo</h1>
<p class="note"><b>The model was trained on synthetic data only</b>, for a few minutes on a CPU
({epochs} epochs of the <code>cpu-tiny</code> recipe). Its numbers show the pipeline working end
to end, not what the paper's model reaches on Fashionpedia. For real photos, train on
Fashionpedia with <code>fashionkit train --recipe paper</code> (see the README).</p>
<h2>Training losses per epoch (Table 4)</h2>
<table><tr><th>epoch</th>{"".join(f"<th>{c}</th>" for c in TABLE4_COLUMNS)}</tr>{table4}</table>
<h2>Loss curves (Fig. 10)</h2><img src="{rel(run / 'loss_curves.png')}" width="900">
<h2>Held-out evaluation</h2><table>{metric_rows}</table>
<p>All metrics: <code>evaluation.json</code> (official Fashionpedia keys).</p>
<h2>Detections on held-out photos (Fig. 8 overlay, Fig. 9 super categories, Fig. 7 cut-outs)</h2>
{"".join(figures)}
<h2>Wardrobe</h2><p>{html.escape(ingest_note)}</p>
<h2>Outfit suggestions</h2>{outfit_html}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
