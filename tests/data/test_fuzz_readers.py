"""Property-based fuzzing of every annotation reader: Fashionpedia and COCO JSON, Kaggle
iMaterialist 2019/2020 CSV, and the segmentation checks (polygons, compressed and uncompressed
RLE, Kaggle ``EncodedPixels``).

Each case must end in a result or an :class:`InvalidDataError` whose problems name the file
and the record, never in another exception; nothing is dropped silently (records in = records
out + records reported, under ``on_invalid="skip"``); ``"raise"`` raises exactly when
``"skip"`` reports; and what a reader returns is usable: every mask decodes to a non-empty
mask of its image's size, and the set writes and reads back without a problem.

The default suite runs a few hundred cases per reader; ``-m slow`` runs 10,000 (see
:mod:`tests.fuzzing`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from fashionkit.data import InvalidDataError, read_annotations
from fashionkit.data.fashionpedia import read_fashionpedia
from fashionkit.data.masks import decode_rle, kaggle_to_rle, rle_areas, rle_to_kaggle
from fashionkit.data.segmentation_checks import check_segmentation
from fashionkit.errors import Problem
from fashionkit.ontology import load_ontology
from tests.fuzzing import (
    BYTE_DAMAGE,
    CASES,
    MUTATIONS,
    ODD,
    box_of,
    compressed_rle,
    damage,
    dumps,
    focused,
    mutate,
    polygon_of,
    random_mask,
    run_fuzz,
    segmentation,
    uncompressed_rle,
)

ONTOLOGY = load_ontology()
CATEGORY_IDS = list(ONTOLOGY.category_ids)
ATTRIBUTE_IDS = list(ONTOLOGY.attribute_ids)
# Masks are decoded to check them only up to this size (a valid record may name a large image).
DECODE_LIMIT = 1 << 22


# -- documents ---------------------------------------------------------------------------


def instances_doc(seed: int, coco: bool = False) -> dict:
    """A valid Fashionpedia (or, with ``coco``, plain COCO) instances document."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(int(rng.integers(1, 4))):
        images.append({"id": i + 1, "file_name": f"im{i + 1}.jpg",
                       "width": int(rng.integers(1, 40)), "height": int(rng.integers(1, 40)),
                       "license": 1})
    if coco:
        cats = rng.choice(CATEGORY_IDS, size=4, replace=False).tolist()
        categories = [{"id": 100 + k, "name": ONTOLOGY.category(c).name.split(",")[0],
                       "supercategory": "x"} for k, c in enumerate(cats)]
    else:
        categories = [{"id": c, "name": ONTOLOGY.category(c).name} for c in CATEGORY_IDS[:6]]
    annotations = []
    for k in range(int(rng.integers(0, 7))):
        im = images[int(rng.integers(0, len(images)))]
        mask = random_mask(rng, im["height"], im["width"])
        annotations.append({
            "id": k + 1,
            "image_id": im["id"],
            "category_id": (categories[int(rng.integers(0, len(categories)))]["id"] if coco
                            else int(rng.choice(CATEGORY_IDS))),
            "segmentation": segmentation(rng, mask),
            "bbox": box_of(mask),
            "area": float(mask.sum()),
            "iscrowd": 0,
            "attribute_ids": sorted(rng.choice(ATTRIBUTE_IDS, int(rng.integers(0, 3)),
                                               replace=False).tolist()),
        })
    return {"info": {"description": "fuzz"}, "licenses": [{"id": 1, "name": "x"}],
            "images": images, "annotations": annotations, "categories": categories}


def _counts(doc: Any) -> tuple[int | None, int | None]:
    """Image and annotation records in a (mutated) document, where it still has lists."""
    if not isinstance(doc, dict):
        return None, None
    images, anns = doc.get("images"), doc.get("annotations")
    return (len(images) if isinstance(images, list) else None,
            len(anns) if isinstance(anns, list) else None)


