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
        weights,
    )

    for module in (ontology, convert, weights, synth, train, evaluate, detect, export, demo,
                   wardrobe, serve):
        module.register(app)


_register_all()


def main() -> None:
    """Entry point. fashionkit's own errors end with a message, never a traceback, and with the
    exit codes of :mod:`fashionkit.errors`: 2 for invalid input (bad data, an unknown item, an id
    already taken); commands that finish with some inputs unusable exit 1 themselves."""
    from fashionkit.errors import (
        EXIT_INVALID_INPUT,
        ConflictError,
        FashionkitError,
        InvalidDataError,
        NotFoundError,
    )

    try:
        app()
    except FashionkitError as err:
        from rich.console import Console
        from rich.markup import escape

        label = {InvalidDataError: "invalid input", NotFoundError: "not found",
                 ConflictError: "conflict"}.get(type(err), "error")
        # soft_wrap keeps each "file: record: message" on one line whatever the terminal width;
        # escape: messages quote data ("[341, 93000]", paths) that rich would read as markup.
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]{label}:[/]\n{escape(str(err))}", highlight=False
        )
        sys.exit(EXIT_INVALID_INPUT)
