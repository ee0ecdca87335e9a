"""The ``fashionkit`` command line: thin Typer commands over the library.

Each command group lives in its own module with a ``register(app)`` function. Modules import
heavy libraries (torch, pycocotools, matplotlib) inside the command bodies, so that
``fashionkit --help`` and light commands start fast.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="fashionkit",
    help="Detect fashion items (Fashionpedia ontology), build a wardrobe, coordinate outfits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Detect fashion items (Fashionpedia ontology), build a wardrobe, coordinate outfits."""


def _register_all() -> None:
    from fashionkit.cli import (
        convert,
        demo,
        detect,
        evaluate,
        export,
        ontology,
        serve,
        synth,
        train,
        wardrobe,
    )

    for module in (ontology, convert, synth, train, evaluate, detect, export, demo, wardrobe,
                   serve):
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: invalid input data ends with exit code 2 and a message, not a traceback."""
    from fashionkit.data.errors import InvalidDataError

    try:
        app()
    except InvalidDataError as err:
        from rich.console import Console
        from rich.markup import escape

        # soft_wrap keeps each "file: record: message" on one line whatever the terminal width;
        # escape: messages quote data ("[341, 93000]", paths) that rich would read as markup.
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]invalid input:[/]\n{escape(str(err))}", highlight=False
        )
        sys.exit(2)
