"""``fashionkit wardrobe …`` and ``fashionkit outfits …``: the personal wardrobe and outfit
suggestions, thin commands over :mod:`fashionkit.wardrobe` and :mod:`fashionkit.outfits`.

Every command takes ``--db URL`` (any SQLAlchemy URL; default a SQLite file in the user's data
directory) and ``--user NAME`` (several people can share one database). A wardrobe that has a
web-service login belongs to that account: the commands open it only with the account's
password, from ``FASHIONKIT_PASSWORD`` or asked at the terminal.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from fashionkit.errors import EXIT_INVALID_INPUT, FashionkitError

if TYPE_CHECKING:
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.database import WardrobeDatabase

PASSWORD_ENV = "FASHIONKIT_PASSWORD"
_DB_HELP = "SQLAlchemy URL of the wardrobe (default: SQLite file in the user data dir)."
_LIST_FIELDS = ("colors", "season", "occasion", "attribute_ids")

wardrobe_app = typer.Typer(
    help="The personal wardrobe: list, add, edit, import and export items.",
    no_args_is_help=True,
)
outfits_app = typer.Typer(help="Outfit suggestions and feedback.", no_args_is_help=True)


@contextmanager
def _open(db: str | None, user: str) -> Iterator[Wardrobe]:
    """The wardrobe, closed afterwards; a refusal of the library (an unknown item, a taken id,
    invalid data) ends the command with its message and exit code 2, also when the command is
    invoked without :func:`fashionkit.cli.main`."""
    from fashionkit.wardrobe.database import WardrobeDatabase

    with WardrobeDatabase(db) as database:
        _prove_account(database, user)
        wardrobe = database.wardrobe(user)
        try:
            yield wardrobe
        except FashionkitError as err:
            _fail(str(err))


def _prove_account(database: WardrobeDatabase, user: str) -> None:
    """Ends the command unless ``user``'s wardrobe has no web login or the person gives its
    password: the default ``--user`` must not open someone's web-service wardrobe."""
    stored = database.account_password_hash(user)
    if stored is None:
        return
    from fashionkit.service.auth import verify_password

    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            _fail(
                f"the wardrobe {user!r} belongs to the web service's account {user!r}: give "
                f"its password in {PASSWORD_ENV} (or run this at a terminal to be asked), "
                "or use the service"
            )
        password = typer.prompt(f"Password of the web account {user!r}", hide_input=True)
    if not verify_password(password, stored):
        _fail(f"wrong password for the web service's account {user!r}")


def _fail(message: str) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(EXIT_INVALID_INPUT)


def _parse_assignments(assignments: list[str]) -> dict:
    """``FIELD=VALUE`` → the import-format value: comma lists for colors/season/occasion/
    attribute_ids, integers for formality, true/false for favorite."""
    from fashionkit.wardrobe.items import EDITABLE_FIELDS

    changes: dict = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or name not in EDITABLE_FIELDS:
            raise typer.BadParameter(
                f"{text!r}: use FIELD=VALUE with FIELD one of {', '.join(EDITABLE_FIELDS)}",
                param_hint="--set",
            )
        value = value.strip()
        if name in _LIST_FIELDS:
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if name == "attribute_ids":
                try:
                    changes[name] = [int(p) for p in parts]
                except ValueError:
                    raise typer.BadParameter(
                        f"{text!r}: ids are integers", param_hint="--set"
                    ) from None
            else:
                changes[name] = parts
        elif name == "formality":
            try:
                changes[name] = int(value)
            except ValueError:
                raise typer.BadParameter(
                    f"{text!r}: formality is 1..5", param_hint="--set"
                ) from None
        elif name == "favorite":
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise typer.BadParameter(f"{text!r}: use true or false", param_hint="--set")
            changes[name] = value.lower() in ("true", "yes", "1")
        else:
            changes[name] = value
    return changes


