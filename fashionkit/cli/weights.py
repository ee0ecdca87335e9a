"""``fashionkit convert-weights``: a published model's checkpoint as a fashionkit checkpoint."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

#: The checkpoint formats ``--from`` reads: the official TensorFlow Attribute-Mask R-CNN
#: (R50/R101-FPN) that the Fashionpedia authors published.
SOURCES: tuple[str, ...] = ("tf-fashionpedia",)

_TF_PAGE = ("https://github.com/tensorflow/tpu/tree/master/models/official/detection/projects/"
            "fashionpedia")


def checkpoint_prefix(path: Path) -> Path:
    """The TensorFlow checkpoint prefix a user named: ``PREFIX`` itself (``model.ckpt``, beside
    ``model.ckpt.index`` and ``model.ckpt.data-*``), one of its files, or the folder holding
    exactly one checkpoint (the released tarball unpacked). Raises
    :class:`~fashionkit.errors.InvalidDataError` naming what is missing."""
    from fashionkit.errors import InvalidDataError

    if path.is_dir():
        found = sorted(path.glob("*.index"))
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) if found else "no *.index file"
            raise InvalidDataError.in_file(
                path, f"a folder holding one TensorFlow checkpoint is needed ({listed}): "
                      "give the checkpoint prefix, e.g. FOLDER/model.ckpt")
        return found[0].with_suffix("")
    if path.suffix == ".index" or path.suffix.startswith(".data-"):
        path = path.with_suffix("")
    index = path.with_name(path.name + ".index")
    if not index.is_file():
        raise InvalidDataError.in_file(
            path, f"no TensorFlow checkpoint here: {index.name} not found (PREFIX is the "
                  "part before .index and .data-00000-of-00001, e.g. .../model.ckpt)")
    return path


def _count(value) -> int:
    return value if isinstance(value, int) else len(value)


def print_report(report, console) -> None:
    """A conversion's summary: the backbone, parameters, variables used and those skipped,
    grouped by reason (each reason with up to three example names)."""
    from rich.markup import escape
    from rich.table import Table

    skipped = dict(report.variables_skipped)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("backbone", escape(str(report.backbone)))
    table.add_row("parameters", f"{int(report.parameters):,}")
    table.add_row("variables used", f"{_count(report.variables_used):,}")
    table.add_row("variables skipped", f"{len(skipped):,}")
    console.print(table)
    by_reason = Counter(skipped.values())
    for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        names = [k for k, v in skipped.items() if v == reason]
        examples = ", ".join(sorted(names)[:3]) + (", …" if n > 3 else "")
        console.print(f"  {n:>5} × {escape(reason)}  ({escape(examples)})", highlight=False,
                      soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("convert-weights")
    def convert_weights(
        prefix: Path = typer.Argument(
            ..., metavar="PREFIX",
            help="The checkpoint prefix (…/model.ckpt, beside model.ckpt.index and "
                 "model.ckpt.data-*), or the folder holding it."),
        source: str = typer.Option(
            ..., "--from", metavar="FORMAT",
            help=f"What PREFIX is: {', '.join(SOURCES)} (the official Fashionpedia "
                 f"Attribute-Mask R-CNN, R50/R101-FPN, from {_TF_PAGE})."),
        out: Path = typer.Option(..., "--out", help="The fashionkit checkpoint to write "
                                                    "(MODEL.pt)."),
        image_size: int | None = typer.Option(
            None, "--image-size", metavar="S",
            help="The square input size the checkpoint's recipe says (default: the official "
                 "training size, 1024); any run can change it with `fashionkit detect "
                 "--image-size`."),
    ) -> None:
        """Convert a published checkpoint into a fashionkit checkpoint, without TensorFlow.

        The backbone (ResNet-50 or -101) is read from the checkpoint's variables; every
        variable is used or accounted for (optimizer slots, the step counter), and a missing,
        extra, mis-shaped or truncated one is an error naming it (exit code 2; nothing is
        written). The output runs wherever a trained model does: `fashionkit detect
        --weights MODEL.pt`, `export`, `wardrobe add`, `serve --weights`.

        Official class k is Fashionpedia category k − 1; attribute output k is taken to be
        the k-th smallest Fashionpedia attribute id (check it with `fashionkit evaluate` on
        Fashionpedia val, see the README).
        """
        from rich.console import Console
        from rich.markup import escape

        if source not in SOURCES:
            raise typer.BadParameter(f"{source!r} is not one of {', '.join(SOURCES)}",
                                     param_hint="--from")
        if image_size is not None:
            from fashionkit.inference.photos_dataset import size_divisor
            from fashionkit.modeling.config import PRESETS

            divisor = size_divisor(PRESETS["official-r50"])
            if image_size < 1 or image_size % divisor:
                raise typer.BadParameter(f"must be a positive multiple of {divisor} (the "
                                         f"official model's coarsest stride), got {image_size}",
                                         param_hint="--image-size")
        resolved = checkpoint_prefix(prefix)
        from fashionkit.modeling.official.convert import convert_tf_checkpoint

        console = Console(stderr=True)
        report = convert_tf_checkpoint(resolved, out, image_size=image_size)
        console.print(f"converted [bold]{escape(str(resolved))}[/] → "
                      f"[bold]{escape(str(report.out))}[/]", highlight=False)
        print_report(report, console)
        console.print(f"next: fashionkit detect --weights {escape(str(report.out))} PHOTOS "
                      "--out RESULTS", highlight=False, soft_wrap=True)
