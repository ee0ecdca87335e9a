"""``fashionkit evaluate``: Fashionpedia AP (IoU+F1, IoU, F1), COCO AP and attribute metrics."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        gt: Path = typer.Option(..., "--gt", help="Ground truth, Fashionpedia/COCO JSON."),
        results: Path = typer.Option(
            ..., "--results", help="Results, Fashionpedia result format (JSON list)."
        ),
        iou_type: str = typer.Option("segm", "--iou-type", help="segm (masks) or bbox (boxes)."),
        json_out: Path | None = typer.Option(
            None, "--json", help="Write all metrics here as JSON."
        ),
        coco: bool = typer.Option(
            True, "--coco/--no-coco", help="Also compute COCO AP (pycocotools definitions)."
        ),
        attributes: bool = typer.Option(
            True, "--attributes/--no-attributes", help="Also compute per-attribute metrics."
        ),
        per_category: bool = typer.Option(
            True, "--per-category/--no-per-category", help="Print the per-category table."
        ),
    ) -> None:
        """Evaluate results against ground truth with the official Fashionpedia definitions.

        The JSON holds "iou_f1", "iou" and "f1" with the official fashionpedia-api keys, plus
        "per_super_class", "per_category", "coco", "attributes" and "per_attribute".
        """
        import json

        from rich.console import Console

        from fashionkit.evaluation import tables
        from fashionkit.evaluation.evaluator import evaluate_all
        from fashionkit.evaluation.results import load_ground_truth, read_results

        if iou_type not in ("segm", "bbox"):
            raise typer.BadParameter("use segm or bbox", param_hint="--iou-type")
        ground_truth = load_ground_truth(gt)
        detections = read_results(results, ground_truth, iou_type=iou_type)
        out = evaluate_all(ground_truth, detections, iou_type, coco=coco, attributes=attributes)
        out = {"iou_type": iou_type, **out}

        console = Console()
        console.print(
            tables.summary_table(
                out,
                f"Fashionpedia AP ({iou_type}), {len(detections)} detections, {ground_truth.num_images} images",
            )
        )
        console.print(tables.super_class_table(out["per_super_class"]))
        if per_category:
            console.print(tables.category_table(out["per_category"]))
        if out.get("coco"):
            console.print(tables.coco_table(out["coco"], f"COCO AP ({iou_type})"))
        if out.get("attributes"):
            console.print(tables.attribute_table(out["attributes"]))
            if per_category and out.get("per_attribute"):
                console.print(tables.per_attribute_table(out["per_attribute"]))
        if json_out is not None:
            json_out.write_text(
                json.dumps(_jsonable(out), indent=1, allow_nan=False) + "\n", encoding="utf-8"
            )
            console.print(f"metrics written to {json_out}")


def _jsonable(value):
    """NaN ("undefined", e.g. precision of a never-predicted attribute) → null; JSON has no NaN."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value
