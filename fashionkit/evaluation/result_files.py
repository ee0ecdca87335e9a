"""Reading and checking ground truth and result records; every problem names its record.

Results are decoded with msgspec into typed records, and the checks that follow work on whole
columns. Segmentations are checked by :mod:`fashionkit.data.segmentation_checks` (the readers'
checker), compressed RLE strings all at once: pycocotools trusts its input and reads past
buffers on a string that does not describe exactly ``h × w`` pixels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import chain, repeat
from operator import attrgetter, is_not
from typing import Annotated, Any

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.data.masks import MAX_MASK_PIXELS, rle_areas
from fashionkit.data.segmentation_checks import (
    check_segmentation,
    compressed_rle_problems,
    rle_problem,
)
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.evaluation.attribute_sets import attribute_index_lookup, pack_attributes
from fashionkit.ontology import Ontology

__all__ = ["decode_results", "convert_results", "build_detections", "validate_gt_records"]


# Ids and sizes go into int64 columns: a larger number is a record error, not an overflow.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _RLE(msgspec.Struct, gc=False):
    size: tuple[_Int64, _Int64]
    counts: str | list[int]


class _Result(msgspec.Struct, gc=False):
    image_id: _Int64
    category_id: _Int64
    score: float
    bbox: list[float] | None = None
    segmentation: _RLE | list[list[float]] | None = None
    attribute_ids: list[_Int64] = []
    attribute_scores: list[float] | None = None


_INDEX = re.compile(r"\$\[(\d+)\]")


def _msgspec_problem(err: Exception, source: str) -> InvalidDataError:
    text = str(err)
    m = _INDEX.search(text)
    where = f"result {m.group(1)}" if m else "file"
    return InvalidDataError([Problem(source, where, text)])


def decode_results(data: bytes, source: str) -> list[_Result]:
    """JSON bytes of a results list → typed records (raises naming the result index)."""
    try:
        return msgspec.json.decode(data, type=list[_Result])
    except msgspec.ValidationError as err:
        raise _msgspec_problem(err, source) from None
    except msgspec.DecodeError as err:
        raise InvalidDataError([Problem(source, "file", f"not valid JSON: {err}")]) from None


def convert_results(records: Sequence[Any], source: str) -> list[_Result]:
    """In-memory result dicts → typed records (raises naming the result index)."""
    try:
        return msgspec.convert(list(records), type=list[_Result], from_attributes=True)
    except msgspec.ValidationError as err:
        raise _msgspec_problem(err, source) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _segmentation_problems(
    items: Sequence[tuple[int, Any]], hs: Sequence[int], ws: Sequence[int]
) -> dict[int, str]:
    """``{row: message}`` for the segmentations ``items`` (``(row, segmentation)``, image size
    ``hs[row] × ws[row]``), by :mod:`fashionkit.data.segmentation_checks` with empty masks
    allowed (a detection may be empty, and the official evaluator takes empty ground truth).
    Compressed strings are checked all at once."""
    bad: dict[int, str] = {}
    strings: list[tuple[int, str]] = []
    for r, seg in items:
        if isinstance(seg, dict):
            msg = rle_problem(seg, hs[r], ws[r], check_string=False, allow_empty=True)
            counts = seg.get("counts")
            if msg is None and isinstance(counts, str | bytes):
                strings.append((r, counts if isinstance(counts, str) else counts.decode("latin-1")))
        else:
            msg = check_segmentation(seg, hs[r], ws[r], allow_empty=True)
        if msg is not None:
            bad[r] = msg
    bad.update(compressed_rle_problems(strings, hs, ws, allow_empty=True))
    return bad


def _no_detections(num_attributes: int) -> dict[str, Any]:
    words = (num_attributes + 63) // 64
    return {
        "image_index": np.zeros(0, np.int64),
        "category_ids": np.zeros(0, np.int64),
        "scores": np.zeros(0),
        "boxes": np.zeros((0, 4)),
        "segmentations": [],
        "areas": np.zeros(0),
        "attributes": np.zeros((0, words), np.uint64),
        "attr_offsets": np.zeros(1, np.int64),
        "attr_index": np.zeros(0, np.int64),
        "attr_scores": None,
        "order": np.zeros(0, np.int64),
    }


def build_detections(
    records: list[_Result],
    image_ids: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    ontology: Ontology,
    source: str,
    iou_type: str | None = None,
) -> dict[str, Any]:
    """Typed result records → the columns of a
    :class:`~fashionkit.evaluation.records.ResultsTable`, after checking every record against
    the ground truth's images (``image_ids`` sorted, with their ``heights``/``widths``) and the
    ontology. ``iou_type`` (``"segm"``/``"bbox"``) makes masks or boxes mandatory. Raises
    :class:`InvalidDataError` listing each bad record by its index."""
    n = len(records)
    num_attributes = ontology.num_attributes
    if n == 0:
        return _no_detections(num_attributes)
    problems: list[Problem] = []

    def bad(indices: np.ndarray, message) -> None:
        for i in np.flatnonzero(indices):
            problems.append(
                Problem(source, f"result {i}", message(int(i)) if callable(message) else message)
            )

    # map(attrgetter) keeps these per-record passes in C
    img = np.fromiter(map(attrgetter("image_id"), records), dtype=np.int64, count=n)
    cat = np.fromiter(map(attrgetter("category_id"), records), dtype=np.int64, count=n)
    score = np.fromiter(map(attrgetter("score"), records), dtype=np.float64, count=n)
    pos = np.searchsorted(image_ids, img)
    pos_c = np.minimum(pos, len(image_ids) - 1) if len(image_ids) else np.zeros(n, np.int64)
    known_img = (
        (len(image_ids) > 0) & (image_ids[pos_c] == img) if len(image_ids) else np.zeros(n, bool)
    )
    bad(~known_img, lambda i: f"image id {img[i]} is not in the ground truth")
    known_cat = np.isin(cat, np.asarray(ontology.category_ids))
    bad(~known_cat, lambda i: f"unknown category id {cat[i]} (Fashionpedia ids are 0..45)")
    bad(~np.isfinite(score), "score must be a finite number")

    bboxes = list(map(attrgetter("bbox"), records))
    seg_fields = list(map(attrgetter("segmentation"), records))
    has_box = np.fromiter(map(is_not, bboxes, repeat(None)), dtype=bool, count=n)
    has_seg = np.fromiter(map(is_not, seg_fields, repeat(None)), dtype=bool, count=n)
    if iou_type == "bbox":
        bad(~has_box, "missing 'bbox' (needed for bbox evaluation)")
    if iou_type == "segm":
        bad(~has_seg, "missing 'segmentation' (needed for segm evaluation)")
    if has_box.any() and not has_box.all():
        first = int(np.flatnonzero(has_box != has_box[0])[0])
        problems.append(
            Problem(
                source,
                f"result {first}",
                "some results carry 'bbox' and others do not; give it for all or none",
            )
        )
    boxes = None
    if has_box.all():
        lens = np.fromiter(map(len, bboxes), dtype=np.int64, count=n)
        bad(lens != 4, "bbox must be [x, y, width, height]")
        four = bboxes if (lens == 4).all() else [b if len(b) == 4 else [0.0] * 4 for b in bboxes]
        boxes = np.fromiter(chain.from_iterable(four), dtype=np.float64, count=4 * n).reshape(n, 4)
        bad(
            ~np.isfinite(boxes).all(1) | (boxes[:, 2] < 0) | (boxes[:, 3] < 0),
            "bbox values must be finite with width, height >= 0",
        )

    # attributes: ragged ids → contiguous indices
    lut = attribute_index_lookup(ontology)
    att_lists = list(map(attrgetter("attribute_ids"), records))
    n_att = np.fromiter(map(len, att_lists), dtype=np.int64, count=n)
    offsets = np.concatenate([[0], np.cumsum(n_att)])
    att_ids = np.fromiter(chain.from_iterable(att_lists), dtype=np.int64, count=int(offsets[-1]))
    in_range = (att_ids >= 0) & (att_ids < len(lut))
    att_index = np.where(in_range, lut[np.where(in_range, att_ids, 0)], -1)
    att_owner = np.repeat(np.arange(n), n_att)
    bad_att = np.bincount(att_owner, weights=att_index < 0, minlength=n) > 0
    bad(
        bad_att,
        lambda i: (
            f"unknown attribute id(s) {[a for a in records[i].attribute_ids if not (0 <= a < len(lut) and lut[a] >= 0)]}"
        ),
    )
    score_lists = list(map(attrgetter("attribute_scores"), records))
    has_ascores = np.fromiter(map(is_not, score_lists, repeat(None)), dtype=bool, count=n)
    attr_scores = None
    if has_ascores.any():
        lens = np.fromiter((len(v or ()) for v in score_lists), dtype=np.int64, count=n)
        bad(has_ascores & (lens != n_att), "attribute_scores must have one score per attribute id")
        bad(~has_ascores, "attribute_scores given for some results only; give them for all or none")
        if has_ascores.all() and (lens == n_att).all():
            attr_scores = np.fromiter(
                chain.from_iterable(score_lists), dtype=np.float64, count=int(offsets[-1])
            )
            bad(
                np.bincount(att_owner, weights=~np.isfinite(attr_scores), minlength=n) > 0,
                "attribute scores must be finite",
            )

    # segmentations
    segs: list[Any] | None = None
    if has_seg.all():
        h = heights[pos_c]
        w = widths[pos_c]
        segs = []
        fast = all(map(isinstance, seg_fields, repeat(_RLE)))
        counts: list[Any] = list(map(attrgetter("counts"), seg_fields)) if fast else []
        fast = fast and all(map(isinstance, counts, repeat(str)))
        hl, wl = h.tolist(), w.tolist()  # plain ints: numpy scalars are slow one by one
        if fast:  # the usual case, compressed RLE everywhere: checked in bulk
            sizes = np.fromiter(
                chain.from_iterable(map(attrgetter("size"), seg_fields)),
                dtype=np.int64,
                count=2 * n,
            ).reshape(n, 2)
            size_ok = ~known_img | ((sizes[:, 0] == h) & (sizes[:, 1] == w))
            bad(
                ~size_ok,
                lambda i: (
                    f"RLE size {sizes[i].tolist()} disagrees with the image size [{h[i]}, {w[i]}]"
                ),
            )
            checked = size_ok & known_img
            strings = (
                list(enumerate(counts))
                if checked.all()
                else [(i, counts[i]) for i in np.flatnonzero(checked).tolist()]
            )
            found = compressed_rle_problems(strings, hl, wl, allow_empty=True)
            segs = [
                {"size": [hh, ww], "counts": c} for c, hh, ww in zip(counts, hl, wl, strict=True)
            ]
        else:
            items: list[tuple[int, Any]] = []
            for i, r in enumerate(records):
                seg = r.segmentation
                if isinstance(seg, _RLE):
                    as_dict = {"size": list(seg.size), "counts": seg.counts}
                    if known_img[i]:
                        items.append((i, as_dict))
                    if isinstance(seg.counts, str):
                        segs.append({"size": [hl[i], wl[i]], "counts": seg.counts})
                    else:
                        segs.append(seg.counts)  # uncompressed: converted below
                else:
                    if known_img[i]:
                        items.append((i, seg))
                    segs.append(seg)
            found = _segmentation_problems(items, hl, wl)
        problems.extend(Problem(source, f"result {i}", m) for i, m in sorted(found.items()))
    elif has_seg.any() and iou_type != "bbox":
        first = int(np.flatnonzero(~has_seg)[0])
        problems.append(
            Problem(
                source, f"result {first}", "some results carry 'segmentation' and others do not"
            )
        )
    if not has_box.any() and not has_seg.any():
        problems.append(
            Problem(source, "result 0", "results need 'bbox' or 'segmentation' (or both)")
        )
    if problems:
        raise InvalidDataError(problems)

    if segs is not None:
        h = heights[pos_c]
        w = widths[pos_c]
        for i, item in enumerate(list(segs)):
            if isinstance(item, list):
                hh, ww = int(h[i]), int(w[i])
                if item and isinstance(item[0], list):  # polygons
                    segs[i] = mask_utils.merge(mask_utils.frPyObjects(item, hh, ww))
                else:  # uncompressed RLE counts
                    segs[i] = mask_utils.frPyObjects({"size": [hh, ww], "counts": item}, hh, ww)
    if boxes is not None:
        # The official loader (pycocotools' loadRes) takes the box area whenever boxes are given.
        areas = boxes[:, 2] * boxes[:, 3]
    else:
        assert segs is not None  # results with neither were refused above
        areas = rle_areas(segs).astype(np.float64)
        boxes = np.asarray(mask_utils.toBbox(segs), dtype=np.float64).reshape(-1, 4)
    return {
        "image_index": pos_c.astype(np.int64),
        "category_ids": cat,
        "scores": score,
        "boxes": boxes,
        "segmentations": segs,
        "areas": areas,
        "attributes": pack_attributes(offsets, att_index, n, num_attributes),
        "attr_offsets": offsets.astype(np.int64),
        "attr_index": att_index,
        "attr_scores": attr_scores,
        "order": np.arange(n),
    }


def _integer(record: Any, key: str) -> int:
    """``record[key]`` as an int64, or ``ValueError`` naming what is wrong with it."""
    if key not in record:
        raise ValueError(f"missing {key}")
    value = record[key]
    if not _is_int(value):
        raise ValueError(f"{key} must be an integer, not {value!r}"[:200])
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{key} {value} is out of range")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{what} must be a number, not {value!r}"[:200])
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} {value} is out of range") from None


def validate_gt_records(
    images: Sequence[Any], annotations: Sequence[Any], ontology: Ontology, source: str
) -> dict:
    """Check ground-truth records and return the columns of a
    :class:`~fashionkit.evaluation.records.GroundTruth` (see there)."""
    problems: list[Problem] = []
    by_id: dict[int, tuple[int, int]] = {}
    bad_sizes: set[int] = set()
    for k, im in enumerate(images):
        rid = im.get("id") if isinstance(im, dict) else None
        where = f"image id {rid}" if _is_int(rid) else f"image #{k}"
        try:
            if not isinstance(im, dict):
                raise ValueError("image must be an object")
            iid, hh, ww = _integer(im, "id"), _integer(im, "height"), _integer(im, "width")
        except ValueError as err:
            problems.append(Problem(source, where, f"needs integer id, height, width: {err}"))
            continue
        if hh <= 0 or ww <= 0 or hh * ww > MAX_MASK_PIXELS:
            problems.append(
                Problem(
                    source,
                    where,
                    f"height and width must be positive (at most {MAX_MASK_PIXELS} pixels in "
                    f"all), got {hh}x{ww}",
                )
            )
            bad_sizes.add(iid)
            continue
        if iid in by_id:
            problems.append(Problem(source, where, "duplicate image id"))
        by_id[iid] = (hh, ww)
    image_ids = np.array(sorted(by_id), dtype=np.int64)
    heights = np.array([by_id[i][0] for i in image_ids], dtype=np.int64)
    widths = np.array([by_id[i][1] for i in image_ids], dtype=np.int64)
    lut = attribute_index_lookup(ontology)
    cat_ok = set(ontology.category_ids)
    g = len(annotations)
    ann_ids = np.zeros(g, np.int64)
    img_index = np.zeros(g, np.int64)
    cats = np.zeros(g, np.int64)
    crowd = np.zeros(g, bool)
    areas = np.zeros(g)
    boxes = np.zeros((g, 4))
    segs: list[Any] = []
    att_rows: list[list[int]] = []
    seen: set[int] = set()
    seg_rows: list[tuple[int, Any]] = []
    seg_where: dict[int, str] = {}
    seg_h, seg_w = [0] * g, [0] * g
    for k, a in enumerate(annotations):
        aid = a.get("id") if isinstance(a, dict) else None
        where = f"annotation id {aid}" if _is_int(aid) else f"annotation #{k}"
        segs.append(None)
        att_rows.append([])
        if not isinstance(a, dict):
            problems.append(Problem(source, where, "annotation must be an object"))
            continue
        missing = [key for key in ("id", "image_id", "category_id", "bbox", "area") if key not in a]
        if missing:
            problems.append(Problem(source, where, f"missing {', '.join(missing)}"))
            continue
        try:
            ann_ids[k] = _integer(a, "id")
            iid = _integer(a, "image_id")
            cats[k] = _integer(a, "category_id")
            areas[k] = _number(a["area"], "area")
            iscrowd = a.get("iscrowd", 0)
            if not (_is_int(iscrowd) and iscrowd in (0, 1)):
                raise ValueError(f"iscrowd must be 0 or 1, not {iscrowd!r}"[:200])
            crowd[k] = bool(iscrowd)
            if not isinstance(a["bbox"], list):
                raise ValueError("bbox must be a list [x, y, w, h]")
            bb = [_number(v, "bbox value") for v in a["bbox"]]
            ids = a.get("attribute_ids") or []
            if not isinstance(ids, list):
                raise ValueError("attribute_ids must be a list")
        except ValueError as err:
            problems.append(Problem(source, where, f"bad field value ({err})"))
            continue
        if ann_ids[k] in seen:
            problems.append(Problem(source, where, "duplicate annotation id"))
        seen.add(int(ann_ids[k]))
        if iid not in by_id:
            why = "is invalid" if iid in bad_sizes else "is not among the images"
            problems.append(Problem(source, where, f"image id {iid} {why}"))
            continue
        img_index[k] = int(np.searchsorted(image_ids, iid))
        if cats[k] not in cat_ok:
            problems.append(Problem(source, where, f"unknown category id {cats[k]}"))
        if len(bb) != 4 or not all(math.isfinite(v) for v in bb):
            problems.append(Problem(source, where, "bbox must be 4 finite numbers [x, y, w, h]"))
        else:
            boxes[k] = bb
        if not math.isfinite(areas[k]) or areas[k] < 0:
            problems.append(Problem(source, where, "area must be a finite number >= 0"))
        unknown = [v for v in ids if not (_is_int(v) and 0 <= v < len(lut) and lut[v] >= 0)]
        if unknown:
            problems.append(Problem(source, where, f"unknown attribute id(s) {unknown}"[:300]))
        else:
            att_rows[k] = [int(lut[v]) for v in ids]
        seg = a.get("segmentation")
        if seg is not None:
            seg_rows.append((k, seg))
            seg_where[k] = where
        seg_h[k], seg_w[k] = by_id[iid]
        segs[k] = seg
    found = _segmentation_problems(seg_rows, seg_h, seg_w)
    problems.extend(Problem(source, seg_where[k], m) for k, m in sorted(found.items()))
    if problems:
        raise InvalidDataError(problems)
    n_att = np.array([len(r) for r in att_rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_att)])
    flat = np.array([v for r in att_rows for v in r], dtype=np.int64)
    return {
        "image_ids": image_ids,
        "heights": heights,
        "widths": widths,
        "ann_ids": ann_ids,
        "image_index": img_index,
        "category_ids": cats,
        "iscrowd": crowd,
        "areas": areas,
        "boxes": boxes,
        "segmentations": segs,
        "attributes": pack_attributes(offsets, flat, g, ontology.num_attributes),
    }
