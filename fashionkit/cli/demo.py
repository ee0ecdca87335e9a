"""``fashionkit demo``: the main job on the embedded default (synthetic world, offline)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo"), "--out", help="Output folder."),
        images: int = typer.Option(300, "--images", min=10, help="Synthetic images (80% train)."),
        minutes: float = typer.Option(5.0, "--minutes", help="Training wall-clock budget."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Synthetic world → train cpu-tiny → Table 4 losses, Fig. 10 curves, held-out AP."""
        from fashionkit.demo import run_demo

        result = run_demo(out, images=images, minutes=minutes, seed=seed)
        typer.echo(f"demo done in {result.seconds / 60:.1f} min → {result.out_dir}")
