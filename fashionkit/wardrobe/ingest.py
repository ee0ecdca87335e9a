"""Photos → wardrobe items, through the :class:`~fashionkit.inference.Predictor`.

For each photo: the file is stored (content-addressed), the predictor finds items, and every
garment and accessory scoring at least ``min_score`` becomes an item:

* category from the detection; attributes with their scores; pattern and material from the
  attributes; a season suggestion from category, attributes and material
  (:func:`~fashionkit.wardrobe.attributes.suggest_seasons`);
* colours: :func:`~fashionkit.wardrobe.colors.dominant_colors` of the item's own pixels (its
  mask, minus closures and decorations linked to it: a zipper is not the garment's colour);
* parts linked to it (sleeves, necklines, pockets …) are kept as its details;
* a cut-out (RGBA PNG of the box, transparent outside the mask) is stored beside the photo;
* the two of a pair (shoes, gloves, socks, leg warmers: :data:`~fashionkit.ontology.PAIR_IDS`)
  that look alike are one item, the other one kept as where it is seen again in the photo.

The item id is ``<photo sha256[:12]>-<detection index>``, so ingesting the same photo again adds
nothing. Each new item is compared with the wardrobe's photographed items of the same category;
likely duplicates are reported for the person to merge
(:meth:`~fashionkit.wardrobe.database.Wardrobe.merge`), never merged silently. By default
(:func:`find_duplicates`) an item is a likely duplicate of one whose main colour and colour
histogram are alike; a caller with a better finder passes it (``duplicates=``: the personal
layer's recognition of the person's items, which finds about twice as many).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashionkit.errors import Problem
from fashionkit.ontology import PAIR_IDS, PART_IDS
from fashionkit.wardrobe.attributes import (
    material_from_attributes,
    pattern_from_attributes,
    suggest_seasons,
)
from fashionkit.wardrobe.colors import (
    dominant_colors,
    hex_to_rgb,
    srgb_to_oklab,
)
from fashionkit.wardrobe.database import ItemInPhoto, ItemPart, Placement, Wardrobe
from fashionkit.wardrobe.image_files import file_digest
from fashionkit.wardrobe.items import WardrobeItem

__all__ = [
    "IngestReport",
    "DuplicateCandidate",
    "ingest_photos",
    "items_in_prediction",
    "appearance_descriptor",
    "find_duplicates",
    "main_colour_distance",
    "DUPLICATE_COLOR_DISTANCE",
    "DUPLICATE_APPEARANCE",
]

# Closures and decorations (buckle … tassel) are left out of their garment's colour.
_NOT_FABRIC = frozenset(range(34, 46))
# Two items of one category are duplicate candidates when their main colours are within this
# OkLab distance (about 4 just-noticeable differences: lighting changes between photos) ...
DUPLICATE_COLOR_DISTANCE = 0.08
# ... and their colour histograms overlap at least this much (histogram intersection, 0..1).
DUPLICATE_APPEARANCE = 0.6
_BINS = 6


@dataclass(frozen=True)
class DuplicateCandidate:
    """``new`` looks like ``existing``: same category, ``color_distance`` (OkLab) between main
    colours and ``appearance``, how alike they look (0..1 or so): the overlap of their
    cut-outs' colour histograms, or, ``found_by`` ``"recognition"``, the similarity by which
    recognition took one for the other."""

    new: str
    existing: str
    color_distance: float
    appearance: float
    found_by: str = "colour"


@dataclass
class IngestReport:
    """What an ingest did: ``added`` item ids, photos ``skipped`` as already ingested,
    ``duplicates`` to offer for merging, and per-photo ``problems`` (unreadable files)."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duplicates: list[DuplicateCandidate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def appearance_descriptor(rgba: np.ndarray) -> np.ndarray:
    """A normalised OkLab colour histogram (6×6×6 bins over L, a, b) of the opaque pixels of an
    H×W×4 uint8 cut-out: a pose- and scale-independent summary of how an item looks."""
    pixels = rgba[..., :3][rgba[..., 3] > 127]
    if len(pixels) == 0:
        return np.zeros(_BINS**3)
    lab = srgb_to_oklab(pixels.astype(np.uint8))
    edges = (np.linspace(0, 1, _BINS + 1), np.linspace(-0.25, 0.25, _BINS + 1))
    hist, _ = np.histogramdd(
        np.clip(lab, [0, -0.25, -0.25], [1 - 1e-9, 0.25 - 1e-9, 0.25 - 1e-9]),
        bins=(edges[0], edges[1], edges[1]),
    )
    return hist.reshape(-1) / len(pixels)


