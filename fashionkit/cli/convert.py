"""``fashionkit convert`` (any supported format → Fashionpedia JSON) and ``fashionkit stats``."""

from __future__ import annotations

from pathlib import Path

import typer

_FORMATS_HELP = "fashionpedia, coco, imaterialist2020 or imaterialist2019"


def _check_format(value: str) -> str:
    from fashionkit.data.readers import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {_FORMATS_HELP}")
    return value


def _default_report_path(out: Path) -> Path:
    return out.with_name(out.stem + ".skipped.json")


def _print_report(report, console, skipped_verb: str) -> None:
    from fashionkit.errors import format_problems

    for line in format_problems(report.problems, limit=10):
        console.print(f"  {skipped_verb}: {line}" if not line.startswith("…") else f"  {line}",
                      highlight=False, markup=False)
    for line in format_problems(report.notices, limit=10, noun="notice"):
        console.print(f"  notice: {line}" if not line.startswith("…") else f"  {line}",
                      highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def convert(
        src: Path = typer.Argument(
            ..., metavar="SRC", help="Annotation file (JSON or Kaggle train.csv)."
        ),
        from_format: str = typer.Option(
            ..., "--from", callback=_check_format, help=f"Input format: {_FORMATS_HELP}."
        ),
        to: Path = typer.Option(..., "--to", help="Output Fashionpedia JSON file."),
        images: Path | None = typer.Option(
            None, "--images", help="Images folder: missing files are invalid, sizes are checked."
        ),
        skip_invalid: bool = typer.Option(
            False, "--skip-invalid", help="Drop invalid records instead of failing; see --report."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="Where to write what was skipped [default: OUT.skipped.json]."
        ),
    ) -> None:
        """Convert annotations to Fashionpedia JSON (masks pixel-exact, ids and file names kept).

        Invalid input fails with exit code 2 naming the file and each record; with
        --skip-invalid those records are dropped and listed in the report.
        """
        from rich.console import Console

        from fashionkit.data import read_annotations

        console = Console(stderr=True)
        ann_set, skipped = read_annotations(
            src, from_format, images_dir=images, on_invalid="skip" if skip_invalid else "raise"
        )
        to.parent.mkdir(parents=True, exist_ok=True)
        ann_set.write(to)
        console.print(
            f"wrote {to}: {len(ann_set)} images, {ann_set.num_annotations} annotations",
            highlight=False,
        )
        if skip_invalid or report is not None or skipped.notices:
            report_path = report or _default_report_path(to)
            skipped.write(report_path)
            console.print(
                f"report {report_path}: {len(skipped.problems)} record(s) skipped, "
                f"{len(skipped.notices)} notice(s)",
                highlight=False,
            )
            _print_report(skipped, console, "skipped")

    @app.command()
    def stats(
        path: Path = typer.Argument(..., metavar="ANN", help="Annotation file."),
        from_format: str = typer.Option(
            "fashionpedia", "--from", callback=_check_format, help=f"Format: {_FORMATS_HELP}."
        ),
        images: Path | None = typer.Option(None, "--images", help="Images folder to check."),
        plot: Path | None = typer.Option(None, "--plot", help="Write PNG charts to this folder."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the stats as JSON."),
        skip_invalid: bool = typer.Option(
            False, "--skip-invalid", help="Count only the valid records (skips are listed)."
        ),
    ) -> None:
        """Counts per category, super category and attribute; masks per image; image sizes."""
        import json

        from rich.console import Console
        from rich.table import Table

        from fashionkit.data import read_annotations
        from fashionkit.data.stats import compute_stats, plot_stats

        console = Console()
        ann_set, skipped = read_annotations(
            path, from_format, images_dir=images, on_invalid="skip" if skip_invalid else "raise"
        )
        if skipped.problems or skipped.notices:
            _print_report(skipped, Console(stderr=True), "skipped")
        st = compute_stats(ann_set)
        summary = st.masks_per_image_summary
        overview = Table("", "value", title=str(path))
        overview.add_row("images", str(st.num_images))
        overview.add_row("annotations", str(st.num_annotations))
        overview.add_row(
            "polygon / RLE segmentations",
            f"{st.segmentation_kinds['polygon']} / {st.segmentation_kinds['rle']}",
        )
        overview.add_row(
            "masks per image (min / mean / median / max)",
            f"{summary['min']} / {summary['mean']:.2f} / {summary['median']:g} / {summary['max']}",
        )
        if skipped.problems:
            overview.add_row("records skipped", str(len(skipped.problems)))
        console.print(overview)

        sc = Table("super category", "instances", title="super categories")
        for name, n in st.supercategories:
            sc.add_row(name, str(n))
        console.print(sc)
        cats = Table("id", "category", "super category", "instances", title="categories")
        for cid, name, sup, n in st.categories:
            cats.add_row(str(cid), name, sup, str(n))
        console.print(cats)
        atts = Table("id", "attribute", "group", "instances", title="attributes (used)")
        for aid, name, group, n in st.attributes:
            if n:
                atts.add_row(str(aid), name, group, str(n))
        console.print(atts)
        mpi = Table("masks", "images", title="masks per image")
        for k, n in st.masks_per_image.items():
            mpi.add_row(str(k), str(n))
        console.print(mpi)
        sizes = Table("width", "height", "images", title="image sizes (20 most common)")
        for (w, h), n in st.image_sizes[:20]:
            sizes.add_row(str(w), str(h), str(n))
        console.print(sizes)

        if json_out is not None:
            json_out.write_text(json.dumps(st.to_json(), indent=1) + "\n", encoding="utf-8")
        if plot is not None:
            for p in plot_stats(st, plot):
                console.print(f"wrote {p}", highlight=False)