@st.composite
def instances_files(draw, coco: bool = False):
    """``(bytes, images in, annotations in)``; the counts are ``None`` when unknown."""
    doc = instances_doc(draw(st.integers(0, 2**32 - 1)), coco)
    kind = draw(st.integers(0, 9))
    if kind <= 6:
        mutated = mutate(doc, draw(focused(MUTATIONS, list(doc).index("annotations"))))
        return (dumps(mutated), *_counts(mutated))
    if kind <= 8:
        return damage(dumps(doc), draw(BYTE_DAMAGE)), None, None
    return draw(st.binary(max_size=200)), None, None


# -- the properties ----------------------------------------------------------------------


def _assert_clear(err: InvalidDataError, sources: set[str]) -> None:
    assert err.problems
    for p in err.problems:
        assert isinstance(p, Problem)
        assert p.source in sources, p
        assert p.where and p.message, p
    str(err)  # the message renders


def _reported(problems: list[Problem], kind: str) -> int:
    return sum(p.where.startswith(kind) for p in problems)


def _assert_usable(ann_set, out: Path, fmt: str) -> None:
    """Every kept record is what the checks promise, and the set survives a round trip."""
    ontology = ann_set.ontology
    for ann in ann_set.iter_annotations():
        im = ann_set.image(ann.image_id)
        assert 0 < im.width and 0 < im.height
        assert ontology.has_category(ann.category_id)
        assert all(ontology.has_attribute(a) for a in ann.attribute_ids)
        assert np.isfinite(ann.bbox).all() and ann.bbox[2] > 0 and ann.bbox[3] > 0
        assert np.isfinite(ann.area) and ann.area >= 0
        rle = ann_set.rle(ann)
        assert [int(v) for v in rle["size"]] == [im.height, im.width]
        area = int(rle_areas([rle])[0])
        assert area > 0, ann
        if im.height * im.width <= DECODE_LIMIT:
            mask = decode_rle(rle)
            assert mask.shape == (im.height, im.width) and int(mask.sum()) == area
    ann_set.write(out)
    # A Kaggle label file may name its own categories: read back in that ontology.
    again, report = read_fashionpedia(out, ontology=ontology)
    assert not report.problems
    assert again.num_annotations == ann_set.num_annotations
    assert len(again.images) == len(ann_set.images)


def check_reader(path: Path, fmt: str, n_images: int | None, n_anns: int | None,
                 sources: set[str] | None = None) -> None:
    """The reader's contract on one input file (see the module docstring)."""
    sources = sources or {str(path)}
    try:
        ann_set, report = read_annotations(path, fmt, on_invalid="skip")
    except InvalidDataError as err:  # the file as a whole is unusable
        _assert_clear(err, sources)
        with pytest.raises(InvalidDataError):
            read_annotations(path, fmt, on_invalid="raise")
        return
    for p in report.problems:
        assert p.source in sources and p.where and p.message, p
    kinds = ("line",) if fmt.startswith("imaterialist") else ("annotation",)
    if n_anns is not None:
        reported = sum(_reported(report.problems, k) for k in kinds)
        assert n_anns == ann_set.num_annotations + reported, report.problems
    if n_images is not None:
        assert n_images == len(ann_set.images) + _reported(report.problems, "image")
    if report.problems:
        with pytest.raises(InvalidDataError) as raised:
            read_annotations(path, fmt, on_invalid="raise")
        assert raised.value.problems == report.problems
    else:
        strict, _ = read_annotations(path, fmt, on_invalid="raise")
        assert strict.num_annotations == ann_set.num_annotations
    _assert_usable(ann_set, path.with_name("round-trip.json"), fmt)


# -- JSON readers ------------------------------------------------------------------------


@pytest.mark.parametrize("cases", CASES)
@pytest.mark.parametrize("fmt", ["fashionpedia", "coco"])
def test_json_readers_end_in_a_result_or_a_clear_error(tmp_path, fmt, cases):
    path = tmp_path / "instances.json"

    def check(case: tuple[bytes, int | None, int | None]) -> None:
        data, n_images, n_anns = case
        path.write_bytes(data)
        check_reader(path, fmt, n_images, n_anns)

    run_fuzz(check, instances_files(coco=fmt == "coco"), cases)


# -- Kaggle CSV readers ------------------------------------------------------------------

