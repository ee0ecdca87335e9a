"""Validation shared by every reader: find what is wrong with which record, then raise or skip.

Checks, each reported with the file and the record (``image id 3``, ``annotation id 17`` or, for
CSV input, ``line 42``):

- images: duplicate ids (later records), non-positive width/height or more pixels than a COCO
  mask can hold (:data:`~fashionkit.data.masks.MAX_MASK_PIXELS`); with an images folder:
  missing files. An image file whose size as shown (read from its header with PIL, EXIF
  orientation applied) disagrees with the file's width/height is a *notice*, not an error: masks
  and boxes are defined in the annotation file's size, so the record stays usable, and the
  training dataset reconciles it the same way (see :mod:`fashionkit.data.dataset`).
- annotations: duplicate ids (later records), image id not among the images (or its image was
  skipped), unknown category or attribute ids, boxes that are not finite, have non-positive size or
  lie outside the image by more than :data:`BOX_TOLERANCE` pixels, segmentations that are
  malformed, polygons with fewer than 3 points or with points outside the image (by more than
  :data:`POLYGON_TOLERANCE` pixels), RLE whose size disagrees with the image or whose counts
  (compressed or not) do not cover it exactly, and empty masks.

Empty polygons are found without rasterising all of them (that would cost more than the whole
load): polygons whose shoelace area reaches :data:`RASTERIZE_BELOW` px² are taken as non-empty,
smaller ones are rasterised with pycocotools and are empty when they cover no pixel. A sliver
thinner than a pixel but larger than that area would pass; no real annotation looks like that.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from fashionkit.data.annotations import AnnotationColumns, AnnotationSet, ImageInfo
from fashionkit.data.errors import OnInvalid, SkipReport
from fashionkit.data.masks import MAX_MASK_PIXELS, rle_areas, rle_string_totals
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.ontology import Ontology

__all__ = [
    "BOX_TOLERANCE",
    "POLYGON_TOLERANCE",
    "RASTERIZE_BELOW",
    "check_segmentation",
    "check_segmentations",
    "validate_records",
    "validated_set",
]

# Boxes are floats computed from polygons; allow them to poke out of the image by a pixel.
BOX_TOLERANCE = 1.0
# Polygon points likewise. Far outside is corrupt data, and pycocotools' rasteriser crashes or
# never returns on coordinates far beyond the image.
POLYGON_TOLERANCE = BOX_TOLERANCE
# Shoelace area (px²) under which a polygon is rasterised to see whether it covers any pixel.
RASTERIZE_BELOW = 64.0


def check_segmentation(seg: Any, height: int, width: int) -> str | None:
    """What is wrong with one segmentation in an image of ``height × width``, or ``None``.

    ``seg`` is a polygon list, an RLE dict (``counts`` str/bytes or list of ints) or the
    ``msgspec.Raw`` JSON text of either.
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
        return _check_polygons(seg, height, width)
    if isinstance(seg, dict):
        return _check_rle(seg, height, width)
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


def _check_polygons(polys: list, height: int, width: int) -> str | None:
    if not polys:
        return "segmentation is an empty polygon list (empty mask)"
    total = 0.0
    for k, ring in enumerate(polys):
        if not isinstance(ring, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in ring
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
    if total < RASTERIZE_BELOW:
        from pycocotools import mask as mask_utils

        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        if int(mask_utils.area(rle)) == 0:
            return "polygon covers no pixel (empty mask)"
    return None


def _check_rle(rle: dict, height: int, width: int, check_string: bool = True) -> str | None:
    """What is wrong with an RLE dict; ``check_string=False`` leaves a compressed string's
    content to the caller (checked in bulk by :func:`_compressed_rle_problems`)."""
    size, counts = rle.get("size"), rle.get("counts")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) for v in size)
    ):
        return f"RLE size must be [height, width], not {size!r}"
    if [int(size[0]), int(size[1])] != [height, width]:
        return f"RLE size {list(size)} disagrees with the image size [{height}, {width}]"
    if isinstance(counts, list):
        if not all(isinstance(v, int) and v >= 0 for v in counts):
            return "uncompressed RLE counts must be non-negative integers"
        covered = sum(counts)
        if covered != height * width:
            return f"RLE counts cover {covered} pixels; the image has {height}x{width}={height * width}"
        if sum(counts[1::2]) == 0:
            return "RLE has no foreground pixel (empty mask)"
        return None
    if isinstance(counts, str | bytes):
        if not counts:
            return "compressed RLE counts are empty"
        if not check_string:
            return None
        text = counts if isinstance(counts, str) else counts.decode("latin-1")
        return _compressed_rle_problems([(0, text)], [height], [width]).get(0)
    return f"RLE counts must be a string or a list of integers, not {type(counts).__name__}"


