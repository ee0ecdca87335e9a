"""Lightning callbacks: the per-epoch loss table (the seed paper's Table 4), the loss curves
(Fig. 10), and RNG state in checkpoints so that a resumed run continues bit-identically.

The LightningModule stays small (STYLE.md item 9): everything written to the run folder is here.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from fashionkit.modeling import LOSS_NAMES as OBJECTIVE_NAMES
from fashionkit.modeling.losses import TABLE4_LOSS_NAMES

__all__ = ["EpochTable", "RNGState", "TABLE4_COLUMNS", "LOSS_NAMES", "plot_loss_curves"]

# The losses of the table and the curves: the seed paper's Table 4 losses (matterport's
# definitions, :mod:`fashionkit.modeling.losses`), then the RPN and attribute losses. The
# optimised RoI-head losses (torchvision's definitions: ``loss_classifier``, ``loss_box_reg``,
# ``loss_mask``) follow them in ``metrics.csv`` under their own names.
LOSS_NAMES = (*TABLE4_LOSS_NAMES, "rpn_class_loss", "rpn_bbox_loss", "mrcnn_attribute_loss")
CSV_LOSS_NAMES = (*LOSS_NAMES, *(n for n in OBJECTIVE_NAMES if n not in LOSS_NAMES))
TABLE4_COLUMNS = tuple(f"train_{n}" for n in TABLE4_LOSS_NAMES) + tuple(
    f"val_{n}" for n in TABLE4_LOSS_NAMES
)


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().cpu())
    return float(value)


class EpochTable(L.Callback):
    """Writes ``RUN/metrics.csv`` (one row per epoch: the Table 4 columns first, then the RPN
    and attribute losses, the optimised RoI-head losses under torchvision's names
    (``loss_classifier``, ``loss_box_reg``, ``loss_mask``), the objective's total ``*_loss``,
    then metrics), redraws ``RUN/loss_curves.png``, and prints the table
    when training ends. Only rank 0 writes; values are already reduced across processes
    (``sync_dist=True`` in the module's logging)."""

    def __init__(self, run_dir: str | Path, print_table: bool = True):
        self.run_dir = Path(run_dir)
        self.print_table = print_table
        self.rows: list[dict[str, float]] = []

    @property
    def csv_path(self) -> Path:
        return self.run_dir / "metrics.csv"

    @property
    def plot_path(self) -> Path:
        return self.run_dir / "loss_curves.png"

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: _as_float(v) for k, v in trainer.callback_metrics.items()}
        if not getattr(self, "_validated", False):
            # callback_metrics still hold the last validation's values: not this epoch's.
            metrics = {k: v for k, v in metrics.items() if not k.startswith("val_")}
        row: dict[str, float] = {"epoch": float(trainer.current_epoch + 1)}
        for split in ("train", "val"):
            for name in CSV_LOSS_NAMES:
                key = f"{split}_{name}"
                row[key] = metrics.get(key, math.nan)
            row[f"{split}_loss"] = metrics.get(f"{split}_loss", math.nan)
        for key in sorted(metrics):
            if key.startswith("val_") and key not in row:
                row[key] = metrics[key]
        row["lr"] = metrics.get("lr", math.nan)
        self.rows.append(row)
        if trainer.is_global_zero:
            self.write()

    def columns(self) -> list[str]:
        cols = ["epoch", *TABLE4_COLUMNS]
        for row in self.rows:
            for key in row:
                if key not in cols:
                    cols.append(key)
        return cols

    def write(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cols = self.columns()
        with self.csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols)
            writer.writeheader()
            for row in self.rows:
                out = {k: row.get(k, math.nan) for k in cols}
                out["epoch"] = int(out["epoch"])
                writer.writerow(out)
        plot_loss_curves(self.rows, self.plot_path)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.print_table and self.rows:
            print_loss_table(self.rows)


def print_loss_table(rows: list[dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Losses per epoch (Table 4)")
    table.add_column("epoch", justify="right")
    for col in TABLE4_COLUMNS:
        table.add_column(col.replace("_mrcnn_", " ").replace("_loss", ""), justify="right")
    for row in rows:
        table.add_row(str(int(row["epoch"])), *(f"{row.get(c, math.nan):.4f}" for c in TABLE4_COLUMNS))
    Console().print(table)


def plot_loss_curves(rows: list[dict[str, float]], path: str | Path) -> None:
    """Fig. 10: one panel per loss of :data:`LOSS_NAMES`, train vs val across epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in LOSS_NAMES if any(not math.isnan(r.get(f"train_{n}", math.nan)) for r in rows)]
    if not names:
        return
    cols = 3
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    epochs = [int(r["epoch"]) for r in rows]
    for ax, name in zip(axes.flat, names, strict=False):
        for split, style in (("train", "-o"), ("val", "--s")):
            ys = [r.get(f"{split}_{name}", math.nan) for r in rows]
            if not all(math.isnan(y) for y in ys):
                ax.plot(epochs, ys, style, label=split, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class RNGState(L.Callback):
    """Saves Python, NumPy and torch CPU RNG states in each checkpoint and restores them on
    resume, so that epoch N+1 after a resume draws the same random numbers (RoI sampling,
    augmentation seeds) as it would have in an uninterrupted run. Stored as tensors and plain
    lists so that checkpoints still load with ``weights_only=True``."""

    def state_dict(self) -> dict[str, Any]:
        py_version, py_state, py_gauss = random.getstate()
        np_state: tuple[Any, ...] = tuple(np.random.get_state())
        return {
            "python": [py_version, list(py_state), py_gauss],
            "numpy": [
                np_state[0],
                torch.from_numpy(np_state[1].astype(np.int64)),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            ],
            "torch": torch.get_rng_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        py_version, py_state, py_gauss = state_dict["python"]
        random.setstate((py_version, tuple(py_state), py_gauss))
        name, keys, pos, has_gauss, cached = state_dict["numpy"]  # type: ignore[misc]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
