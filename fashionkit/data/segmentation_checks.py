"""Checks of one segmentation or many (polygons, uncompressed and compressed RLE), shared by
the annotation readers and the evaluation's ground truth and results.

A segmentation is refused when it is malformed, when polygons have fewer than 3 points or points
outside the image (by more than :data:`POLYGON_TOLERANCE` pixels), when an RLE's size is not the
image's or its counts (compressed or not) do not cover exactly ``h × w`` pixels or hold a
negative run, and, unless empty masks are allowed, when it covers no pixel.

Empty polygons are found without rasterising all of them (that would cost more than reading the
file): polygons whose shoelace area reaches :data:`RASTERIZE_BELOW` px² are taken as non-empty,
smaller ones are rasterised with pycocotools and are empty when they cover no pixel. A sliver
thinner than a pixel but larger than that area would pass; no real annotation looks like that.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.data.masks import MAX_MASK_PIXELS, rle_areas, rle_string_totals

__all__ = [
    "POLYGON_TOLERANCE",
    "RASTERIZE_BELOW",
    "check_segmentation",
    "check_segmentations",
    "compressed_rle_problems",
    "rle_problem",
]

# Polygon points may poke out of the image by a pixel (they are floats). Far outside is corrupt
# data, and pycocotools' rasteriser crashes or never returns on coordinates far beyond the image.
POLYGON_TOLERANCE = 1.0
# Shoelace area (px²) under which a polygon is rasterised to see whether it covers any pixel.
RASTERIZE_BELOW = 64.0


def check_segmentation(
    seg: Any, height: int, width: int, allow_empty: bool = False
) -> str | None:
    """What is wrong with one segmentation in an image of ``height × width``, or ``None``.

    ``seg`` is a polygon list, an RLE dict (``counts`` str/bytes or list of ints) or the
    ``msgspec.Raw`` JSON text of either. ``allow_empty``: a mask that covers no pixel is fine
    (a detection may be empty; an annotation may not).
    """
    size_problem = _image_size_problem(height, width)
    if size_problem:
        return size_problem
    if isinstance(seg, msgspec.Raw):
        try:
            seg = msgspec.json.decode(seg)
        except msgspec.DecodeError as err:
            return f"segmentation is not valid JSON ({err})"
    if isinstance(seg, list):
        return _check_polygons(seg, height, width, allow_empty)
    if isinstance(seg, dict):
        return rle_problem(seg, height, width, allow_empty=allow_empty)
    if seg is None:
        return "segmentation is missing"
    return f"segmentation must be a polygon list or an RLE object, not {type(seg).__name__}"


def _image_size_problem(height: int, width: int) -> str | None:
    if height <= 0 or width <= 0 or height * width > MAX_MASK_PIXELS:
        return f"image size {width}x{height} cannot hold a mask (1..{MAX_MASK_PIXELS} pixels)"
    return None


def _outside(
    x: np.ndarray, y: np.ndarray, height: int | np.ndarray, width: int | np.ndarray
) -> np.ndarray:
    """Points further than :data:`POLYGON_TOLERANCE` outside the image."""
    t = POLYGON_TOLERANCE
    return (x < -t) | (y < -t) | (x > width + t) | (y > height + t)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_polygons(polys: list, height: int, width: int, allow_empty: bool = False) -> str | None:
    if not polys:
        return "segmentation is an empty polygon list (empty mask)"
    total = 0.0
    for k, ring in enumerate(polys):
        if not isinstance(ring, list) or not all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in ring
        ):
            return f"polygon {k} is not a list of numbers"
        if len(ring) % 2:
            return f"polygon {k} has an odd number of coordinates ({len(ring)})"
        if len(ring) < 6:
            return f"polygon {k} has {len(ring) // 2} point(s); a polygon needs at least 3"
        try:
            xy = np.asarray(ring, np.float64).reshape(-1, 2)
        except OverflowError:  # an integer literal no float holds (JSON allows any length)
            return f"polygon {k} has non-finite coordinates"
        if not np.isfinite(xy).all():
            return f"polygon {k} has non-finite coordinates"
        x, y = xy[:, 0], xy[:, 1]
        outside = np.flatnonzero(_outside(x, y, height, width))
        if len(outside):
            i = int(outside[0])
            return (f"polygon {k} has point ({x[i]:g}, {y[i]:g}) outside the image "
                    f"{width}x{height}")
        total += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if total < RASTERIZE_BELOW and not allow_empty:
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        if int(mask_utils.area(rle)) == 0:
            return "polygon covers no pixel (empty mask)"
    return None


def rle_problem(
    rle: dict, height: int, width: int, check_string: bool = True, allow_empty: bool = False
) -> str | None:
    """What is wrong with an RLE dict; ``check_string=False`` leaves a compressed string's
    content to the caller (checked in bulk by :func:`compressed_rle_problems`)."""
    size, counts = rle.get("size"), rle.get("counts")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(_is_int(v) for v in size)
    ):
        return f"RLE size must be [height, width], not {size!r}"
    if [int(size[0]), int(size[1])] != [height, width]:
        return f"RLE size {list(size)} disagrees with the image size [{height}, {width}]"
    if isinstance(counts, list):
        if not all(_is_int(v) and v >= 0 for v in counts):
            return "uncompressed RLE counts must be non-negative integers"
        covered = sum(counts)
        if covered != height * width:
            return f"RLE counts cover {covered} pixels; the image has {height}x{width}={height * width}"
        if sum(counts[1::2]) == 0 and not allow_empty:
            return "RLE has no foreground pixel (empty mask)"
        return None
    if isinstance(counts, str | bytes):
        if not counts:
            return "compressed RLE counts are empty"
        if not check_string:
            return None
        text = counts if isinstance(counts, str) else counts.decode("latin-1")
        return compressed_rle_problems([(0, text)], [height], [width], allow_empty).get(0)
    return f"RLE counts must be a string or a list of integers, not {type(counts).__name__}"


def compressed_rle_problems(
    items: Sequence[tuple[int, str]],
    hs: Sequence[int],
    ws: Sequence[int],
    allow_empty: bool = False,
) -> dict[int, str]:
    """``{row: message}`` for compressed RLE strings (``items``: ``(row, counts)``, image size
    ``hs[row] × ws[row]``) that are not valid COCO strings, do not cover the image exactly or
    (unless ``allow_empty``) have no foreground pixel. pycocotools trusts the string: one with
    a wrong pixel total decodes to garbage or makes it loop, so the totals are checked first,
    all strings at once."""
    if not items:
        return {}
    rows = np.fromiter(map(itemgetter(0), items), dtype=np.int64, count=len(items))
    ok, covered = rle_string_totals(list(map(itemgetter(1), items)))
    expected = np.asarray(hs, dtype=np.int64)[rows] * np.asarray(ws, dtype=np.int64)[rows]
    out: dict[int, str] = {}
    for k in np.flatnonzero(~ok | (covered != expected)).tolist():
        r = int(rows[k])
        if not ok[k]:
            out[r] = "compressed RLE counts are not a valid COCO RLE string"
        else:
            out[r] = (
                f"RLE counts cover {covered[k]} pixels; the image has {hs[r]}x{ws[r]}="
                f"{expected[k]}"
            )
    good: list[tuple[int, str]] = []
    if not allow_empty:
        good = [items[k] for k in np.flatnonzero(ok & (covered == expected)).tolist()]
    areas = rle_areas([{"size": [hs[r], ws[r]], "counts": text.encode()} for r, text in good])
    for (r, _), area in zip(good, areas.tolist(), strict=True):
        if area == 0:
            out[r] = "RLE has no foreground pixel (empty mask)"
    return out


class _RLE(msgspec.Struct, forbid_unknown_fields=True):
    # Other keys go the slow way (check_segmentation decodes all of it): a skipped value
    # could be one that no number holds (1E400), which reading the annotation would fail on.
    size: list[int]
    counts: str | list[int]


_SEG_DECODER = msgspec.json.Decoder(list[list[float]] | _RLE)
# Bounds the transient memory of the batched polygon-area pass.
_CHUNK_COORDS = 1 << 18


def check_segmentations(
    segmentations: Sequence[Any],
    heights: np.ndarray,
    widths: np.ndarray,
    selected: np.ndarray,
) -> dict[int, str]:
    """:func:`check_segmentation` for every selected row, without per-row Python work where
    the input allows it.

    ``heights``/``widths``: ``(N,) int`` image size per row; ``selected``: ``(N,) bool`` rows
    to check. Returns ``{row: message}`` for the invalid ones. Raw JSON is decoded with a typed
    decoder (shape errors fall back to :func:`check_segmentation` for the message), and polygon
    areas are computed for many annotations at once in bounded chunks.
    """
    bad: dict[int, str] = {}
    hs, ws = heights.tolist(), widths.tolist()
    flat: list[float] = []
    ring_lengths: list[int] = []
    ring_rows: list[int] = []
    strings: list[tuple[int, str]] = []  # compressed RLE, checked together at the end

    def flush() -> None:
        if not ring_lengths:
            return
        for r, msg in _empty_polygons(flat, ring_lengths, ring_rows, segmentations, heights,
                                      widths):
            bad[r] = msg
        flat.clear()
        ring_lengths.clear()
        ring_rows.clear()

    for r, sel in enumerate(selected.tolist()):
        if not sel:
            continue
        seg = segmentations[r]
        msg = _image_size_problem(hs[r], ws[r])
        if msg is not None:
            bad[r] = msg
            continue
        if not isinstance(seg, msgspec.Raw):
            # Objects built in memory (not read from a file) are checked one by one.
            msg = check_segmentation(seg, hs[r], ws[r])
            seg = None
        else:
            try:
                seg = _SEG_DECODER.decode(seg)
            except msgspec.ValidationError:
                msg = check_segmentation(seg, hs[r], ws[r])  # names what is wrong
                seg = None
            except msgspec.DecodeError as err:
                msg = f"segmentation is not valid JSON ({err})"
                seg = None
        if isinstance(seg, _RLE):
            msg = rle_problem({"size": seg.size, "counts": seg.counts}, hs[r], ws[r],
                             check_string=False)
            if msg is None and isinstance(seg.counts, str):
                strings.append((r, seg.counts))
            seg = None
        elif seg == []:
            msg = check_segmentation(seg, hs[r], ws[r])
            seg = None
        if seg is None:
            if msg is not None:
                bad[r] = msg
            continue
        # seg is list[list[float]] here (typed decode); only the point counts remain to check.
        for k, ring in enumerate(seg):
            if len(ring) % 2 or len(ring) < 6:
                bad[r] = _check_polygons(seg, hs[r], ws[r]) or f"polygon {k} is malformed"
                break
        else:
            for ring in seg:
                flat.extend(ring)
                ring_lengths.append(len(ring))
                ring_rows.append(r)
            if len(flat) > _CHUNK_COORDS:
                flush()
    flush()
    bad.update(compressed_rle_problems(strings, hs, ws))
    return bad


def _empty_polygons(
    flat: list[float],
    ring_lengths: list[int],
    ring_rows: list[int],
    segmentations: Sequence[Any],
    heights: np.ndarray,
    widths: np.ndarray,
):
    """Yield ``(row, message)`` for polygon annotations with non-finite points, points outside
    the image, or that cover no pixel (see module doc)."""
    xy = np.asarray(flat, np.float64).reshape(-1, 2)
    points = np.asarray(ring_lengths, np.int64) // 2
    rows = np.asarray(ring_rows, np.int64)
    point_rows = np.repeat(rows, points)
    x, y = xy[:, 0], xy[:, 1]
    bad_point = ~np.isfinite(xy).all(axis=1) | _outside(
        x, y, heights[point_rows], widths[point_rows]
    )
    bad_rows = set(np.unique(point_rows[bad_point]).tolist())
    if bad_rows:
        x, y = np.where(bad_point, 0.0, x), np.where(bad_point, 0.0, y)  # keep inf out of sums
    starts = np.zeros(len(points), np.int64)
    np.cumsum(points[:-1], out=starts[1:])
    nxt = np.arange(1, len(xy) + 1)
    nxt[starts + points - 1] = starts  # each ring closes on its own first point
    cross = x * y[nxt] - x[nxt] * y
    ring_area = 0.5 * np.abs(np.add.reduceat(cross, starts))
    uniq, inverse = np.unique(rows, return_inverse=True)
    total = np.bincount(inverse, weights=ring_area, minlength=len(uniq))
    for r in sorted(bad_rows | set(uniq[total < RASTERIZE_BELOW].tolist())):
        seg = segmentations[r]
        if isinstance(seg, msgspec.Raw):
            seg = msgspec.json.decode(seg)
        msg = _check_polygons(seg, int(heights[r]), int(widths[r]))
        if msg is not None:
            yield r, msg
