"""Rich tables of evaluation results (the CLI prints them; the library returns dicts)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

__all__ = [
    "summary_table",
    "super_class_table",
    "category_table",
    "coco_table",
    "attribute_table",
    "per_attribute_table",
]

_GROUPS = (("iou_f1", "IoU+F1"), ("iou", "IoU only"), ("f1", "F1 only"))
_ORDER = [
    "AP", "AP_IOU50", "AP_IOU75", "AP_F150", "AP_F175",
    "AP_IOU50_F150", "AP_IOU50_F175", "AP_IOU75_F150", "AP_IOU75_F175",
    "APs", "APm", "APl", "APo", "APa", "APp",
    "AR@1", "AR@10", "AR@100", "ARs@100", "ARm@100", "ARl@100",
]  # fmt: skip


def _row(table: Table, *cells: str) -> None:
    """Cells as plain text: data (names, numbers) is not console markup, and skipping the
    markup and emoji parsing of every cell makes the tables cheap to print."""
    table.add_row(*map(Text, cells))


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    v = float(v)
    if v != v or v < 0:  # nan, or -1: nothing to average
        return "–"
    return f"{100 * v:.1f}"


def summary_table(result: dict[str, Any], title: str) -> Table:
    """Official keys as rows, the three result groups as columns (percent; – = no data)."""
    keys: list[str] = []
    for g, _ in _GROUPS:
        keys.extend(k for k in result.get(g, {}) if k not in keys)
    keys.sort(key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))
    table = Table("metric", *(label for _, label in _GROUPS), title=title)
    for k in keys:
        _row(
            table,
            k,
            *(_fmt(result.get(g, {}).get(k)) if k in result.get(g, {}) else "" for g, _ in _GROUPS),
        )
    return table


def super_class_table(per_super: dict[str, Any]) -> Table:
    table = Table(
        "super class",
        "AP IoU+F1",
        "AP IoU",
        "AP F1",
        "AP50 IoU",
        "AR@100 IoU",
        title="per super class",
    )
    for name, groups in per_super.items():
        iou = groups.get("iou", {})
        _row(
            table,
            name.removeprefix("supercls-"),
            _fmt(groups.get("iou + f1", {}).get("AP")),
            _fmt(iou.get("AP")),
            _fmt(groups.get("f1", {}).get("AP")),
            _fmt(iou.get("AP_IOU50")),
            _fmt(iou.get("AR@100")),
        )
    return table


def category_table(
    per_category: dict[str, Any], coco_per_category: dict[int, float] | None = None
) -> Table:
    table = Table(
        "category", "AP IoU+F1", "AP IoU", "AP F1", "AP50 IoU", "AR@100 IoU", title="per category"
    )
    for name, groups in per_category.items():
        iou = groups.get("iou", {})
        if iou.get("AP", -1) < 0 and iou.get("AR@100", -1) < 0:
            continue  # no ground truth of this category
        _row(
            table,
            name,
            _fmt(groups.get("iou_f1", {}).get("AP")),
            _fmt(iou.get("AP")),
            _fmt(groups.get("f1", {}).get("AP")),
            _fmt(iou.get("AP_IOU50")),
            _fmt(iou.get("AR@100")),
        )
    return table


def coco_table(coco: dict[str, Any], title: str = "COCO") -> Table:
    table = Table("metric", "value", title=title)
    for k, v in coco.items():
        if k != "per_category":
            _row(table, k, _fmt(v))
    return table


def attribute_table(summary: dict[str, float]) -> Table:
    table = Table("attribute metric", "value", title="attributes (matched detections, IoU ≥ 0.5)")
    for k, v in summary.items():
        _row(table, k, str(int(v)) if k == "matched_detections" else _fmt(v))
    return table


def per_attribute_table(per_attribute: dict[str, Any], top: int = 20) -> Table:
    """The ``top`` attributes with the most matched ground truth."""
    rows = sorted(per_attribute.items(), key=lambda kv: -kv[1]["support"])[:top]
    table = Table(
        "id",
        "attribute",
        "support",
        "precision",
        "recall",
        "F1",
        "AP",
        title=f"top {len(rows)} attributes by support",
    )
    for aid, v in rows:
        _row(
            table,
            aid,
            v["name"],
            str(v["support"]),
            _fmt(v["precision"]),
            _fmt(v["recall"]),
            _fmt(v["f1"]),
            _fmt(v["ap"]),
        )
    return table
