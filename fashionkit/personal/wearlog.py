"""Daily outfit photos → the wear log: which of my items am I wearing, and what is new?

For each photo the detector finds the garments and accessories (as when items are added from a
photo: :func:`~fashionkit.wardrobe.ingest.items_in_prediction`), an
:class:`~fashionkit.personal.embedding.ItemEmbedder` embeds each of them, and a
:class:`~fashionkit.personal.recognition.Gallery` over the person's stored item embeddings of
the same embedder key (:meth:`~fashionkit.wardrobe.database.Wardrobe.embedding_samples`)
says which item each is, or that it is new. A recognised item's embedding in the photo is kept
as another view of it (:func:`keep_views`): an item seen in several photos is recognised more
surely, and the gallery's "new item" threshold is then calibrated on the person's own items. The items of one photo are distinct items, so they are
matched together (``exclusive``: no two detections become the same item). Each recognised
item gets one wear on the day (:meth:`~fashionkit.wardrobe.database.Wardrobe.record_wears`,
once per item and day, so the same photo sent twice logs nothing more); the others are offered
as new items, ready to store with their cut-out and embedding
(:meth:`~fashionkit.wardrobe.database.Wardrobe.add_detected`), each with the tags suggested
for it from the person's labelled items (:mod:`fashionkit.personal.tag_suggestions`).

An outfit photo is not kept as one of the wardrobe's photos: its recognised garments already
have their photo, and a photo with only some of its garments annotated would teach a
fine-tuned detector that the others are background.

:func:`reindex` recomputes every item's embedding with a (new) embedder: from the wardrobe
photo it was found in, or from its cut-out when it has no photo (items added from outfit
photos).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionkit.errors import InvalidDataError, Problem
from fashionkit.ontology import PAIR_IDS
from fashionkit.wardrobe.database import ItemInPhoto, RecognitionSamples, Wardrobe
from fashionkit.wardrobe.image_files import file_digest
from fashionkit.wardrobe.ingest import (
    DuplicateCandidate,
    items_in_prediction,
    main_colour_distance,
)

__all__ = [
    "RecognisedItem",
    "OfferedItem",
    "OutfitPhotoReport",
    "ReindexReport",
    "gallery_for",
    "recognise",
    "keep_views",
    "suggest_for_offers",
    "log_outfit_photos",
    "reindex",
    "recognised_duplicates",
]


@dataclass(frozen=True)
class RecognisedItem:
    """A detection recognised as the person's item ``item_id`` (cosine ``similarity`` in the
    gallery's adapted space); ``box`` XYXY photo pixels and ``category_id`` of the detection."""

    item_id: str
    similarity: float
    category_id: int
    box: tuple[float, float, float, float]
    # The detection's embedding (D float32): another view of the item, kept to recognise it
    # more surely next time.
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class OfferedItem:
    """A detection that is none of the person's items: ``detected`` is ready to store (its
    cut-out is in the image store, its embedding attached); ``similarity`` to the closest known
    item, ``candidates`` the closest ``(item id, similarity)``, best first."""

    detected: ItemInPhoto
    similarity: float
    candidates: list[tuple[str, float]] = field(default_factory=list)
    # Item field → SuggestedTag (fashionkit.personal.tag_suggestions), learned from the
    # person's labelled items; filled by log_outfit_photos.
    suggested_tags: dict = field(default_factory=dict)


@dataclass
class OutfitPhotoReport:
    """What one outfit photo gave: the items ``recognised`` (all logged as worn on
    ``worn_on``; ``logged``: those not already logged that day), the ``new`` ones offered, and
    ``added``: the ids of the new ones stored (``add_new``)."""

    path: str
    worn_on: dt.date
    recognised: list[RecognisedItem] = field(default_factory=list)
    new: list[OfferedItem] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


