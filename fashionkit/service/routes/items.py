"""The person's wardrobe items: add, list, read, edit, remove, and their cut-outs."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response

from fashionkit.errors import InvalidDataError, NotFoundError, Problem
from fashionkit.ontology import load_ontology
from fashionkit.service.deps import CurrentWardrobe, ListPage, State, paged
from fashionkit.wardrobe.database import ItemRecord, Wardrobe
from fashionkit.wardrobe.items import (
    EDITABLE_FIELDS,
    WardrobeItem,
    item_from_dict,
    item_to_dict,
    parse_category,
    plausible_id,
)

router = APIRouter(prefix="/api/items")


def item_json(item: WardrobeItem, has_cutout: bool, times_worn: int = 0) -> dict:
    """The wardrobe item JSON plus ``category_name``, ``supercategory``, ``cutout_url``
    (``null`` for items entered by hand), ``times_worn`` (days it was worn) and ``last_worn``
    (``null``: never)."""
    out = item_to_dict(item)
    out["times_worn"] = times_worn
    out["last_worn"] = item.last_worn.isoformat() if item.last_worn else None
    category = load_ontology().category(item.category_id)
    out["category_name"] = category.short_name
    out["supercategory"] = category.supercategory
    out["cutout_url"] = f"/api/items/{quote(item.id, safe='')}/cutout" if has_cutout else None
    return out


def plausible(item_id: str) -> str:
    # An id no item can have is answered without a query (PostgreSQL would refuse a NUL).
    if not plausible_id(item_id):
        raise NotFoundError("item", item_id[:60])
    return item_id


def get_item(wardrobe: Wardrobe, item_id: str) -> WardrobeItem:
    return wardrobe.get(plausible(item_id))


@router.post("", status_code=201)
def add_item(state: State, wardrobe: CurrentWardrobe, body: Annotated[dict, Body()]) -> dict:
    """Add an item in the wardrobe item JSON (see ``fashionkit.wardrobe.exchange``); 422 when
    the wardrobe holds its most items already."""
    item, problems = item_from_dict(body, source="request", where="item")
    if problems:
        raise InvalidDataError(problems)
    assert item is not None
    return record_json(wardrobe.add_record(item, max_items=state.settings.max_items))


@router.get("")
def list_items(
    request: Request,
    response: Response,
    wardrobe: CurrentWardrobe,
    page: ListPage,
    category: str | None = Query(None, description="Fashionpedia name or id."),
    season: str | None = None,
    occasion: str | None = None,
    favorite: bool | None = None,
) -> list[dict]:
    """One page of the items, ordered by id (``?limit=`` at most 1000, default 200;
    ``?offset=``); ``X-Total-Count`` says how many match, ``Link: …; rel="next"`` where the
    next page is."""
    category_id = None
    if category is not None:
        try:
            category_id = parse_category(category)
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
    if season is None and occasion is None:
        total = wardrobe.count(category_id, favorite=favorite)
        items = wardrobe.items(
            category_id, favorite=favorite, offset=page.offset, limit=page.limit
        )
    else:
        # Seasons and occasions are lists in one column: matched here, over a wardrobe of at
        # most max_items.
        items = wardrobe.items(category_id, favorite=favorite)
        if season is not None:
            items = [i for i in items if season.lower() in i.season]
        if occasion is not None:
            items = [i for i in items if occasion.lower() in i.occasion]
        total = len(items)
        items = items[page.offset : page.offset + page.limit]
    paged(request, response, page, total)
    with_cutout = wardrobe.keys_with_cutouts()
    worn = wardrobe.wear_stats([i.id for i in items])
    return [
        item_json(i, i.id in with_cutout, worn[i.id].times_worn if i.id in worn else 0)
        for i in items
    ]


def record_json(record: ItemRecord) -> dict:
    """:func:`item_json` of an item as one transaction read or wrote it."""
    return item_json(record.item, record.has_cutout, record.times_worn)


@router.get("/{item_id}")
def read_item(wardrobe: CurrentWardrobe, item_id: str) -> dict:
    return record_json(wardrobe.record(plausible(item_id)))


@router.patch("/{item_id}")
def edit_item(wardrobe: CurrentWardrobe, item_id: str, changes: Annotated[dict, Body()]) -> dict:
    """Change fields (``null`` clears one); ``id`` renames the item."""
    unknown = sorted(set(changes) - {"id", *EDITABLE_FIELDS})
    if unknown:
        raise HTTPException(
            422, f"unknown or read-only field(s) {', '.join(map(repr, unknown))}"
        )
    # The reply is the item as this edit wrote it, even if it is renamed or deleted right after.
    return record_json(wardrobe.edit(plausible(item_id), **changes))


@router.delete("/{item_id}", status_code=204)
def delete_item(wardrobe: CurrentWardrobe, item_id: str) -> Response:
    wardrobe.remove(plausible(item_id))
    return Response(status_code=204)


@router.post("/{item_id}/merge")
def merge_item(wardrobe: CurrentWardrobe, item_id: str, body: Annotated[dict, Body()]) -> dict:
    """``{"drop": id}``: that item is this one photographed again (what a photo job's
    ``duplicates`` name). Its wear log, outfits, details, its place in its photo and its
    embeddings move to this item, then it is removed; the reply is this item as the merge left
    it. 404 when either is not one of your items; 422 for no ``drop`` or an item merged into
    itself."""
    drop = body.get("drop")
    if not isinstance(drop, str):
        raise InvalidDataError(
            [Problem("request", "drop", "the id of the item to merge into this one, a string")]
        )
    return record_json(wardrobe.merge_record(plausible(item_id), plausible(drop)))


@router.get("/{item_id}/suggested-tags")
def suggested_tags(state: State, wardrobe: CurrentWardrobe, item_id: str) -> dict:
    """Tags suggested for the item from its picture, learned from your other items
    (``fashionkit.personal.tag_suggestions``): ``{"item", "suggested_tags": {field: {"value",
    "confidence", "source": "learned" | "prior"}}}``, empty when too few of your items carry
    tags. 422 for an item without a picture embedding (entered by hand); 429 with
    ``Retry-After`` while ``MAX_QUEUED_FITS`` of the person's requests for suggestions are
    computed (each holds a thread of the server until its model is fitted)."""
    from fashionkit.personal.tag_suggestions import MAX_QUEUED_FITS, suggest_tags_for_item

    # The embeddings recognition compares (the server's embedder), else the ones most of the
    # person's items have (a server started without a model).
    embedder = state.worker.embedder if state.worker is not None else None
    key = embedder.key if embedder is not None else None
    found = suggest_tags_for_item(wardrobe, plausible(item_id), key, max_queued=MAX_QUEUED_FITS)
    return {"item": item_id, "suggested_tags": {k: s.to_json() for k, s in found.items()}}


@router.get("/{item_id}/cutout", response_class=FileResponse)
def item_cutout(wardrobe: CurrentWardrobe, item_id: str):
    """The item's cut-out (RGBA PNG; items found in photos only)."""
    get_item(wardrobe, item_id)
    path = wardrobe.cutout_path(item_id)
    if path is None or not path.exists():
        raise NotFoundError("cut-out for item", item_id)
    return FileResponse(path, media_type="image/png")
