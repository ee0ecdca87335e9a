""""Today's outfit": a photo of what the person wears, whose items are recognised and logged
as worn, and the new items it offers (:mod:`fashionkit.service.outfit_photos`)."""

import datetime as dt
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import FormData

from fashionkit.errors import InvalidDataError, NotFoundError, Problem
from fashionkit.service.deps import (
    CurrentAccount,
    CurrentWardrobe,
    ListPage,
    State,
    paged,
)
from fashionkit.service.outfit_photos import accept_offer, offer_is, offer_of, public_job
from fashionkit.service.routes.items import plausible, record_json
from fashionkit.service.routes.photos import _MULTIPART_BODY, receive_upload
from fashionkit.wardrobe.items import day_problem

router = APIRouter(prefix="/api/outfit-photos")


def outfit_job_json(job: dict) -> dict:
    out = public_job(job)
    base = f"/api/outfit-photos/{job['id']}"
    out["url"] = base
    out["overlay_url"] = f"{base}/overlay.png" if job.get("overlay") else None
    for offer in out["new"]:
        offer["cutout_url"] = f"{base}/new/{offer['index']}/cutout" if offer["cutout"] else None
        offer["accept_url"] = f"{base}/new/{offer['index']}"
        offer["is_url"] = f"{base}/new/{offer['index']}/is/"  # + the id of your item
        offer.pop("cutout")
        if offer["added"]:
            offer["item_url"] = f"/api/items/{quote(offer['added'], safe='')}"
    return out


def _worn_on(form: FormData) -> dict:
    text = form.get("on")
    if text is None or text == "":
        return {"worn_on": dt.date.today().isoformat()}
    problem = "on must be a YYYY-MM-DD date"
    if isinstance(text, str):
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            pass
        else:
            found = day_problem(day, "on")
            if found is None:
                return {"worn_on": day.isoformat()}
            problem = found
    raise HTTPException(
        422, [{"loc": ["body", "on"], "msg": problem, "type": "value_error"}]
    )


@router.post("", status_code=202, openapi_extra=_MULTIPART_BODY)
async def upload_outfit_photo(request: Request, state: State, account: CurrentAccount) -> dict:
    """Upload a photo of today's outfit (multipart ``file``, as for ``POST /api/photos``; an
    optional field ``on``: the day worn, YYYY-MM-DD, default today). In the background your
    items in it are recognised and each gets a wear on that day; the others are offered as
    new items. Poll ``GET /api/outfit-photos/{id}``. 503 when the server cannot recognise."""
    if state.worker is not None and state.worker.embedder is None:
        raise HTTPException(
            503,
            "recognising items is not available: the server's model gives no embeddings "
            "(fashionkit serve --weights CHECKPOINT)",
        )
    job = await receive_upload(request, state, account, kind="outfit", start=_worn_on)
    return outfit_job_json(job)


@router.get("")
def list_outfit_photos(
    request: Request, response: Response, state: State, account: CurrentAccount, page: ListPage
) -> list[dict]:
    """One page of the person's outfit photos, oldest first (``?limit=&offset=``)."""
    paged(request, response, page, state.jobs.count_of_user(account.user_id, kind="outfit"))
    jobs = state.jobs.of_user(
        account.user_id, offset=page.offset, limit=page.limit, kind="outfit"
    )
    return [outfit_job_json(j) for j in jobs]


@router.get("/{job_id}")
def get_outfit_photo(state: State, account: CurrentAccount, job_id: str) -> dict:
    """Status, the items recognised (and logged as worn), the new ones offered."""
    return outfit_job_json(state.jobs.get(job_id, account.user_id, kind="outfit"))


@router.get("/{job_id}/overlay.png", response_class=FileResponse)
def outfit_photo_overlay(state: State, account: CurrentAccount, job_id: str):
    """The detections drawn on the photo (Fig. 8)."""
    job = state.jobs.get(job_id, account.user_id, kind="outfit")
    path = state.database.images.path(job["overlay"], ".png") if job["overlay"] else None
    if path is None or not path.exists():
        raise NotFoundError(f"overlay picture (status {job['status']}) for outfit photo", job_id)
    return FileResponse(path, media_type="image/png")


def _index(text: str) -> int:
    # Path values are text: only plain small decimals name an offer ("²" and "1e9" do not).
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise NotFoundError("new item in outfit photo", text[:20])
    return int(text)


@router.get("/{job_id}/new/{index}/cutout", response_class=FileResponse)
def offered_cutout(state: State, account: CurrentAccount, job_id: str, index: str):
    """The cut-out (RGBA PNG) of an offered new item."""
    offer = offer_of(state.jobs.get(job_id, account.user_id, kind="outfit"), _index(index))
    path = state.database.images.path(offer["cutout"], ".png") if offer["cutout"] else None
    if path is None or not path.exists():
        raise NotFoundError("cut-out of new item", f"{job_id}/{index}")
    return FileResponse(path, media_type="image/png")


@router.post("/{job_id}/new/{index}", status_code=201)
def accept_new_item(
    state: State,
    account: CurrentAccount,
    wardrobe: CurrentWardrobe,
    job_id: str,
    index: str,
    body: Annotated[dict | None, Body()] = None,
) -> dict:
    """Add an offered new item to the wardrobe (with a wear on the photo's day): the item JSON.
    An optional body ``{"tags": {field: value | null}}`` stores the tags the person confirmed
    (of the offer's ``suggested_tags`` or edited: material, brand, trend as strings, season
    and occasion as lists) with the item. 409 when it was added already; 422 for an unknown
    tag or a bad value, or past the wardrobe's most items."""
    job = state.jobs.get(job_id, account.user_id, kind="outfit")
    n = _index(index)
    offer_of(job, n)
    tags = (body or {}).get("tags")
    unknown = sorted(set(body or {}) - {"tags"})
    if unknown or (tags is not None and not isinstance(tags, dict)):
        message = (f"unknown field(s) {', '.join(map(repr, unknown))}" if unknown
                   else "tags must be an object of field: value")  # fmt: skip
        raise InvalidDataError([Problem("request", f"new item {n}", message)])
    return record_json(
        accept_offer(state.jobs, wardrobe, job, n, tags, max_items=state.settings.max_items)
    )


@router.post("/{job_id}/new/{index}/is/{item_id}")
def offer_is_mine(
    state: State,
    account: CurrentAccount,
    wardrobe: CurrentWardrobe,
    job_id: str,
    index: str,
    item_id: str,
) -> dict:
    """Say an offered garment is your item ``item_id`` (it was not recognised): the item gets
    a wear on the photo's day and is recognised by this view of it next time. The item JSON;
    404 for an item not yours, 409 when the offer was settled already."""
    job = state.jobs.get(job_id, account.user_id, kind="outfit")
    n = _index(index)
    offer_of(job, n)
    return record_json(offer_is(state.jobs, wardrobe, job, n, plausible(item_id)))