def _cutout(image: np.ndarray, mask: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = mask.shape
    # At least one pixel, inside the image: a box on the right or bottom edge rounds to it.
    x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    x1, y1 = min(max(x1, x0 + 1), w), min(max(y1, y0 + 1), h)
    rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
    rgba[..., :3] = image[y0:y1, x0:x1, :3]
    rgba[..., 3] = mask[y0:y1, x0:x1] * 255
    return rgba


def _png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def _read_rgba(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def main_colour_distance(a: WardrobeItem, b: WardrobeItem) -> float:
    """OkLab distance between two items' main colours (infinite when either has none)."""
    if not a.colors or not b.colors:
        return float("inf")
    return _colour_distance(a.colors[0], b.colors[0])


def _colour_distance(a: str, b: str) -> float:
    """OkLab distance between two ``#rrggbb`` colours."""
    both = srgb_to_oklab(np.array([hex_to_rgb(a), hex_to_rgb(b)], np.uint8))
    return float(np.linalg.norm(both[0] - both[1]))


def find_duplicates(
    wardrobe: Wardrobe, item: WardrobeItem, descriptor: np.ndarray, *, exclude: Sequence[str] = ()
) -> list[DuplicateCandidate]:
    """Photographed items of ``item``'s category whose main colour is within
    :data:`DUPLICATE_COLOR_DISTANCE` and whose cut-out histogram overlaps ``descriptor`` by at
    least :data:`DUPLICATE_APPEARANCE`; most similar first."""
    if not item.colors:
        return []
    found = []
    for other in wardrobe.items(category_id=item.category_id):
        if other.id == item.id or other.id in exclude:
            continue
        distance = main_colour_distance(item, other)
        if distance > DUPLICATE_COLOR_DISTANCE:
            continue
        path = wardrobe.cutout_path(other.id)
        if path is None or not path.exists():
            continue
        appearance = float(np.minimum(descriptor, appearance_descriptor(_read_rgba(path))).sum())
        if appearance >= DUPLICATE_APPEARANCE:
            found.append(DuplicateCandidate(item.id, other.id, distance, appearance))
    found.sort(key=lambda d: (-d.appearance, d.existing))
    return found


def items_in_prediction(
    wardrobe: Wardrobe,
    prediction,
    id_prefix: str,
    *,
    min_score: float = 0.5,
    embedder=None,
) -> list[tuple[ItemInPhoto, np.ndarray]]:
    """The items of one :class:`~fashionkit.inference.Prediction` (``photo`` kept), ready to
    store, with their cut-outs (H×W×4 uint8 RGBA; the PNG is already in the wardrobe's image
    store): every garment and accessory scoring at least ``min_score``, in detection order,
    with id ``<id_prefix>-<detection index>``. Two detections of a category worn in pairs
    (:data:`~fashionkit.ontology.PAIR_IDS`) that look alike (:func:`_pairs`) are one item,
    the pair: the larger one's, with the other as its second placement (``also``).
    ``embedder``: see :func:`ingest_photos`."""
    from fashionkit.data.masks import decode_rle

    if prediction.photo is None:
        raise ValueError("the predictor must keep the decoded photos (keep_photos=True)")
    image = prediction.photo.pixels
    parts = frozenset(PART_IDS)
    seen: list[_Seen] = []
    for det in prediction.items:
        if det.category_id in parts or det.score < min_score:
            continue
        mask = decode_rle(det.mask).astype(bool)
        linked = prediction.parts_of(det.index)
        fabric = mask.copy()
        for part in linked:
            if part.category_id in _NOT_FABRIC:
                fabric &= ~decode_rle(part.mask).astype(bool)
        details = tuple(
            ItemPart(
                category_id=p.category_id,
                attribute_ids=tuple(sorted(a.id for a in p.attributes)),
                box=p.box,
                mask=p.mask,
                score=p.score,
            )
            for p in linked
            if p.category_id in parts
        )
        seen.append(_Seen(det, mask, dominant_colors(image, fabric if fabric.any() else mask),
                          _cutout(image, mask, det.box), details))
    twin_of = _pairs(seen)
    vectors: list[np.ndarray | None] = [None] * len(seen)
    if embedder is not None and seen:
        regions = [s.mask if s.mask.any() else _box_region(s.mask.shape, s.det.box) for s in seen]
        boxes = np.array([s.det.box for s in seen], np.float32).reshape(-1, 4)
        vectors = [np.asarray(v, np.float32)
                   for v in embedder.embed(image, np.stack(regions), boxes)]  # fmt: skip
    found: list[tuple[ItemInPhoto, np.ndarray]] = []
    for k, s in enumerate(seen):
        if k in twin_of.values():
            continue  # the other one of a pair: a placement of the pair's item
        det = s.det
        attribute_ids = tuple(sorted(a.id for a in det.attributes))
        material = material_from_attributes(attribute_ids)
        item = WardrobeItem(
            id=f"{id_prefix}-{det.index}",
            category_id=det.category_id,
            colors=tuple(c.hex for c in s.colours),
            season=tuple(suggest_seasons(det.category_id, attribute_ids, material)),
            material=material,
            pattern=pattern_from_attributes(attribute_ids),
            attribute_ids=attribute_ids,
        )
        also: tuple[Placement, ...] = ()
        if k in twin_of:
            t = seen[twin_of[k]]
            also = (Placement(box=t.det.box, mask=t.det.mask, score=t.det.score,
                              details=t.details,
                              embedding=_keyed(embedder, vectors[twin_of[k]])),)  # fmt: skip
        detected = ItemInPhoto(
            item=item,
            box=det.box,
            mask=det.mask,
            score=det.score,
            attribute_scores={a.id: a.score for a in det.attributes},
            details=s.details,
            cutout_sha256=wardrobe.images.put_bytes(_png(s.rgba), ".png"),
            embedding=_keyed(embedder, vectors[k]),
            also=also,
        )
        found.append((detected, s.rgba))
    return found


@dataclass(frozen=True)
class _Seen:
    """One garment or accessory detection of a photo, before it becomes an item."""

    det: Any  # fashionkit.inference.Detection
    mask: np.ndarray
    colours: list
    rgba: np.ndarray
    details: tuple[ItemPart, ...]

    @functools.cached_property
    def descriptor(self) -> np.ndarray:
        """:func:`appearance_descriptor` of the cut-out, once however often it is compared."""
        return appearance_descriptor(self.rgba)


def _keyed(embedder, vector: np.ndarray | None) -> tuple[str, np.ndarray] | None:
    return (embedder.key, vector) if embedder is not None and vector is not None else None


def _pairs(seen: Sequence[_Seen]) -> dict[int, int]:
    """Which detections of one photo are the two of a pair: index of the one kept as the item
    (the larger mask, so the better cut-out) → index of the other. Two detections of one
    category of :data:`~fashionkit.ontology.PAIR_IDS` are a pair when they pass the duplicate
    check's rule (main colours within :data:`DUPLICATE_COLOR_DISTANCE`, colour histograms
    overlapping by :data:`DUPLICATE_APPEARANCE`); the most alike first, each in one pair at
    most: the two shoes a person wears look alike, two pairs of a flat lay usually do not."""
    candidates = []
    for i, a in enumerate(seen):
        if a.det.category_id not in PAIR_IDS or not a.colours:
            continue
        for j in range(i + 1, len(seen)):
            b = seen[j]
            if b.det.category_id != a.det.category_id or not b.colours:
                continue
            if _colour_distance(a.colours[0].hex, b.colours[0].hex) > DUPLICATE_COLOR_DISTANCE:
                continue
            overlap = float(np.minimum(a.descriptor, b.descriptor).sum())
            if overlap >= DUPLICATE_APPEARANCE:
                candidates.append((-overlap, i, j))
    twin_of: dict[int, int] = {}
    taken: set[int] = set()
    for _, i, j in sorted(candidates):
        if i in taken or j in taken:
            continue
        taken |= {i, j}
        first, second = (i, j) if seen[i].mask.sum() >= seen[j].mask.sum() else (j, i)
        twin_of[first] = second
    return twin_of


def _box_region(shape: tuple[int, int], box) -> np.ndarray:
    """``H×W`` bool: the pixels of an XYXY box (at least one, clipped to the photo), what an
    item whose mask the threshold left empty is embedded from (it still has a place: its box)."""
    h, w = shape
    x0 = min(max(int(np.floor(box[0])), 0), w - 1)
    y0 = min(max(int(np.floor(box[1])), 0), h - 1)
    x1 = min(max(int(np.ceil(box[2])), x0 + 1), w)
    y1 = min(max(int(np.ceil(box[3])), y0 + 1), h)
    region = np.zeros(shape, bool)
    region[y0:y1, x0:x1] = True
    return region


def ingest_photos(
    wardrobe: Wardrobe,
    predictor,
    paths: Sequence[str | Path],
    *,
    min_score: float = 0.5,
    embedder=None,
    max_items: int | None = None,
    duplicates: Callable[[Wardrobe, list[str]], list[DuplicateCandidate] | None] | None = None,
) -> IngestReport:
    """Detect items in photo files and add them to ``wardrobe``.

    ``predictor``: a :class:`~fashionkit.inference.Predictor` (or anything called as
    ``predictor(paths, on_error="skip")`` returning one
    :class:`~fashionkit.inference.Prediction` per path, with ``photo`` kept).
    ``embedder``: when given (a :class:`fashionkit.personal.embedding.ItemEmbedder`, or
    anything with its ``key`` and ``embed``), each item's appearance vector is stored with it,
    so that later photos can recognise it. ``max_items``: the most items the wardrobe may
    hold; a photo whose items would take it past that is not stored, nor any of its items,
    and raises :class:`~fashionkit.errors.LimitError` (photos before it stay added).
    ``duplicates``: called with the wardrobe and the ids of each photo's new items once they
    are stored, the likely duplicates among the wardrobe's other items, or ``None`` where it
    cannot tell; then, and without it, :func:`find_duplicates` says.
    """
    report = IngestReport()
    predictions = predictor([str(p) for p in paths], on_error="skip")
    for path, prediction in zip(paths, predictions, strict=True):
        if prediction.error is not None:
            report.problems.append(prediction.error)
            continue
        digest = file_digest(path)
        if wardrobe.has_photo(digest):
            report.skipped.append(str(path))
            continue
        found = items_in_prediction(
            wardrobe, prediction, digest[:12], min_score=min_score, embedder=embedder
        )
        # The photo and all its items in one transaction: a crash leaves all or nothing.
        wardrobe.add_photo(path, prediction.image_size, [d for d, _ in found],
                           max_items=max_items)
        ids = [d.item.id for d, _ in found]
        report.added.extend(ids)
        told = duplicates(wardrobe, ids) if duplicates is not None and ids else None
        if told is not None:
            report.duplicates.extend(told)
            continue
        for detected, rgba in found:
            report.duplicates.extend(
                find_duplicates(wardrobe, detected.item, appearance_descriptor(rgba), exclude=ids)
            )
    return report