@wardrobe_app.command("list")
def list_items(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
    category: str | None = typer.Option(
        None, "--category", help="Only this category (name or id)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the items as JSON (import format)."),
) -> None:
    """List the items of the wardrobe."""
    import json

    from rich.console import Console
    from rich.table import Table

    from fashionkit.wardrobe import item_to_dict
    from fashionkit.wardrobe.colors import describe_color
    from fashionkit.wardrobe.items import parse_category

    with _open(db, user) as wardrobe:
        items = wardrobe.items()
        worn = wardrobe.wear_stats()
    if category is not None:
        try:
            wanted = parse_category(category)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--category") from None
        items = [i for i in items if i.category_id == wanted]
    if as_json:
        typer.echo(json.dumps([item_to_dict(i) for i in items], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(items)} item(s)")
    for column in ("id", "category", "name", "colours", "season", "brand", "formality",
                   "times worn", "last worn"):
        table.add_column(column)
    for item in items:
        stats = worn.get(item.id)
        table.add_row(
            item.id,
            item.category_name,
            item.name or "",
            ", ".join(describe_color(c).name for c in item.colors),
            ", ".join(item.season) or "any",
            item.brand or "",
            str(item.formality or ""),
            str(stats.times_worn if stats else 0),
            item.last_worn.isoformat() if item.last_worn else "never",
        )
    Console().print(table)


@wardrobe_app.command("add")
def add_items(
    photos: list[Path] = typer.Argument(
        None, help="Photos (files or folders) to detect items in (with --weights or your own "
        "model)."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", exists=True, dir_okay=False,
        help="Trained checkpoint (model.pt); default: your own model, when you have taught "
        "one (fashionkit wardrobe teach; see wardrobe model list).",
    ),
    min_score: float = typer.Option(0.5, "--min-score", help="Keep detections scoring this."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 …"),
    item_id: str | None = typer.Option(None, "--id", help="Add one item by hand: its id."),
    category: str | None = typer.Option(None, "--category", help="By hand: category name/id."),
    assignments: list[str] = typer.Option(
        [], "--set", help="By hand: FIELD=VALUE, repeatable (colors=#1f2a44,#ffffff …)."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Add items: detected in PHOTOs (with --weights, or without it with your own model once
    you have taught one: fashionkit wardrobe teach), or one entered by hand (--id,
    --category, --set)."""
    from fashionkit.errors import InvalidDataError

    if photos:
        weights = weights or _own_model(db, user)
        if weights is None:
            raise typer.BadParameter(
                "detecting items in photos needs a model (you have not taught one of your own: "
                "fashionkit wardrobe teach --weights BASE)", param_hint="--weights"
            )
        if item_id or category or assignments:
            raise typer.BadParameter("give photos or --id/--category, not both")
        _ingest(photos, weights, min_score, device, db, user)
        return
    if not item_id or not category:
        raise typer.BadParameter("give PHOTO… with --weights, or --id and --category")
    from fashionkit.wardrobe import item_from_dict

    record = {"id": item_id, "category": category, **_parse_assignments(assignments)}
    item, problems = item_from_dict(record, source="command line", where=f"item {item_id!r}")
    if problems:
        raise InvalidDataError(problems)
    assert item is not None
    with _open(db, user) as wardrobe:
        wardrobe.add(item)
    typer.echo(f"added {item_id}")


def _own_model(db: str | None, user: str) -> Path | None:
    """The person's active personal model (fashionkit.personal.models), if they have one."""
    from fashionkit.personal.models import active_model_path

    with _open(db, user) as wardrobe:
        path = active_model_path(wardrobe)
    if path is not None:
        typer.echo(f"detecting with your own model ({path.name})")
    return path


def _ingest(photos, weights, min_score, device, db, user) -> None:
    from rich.console import Console
    from rich.markup import escape

    from fashionkit.errors import InvalidDataError
    from fashionkit.inference import Predictor, expand_sources
    from fashionkit.personal.wearlog import recognised_duplicates
    from fashionkit.wardrobe.colors import describe_color
    from fashionkit.wardrobe.ingest import ingest_photos

    paths, problems = expand_sources([str(p) for p in photos])
    if problems:
        raise InvalidDataError(problems)
    predictor = Predictor(weights, device=device, score_threshold=min_score)
    embedder = _embedder(weights, device)
    console = Console(soft_wrap=True)
    key = embedder.key
    with _open(db, user) as wardrobe:
        report = ingest_photos(
            wardrobe, predictor, paths, min_score=min_score, embedder=embedder,
            duplicates=lambda w, ids: recognised_duplicates(w, key, ids),
        )
        for key in report.added:
            item = wardrobe.get(key)
            colours = ", ".join(describe_color(c).name for c in item.colors)
            console.print(f"added {escape(key)}: {item.category_name} ({escape(colours)})")
    console.print(f"{len(report.added)} item(s) added from {len(paths)} photo(s)")
    for path in report.skipped:
        console.print(f"skipped {escape(path)}: already in the wardrobe")
    for problem in report.problems:
        console.print(f"[red]could not read[/] {escape(str(problem))}")
    for dup in report.duplicates:
        console.print(
            f"{escape(dup.new)} looks like {escape(dup.existing)} (similarity "
            f"{dup.appearance:.2f}): merge with "
            f"'fashionkit wardrobe merge {escape(dup.existing)} {escape(dup.new)}'"
        )


def _embedder(weights: Path, device: str):
    """The item embedder of the detector ``weights``: items are recognised in later photos by
    the vectors it gives."""
    from fashionkit.personal.embedding import ItemEmbedder

    return ItemEmbedder.from_checkpoint(weights, device=device)


def _need_weights(weights: Path | None) -> Path:
    if weights is None:
        raise typer.BadParameter(
            "recognising items needs the detector they were added with", param_hint="--weights"
        )
    return weights


def _wore_models(wardrobe, weights: Path | None, device: str):
    """``(detector checkpoint, embedder)`` for ``wardrobe wore``: ``weights`` for both when
    given. Otherwise the person's active model detects (:class:`typer.BadParameter` when they
    have none), and items are recognised by the embedder their stored vectors come from: of
    that model's base checkpoint (as the service recognises them) or of the model itself,
    whichever has embedded more of them. When neither has (the base file is gone, say), the
    model's own embedder embeds every item again first (:func:`reindex`), as the service
    does when its model changed."""
    from fashionkit.personal.models import PersonalModels
    from fashionkit.personal.wearlog import reindex

    if weights is not None:
        return weights, _embedder(weights, device)
    own = PersonalModels(wardrobe).active_model()
    if own is None:
        raise typer.BadParameter(
            "recognising items needs the detector they were added with (you have not taught "
            "a model of your own: fashionkit wardrobe teach --weights BASE)",
            param_hint="--weights",
        )
    typer.echo(f"detecting with your own model ({own.path.name})")
    known = wardrobe.embedders()
    base = Path(own.base)
    candidates = [base, own.path] if base.is_file() and base != own.path else [own.path]
    embedders = [_embedder(path, device) for path in candidates]
    chosen = max(embedders, key=lambda e: known.get(e.key, 0))
    if known and chosen.key not in known:
        chosen = embedders[-1]
        report = reindex(wardrobe, chosen)
        typer.echo(f"your items were embedded by another model: embedded {len(report.embedded)} "
                   "item(s) again with your own model")
    return own.path, chosen


@wardrobe_app.command("wore")
def wore(
    photos: list[Path] = typer.Argument(..., help="Photos (files or folders) of your outfit."),
    weights: Path | None = typer.Option(
        None, "--weights", exists=True, dir_okay=False,
        help="Trained checkpoint (model.pt) that detects and recognises; default: your own "
        "model detects, and the model your items were embedded with recognises (see below).",
    ),
    on: str | None = typer.Option(None, "--on", help="Day worn, YYYY-MM-DD (default today)."),
    add_new: bool = typer.Option(
        False, "--add-new", help="Add the items not recognised as new items."
    ),
    min_score: float = typer.Option(0.5, "--min-score", help="Keep detections scoring this."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 …"),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Log what you wore from a photo: your items in it are recognised and each gets a wear on
    the day; the others are listed as new (--add-new adds them, as 'wardrobe add' does).

    Without --weights, your own model (fashionkit wardrobe teach) finds the items, and they are
    recognised with the model your items were embedded with: the base your model was taught
    from, or your model itself. When neither embedded them (the base file is gone), your items
    are first embedded again with your own model, as 'wardrobe reindex' does."""
    from rich.console import Console
    from rich.markup import escape

    from fashionkit.errors import EXIT_PARTIAL_FAILURE, InvalidDataError
    from fashionkit.inference import Predictor, expand_sources
    from fashionkit.ontology import load_ontology
    from fashionkit.personal.wearlog import log_outfit_photos

    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError:
        raise typer.BadParameter(f"{on!r} is not YYYY-MM-DD", param_hint="--on") from None
    paths, problems = expand_sources([str(p) for p in photos])
    if problems:
        raise InvalidDataError(problems)
    console = Console(soft_wrap=True)
    onto = load_ontology()
    with _open(db, user) as wardrobe:
        detector, embedder = _wore_models(wardrobe, weights, device)
        predictor = Predictor(detector, device=device, score_threshold=min_score)
        reports, unreadable = log_outfit_photos(
            wardrobe, predictor, embedder, paths, on=day, min_score=min_score, add_new=add_new
        )
    for report in reports:
        console.print(f"[bold]{escape(report.path)}[/] (worn on {report.worn_on.isoformat()})")
        shown: set[str] = set()
        for found in report.recognised:
            if found.item_id in shown:
                continue  # the other one of a pair
            shown.add(found.item_id)
            again = "" if found.item_id in report.logged else " (already logged that day)"
            console.print(
                f"  wore {escape(found.item_id)}: {onto.category(found.category_id).short_name}"
                f" (similarity {found.similarity:.2f}){again}"
            )
        for offered in report.new:
            item = offered.detected.item
            closest = (
                f"; closest {escape(offered.candidates[0][0])} "
                f"{offered.candidates[0][1]:.2f}" if offered.candidates else ""
            )
            verb = "added" if item.id in report.added else "new"
            console.print(
                f"  {verb} {escape(item.id)}: {item.category_name}{closest}", highlight=False
            )
            if offered.suggested_tags:
                console.print(f"    suggested tags: {escape(_tags_text(offered.suggested_tags))}",
                              highlight=False)  # fmt: skip
        if report.new and not add_new:
            console.print("  add the new ones with --add-new")
        if report.added and any(o.suggested_tags for o in report.new):
            console.print("  confirm an added item's suggested tags with "
                          "'fashionkit wardrobe suggest-tags ITEM --apply'")  # fmt: skip
    logged = sum(len({r.item_id for r in report.recognised}) for report in reports)
    console.print(f"{logged} item(s) recognised in {len(reports)} photo(s)")
    for problem in unreadable:
        console.print(f"[red]could not read[/] {escape(str(problem))}")
    if unreadable:
        raise typer.Exit(EXIT_PARTIAL_FAILURE)


def _suggestion_text(s, join: str) -> tuple[str, str]:
    """A suggested tag's value (a tuple's words joined by ``join``) and
    ``"(confidence%, learned | your usual)"``."""
    value = join.join(s.value) if isinstance(s.value, tuple) else s.value
    why = "learned" if s.source == "learned" else "your usual"
    return value, f"({s.confidence:.0%}, {why})"


def _tags_text(tags: dict) -> str:
    """``field value (confidence%, learned | your usual)``, comma-separated."""
    return ", ".join(f"{name} {' '.join(_suggestion_text(s, ','))}" for name, s in tags.items())


@wardrobe_app.command("suggest-tags")
def suggest_tags_cmd(
    item_id: str = typer.Argument(..., help="The item (one found in a photo: it has a picture)."),
    apply: bool = typer.Option(False, "--apply", help="Store the suggested tags on the item."),
    embedder: str | None = typer.Option(
        None, "--embedder", help="Embedder key of the embeddings to use (default: the one most "
        "of your items have; see 'wardrobe reindex')."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Suggest tags (material, brand, trend, season, occasion) for an item from its picture,
    learned from your other labelled items; 'your usual' marks a tag no look was learned for
    (your most frequent value). --apply stores them; edit them with 'wardrobe edit'."""
    from rich.console import Console
    from rich.markup import escape

    from fashionkit.personal.tag_suggestions import suggest_tags_for_item

    console = Console(soft_wrap=True)
    with _open(db, user) as wardrobe:
        found = suggest_tags_for_item(wardrobe, item_id, embedder)
        if not found:
            console.print(f"no suggestions for {escape(item_id)}: too few of your items with "
                          "pictures carry tags")  # fmt: skip
            return
        for name, s in found.items():
            value, why = _suggestion_text(s, ", ")
            console.print(f"{name}: {escape(value)} {why}", highlight=False)
        if apply:
            wardrobe.update(item_id, **{n: list(s.value) if isinstance(s.value, tuple)
                                        else s.value for n, s in found.items()})  # fmt: skip
            console.print(f"updated {escape(item_id)}")


@wardrobe_app.command("reindex")
def reindex_items(
    weights: Path | None = typer.Option(
        None, "--weights", exists=True, dir_okay=False, help="Trained checkpoint (model.pt)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 …"),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Recompute the embeddings that recognise your items in photos (after changing model, or
    for items added before embeddings were kept)."""
    from fashionkit.personal.wearlog import reindex

    weights = _need_weights(weights)
    with _open(db, user) as wardrobe:
        report = reindex(wardrobe, _embedder(weights, device))
    typer.echo(f"embedded {len(report.embedded)} item(s)")
    if report.without_picture:
        typer.echo(
            f"{len(report.without_picture)} item(s) entered by hand have no picture to "
            "recognise them by"
        )
    if report.missing:
        typer.echo(f"pictures missing from the image folder: {', '.join(report.missing)}")


@wardrobe_app.command("merge")
def merge_items(
    keep: str = typer.Argument(..., help="The item to keep."),
    drop: str = typer.Argument(..., help="Its duplicate, merged into KEEP and removed."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Merge two records of the same garment (wear log, outfits and details move to KEEP)."""
    with _open(db, user) as wardrobe:
        wardrobe.merge(keep, drop)
    typer.echo(f"merged {drop} into {keep}")


@wardrobe_app.command("edit")
def edit_item(
    item_id: str = typer.Argument(..., help="The item to change."),
    assignments: list[str] = typer.Option(
        [], "--set", help="FIELD=VALUE, repeatable; lists are comma-separated."
    ),
    clear: list[str] = typer.Option([], "--clear", help="FIELD to empty, repeatable."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Correct fields of an item (category, colours, season, material, formality …)."""
    from fashionkit.wardrobe.items import EDITABLE_FIELDS

    changes = _parse_assignments(assignments)
    for name in clear:
        if name not in EDITABLE_FIELDS or name == "category":
            raise typer.BadParameter(f"cannot clear {name!r}", param_hint="--clear")
        changes[name] = None
    if not changes:
        raise typer.BadParameter("nothing to change: give --set or --clear")
    with _open(db, user) as wardrobe:
        wardrobe.update(item_id, **changes)
    typer.echo(f"updated {item_id}")


@wardrobe_app.command("remove")
def remove_item(
    item_id: str = typer.Argument(..., help="The item to remove (with its wear log)."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Remove an item."""
    with _open(db, user) as wardrobe:
        wardrobe.remove(item_id)
    typer.echo(f"removed {item_id}")


@wardrobe_app.command("import")
def import_items(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Wardrobe JSON file."),
    replace: bool = typer.Option(
        True, "--replace/--no-replace", help="Overwrite items whose id exists (else fail)."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Import items from JSON (format: fashionkit.wardrobe.exchange)."""
    from fashionkit.wardrobe import import_wardrobe

    with _open(db, user) as wardrobe:
        count = import_wardrobe(wardrobe, path, replace=replace)
    typer.echo(f"imported {count} item(s) from {path}")


@wardrobe_app.command("export")
def export_items(
    path: Path = typer.Argument(..., dir_okay=False, help="Where to write the JSON."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Export every item as JSON (re-importable)."""
    from fashionkit.wardrobe import export_wardrobe

    with _open(db, user) as wardrobe:
        count = export_wardrobe(wardrobe, path)
    typer.echo(f"exported {count} item(s) to {path}")


@wardrobe_app.command("export-dataset")
def export_dataset_cmd(
    out_dir: Path = typer.Argument(..., file_okay=False, help="Folder for images/ and JSON."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Write the wardrobe's photos and corrected items as a Fashionpedia-format dataset (for
    fine-tuning: fashionkit train --recipe finetune --weights BASE)."""
    from fashionkit.wardrobe.dataset import export_dataset

    with _open(db, user) as wardrobe:
        path = export_dataset(wardrobe, out_dir)
    typer.echo(f"wrote {path}")


@wardrobe_app.command("password")
def set_password(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
    from_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Give a wardrobe a login for the web service (fashionkit serve), or change it (given the
    current password, as for every command): then log in there as --user with this password and
    see the same items, photos and outfits."""
    from fashionkit.service.auth import USERNAME_PATTERN, Accounts, check_password_length
    from fashionkit.wardrobe.database import WardrobeDatabase

    if not USERNAME_PATTERN.fullmatch(user):
        raise typer.BadParameter(
            "web logins take letters, digits and _ . - (at most 64, starting with a letter "
            "or digit)",
            param_hint="--user",
        )
    with WardrobeDatabase(db) as database:
        _prove_account(database, user)
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            check_password_length(password)
        except ValueError as err:
            _fail(str(err))
        Accounts(database.engine).set_password(user, password)
    typer.echo(f"{user} can now log in to the web service")


@outfits_app.command("suggest")
def suggest(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
    season: str | None = typer.Option(None, "--season", help="spring, summer, autumn or winter."),
    temperature: float | None = typer.Option(None, "--temperature", help="Air temperature, °C."),
    occasion: str | None = typer.Option(None, "--occasion", help="work, casual, party, formal …"),
    formality: int | None = typer.Option(None, "--formality", min=1, max=5, help="Target 1..5."),
    lock: list[str] = typer.Option([], "--with", help="Build around this item id (repeatable)."),
    brand: list[str] = typer.Option([], "--brand", help="Only these brands (repeatable)."),
    exclude_brand: list[str] = typer.Option([], "--exclude-brand"),
    trend: list[str] = typer.Option([], "--trend", help="Only these trends (repeatable)."),
    exclude_trend: list[str] = typer.Option([], "--exclude-trend"),
    material: list[str] = typer.Option([], "--material", help="Only these materials."),
    exclude_material: list[str] = typer.Option([], "--exclude-material"),
    color: list[str] = typer.Option([], "--color", help="Colour family, CSS name or #hex."),
    exclude_color: list[str] = typer.Option([], "--exclude-color"),
    not_worn_days: int | None = typer.Option(
        None, "--not-worn-days", min=0, help="Skip items worn in the last N days."
    ),
    favour_rarely_worn: bool = typer.Option(
        False, "--favour-rarely-worn", help="Rank items worn less in the last 30 days higher."
    ),
    today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD (default: today)."),
    outer: bool | None = typer.Option(
        None,
        "--outer/--no-outer",
        help="Ask for / forbid an outer layer (default: by temperature).",
    ),
    n: int = typer.Option(10, "-n", min=1, help="How many outfits."),
    as_json: bool = typer.Option(
        False, "--json", help='Print [{"items", "score", "explanation"}] as JSON.'
    ),
) -> None:
    """Suggest outfits from the wardrobe (deterministic for the same wardrobe, conditions and
    feedback)."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from fashionkit.outfits import suggest_for_wardrobe
    from fashionkit.outfits.conditions import parse_conditions

    try:
        conditions = parse_conditions(
            season=season,
            temperature=temperature,
            occasion=occasion,
            formality=formality,
            include_brands=brand,
            exclude_brands=exclude_brand,
            include_trends=trend,
            exclude_trends=exclude_trend,
            include_materials=material,
            exclude_materials=exclude_material,
            include_colors=color,
            exclude_colors=exclude_color,
            lock=lock,
            not_worn_days=not_worn_days,
            today=today,
            outer=outer,
            favour_rarely_worn=favour_rarely_worn,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    with _open(db, user) as wardrobe:
        try:
            outfits = suggest_for_wardrobe(wardrobe, conditions, k=n)
        except (KeyError, ValueError) as err:  # a lock that is unknown or cannot be met
            _fail(str(err.args[0]))
    if as_json:
        typer.echo(json.dumps([o.to_json() for o in outfits], indent=2, ensure_ascii=False))
        return
    console = Console(soft_wrap=True)
    if not outfits:
        console.print("no outfit fits these conditions (need a top and a bottom, or a one piece)")
        return
    for rank, outfit in enumerate(outfits, 1):
        console.print(
            f"[bold]{rank:2d}.[/] score {outfit.score:.3f}  {escape(', '.join(outfit.items))}\n"
            f"    {escape(outfit.explanation)}",
            highlight=False,
        )


@outfits_app.command("feedback")
def feedback(
    kind: str = typer.Argument(..., help="like, dislike or wore."),
    items: list[str] = typer.Argument(..., help="The outfit's item ids."),
    on: str | None = typer.Option(None, "--on", help="Day worn, YYYY-MM-DD (for 'wore')."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Tell the wardrobe what you thought of an outfit; later suggestions learn from it."""
    from fashionkit.wardrobe.models import FEEDBACK_KINDS

    if kind not in FEEDBACK_KINDS:
        raise typer.BadParameter(f"use one of {', '.join(FEEDBACK_KINDS)}", param_hint="KIND")
    try:
        day = dt.date.fromisoformat(on) if on else None
    except ValueError:
        raise typer.BadParameter(f"{on!r} is not YYYY-MM-DD", param_hint="--on") from None
    with _open(db, user) as wardrobe:
        wardrobe.record_feedback(items, kind, on=day)
    typer.echo(f"recorded {kind} for {len(items)} item(s)")


# -- the person's own model ------------------------------------------------------------------
model_app = typer.Typer(
    help="Your own detector, fine-tuned on your corrected photos: its versions.",
    no_args_is_help=True,
)


@wardrobe_app.command("teach")
def teach_cmd(
    weights: Path | None = typer.Option(
        None, "--weights", exists=True, dir_okay=False,
        help="Base checkpoint to fine-tune (default: the base of your latest version).",
    ),
    minutes: float = typer.Option(
        5.0, "--minutes", min=0.05, help="Most wall time for the fine-tuning, in minutes."
    ),
    min_photos: int = typer.Option(
        5, "--min-photos", min=1, help="Corrected photos needed at least."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Teach your model: fine-tune the detector on your photos with the items as you corrected
    them, then use the new version for your next photos (undo: wardrobe model rollback)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fashionkit.personal.models import PersonalModels
    from fashionkit.personal.teaching import teach

    with _open(db, user) as wardrobe:
        models = PersonalModels(wardrobe)
        if weights is None:
            versions = models.versions()
            if not versions:
                raise typer.BadParameter(
                    "the first time, name the model to start from", param_hint="--weights"
                )
            weights = Path(versions[-1].base)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      transient=True) as bar:
            task = bar.add_task("teaching", total=1.0)
            result = teach(
                wardrobe, weights, minutes=minutes, models=models, min_photos=min_photos,
                progress=lambda f, m: bar.update(task, completed=f, description=m),
            )
    version = result.version
    assert version is not None  # nothing cancels a foreground run but Ctrl-C
    typer.echo(
        f"version {version.version} in use: fine-tuned on {version.photos} photos in "
        f"{version.minutes:.1f} min ({version.steps} steps) from {weights}"
    )


@model_app.command("list")
def model_list(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Your model's versions; * marks the one in use."""
    from rich.console import Console
    from rich.table import Table

    from fashionkit.personal.models import PersonalModels

    with _open(db, user) as wardrobe:
        versions = PersonalModels(wardrobe).versions()
    if not versions:
        typer.echo("no model of your own yet: the base model is used (fashionkit wardrobe teach)")
        return
    table = Table(title=f"{len(versions)} version(s)")
    for column in ("", "version", "created", "photos", "minutes", "steps", "base"):
        table.add_column(column)
    for v in versions:
        table.add_row("*" if v.active else "", str(v.version), v.created_at.isoformat(" ", "seconds"),
                      str(v.photos), f"{v.minutes:.1f}", str(v.steps), Path(v.base).name)
    Console().print(table)
    if not any(v.active for v in versions):
        typer.echo("none in use: the base model is used")


@model_app.command("use")
def model_use(
    version: int = typer.Argument(..., help="The version to use for your next photos."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Use one of your model's versions for your next photos."""
    from fashionkit.personal.models import PersonalModels

    with _open(db, user) as wardrobe:
        PersonalModels(wardrobe).activate(version)
    typer.echo(f"version {version} in use")


@model_app.command("rollback")
def model_rollback(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    user: str = typer.Option("default", "--user", help="Whose wardrobe."),
) -> None:
    """Go back to the version before the one in use (from the first: the base model)."""
    from fashionkit.personal.models import PersonalModels

    with _open(db, user) as wardrobe:
        version = PersonalModels(wardrobe).rollback()
    typer.echo(f"version {version.version} in use" if version else "the base model is in use")


wardrobe_app.add_typer(model_app, name="model")


def register(app: typer.Typer) -> None:
    app.add_typer(wardrobe_app, name="wardrobe")
    app.add_typer(outfits_app, name="outfits")
