"""The wardrobe item as the library passes it around (import/export, outfits, CLI).

:class:`WardrobeItem` is a frozen value object, independent of the database. :func:`item_from_dict`
builds one from the JSON form of the import format and collects every problem found, so a bad
file is reported field by field (see :mod:`fashionkit.wardrobe.exchange` for the file format).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field, replace

from fashionkit.errors import Problem
from fashionkit.ontology import load_ontology
from fashionkit.wardrobe.attributes import SEASONS
from fashionkit.wardrobe.colors import normalize_hex

__all__ = [
    "WardrobeItem",
    "item_from_dict",
    "item_to_dict",
    "parse_category",
    "plausible_id",
    "id_problem",
    "normalize_id",
    "day_problem",
    "EARLIEST_DAY",
    "EDITABLE_FIELDS",
    "MAX_ID_LENGTH",
]


@dataclass(frozen=True)
class WardrobeItem:
    """One garment or accessory.

    ``id`` is the person's stable key (a string as :func:`id_problem` accepts). ``category_id`` is a Fashionpedia
    category id (0..45). ``colors`` are ``"#rrggbb"`` strings, main colour first. ``season``
    holds names from :data:`~fashionkit.wardrobe.attributes.SEASONS`; empty means "any
    season". ``formality`` is 1 (athletic/lounge) .. 5 (black tie), ``None`` when unknown.
    ``last_worn`` comes from the wear log (read-only here).
    """

    id: str
    category_id: int
    name: str | None = None
    colors: tuple[str, ...] = ()
    season: tuple[str, ...] = ()
    material: str | None = None
    pattern: str | None = None
    brand: str | None = None
    trend: str | None = None
    occasion: tuple[str, ...] = ()
    formality: int | None = None
    attribute_ids: tuple[int, ...] = ()
    favorite: bool = False
    notes: str | None = None
    last_worn: dt.date | None = field(default=None, compare=False)

    @property
    def category_name(self) -> str:
        return load_ontology().category(self.category_id).short_name

    def with_changes(self, **changes) -> WardrobeItem:
        return replace(self, **changes)


# Fields a person may set by hand (CLI ``wardrobe edit``, import); ``last_worn`` is not one.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name", "category", "colors", "season", "material", "pattern", "brand", "trend", "occasion",
    "formality", "attribute_ids", "favorite", "notes",
)  # fmt: skip

_TEXT_FIELDS = ("name", "material", "pattern", "brand", "trend", "notes")
# The database's column sizes (models.ItemRow): PostgreSQL refuses longer strings, SQLite would
# store them, so they are refused here for every database alike.
MAX_ID_LENGTH = 200
_MAX_LENGTH = {"name": 200, "material": 100, "pattern": 100, "brand": 100, "trend": 100}
_MAX_NOTES = 10_000
# Control characters: PostgreSQL text cannot hold NUL, and ids appear in URLs and file names.
_CONTROL = frozenset(map(chr, range(32))) | {"\x7f"}
# Ids are path segments of the API (/api/items/{id}): a slash, even sent as %2F, splits the
# segment and a backslash is a slash to some clients; "." and ".." are removed from paths by
# clients and proxies. Either way such an item could be stored and never be reached again.
_ID_SEPARATORS = frozenset("/\\")
_DOT_SEGMENTS = frozenset({".", ".."})
# Unicode categories refused in ids: control (Cc), format (Cf: bidirectional overrides and
# zero-width characters, which make two different ids look alike or text run backwards),
# surrogates (Cs), private use (Co) and unassigned (Cn), and line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def normalize_id(text: str) -> str:
    """The form an id is stored and looked up in: stripped, Unicode NFC (so that an id typed
    with a combining accent and one with the precomposed letter are one id)."""
    return unicodedata.normalize("NFC", text.strip())


def id_problem(text: str) -> str | None:
    """What is wrong with ``text`` as an item id, or ``None`` when it is a valid one: the one
    rule for ids, whichever way they come in (API, import, CLI). An id is non-empty, at most
    :data:`MAX_ID_LENGTH` characters, in NFC, and holds no ``/`` or ``\\``, no control,
    format (bidirectional, zero-width), private-use or unassigned characters, and is not ``.``
    or ``..``."""
    shown = f"{text[:40]!r}{'…' if len(text) > 40 else ''}"
    if not text:
        return "id must not be empty"
    if len(text) > MAX_ID_LENGTH:
        return f"id must be at most {MAX_ID_LENGTH} characters, got {len(text)}: {shown}"
    if unicodedata.normalize("NFC", text) != text:
        return f"id must be in Unicode NFC form, got {shown}"
    if text in _DOT_SEGMENTS:
        return f"id must not be {text!r} (a path segment clients remove)"
    if _ID_SEPARATORS.intersection(text):
        return f"id must not contain '/' or '\\' (ids are parts of URLs), got {shown}"
    refused = sorted(
        {c for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES}, key=ord
    )
    if refused:
        names = ", ".join(f"U+{ord(c):04X}" for c in refused[:5])
        return (
            f"id must not contain control, invisible or bidirectional characters ({names}), "
            f"got {shown}"
        )
    return None


# Days a garment was worn or an outfit rated: a day before this is a typing mistake, and the
# database's date arithmetic (days since last worn) must not meet 9999-12-31.
EARLIEST_DAY = dt.date(1900, 1, 1)


def day_problem(day: dt.date, name: str, today: dt.date | None = None) -> str | None:
    """What is wrong with ``day`` as the day something was worn (``name`` is the field, for
    the message): it must lie from :data:`EARLIEST_DAY` to tomorrow (a day's slack for the
    client's time zone). ``None`` when it does."""
    latest = (today or dt.date.today()) + dt.timedelta(days=1)
    if EARLIEST_DAY <= day <= latest:
        return None
    return f"{name} must be a day from {EARLIEST_DAY} to {latest}, got {day.isoformat()}"


def plausible_id(text: str) -> bool:
    """Whether ``text`` could be an item id (what :func:`item_from_dict` accepts, see
    :func:`id_problem`). Lookups of anything else can answer "no such item" without asking
    the database."""
    return id_problem(text) is None


def parse_category(value) -> int:
    """A Fashionpedia category id from an id (int, or a string of ASCII digits) or a name in
    any of its forms (``"pants"``, ``"T-shirt"``, ``"shirt, blouse"``); ``ValueError`` naming
    the value otherwise."""
    onto = load_ontology()
    if isinstance(value, bool):
        raise ValueError(f"category {value!r} is neither a Fashionpedia name nor an id")
    if isinstance(value, int):
        if not onto.has_category(value):
            raise ValueError(f"category id {value} is not a Fashionpedia category (0..45)")
        return value
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
        if text.isascii() and text.isdigit():
            return parse_category(int(text))
        try:
            return onto.find_category(text).id
        except KeyError as err:
            raise ValueError(str(err.args[0])) from None
    raise ValueError(f"category {value!r} is neither a Fashionpedia name nor an id")


def _category_id(value, problems: list[str]) -> int | None:
    try:
        return parse_category(value)
    except ValueError as err:
        problems.append(str(err))
        return None


def _str_list(name: str, value, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{name} must be a list of strings, got {value!r}")
        return ()
    return tuple(v.strip() for v in value if v.strip())


def item_from_dict(data, source: str, where: str) -> tuple[WardrobeItem | None, list[Problem]]:
    """Validate one JSON object of the import format; returns the item (``None`` when invalid)
    and the problems, each naming ``source`` (the file) and ``where`` (e.g. ``"item 3 (id
    'navy-coat')"``)."""
    errors: list[str] = []
    if not isinstance(data, dict):
        return None, [Problem(source, where, f"an item must be a JSON object, got {data!r}")]
    unknown = sorted(set(data) - {"id", *EDITABLE_FIELDS, "last_worn"})
    if unknown:
        errors.append(f"unknown field(s) {', '.join(unknown)}")
    item_id = data.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        errors.append(f"id must be a non-empty string, got {item_id!r}")
    else:
        item_id = normalize_id(item_id)
        problem = id_problem(item_id)
        if problem is not None:
            errors.append(problem)
    if "category" not in data:
        errors.append("category is missing")
        category_id = None
    else:
        category_id = _category_id(data["category"], errors)

    colors: list[str] = []
    for value in _str_list("colors", data.get("colors"), errors):
        try:
            colors.append(normalize_hex(value))
        except ValueError as err:
            errors.append(f"colors: {err}")
    season = [s.lower() for s in _str_list("season", data.get("season"), errors)]
    bad_seasons = [s for s in season if s not in SEASONS]
    if bad_seasons:
        errors.append(f"season {bad_seasons} not in {list(SEASONS)}")
    occasion = [s.lower() for s in _str_list("occasion", data.get("occasion"), errors)]

    formality = data.get("formality")
    if formality is not None and (
        isinstance(formality, bool) or not isinstance(formality, int) or not 1 <= formality <= 5
    ):
        errors.append(f"formality must be an integer 1..5, got {formality!r}")
        formality = None

    attribute_ids = data.get("attribute_ids") or []
    onto = load_ontology()
    if not isinstance(attribute_ids, list) or not all(
        isinstance(a, int) and not isinstance(a, bool) for a in attribute_ids
    ):
        errors.append(f"attribute_ids must be a list of integers, got {attribute_ids!r}")
        attribute_ids = []
    unknown_atts = [a for a in attribute_ids if not onto.has_attribute(a)]
    if unknown_atts:
        errors.append(f"attribute_ids {unknown_atts} are not Fashionpedia attribute ids")

    texts: dict[str, str | None] = {}
    for name in _TEXT_FIELDS:
        raw = data.get(name)
        if raw is not None and not isinstance(raw, str):
            errors.append(f"{name} must be a string, got {raw!r}")
        texts[name] = (raw.strip() or None) if isinstance(raw, str) else None
        text = texts[name]
        if text is not None:
            limit = _MAX_LENGTH.get(name, _MAX_NOTES)
            if len(text) > limit:
                errors.append(f"{name} must be at most {limit} characters, got {len(text)}")
            if "\x00" in text:
                errors.append(f"{name} must not contain NUL characters")
    if any(len(w) > 100 or _CONTROL.intersection(w) for w in occasion):
        errors.append("occasion: words of at most 100 characters without control characters")
    favorite = data.get("favorite", False)
    if not isinstance(favorite, bool):
        errors.append(f"favorite must be true or false, got {favorite!r}")
    last_worn = data.get("last_worn")
    if last_worn is not None:
        try:
            last_worn = dt.date.fromisoformat(last_worn)
        except (TypeError, ValueError):
            errors.append(f"last_worn must be a YYYY-MM-DD date, got {last_worn!r}")
            last_worn = None
        else:
            problem = day_problem(last_worn, "last_worn")
            if problem is not None:
                errors.append(problem)

    if errors:
        return None, [Problem(source, where, e) for e in errors]
    assert category_id is not None and isinstance(item_id, str)
    item = WardrobeItem(
        id=item_id,
        category_id=category_id,
        colors=tuple(colors),
        season=tuple(s for s in SEASONS if s in season),
        occasion=tuple(dict.fromkeys(occasion)),
        formality=formality,
        attribute_ids=tuple(sorted(set(attribute_ids))),
        favorite=bool(favorite),
        last_worn=last_worn,
        **texts,
    )
    return item, []


def item_to_dict(item: WardrobeItem) -> dict:
    """The JSON form (export format); empty optional fields are left out. ``category`` is the
    Fashionpedia id, so the file does not depend on name spelling."""
    out: dict = {"id": item.id, "category": item.category_id}
    if item.name:
        out["name"] = item.name
    for name in ("colors", "season", "occasion"):
        if getattr(item, name):
            out[name] = list(getattr(item, name))
    for name in ("material", "pattern", "brand", "trend"):
        if getattr(item, name):
            out[name] = getattr(item, name)
    if item.formality is not None:
        out["formality"] = item.formality
    if item.attribute_ids:
        out["attribute_ids"] = list(item.attribute_ids)
    if item.favorite:
        out["favorite"] = True
    if item.notes:
        out["notes"] = item.notes
    if item.last_worn is not None:
        out["last_worn"] = item.last_worn.isoformat()
    return out