HEADER_2020 = ["ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds"]
HEADER_2019 = HEADER_2020[:5]


def csv_rows(seed: int, version: int) -> list[list[str]]:
    """Valid data rows of a Kaggle ``train.csv`` (a few images, a few masks each)."""
    rng = np.random.default_rng(seed)
    sizes = {f"{seed % 997:03x}{i}": (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
             for i in range(int(rng.integers(1, 4)))}
    rows = []
    for _ in range(int(rng.integers(0, 6))):
        kid = list(sizes)[int(rng.integers(0, len(sizes)))]
        h, w = sizes[kid]
        encoded = rle_to_kaggle(compressed_rle(random_mask(rng, h, w)))
        if version == 2020:
            attrs = ",".join(str(a) for a in rng.choice(ATTRIBUTE_IDS, int(rng.integers(0, 3)),
                                                        replace=False).tolist())
            rows.append([kid, encoded, str(h), str(w), str(int(rng.integers(0, 46))), attrs])
        else:
            class_id = "_".join(str(v) for v in [int(rng.integers(0, 46)),
                                                 *rng.integers(0, 92, int(rng.integers(0, 3)))])
            rows.append([f"{kid}.jpg", encoded, str(h), str(w), class_id])
    return rows


# Field values that CSV data gets wrong: numbers in other notations, runs that overlap, go past
# the image or overflow, separators in the wrong place, other encodings of digits.
ODD_FIELDS = st.sampled_from([
    "", " ", "nan", "NaN", "-1", "0", "1.5", "1e3", "0x10", "１２", "+3", "2147483648",
    "9223372036854775807", "99999999999999999999", "1 1", "1 2 3", "1 0", "0 1", "5 3 1 2",
    "1 9223372036854775807", "9223372036854775807 9223372036854775807", "3 2 4 1", "1,2",
    "1_2", "6_", "_6", "6__7", "6_999", "45_91_-1", "ü", "\x00", "a\nb", '"', "1\t2", "\ufeff1",
    "70000", "65536",
]) | st.text(max_size=12)

# (operation, row, column, value)
CSV_EDITS = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 50), st.integers(0, 7), ODD_FIELDS),
    max_size=4,
)


def edit_rows(rows: list[list[str]], header: list[str], edits) -> tuple[list[str], list[list[str]]]:
    header, rows = list(header), [list(r) for r in rows]
    for op, r, c, value in edits:
        if op == 9:  # edit the header
            header[c % len(header)] = value
            continue
        if not rows:
            rows.append([value])
            continue
        row = rows[r % len(rows)]
        if op == 0:  # replace a field
            row[c % len(row)] = value
        elif op == 1:  # drop a field
            if len(row) > 1:
                del row[c % len(row)]
        elif op == 2:  # add a field
            row.insert(c % (len(row) + 1), value)
        elif op == 3:  # duplicate the row
            rows.insert(r % len(rows), list(row))
        else:  # nudge the last number of a field (EncodedPixels: overlaps, runs past the end)
            field = row[c % len(row)]
            tokens = field.split()
            if tokens and re.fullmatch(r"-?[0-9]+", tokens[-1]):
                tokens[-1] = str(int(tokens[-1]) + (1 if c % 2 else -1))
                row[c % len(row)] = " ".join(tokens)
    return header, rows


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def csv_files(draw, version: int):
    """``(bytes, data rows in or None)``."""
    rows = csv_rows(draw(st.integers(0, 2**32 - 1)), version)
    header = HEADER_2020 if version == 2020 else HEADER_2019
    kind = draw(st.integers(0, 9))
    if kind <= 6:
        header, rows = edit_rows(rows, header, draw(CSV_EDITS))
        return csv_text(header, rows).encode("utf-8", "surrogatepass"), len(rows)
    if kind <= 8:
        return damage(csv_text(header, rows).encode(), draw(BYTE_DAMAGE)), None
    return draw(st.binary(max_size=200)), None