@dataclass
class ReindexReport:
    """Item ids ``embedded``, and those ``without_picture`` (entered by hand: nothing to embed)
    or whose picture is ``missing`` from the image store."""

    embedded: list[str] = field(default_factory=list)
    without_picture: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def gallery_for(wardrobe: Wardrobe, embedder_key: str, *, leave_out: Collection[str] = (),
                samples: RecognitionSamples | None = None):
    """A :class:`~fashionkit.personal.recognition.Gallery` over the person's items that have an
    embedding of ``embedder_key`` (items of one wardrobe photo grouped, for its calibration),
    each under its category, but those of ``leave_out``: match detections with their detected
    categories. ``samples``: the wardrobe's ``recognition_samples(embedder_key)`` when the
    caller has them. :class:`InvalidDataError` when none has: the wardrobe must be reindexed
    (or its items added from photos) with this model first."""
    from fashionkit.personal.recognition import Gallery
    from fashionkit.personal.tag_suggestions import blocks_of

    samples = samples or wardrobe.recognition_samples(embedder_key)
    kept = [i for i, k in enumerate(samples.keys) if k not in leave_out]
    keys = [samples.keys[i] for i in kept]
    sources = [samples.sources[i] for i in kept]
    vectors = samples.vectors[kept]
    seen_as = [samples.seen_as[i] for i in kept]
    if not keys:
        others = wardrobe.embedders()
        hint = (
            f" (its items have embeddings of another model: {', '.join(sorted(others))})"
            if others
            else ""
        )
        raise InvalidDataError(
            [
                Problem(
                    f"wardrobe {wardrobe.user!r}",
                    "item embeddings",
                    f"no item has an embedding of this model yet{hint}: run 'fashionkit "
                    "wardrobe reindex --weights MODEL.pt' with the same model, or add items "
                    "from photos first",
                )
            ]
        )
    # A view's source is the photo it was seen in; an item's own picture is of its wardrobe
    # photo: the vectors of one photo, whichever kind, are one group.
    photos = wardrobe.item_photos()
    groups = [
        f"photo:{source or photos.get(k)}" if source or photos.get(k) else f"item:{k}"
        for k, source in zip(keys, sources, strict=True)
    ]  # fmt: skip
    # An item is matched only with detections of its own category (a shirt is never your
    # trousers), as the recognition benchmark measures it: without, a never-seen item finds a
    # look-alike of another kind far more often. Its categories are those the detector saw it
    # under and the one the person gave it: the detector keeps calling a corrected item what
    # it did.
    return Gallery.fit(vectors, keys, groups=groups, blocks=blocks_of(vectors.shape[1]),
                       categories=seen_as,
                       item_categories={k: samples.categories[k] for k in set(keys)})


def recognised_duplicates(wardrobe: Wardrobe, embedder_key: str, keys: Sequence[str]
                          ) -> list[DuplicateCandidate] | None:
    """Likely duplicates of the items ``keys``, just added from one photo, among the person's
    other items: those recognition takes them for (:func:`gallery_for` of the other items,
    matched as one photo's items, each by its own picture), with their similarity. ``None``
    when it cannot tell: the new items or all the others have no embedding of
    ``embedder_key``, or none of the others was seen in two photos yet, so the "new item" threshold is a guess (the colour-histogram
    rule, more cautious, is then the better judge). For ``ingest_photos(duplicates=)``."""
    new = set(keys)
    samples = wardrobe.recognition_samples(embedder_key)
    try:
        gallery = gallery_for(wardrobe, embedder_key, leave_out=new, samples=samples)
    except InvalidDataError:
        return None
    if not gallery.calibrated:
        return None
    # Each new item by its own picture (the other of a pair is a view of it).
    rows = [i for i, (k, s) in enumerate(zip(samples.keys, samples.sources, strict=True))
            if k in new and not s]  # fmt: skip
    if not rows:  # the new items have no embedding of this model
        return None
    matches = gallery.match(samples.vectors[rows], exclusive=True, paired=PAIR_IDS,
                            categories=[samples.seen_as[i] for i in rows])
    found = []
    for key, match in zip([samples.keys[i] for i in rows], matches, strict=True):
        if match.item_id is None or match.is_new:
            continue
        distance = main_colour_distance(wardrobe.get(key), wardrobe.get(match.item_id))
        found.append(DuplicateCandidate(key, match.item_id, distance, float(match.similarity),
                                        found_by="recognition"))
    return found


