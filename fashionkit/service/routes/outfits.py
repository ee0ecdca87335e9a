"""Outfit suggestions and the feedback they learn from."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from fashionkit.service.deps import CurrentWardrobe, ListPage, paged
from fashionkit.service.routes.items import get_item
from fashionkit.wardrobe.items import day_problem

router = APIRouter(prefix="/api/outfits")

#: How many items a suggestion may be built around.
MAX_LOCKED = 10

# An item id as item_from_dict accepts them (no control characters, at most 200 long).
ItemId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class FeedbackIn(BaseModel):
    items: list[ItemId] = Field(min_length=1, max_length=50, description="The outfit's item ids.")
    kind: Literal["like", "dislike", "wore"]
    on: dt.date | None = Field(
        None, description="Day worn (for 'wore'), 1900-01-01 to tomorrow; default today."
    )

    @field_validator("on")
    @classmethod
    def _sane_day(cls, day: dt.date | None) -> dt.date | None:
        problem = day_problem(day, "on") if day is not None else None
        if problem is not None:
            raise ValueError(problem)
        return day


@router.get("")
def outfits(
    wardrobe: CurrentWardrobe,
    season: str | None = None,
    temperature: float | None = Query(None, ge=-60, le=60, description="°C"),
    occasion: str | None = None,
    formality: int | None = Query(None, ge=1, le=5),
    with_: list[str] = Query(
        [], alias="with", description=f"Build around these item ids (at most {MAX_LOCKED})."
    ),
    outer: bool | None = None,
    not_worn_days: int | None = Query(
        None, ge=0, le=3650, description="Leave out items worn in the last N days."
    ),
    favour_rarely_worn: bool = Query(
        False, description="Rank items worn on fewer of the last 30 days higher."
    ),
    today: dt.date | None = Query(None, description="The day to suggest for (default today)."),
    n: int = Query(10, ge=1, le=50),
) -> list[dict]:
    """Suggested outfits, best first: ``[{"items", "score", "explanation"}]``."""
    from fashionkit.outfits import suggest_for_wardrobe
    from fashionkit.outfits.conditions import parse_conditions

    if len(with_) > MAX_LOCKED:
        raise HTTPException(422, f"build around at most {MAX_LOCKED} items, got {len(with_)}")
    try:
        conditions = parse_conditions(
            season=season,
            temperature=temperature,
            occasion=occasion,
            formality=formality,
            lock=with_,
            outer=outer,
            not_worn_days=not_worn_days,
            favour_rarely_worn=favour_rarely_worn,
            today=today,
        )
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    for key in with_:
        get_item(wardrobe, key)
    try:
        suggested = suggest_for_wardrobe(wardrobe, conditions, k=n)
    except ValueError as err:  # locks no outfit can hold (two tops, a dress with trousers …)
        raise HTTPException(422, str(err)) from None
    return [o.to_json() for o in suggested]


@router.post("/feedback", status_code=201)
def outfit_feedback(wardrobe: CurrentWardrobe, feedback: FeedbackIn) -> dict:
    """Like, dislike or wore an outfit; later suggestions learn from it."""
    outfit_id = wardrobe.record_feedback(feedback.items, feedback.kind, on=feedback.on)
    return {"outfit_id": outfit_id, "kind": feedback.kind, "items": feedback.items}


@router.get("/feedback")
def list_feedback(
    request: Request, response: Response, wardrobe: CurrentWardrobe, page: ListPage
) -> list[dict]:
    """One page of the feedback, oldest first (``?limit=&offset=`` as for items)."""
    paged(request, response, page, wardrobe.feedback_count())
    return [
        {"items": list(e.items), "kind": e.kind, "created_at": e.created_at.isoformat()}
        for e in wardrobe.feedback(offset=page.offset, limit=page.limit)
    ]
