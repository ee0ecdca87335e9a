"""``fashionkit synth``: write a synthetic world (``synth world OUT``, also ``synth OUT``) or a
personal closet (``synth closet OUT``), images + Fashionpedia JSON."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup


class _WorldByDefault(TyperGroup):
    """``fashionkit synth OUT ...`` means ``fashionkit synth world OUT ...``: anything but a
    command's name or a help flag starts the world's arguments (a folder named ``closet`` or
    ``world`` is written ``./closet``)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # ctx: the Click context Typer vendors
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["world", *args]
        return super().parse_args(ctx, args)


def _parse_ids(text: str) -> list[int]:
    """``"0-12,23"`` → ``[0, 1, …, 12, 23]``."""
    ids: list[int] = []
    try:
        for chunk in text.split(","):
            lo, _, hi = chunk.strip().partition("-")
            ids.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise typer.BadParameter(f"not a list of category ids: {text!r}", param_hint="--categories") from None
    return ids


def _parse_size(text: str) -> int | tuple[int, int]:
    """``"256"`` → 256; ``"320x240"`` → (320, 240) (width, height); at least 32 a side."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 32:
        raise typer.BadParameter(f"expected N or WIDTHxHEIGHT, at least 32 each, not {text!r}", param_hint="--size")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def register(app: typer.Typer) -> None:
    synth_app = typer.Typer(cls=_WorldByDefault, no_args_is_help=True,
                            help="Write a synthetic world (synth world OUT, or synth OUT) or a personal closet (synth closet OUT).")
    app.add_typer(synth_app, name="synth")

    @synth_app.command("world")
    def world(
        out: Path = typer.Argument(..., help="Output folder: images/, train.json, val.json."),
        images: int = typer.Option(100, "--images", "-n", min=1, help="Number of images."),
        size: str = typer.Option("256", "--size", "-s", help="Image side in pixels (square), or WIDTHxHEIGHT."),
        seed: int = typer.Option(0, "--seed", help="World seed; same seed, same files."),
        val_fraction: float = typer.Option(0.2, "--val-fraction", min=0.0, max=1.0, help="Share of images in val.json."),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help="Rendering processes."),
        min_area: int | None = typer.Option(None, "--min-area", min=1, help="Smallest visible area (pixels) annotated; default scales with size."),
        image_format: str = typer.Option("jpg", "--format", help="jpg or png."),
        scene: str = typer.Option("default", "--scene", help="default (up to 3 people, close-ups, crops) or simple (one centred person)."),
        max_figures: int | None = typer.Option(None, "--max-figures", min=1, max=3, help="People per image at most (fewer: larger items)."),
        categories: str | None = typer.Option(None, "--categories", help="Annotate only these category ids, e.g. 0-12,23 (pictures unchanged)."),
    ) -> None:
        """Render people-like figures wearing Fashionpedia garments, parts and accessories."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from fashionkit.data.synth import generate_world
        from fashionkit.data.synth.scene import SCENES
        from fashionkit.ontology import load_ontology

        if image_format not in ("jpg", "png"):
            raise typer.BadParameter("--format must be jpg or png")
        if out.exists() and not out.is_dir():
            raise typer.BadParameter(f"{out} exists and is not a folder", param_hint="OUT")
        if scene not in SCENES:
            raise typer.BadParameter(f"--scene must be one of {', '.join(SCENES)}")
        keep = _parse_ids(categories) if categories else None
        shape = _parse_size(size)
        console = Console()
        with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("render", total=images)
            s = generate_world(out, images=images, size=shape, seed=seed, val_fraction=val_fraction,
                               workers=workers, min_area=min_area, image_format=image_format,
                               scene=scene, max_figures=max_figures, categories=keep,
                               progress=lambda done, total: bar.update(task, completed=done))
        ont = load_ontology()
        console.print(
            f"wrote {s.train_images} train + {s.val_images} val images ({s.width}×{s.height}) to {out}: "
            f"{s.train_annotations} + {s.val_annotations} annotations "
            f"({s.polygon_annotations} polygons, {s.rle_annotations} RLE) in {s.seconds:.1f} s "
            f"({s.images_per_second:.1f} images/s)"
        )
        counts = ", ".join(f"{ont.category(c).short_name} {n}" for c, n in sorted(s.categories.items()))
        console.print(f"per category: {counts}", highlight=False)

    @synth_app.command("closet")
    def closet(
        out: Path = typer.Argument(..., help="Output folder (new or empty): closet.json, labelled/, new/."),
        items: int = typer.Option(24, "--items", min=2, help="Items the person owns."),
        labelled_photos: int = typer.Option(40, "--labelled-photos", min=1, help="Photos the person has labelled."),
        new_photos: int = typer.Option(20, "--new-photos", min=0, help="Later photos, to recognise items in."),
        unseen_items: int = typer.Option(4, "--unseen-items", min=0, help="Items worn only in new photos (the wardrobe never saw them)."),
        size: int = typer.Option(384, "--size", "-s", min=64, help="Photo side in pixels (square)."),
        seed: int = typer.Option(0, "--seed", help="Closet seed; same seed, same files."),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help="Rendering processes."),
    ) -> None:
        """One person's items with their own tags, and labelled and new photos of them worn."""
        from collections import Counter

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from fashionkit.data.synth.closet import TAG_TYPES, generate_closet, load_closet

        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise typer.BadParameter(f"{out} exists and is not an empty folder", param_hint="OUT")
        console = Console()
        total = labelled_photos + new_photos
        with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("render", total=total)
            try:
                s = generate_closet(out, items=items, labelled_photos=labelled_photos, new_photos=new_photos,
                                    unseen_items=unseen_items, image_size=size, seed=seed, workers=workers,
                                    progress=lambda done, _: bar.update(task, completed=done))
            except ValueError as err:
                raise typer.BadParameter(str(err)) from None
        console.print(
            f"wrote a closet of {s.items} items ({s.unseen_items} unseen) to {out}: "
            f"{s.labelled_photos} labelled photos ({s.labelled_annotations} annotations) and "
            f"{s.new_photos} new ones ({s.new_annotations}), {size}×{size}, in {s.seconds:.1f} s",
            highlight=False,
        )
        kinds = Counter(it.kind for it in load_closet(out).items)
        console.print("items: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), highlight=False)
        console.print("tags: " + ", ".join(f"{k} ({'grounded: ' + (t.correlate or '') if t.grounded else 'ungrounded'})"
                                         for k, t in TAG_TYPES.items()), highlight=False)
