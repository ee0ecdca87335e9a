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
        detect_images: int = typer.Option(8, "--detect-images", min=1,
                                          help="Held-out photos to detect and put in the wardrobe."),
    ) -> None:
        """Synthetic world → train cpu-tiny (Table 4, Fig. 10) → evaluate → detect (Fig. 7/8/9)
        → wardrobe → outfits → OUT/report.html."""
        from fashionkit.demo import run_demo

        result = run_demo(out, images=images, minutes=minutes, seed=seed,
                          detect_images=detect_images)
        typer.echo(f"demo done in {result.seconds / 60:.1f} min → {result.report}")