def recognise(
    wardrobe: Wardrobe,
    prediction,
    embedder,
    gallery,
    id_prefix: str,
    *,
    min_score: float = 0.5,
) -> tuple[list[RecognisedItem], list[OfferedItem]]:
    """The detections of one :class:`~fashionkit.inference.Prediction` (``photo`` kept) as
    recognised items and offered new ones (ids ``<id_prefix>-<detection index>``), in
    detection order. Stores nothing but the cut-outs of the new ones."""
    found = items_in_prediction(
        wardrobe, prediction, id_prefix, min_score=min_score, embedder=embedder
    )
    if not found:
        return [], []
    vectors = np.stack([d.embedding[1] for d, _ in found if d.embedding is not None])
    # The two shoes of a pair that did not look alike enough to be paired in the photo (one
    # half hidden, in shadow) may still both be the pair.
    matches = gallery.match(vectors, exclusive=True, paired=PAIR_IDS,
                            categories=[d.item.category_id for d, _ in found])
    recognised, offered = [], []
    for (detected, _), match in zip(found, matches, strict=True):
        if match.item_id is not None and not match.is_new:
            recognised.append(
                RecognisedItem(
                    item_id=match.item_id,
                    similarity=float(match.similarity),
                    category_id=detected.item.category_id,
                    box=tuple(float(v) for v in detected.box),  # type: ignore[arg-type]
                    vector=detected.embedding[1] if detected.embedding is not None else None,
                )
            )
        else:
            offered.append(
                OfferedItem(detected, float(match.similarity), list(match.candidates))
            )
    return recognised, offered


def keep_views(
    wardrobe: Wardrobe, embedder_key: str, photo_sha256: str, recognised: Sequence[RecognisedItem]
) -> None:
    """Keep each recognised item's embedding from this photo as another view of it: with two
    or more photos of an item the gallery calibrates its "new item" threshold on the person's
    own items (leave one photo out) instead of falling back to a guess."""
    # One view per item and photo: of the two of a pair recognised apart, the surer one.
    surest: dict[str, tuple[float, np.ndarray]] = {}
    for r in recognised:
        if r.vector is not None and r.similarity > surest.get(r.item_id, (-np.inf,))[0]:
            surest[r.item_id] = (r.similarity, r.vector)
    views = [(item, photo_sha256, vector) for item, (_, vector) in surest.items()]
    if views:
        wardrobe.add_views(embedder_key, views,
                           categories={r.item_id: r.category_id for r in recognised})


def suggest_for_offers(suggester, offered: Sequence[OfferedItem]) -> None:
    """Fill each offered item's ``suggested_tags`` from ``suggester`` (a
    :class:`~fashionkit.personal.tag_suggestions.TagSuggester` of the embedder that made the
    offers' vectors): every offer carries its detection's embedding, which :func:`recognise`
    matched it by."""
    if not offered:
        return
    vectors = np.stack([o.detected.embedding[1] for o in offered
                        if o.detected.embedding is not None])  # fmt: skip
    categories = [o.detected.item.category_id for o in offered]
    for o, tags in zip(offered, suggester.suggest(vectors, categories), strict=True):
        o.suggested_tags.update(tags)