@pytest.mark.parametrize("cases", CASES)
@pytest.mark.parametrize("version", [2020, 2019])
def test_csv_readers_end_in_a_result_or_a_clear_error(tmp_path, version, cases):
    path = tmp_path / "train.csv"

    def check(case: tuple[bytes, int | None]) -> None:
        data, n_rows = case
        path.write_bytes(data)
        check_reader(path, f"imaterialist{version}", None, n_rows)

    run_fuzz(check, csv_files(version), cases)


@st.composite
def label_files(draw):
    """A ``label_descriptions.json`` beside the CSV: the built-in names, then mutated."""
    doc = {"categories": [{"id": c.id, "name": c.name, "supercategory": c.supercategory,
                           "level": c.level} for c in ONTOLOGY.categories[:8]],
           "attributes": [{"id": a.id, "name": a.name, "supercategory": a.supercategory,
                           "level": a.level} for a in ONTOLOGY.attributes[:8]]}
    if draw(st.integers(0, 4)) == 0:
        return damage(dumps(doc), draw(BYTE_DAMAGE))
    return dumps(mutate(doc, draw(MUTATIONS)))


@pytest.mark.parametrize("cases", CASES)
@pytest.mark.parametrize("version", [2020, 2019])
def test_csv_readers_with_a_damaged_label_file(tmp_path, version, cases):
    path = tmp_path / "train.csv"
    labels = tmp_path / "label_descriptions.json"
    rows = csv_rows(1, version)
    path.write_text(csv_text(HEADER_2020 if version == 2020 else HEADER_2019, rows))

    def check(data: bytes) -> None:
        labels.write_bytes(data)
        check_reader(path, f"imaterialist{version}", None, len(rows),
                     sources={str(path), str(labels), "label_descriptions.json",
                              "built-in 2019 names"})

    run_fuzz(check, label_files(), cases)


# -- segmentations and EncodedPixels, one at a time ----------------------------------------


@st.composite
def segmentations(draw):
    """``(segmentation, height, width)``: a valid one for its size, then mutated; or odd."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    mask = random_mask(rng, h, w)
    kind = draw(st.integers(0, 4))
    seg: Any = [polygon_of(rng, mask), compressed_rle(mask), uncompressed_rle(mask)][kind % 3]
    if kind == 3:
        seg = draw(ODD)
    seg = mutate({"s": seg}, draw(MUTATIONS)).get("s")
    if draw(st.booleans()):  # through JSON, as readers see it (tuples → lists, tokens parsed)
        try:
            seg = json.loads(dumps({"s": seg}))["s"]
        except ValueError:
            seg = None
    size = draw(st.sampled_from([(h, w), (h, w), (h + 1, w), (0, w), (-h, w), (65536, 65536)]))
    return seg, *size


@pytest.mark.parametrize("cases", CASES)
def test_segmentation_check_accepts_only_what_decodes(cases):
    def check(case) -> None:
        seg, h, w = case
        message = check_segmentation(seg, h, w)
        if message is not None:
            assert isinstance(message, str) and message
            return
        from fashionkit.data.masks import segmentation_to_rle

        rle = segmentation_to_rle(seg, h, w)
        area = int(rle_areas([rle])[0])
        assert area > 0 and [int(v) for v in rle["size"]] == [h, w]
        if h * w <= DECODE_LIMIT:
            assert int(decode_rle(rle).sum()) == area

    run_fuzz(check, segmentations(), cases)


@pytest.mark.parametrize("cases", CASES)
def test_encoded_pixels_parse_or_raise_value_error(cases):
    def check(case) -> None:
        text, h, w = case
        try:
            rle = kaggle_to_rle(text, h, w)
        except ValueError as err:
            assert str(err)
            return
        assert [int(v) for v in rle["size"]] == [h, w]
        if h * w <= DECODE_LIMIT:  # the runs survive a round trip through a mask
            encoded = rle_to_kaggle(rle)
            assert rle_to_kaggle(kaggle_to_rle(encoded, h, w)) == encoded

    texts = ODD_FIELDS | st.lists(st.integers(-3, 2**64), max_size=6).map(
        lambda v: " ".join(map(str, v)))
    sides = st.integers(1, 40) | st.sampled_from([65535, 65536, 70000, 2**31 - 1])
    run_fuzz(check, st.tuples(texts, sides, sides), cases)
