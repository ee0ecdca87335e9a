""""Today's outfit" photos: a job of :mod:`fashionkit.service.photos`'s queue (kind
``"outfit"``) that recognises the person's items in the photo and logs a wear of each
(:mod:`fashionkit.personal.wearlog`), and offers the other garments as new items, which the
person may accept one by one.

Job record (also the JSON of ``GET /api/outfit-photos/{id}``, where ``new`` entries lose
``stored``)::

    {"id", "user_id", "status", "created_at", "width", "height", "format", "error",
     "attempts", "kind": "outfit",
     "worn_on": "YYYY-MM-DD",
     "recognised": [{"item": id, "similarity": float, "category_id": int, "box": XYXY}]
                   (one per detection: the two shoes of a pair may be two of one item),
     "logged": [ids of the recognised items not already logged that day],
     "new": [{"index": n, "id": proposed item id, "category_id", "category_name",
              "colors": ["#rrggbb"], "box": XYXY, "similarity": float (closest known item),
              "candidates": [{"item", "similarity"}], "cutout": sha256,
              "suggested_tags": {field: {"value": str | [str], "confidence": float,
                                         "source": "learned" | "prior"}},
              "added": item id | null (added as a new item, or said to be this one of
              yours), "stored": {what adding it needs: the item, mask, details,
              embedding}}],
     "overlay": sha256 | null}

Everything an offer needs to become an item is kept in the job (the photo itself is not kept:
see :mod:`fashionkit.personal.wearlog`), so accepting it later needs no model.

Suggested tags (:mod:`fashionkit.personal.tag_suggestions`) are computed when the job runs,
from the offer's embedding and the person's labelled items as they were then, and kept with
the offer: the page shows the same suggestions however late it is opened. Accepting an offer
may confirm tags in the same request (``tags``: field → value, ``null`` to leave a field
unset), so the item is stored with them in one transaction rather than added bare and edited
after; a tag sent replaces what the detection gave (material and season from attributes), a
tag not sent keeps it.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path

import numpy as np

from fashionkit.errors import ConflictError, InvalidDataError, NotFoundError
from fashionkit.personal.tag_suggestions import tag_problems
from fashionkit.wardrobe.database import ItemInPhoto, ItemPart, ItemRecord, Wardrobe
from fashionkit.wardrobe.items import item_from_dict, item_to_dict

__all__ = [
    "EMPTY_RESULT", "recognise_outfit", "accept_offer", "offer_is", "public_job",
]  # fmt: skip

EMPTY_RESULT: dict = {
    "worn_on": None, "recognised": [], "logged": [], "new": [], "overlay": None,
    "photo_sha256": None,
}  # fmt: skip


def public_job(job: dict) -> dict:
    """The job as the API shows it: no owner id, offers without what storing them needs."""
    out = {k: v for k, v in job.items() if k not in ("user_id", "overlay", "photo_sha256")}
    out["new"] = [{k: v for k, v in offer.items() if k != "stored"} for offer in job["new"]]
    return out


def _stored(detected: ItemInPhoto) -> dict:
    embedding = None
    if detected.embedding is not None:
        key, vector = detected.embedding
        raw = np.asarray(vector, dtype="<f4").tobytes()
        embedding = {"embedder": key, "vector": base64.b64encode(raw).decode("ascii")}
    return {
        "item": item_to_dict(detected.item),
        "box": [float(v) for v in detected.box],
        "mask": dict(detected.mask),
        "score": float(detected.score),
        "attribute_scores": {str(k): float(v) for k, v in detected.attribute_scores.items()},
        "details": [
            {
                "category_id": d.category_id,
                "attribute_ids": list(d.attribute_ids),
                "box": [float(v) for v in d.box] if d.box is not None else None,
                "mask": d.mask,
                "score": d.score,
            }
            for d in detected.details
        ],
        "cutout": detected.cutout_sha256,
        "embedding": embedding,
    }


def _detected(stored: dict, where: str, tags: dict | None = None) -> ItemInPhoto:
    fields = dict(stored["item"])
    for name, value in (tags or {}).items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    item, problems = item_from_dict(fields, source="outfit photo", where=where)
    if problems:
        raise InvalidDataError(problems)
    assert item is not None
    embedding = None
    if stored.get("embedding"):
        vector = np.frombuffer(base64.b64decode(stored["embedding"]["vector"]), dtype="<f4")
        embedding = (str(stored["embedding"]["embedder"]), vector.astype(np.float32))
    return ItemInPhoto(
        item=item,
        box=tuple(stored["box"]),  # type: ignore[arg-type]
        mask=stored["mask"],
        score=float(stored["score"]),
        attribute_scores={int(k): float(v) for k, v in stored["attribute_scores"].items()},
        details=tuple(
            ItemPart(
                category_id=int(d["category_id"]),
                attribute_ids=tuple(d["attribute_ids"]),
                box=tuple(d["box"]) if d["box"] is not None else None,  # type: ignore[arg-type]
                mask=d["mask"],
                score=d["score"],
            )
            for d in stored["details"]
        ),
        cutout_sha256=stored.get("cutout"),
        embedding=embedding,
    )


def recognise_outfit(worker, wardrobe: Wardrobe, job: dict, upload: Path) -> None:
    """Run an outfit job (on the photo worker's thread): detect, recognise, log the wears,
    offer the rest, draw the overlay; fills ``job``'s result keys. A wardrobe with nothing to
    recognise by, or a photo that cannot be read, fails the job with a message for the
    person (:class:`~fashionkit.service.photos.UnusablePhoto`)."""
    from fashionkit.inference.visualize import draw_overlay
    from fashionkit.personal.tag_suggestions import TagSuggester
    from fashionkit.personal.wearlog import (
        gallery_for,
        keep_views,
        recognise,
        reindex,
        suggest_for_offers,
    )
    from fashionkit.service.photos import UnusablePhoto
    from fashionkit.wardrobe.image_files import file_digest

    if worker.embedder is None:
        raise UnusablePhoto("this server cannot recognise items (it has no embedder)")
    known = wardrobe.embedders()
    if known and worker.embedder.key not in known:
        # The items were embedded by another model (the server's model changed): embed them
        # again with this one, from their pictures, before recognising anything.
        reindex(wardrobe, worker.embedder)
    try:
        gallery = gallery_for(wardrobe, worker.embedder.key)
    except InvalidDataError:
        raise UnusablePhoto(
            "none of your items can be recognised yet: add items from photos first (items "
            "entered by hand have no picture to recognise them by)"
        ) from None
    # Found by the person's own detector when they taught one; recognised by the base
    # model's embedder, which every stored item embedding comes from.
    prediction = worker.predictor_for(job["user_id"])([str(upload)], on_error="skip")[0]
    if prediction.error is not None:
        raise UnusablePhoto(prediction.error.message)
    digest = file_digest(upload)
    recognised, offered = recognise(
        wardrobe, prediction, worker.embedder, gallery, digest[:12], min_score=worker.min_score
    )
    # Before anything is written: suggestions that cannot be made fail the job cleanly.
    suggest_for_offers(TagSuggester.fit(wardrobe, worker.embedder.key), offered)
    job["photo_sha256"] = digest
    day = dt.date.fromisoformat(job["worn_on"])
    # Once per item and day: a job run again after a crash logs nothing twice.
    job["logged"] = wardrobe.record_wears([r.item_id for r in recognised], on=day)
    keep_views(wardrobe, worker.embedder.key, digest, recognised)
    job["recognised"] = [
        {
            "item": r.item_id,
            "similarity": round(r.similarity, 4),
            "category_id": r.category_id,
            "box": [round(v, 2) for v in r.box],
        }
        for r in recognised
    ]
    job["new"] = [
        {
            "index": n,
            "id": o.detected.item.id,
            "category_id": o.detected.item.category_id,
            "category_name": o.detected.item.category_name,
            "colors": list(o.detected.item.colors),
            "box": [round(float(v), 2) for v in o.detected.box],
            "similarity": round(o.similarity, 4),
            "candidates": [{"item": k, "similarity": round(v, 4)} for k, v in o.candidates],
            "cutout": o.detected.cutout_sha256,
            "suggested_tags": {name: s.to_json() for name, s in o.suggested_tags.items()},
            "added": None,
            "stored": _stored(o.detected),
        }
        for n, o in enumerate(offered)
    ]
    if prediction.photo is not None:
        buffer = io.BytesIO()
        draw_overlay(prediction).save(buffer, format="PNG")
        job["overlay"] = wardrobe.images.put_bytes(buffer.getvalue(), ".png")


def offer_of(job: dict, index: int) -> dict:
    """The job's ``index``-th offered item; :class:`NotFoundError` when there is none."""
    if job["status"] != "done" or not 0 <= index < len(job["new"]):
        raise NotFoundError("new item in outfit photo", f"{job['id']}/{index}")
    return job["new"][index]


def accept_offer(
    store,
    wardrobe: Wardrobe,
    job: dict,
    index: int,
    tags: dict | None = None,
    *,
    max_items: int | None = None,
) -> ItemRecord:
    """Add the job's ``index``-th offered item to the wardrobe, with a wear on the photo's
    day, and mark the offer added. ``tags``: the person's confirmed tags (field of
    :data:`~fashionkit.personal.tag_suggestions.TAG_FIELDS` → value as in the item JSON,
    ``None``: leave it unset), stored with the item. :class:`ConflictError` when it was added
    already (or its id is taken); :class:`InvalidDataError` for an unknown tag or a bad
    value; :class:`~fashionkit.errors.LimitError` when the wardrobe holds ``max_items``
    already."""
    offer = offer_of(job, index)
    if offer["added"] is not None:
        raise ConflictError(f"this item was added already, as {offer['added']!r}")
    where = f"new item {index}"
    problems = tag_problems(tags or {}, where)
    if problems:
        raise InvalidDataError(problems)
    detected = _detected(offer["stored"], where, tags)
    wardrobe.add_detected([detected], max_items=max_items)
    wardrobe.record_wears([detected.item.id], on=dt.date.fromisoformat(job["worn_on"]))
    def mark(result: dict) -> dict:
        offers = [dict(o) for o in result.get("new", [])]
        offers[index]["added"] = detected.item.id
        return {"new": offers}

    store.update_result(job, mark)
    return wardrobe.record(detected.item.id)


def offer_is(store, wardrobe: Wardrobe, job: dict, index: int, item_id: str) -> ItemRecord:
    """The person says the job's ``index``-th offer is their item ``item_id`` (recognition
    missed it): log a wear of that item on the photo's day, keep the offer's embedding as
    another view of it (so it is recognised next time), and mark the offer.
    :class:`NotFoundError` for an item not theirs, :class:`ConflictError` when the offer was
    settled already."""
    offer = offer_of(job, index)
    if offer["added"] is not None:
        raise ConflictError(f"this item was settled already, as {offer['added']!r}")
    item = wardrobe.get(item_id)
    stored = _detected(offer["stored"], f"new item {index}")
    wardrobe.record_wears([item.id], on=dt.date.fromisoformat(job["worn_on"]))
    if stored.embedding is not None and job.get("photo_sha256"):
        key, vector = stored.embedding
        wardrobe.add_views(key, [(item.id, job["photo_sha256"], vector)],
                           categories={item.id: stored.item.category_id})

    def mark(result: dict) -> dict:
        offers = [dict(o) for o in result.get("new", [])]
        if offers[index]["added"] is not None:
            raise ConflictError(f"this item was settled already, as {offers[index]['added']!r}")
        offers[index]["added"] = item.id
        return {"new": offers}

    store.update_result(job, mark)
    return wardrobe.record(item.id)