def log_outfit_photos(
    wardrobe: Wardrobe,
    predictor,
    embedder,
    paths: Sequence[str | Path],
    *,
    on: dt.date | None = None,
    min_score: float = 0.5,
    add_new: bool = False,
) -> tuple[list[OutfitPhotoReport], list[Problem]]:
    """Recognise the person's items in outfit photos and log a wear of each on ``on``
    (default today); ``add_new``: store the items not recognised as new items.

    ``predictor``: a :class:`~fashionkit.inference.Predictor` (or anything called as
    ``predictor(paths, on_error="skip")`` returning one Prediction per path, photos kept);
    ``embedder``: an :class:`~fashionkit.personal.embedding.ItemEmbedder`. Returns one report
    per readable photo, and a problem (naming the file) per unreadable one.
    :class:`InvalidDataError` before anything is detected when no item has an embedding of
    this embedder. Each offered item carries its ``suggested_tags``."""
    from fashionkit.personal.tag_suggestions import TagSuggester

    day = on or dt.date.today()
    gallery = gallery_for(wardrobe, embedder.key)
    # Learned once, from the items as they were before these photos: items added here carry
    # no tags yet.
    suggester = TagSuggester.fit(wardrobe, embedder.key)
    reports: list[OutfitPhotoReport] = []
    problems: list[Problem] = []
    predictions = predictor([str(p) for p in paths], on_error="skip")
    for path, prediction in zip(paths, predictions, strict=True):
        if prediction.error is not None:
            problems.append(prediction.error)
            continue
        digest = file_digest(path)
        recognised, offered = recognise(
            wardrobe, prediction, embedder, gallery, digest[:12], min_score=min_score
        )
        suggest_for_offers(suggester, offered)
        report = OutfitPhotoReport(str(path), day, recognised, offered)
        report.logged = wardrobe.record_wears([r.item_id for r in recognised], on=day)
        keep_views(wardrobe, embedder.key, digest, recognised)
        if add_new and offered:
            new = [o.detected for o in offered]
            present = wardrobe.existing_keys(d.item.id for d in new)
            report.added = wardrobe.add_detected([d for d in new if d.item.id not in present])
        reports.append(report)
    return reports, problems


def reindex(wardrobe: Wardrobe, embedder) -> ReindexReport:
    """Recompute the embedding of every item that has a picture with ``embedder`` and store
    them under its key, replacing the person's earlier vectors of that key (one transaction).
    Items found in a wardrobe photo are embedded in that photo (all of a photo's items at
    once); others with a cut-out from it (its opaque pixels the mask). An item seen again in a
    wardrobe photo (an appearance: a merged duplicate, the other shoe of a pair) gets a view of
    it there, stored in the same transaction."""
    from fashionkit.data.masks import decode_rle
    from fashionkit.inference.images import load_photo

    report = ReindexReport()
    vectors: dict[str, np.ndarray] = {}
    # Items seen again in a photo (merged duplicates, the other shoe of a pair): views of it
    # there, one per item and photo.
    views: dict[tuple[str, str], np.ndarray] = {}
    for photo in wardrobe.annotated_photos():
        garments = [o for o in photo.objects if not o.is_part]
        if not garments:
            continue
        if not photo.path.exists():
            report.missing.extend(o.item for o in garments if not o.is_appearance)
            continue
        pixels = load_photo(photo.path).pixels
        masks = np.stack([decode_rle(o.mask).astype(bool) for o in garments])
        boxes = np.array([o.box for o in garments], np.float32).reshape(-1, 4)
        for obj, vector in zip(garments, embedder.embed(pixels, masks, boxes), strict=True):
            if obj.is_appearance:
                views.setdefault((obj.item, photo.sha256), np.asarray(vector, np.float32))
            else:
                vectors[obj.item] = np.asarray(vector, np.float32)
    for item in wardrobe.items():
        if item.id in vectors or item.id in report.missing:
            continue
        path = wardrobe.cutout_path(item.id)
        if path is None:
            report.without_picture.append(item.id)
            continue
        if not path.exists():
            report.missing.append(item.id)
            continue
        rgba = _read_rgba(path)
        mask = rgba[..., 3] > 127
        if not mask.any():
            report.without_picture.append(item.id)
            continue
        h, w = mask.shape
        box = np.array([[0, 0, w, h]], np.float32)
        rgb = np.ascontiguousarray(rgba[..., :3])
        vectors[item.id] = np.asarray(embedder.embed(rgb, mask[None], box)[0], np.float32)
    wardrobe.set_embeddings(embedder.key, vectors, replace_all=True,
                            views=[(k, sha, v) for (k, sha), v in views.items()])
    report.embedded = sorted(vectors)
    return report


def _read_rgba(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))
