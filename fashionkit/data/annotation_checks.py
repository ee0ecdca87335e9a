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
  lie outside the image by more than :data:`BOX_TOLERANCE` pixels, and segmentations that
  :mod:`fashionkit.data.segmentation_checks` refuses (malformed, outside the image, RLE not
  covering it exactly, empty masks).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashionkit.data.annotations import AnnotationColumns, AnnotationSet, ImageInfo
from fashionkit.data.errors import OnInvalid, SkipReport
from fashionkit.data.masks import MAX_MASK_PIXELS
from fashionkit.data.segmentation_checks import check_segmentations
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.ontology import Ontology

__all__ = ["BOX_TOLERANCE", "validate_records", "validated_set"]

# Boxes are floats computed from polygons; allow them to poke out of the image by a pixel.
BOX_TOLERANCE = 1.0


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
