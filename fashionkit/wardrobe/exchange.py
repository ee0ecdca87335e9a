"""Import and export of a whole wardrobe as JSON.

File format: a JSON object ``{"format": "fashionkit-wardrobe", "version": 1, "items": [...]}``,
or just the list of items. Each item (all fields but ``id`` and ``category`` optional)::

    {
      "id": "navy-blazer",            # str, the person's stable key, unique in the file
      "category": "jacket",           # Fashionpedia category name (any comma form) or id 0..45
      "name": "navy wool blazer",     # str, free label
      "colors": ["#1f2a44", "#ffffff"],   # "#rrggbb" (or "#rgb"), main colour first
      "season": ["autumn", "winter"], # of spring|summer|autumn|winter; none = any season
      "material": "wool", "pattern": "plain", "brand": "…", "trend": "…",   # str
      "occasion": ["work", "dinner"], # free words
      "formality": 4,                 # 1 (athletic/lounge) .. 5 (black tie)
      "attribute_ids": [17, 317],     # Fashionpedia attribute ids
      "favorite": false, "notes": "…",
      "last_worn": "2026-11-20"       # YYYY-MM-DD; adds a wear-log entry
    }

Export writes the same format (``category`` as the id, empty fields left out), so export →
import reproduces the wardrobe's items. Every problem in a file is reported at once, naming the
file and the item (position and id); nothing is written when any item is invalid.
"""

from __future__ import annotations

import json
from pathlib import Path

from fashionkit.errors import ConflictError, InvalidDataError, LimitError, Problem
from fashionkit.wardrobe.database import Wardrobe
from fashionkit.wardrobe.items import WardrobeItem, item_from_dict, item_to_dict

__all__ = [
    "read_items",
    "write_items",
    "import_wardrobe",
    "store_items",
    "export_wardrobe",
    "FORMAT_NAME",
]

FORMAT_NAME = "fashionkit-wardrobe"
FORMAT_VERSION = 1


def read_items(path: str | Path) -> list[WardrobeItem]:
    """Parse and validate a wardrobe JSON file; :class:`InvalidDataError` lists every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InvalidDataError([Problem(source, f"byte {err.start}", "not UTF-8 text")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidDataError(
            [Problem(source, f"line {err.lineno} column {err.colno}", f"not valid JSON: {err.msg}")]
        ) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise InvalidDataError([Problem(source, "top level", f"not valid JSON: {err}")]) from None
    except RecursionError:
        raise InvalidDataError(
            [Problem(source, "top level", "not valid JSON: nested too deeply")]
        ) from None
    if isinstance(data, dict):
        if data.get("format", FORMAT_NAME) != FORMAT_NAME:
            raise InvalidDataError(
                [Problem(source, "format", f"expected {FORMAT_NAME!r}, got {data['format']!r}")]
            )
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise InvalidDataError(
                [Problem(source, "version", f"unsupported version {data['version']!r}")]
            )
        records = data.get("items")
    else:
        records = data
    if not isinstance(records, list):
        raise InvalidDataError(
            [Problem(source, "top level", 'expected a list of items or {"items": [...]}')]
        )
    items: list[WardrobeItem] = []
    problems: list[Problem] = []
    first_position: dict[str, int] = {}
    for position, record in enumerate(records):
        raw_id = record.get("id") if isinstance(record, dict) else None
        where = f"item {position}" + (f" (id {raw_id!r})" if raw_id is not None else "")
        item, item_problems = item_from_dict(record, source, where)
        problems.extend(item_problems)
        if item is None:
            continue
        if item.id in first_position:
            problems.append(
                Problem(
                    source, where, f"duplicate id, first used by item {first_position[item.id]}"
                )
            )
            continue
        first_position[item.id] = position
        items.append(item)
    if problems:
        raise InvalidDataError(problems)
    return items


def write_items(items: list[WardrobeItem], path: str | Path) -> None:
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "items": [item_to_dict(i) for i in items],
    }
    Path(path).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")


def import_wardrobe(
    wardrobe: Wardrobe, path: str | Path, *, replace: bool = True, batch_size: int | None = None
) -> int:
    """Read ``path`` and store its items (overwriting items with the same id unless
    ``replace=False``, which raises :class:`~fashionkit.errors.ConflictError` on a taken id).
    Returns the item count.

    The whole file is validated first: nothing is stored when any item is invalid. With
    ``batch_size`` the items are then stored in transactions of that many, so that a large
    import does not hold the database's writer lock for its whole length (others' writes run
    between the batches); a write that fails part-way (a taken id, the database gone) keeps the
    batches before it, and its :class:`~fashionkit.errors.ConflictError` says how many."""
    return store_items(wardrobe, read_items(path), replace=replace, batch_size=batch_size)


def store_items(
    wardrobe: Wardrobe,
    items: list[WardrobeItem],
    *,
    replace: bool = True,
    batch_size: int | None = None,
    max_items: int | None = None,
) -> int:
    """Store validated ``items`` as :func:`import_wardrobe` does; returns how many.
    ``max_items``: the wardrobe's most items, checked in each batch's transaction
    (:class:`~fashionkit.errors.LimitError` naming what was stored before)."""
    if batch_size is None or len(items) <= batch_size:
        wardrobe.put_many(items, replace=replace, max_items=max_items)
        return len(items)
    if not replace:
        taken = wardrobe.existing_keys([i.id for i in items])
        if taken:
            first = sorted(taken)[0]
            raise ConflictError(
                f"item id {first!r} is already in the wardrobe ({len(taken)} of the file's "
                "ids are); nothing was imported"
            )
    stored = 0
    for start in range(0, len(items), batch_size):
        try:
            wardrobe.put_many(
                items[start : start + batch_size], replace=replace, max_items=max_items
            )
        except (ConflictError, LimitError) as err:
            raise type(err)(
                f"{err} (the first {stored} of the file's {len(items)} items were stored)"
            ) from err
        stored += len(items[start : start + batch_size])
    return stored


def export_wardrobe(wardrobe: Wardrobe, path: str | Path) -> int:
    """Write every item of ``wardrobe`` to ``path``; returns the item count."""
    items = wardrobe.items()
    write_items(items, path)
    return len(items)