def _compressed_rle_problems(
    items: list[tuple[int, str]], hs: list[int], ws: list[int]
) -> dict[int, str]:
    """``{row: message}`` for compressed RLE strings (``items``: ``(row, counts)``, image size
    ``hs[row] × ws[row]``) that are not valid COCO strings, do not cover the image exactly or
    have no foreground pixel. pycocotools trusts the string: one with a wrong pixel total
    decodes to garbage or makes it loop, so the totals are checked first (in bulk)."""
    if not items:
        return {}
    ok, covered = rle_string_totals([text for _, text in items])
    out: dict[int, str] = {}
    good: list[tuple[int, str]] = []
    for (r, text), is_ok, total in zip(items, ok.tolist(), covered.tolist(), strict=True):
        expected = hs[r] * ws[r]
        if not is_ok:
            out[r] = "compressed RLE counts are not a valid COCO RLE string"
        elif total != expected:
            out[r] = f"RLE counts cover {total} pixels; the image has {hs[r]}x{ws[r]}={expected}"
        else:
            good.append((r, text))
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
# Bounds the transient memory of the batched polygon-area pass (~30 MB of floats).
_CHUNK_COORDS = 1 << 18


def check_segmentations(
    segmentations: Sequence[Any],
    heights: np.ndarray,
    widths: np.ndarray,
    selected: np.ndarray,
) -> dict[int, str]:
    """:func:`check_segmentation` for every selected row, at a few µs per annotation.

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
            msg = _check_rle({"size": seg.size, "counts": seg.counts}, hs[r], ws[r],
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
    bad.update(_compressed_rle_problems(strings, hs, ws))
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


def _duplicates(ids: np.ndarray) -> np.ndarray:
    """Boolean mask of entries whose id already occurred earlier."""
    order = np.argsort(ids, kind="stable")
    dup_sorted = np.zeros(len(ids), bool)
    dup_sorted[1:] = ids[order][1:] == ids[order][:-1]
    dup = np.zeros(len(ids), bool)
    dup[order] = dup_sorted
    return dup


def _check_image_files(
    images: Sequence[ImageInfo], images_dir: Path, source: str, where: Callable[[int], str]
) -> tuple[dict[int, list[str]], list[Problem]]:
    from PIL import ExifTags, Image, UnidentifiedImageError

    bad: dict[int, list[str]] = {}
    notices: list[Problem] = []
    for i, im in enumerate(images):
        path = images_dir / im.file_name
        if not path.is_file():
            bad.setdefault(i, []).append(f"image file {path} is missing")
            continue
        try:
            with Image.open(path) as f:  # reads the header only
                stored = f.size
                orientation = f.getexif().get(ExifTags.Base.Orientation, 1)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                Image.DecompressionBombError) as err:
            # PIL reports broken headers as any of these; a header claiming billions of pixels
            # as DecompressionBombError (not an OSError).
            bad.setdefault(i, []).append(f"image file {path} cannot be read ({err})")
            continue
        # EXIF orientations 5..8 turn the picture by 90°: it is shown transposed.
        shown = stored[::-1] if orientation in (5, 6, 7, 8) else stored
        expected = (im.width, im.height)
        if shown == expected:
            continue
        if stored == expected:
            msg = (
                f"image file {path} is shown {shown[0]}x{shown[1]} (EXIF orientation "
                f"{orientation}) but the annotations match its stored {stored[0]}x{stored[1]} "
                "pixels; masks and boxes are in the stored orientation"
            )
        else:
            msg = (
                f"image file {path} is {shown[0]}x{shown[1]} but the annotations say "
                f"{im.width}x{im.height}; masks and boxes are in the annotation size"
            )
        notices.append(Problem(source, where(i), msg))
    return bad, notices


def validate_records(
    images: Sequence[ImageInfo],
    columns: AnnotationColumns,
    ontology: Ontology,
    source: str,
    *,
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
    row_where: Callable[[int], str] | None = None,
    image_where: Callable[[int], str] | None = None,
    extra_row_problems: dict[int, list[str]] | None = None,
    invalid_image_ids: Collection[int] = (),
) -> tuple[list[ImageInfo], AnnotationColumns, SkipReport]:
    """Check all records; return the valid images and annotation rows and what was dropped.

    ``row_where(row)`` / ``image_where(index)`` name a record in messages (default
    ``"annotation id N"`` / ``"image id N"``). ``extra_row_problems`` are problems a reader
    already found per row (e.g. a CSV field that did not parse); ``invalid_image_ids`` are
    image records the reader already rejected (their annotations are reported as such).
    With ``on_invalid="raise"`` any problem raises :class:`InvalidDataError` listing them all.
    """
    if on_invalid not in ("raise", "skip"):
        raise ValueError(f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}")
    if row_where is None:
        ids = columns.ids

        def row_where(row: int) -> str:
            return f"annotation id {int(ids[row])}"

    if image_where is None:

        def image_where(index: int) -> str:
            return f"image id {images[index].id}"

    report = SkipReport()
    bad_images: dict[int, list[str]] = {}
    image_ids = np.fromiter((im.id for im in images), np.int64, len(images))
    for i in np.flatnonzero(_duplicates(image_ids)).tolist():
        bad_images.setdefault(i, []).append(f"duplicate image id {images[i].id}")
    for i, im in enumerate(images):
        if im.width <= 0 or im.height <= 0:
            bad_images.setdefault(i, []).append(
                f"image size {im.width}x{im.height} is not positive"
            )
        elif im.width * im.height > MAX_MASK_PIXELS:
            bad_images.setdefault(i, []).append(
                f"image size {im.width}x{im.height} is too large for COCO masks "
                f"(at most {MAX_MASK_PIXELS} pixels)"
            )
    if images_dir is not None:
        files_bad, notices = _check_image_files(images, Path(images_dir), source, image_where)
        for i, msgs in files_bad.items():
            bad_images.setdefault(i, []).extend(msgs)
        report.notices.extend(notices)

    # First record of each id wins; its size is what annotations are checked against.
    first_index: dict[int, int] = {}
    for i, im in enumerate(images):
        first_index.setdefault(im.id, i)
    skipped_image_ids = {images[i].id for i in bad_images if first_index[images[i].id] == i}
    skipped_image_ids |= set(invalid_image_ids) - set(first_index)

    n = len(columns)
    bad_rows: dict[int, list[str]] = {r: list(m) for r, m in (extra_row_problems or {}).items()}

    def flag(rows: np.ndarray, message: Callable[[int], str]) -> None:
        for r in rows.tolist():
            bad_rows.setdefault(r, []).append(message(r))

    c = columns
    flag(np.flatnonzero(_duplicates(c.ids)), lambda r: f"duplicate annotation id {int(c.ids[r])}")

    known = np.fromiter(first_index, np.int64, len(first_index))
    has_image = np.isin(c.image_ids, known)  # the image's size is known: geometry is checkable
    rejected = np.fromiter(invalid_image_ids, np.int64, len(invalid_image_ids))
    flag(
        np.flatnonzero(~has_image & ~np.isin(c.image_ids, rejected)),
        lambda r: f"image id {int(c.image_ids[r])} is not among the file's images",
    )
    if skipped_image_ids:
        skipped = np.fromiter(skipped_image_ids, np.int64, len(skipped_image_ids))
        flag(
            np.flatnonzero(np.isin(c.image_ids, skipped)),
            lambda r: f"its image (id {int(c.image_ids[r])}) is invalid",
        )

    valid_cats = np.asarray(ontology.category_ids, np.int64)
    flag(
        np.flatnonzero(~np.isin(c.category_ids, valid_cats)),
        lambda r: f"unknown category id {int(c.category_ids[r])}",
    )
    valid_atts = np.asarray(ontology.attribute_ids, np.int64)
    bad_att = ~np.isin(c.attribute_values, valid_atts)
    if bad_att.any():
        att_rows = np.repeat(np.arange(n), np.diff(c.attribute_offsets))
        for r in np.unique(att_rows[bad_att]).tolist():
            lo, hi = c.attribute_offsets[r], c.attribute_offsets[r + 1]
            vals = c.attribute_values[lo:hi]
            unknown = sorted({int(v) for v in vals[~np.isin(vals, valid_atts)]})
            bad_rows.setdefault(r, []).append(f"unknown attribute id(s) {unknown}")

    # Image size per annotation row (0 where the image is unknown; those rows are already bad).
    # The first record of a duplicated image id is the one kept: check against its size.
    w_of = {iid: images[i].width for iid, i in first_index.items()}
    h_of = {iid: images[i].height for iid, i in first_index.items()}
    img_ids = c.image_ids.tolist()
    widths = np.array([w_of.get(i, 0) for i in img_ids], np.float64)
    heights = np.array([h_of.get(i, 0) for i in img_ids], np.float64)
    b = c.bboxes
    finite = np.isfinite(b).all(axis=1)
    flag(np.flatnonzero(~finite), lambda r: f"box {b[r].tolist()} is not finite")
    nonpos = finite & ((b[:, 2] <= 0) | (b[:, 3] <= 0))
    flag(np.flatnonzero(nonpos), lambda r: f"box {b[r].tolist()} has non-positive width or height")
    outside = (
        finite
        & has_image
        & (
            (b[:, 0] < -BOX_TOLERANCE)
            | (b[:, 1] < -BOX_TOLERANCE)
            | (b[:, 0] + b[:, 2] > widths + BOX_TOLERANCE)
            | (b[:, 1] + b[:, 3] > heights + BOX_TOLERANCE)
        )
    )
    flag(
        np.flatnonzero(outside),
        lambda r: (
            f"box {b[r].tolist()} (XYWH) lies outside the image {int(widths[r])}x{int(heights[r])}"
        ),
    )
    areas_ok = np.isfinite(c.areas) & (c.areas >= 0)
    flag(np.flatnonzero(~areas_ok), lambda r: f"area {float(c.areas[r])} is not a valid area")

    # Geometry is checked only where the image's size can hold a mask (else the image is bad).
    sized = has_image & (heights > 0) & (widths > 0) & (heights * widths <= MAX_MASK_PIXELS)
    for r, msg in check_segmentations(
        c.segmentations, heights.astype(np.int64), widths.astype(np.int64), sized
    ).items():
        bad_rows.setdefault(r, []).append(msg)

    problems = [
        Problem(source, image_where(i), "; ".join(msgs)) for i, msgs in sorted(bad_images.items())
    ]
    problems += [Problem(source, row_where(r), "; ".join(m)) for r, m in sorted(bad_rows.items())]
    if problems and on_invalid == "raise":
        raise InvalidDataError(problems)
    report.problems.extend(problems)
    if bad_images:
        images = [im for i, im in enumerate(images) if i not in bad_images]
    if bad_rows:
        keep = np.ones(n, bool)
        keep[list(bad_rows)] = False
        columns = columns.take(np.flatnonzero(keep))
    return list(images), columns, report


def validated_set(
    images: Sequence[ImageInfo],
    columns: AnnotationColumns,
    ontology: Ontology,
    source: str,
    *,
    on_invalid: OnInvalid,
    images_dir: str | Path | None = None,
    early_problems: Sequence[Problem] = (),
    row_where: Callable[[int], str] | None = None,
    image_where: Callable[[int], str] | None = None,
    extra_row_problems: dict[int, list[str]] | None = None,
    invalid_image_ids: Collection[int] = (),
    info: dict[str, Any] | None = None,
    licenses: list[Any] | None = None,
) -> tuple[AnnotationSet, SkipReport]:
    """The readers' last step: validate, then raise everything found (``early_problems``, the
    reader's own, first) or build the set from the valid records."""
    images, columns, report = validate_records(
        images,
        columns,
        ontology,
        source,
        images_dir=images_dir,
        on_invalid="skip",
        row_where=row_where,
        image_where=image_where,
        extra_row_problems=extra_row_problems,
        invalid_image_ids=invalid_image_ids,
    )
    report.problems[:0] = early_problems
    if report.problems and on_invalid == "raise":
        raise InvalidDataError(report.problems)
    return AnnotationSet.from_columns(images, columns, ontology, source, info, licenses), report
