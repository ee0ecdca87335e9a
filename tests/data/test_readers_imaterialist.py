"""Kaggle iMaterialist 2019/2020 CSV readers and writer: pixel order, round trips, mapping."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from pycocotools.coco import COCO

from fashionkit.data import InvalidDataError, read_annotations
from fashionkit.data.imaterialist import (
    IMATERIALIST2019_ATTRIBUTES,
    imaterialist2019_mapping,
    write_imaterialist2020,
)
from fashionkit.data.masks import kaggle_decode, kaggle_to_rle, rle_to_kaggle
from fashionkit.ontology import load_ontology

HEADER_2020 = ["ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds"]

# A 3×4 image. Kaggle numbers pixels down the columns: 1..3 is column 0, 4..6 column 1, …
# "2 3" = pixels 2,3,4 = (row1,col0), (row2,col0), (row0,col1); "11 2" = (row1,col3), (row2,col3).
ENCODED = "2 3 11 2"
EXPECTED = np.array(
    [
        [0, 1, 0, 0],
        [1, 0, 0, 1],
        [1, 0, 0, 1],
    ],
    bool,
)


def _write_csv(path, rows, header=HEADER_2020):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _masks_by_key(ann_set):
    """{(kaggle id, category, attrs): mask} — identity of an instance independent of ids."""
    out = {}
    for im in ann_set.images:
        for ann in ann_set.annotations(im.id):
            out[(im.extra["kaggle_id"], ann.category_id, ann.attribute_ids)] = ann_set.mask(ann)
    return out


def test_kaggle_order_is_column_major():
    decoded = kaggle_decode(ENCODED, 3, 4)
    np.testing.assert_array_equal(decoded, EXPECTED)
    # Reading the same runs row-major would give a different mask: the test can tell.
    row_major = np.zeros(12, bool)
    row_major[[1, 2, 3, 10, 11]] = True
    assert not np.array_equal(row_major.reshape(3, 4), EXPECTED)
    from pycocotools import mask as mask_utils

    np.testing.assert_array_equal(mask_utils.decode(kaggle_to_rle(ENCODED, 3, 4)), EXPECTED)
    assert rle_to_kaggle(kaggle_to_rle(ENCODED, 3, 4)) == ENCODED


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9))))
def test_kaggle_rle_round_trip(mask):
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded = rle_to_kaggle(rle)
    np.testing.assert_array_equal(kaggle_decode(encoded, *mask.shape), mask)
    np.testing.assert_array_equal(
        mask_utils.decode(kaggle_to_rle(encoded, *mask.shape)).astype(bool), mask
    )


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("1 2 3", "odd number of values"),
        ("0 2", "start below 1"),
        ("1 0", "run length below 1"),
        ("11 3", "beyond 3x4=12 pixels"),
        ("1 4 3 2", "runs overlap"),
        ("a 2", "must be integers"),
    ],
)
def test_kaggle_encoding_errors(encoded, message):
    with pytest.raises(ValueError, match=message):
        kaggle_to_rle(encoded, 3, 4)


def test_touching_runs_merge():
    assert rle_to_kaggle(kaggle_to_rle("1 2 3 2", 3, 4)) == "1 4"


def _csv_2020(tmp_path):
    m2 = np.zeros((5, 6), bool)
    m2[1:4, 2:5] = True
    m2[2, 3] = False
    from pycocotools import mask as mask_utils

    enc2 = rle_to_kaggle(mask_utils.encode(np.asfortranarray(m2.astype(np.uint8))))
    rows = [
        ["ffee01", ENCODED, 3, 4, 10, "115,136"],
        ["aa0002", enc2, 5, 6, 31, ""],
        ["ffee01", "1 1 12 1", 3, 4, 23, "nan"],
    ]
    return _write_csv(tmp_path / "train.csv", rows), m2


def test_2020_csv_to_fashionpedia_json(tmp_path):
    path, m2 = _csv_2020(tmp_path)
    ann_set, report = read_annotations(path, "imaterialist2020")
    assert not report
    # Image ids follow sorted ImageId; annotation ids follow CSV rows.
    assert [(im.id, im.file_name, im.width, im.height) for im in ann_set.images] == [
        (1, "aa0002.jpg", 6, 5),
        (2, "ffee01.jpg", 4, 3),
    ]
    assert [a.id for a in ann_set.annotations(2)] == [1, 3]
    first = ann_set.annotations(2)[0]
    assert (first.category_id, first.attribute_ids) == (10, (115, 136))
    np.testing.assert_array_equal(ann_set.mask(first), EXPECTED)
    assert first.bbox == (0.0, 0.0, 4.0, 3.0)
    assert first.area == 5.0
    np.testing.assert_array_equal(ann_set.mask(ann_set.annotations(1)[0]), m2)

    out = tmp_path / "out.json"
    ann_set.write(out)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    np.testing.assert_array_equal(coco.annToMask(coco.anns[1]).astype(bool), EXPECTED)
    np.testing.assert_array_equal(coco.annToMask(coco.anns[2]).astype(bool), m2)
    assert coco.imgs[2]["kaggle_id"] == "ffee01"


def test_csv_json_csv_round_trip_is_pixel_exact(tmp_path):
    path, _ = _csv_2020(tmp_path)
    first, _ = read_annotations(path, "imaterialist2020")
    json_path = tmp_path / "fp.json"
    first.write(json_path)
    from_json, _ = read_annotations(json_path)
    csv_dir = tmp_path / "again"
    csv_dir.mkdir()
    write_imaterialist2020(from_json, csv_dir / "train.csv")
    second, _ = read_annotations(csv_dir / "train.csv", "imaterialist2020")
    a, b = _masks_by_key(first), _masks_by_key(second)
    assert a.keys() == b.keys() and len(a) == 3
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    rows = list(csv.reader((csv_dir / "train.csv").open()))
    assert rows[0] == HEADER_2020
    assert ["ffee01", ENCODED, "3", "4", "10", "115,136"] in rows


def test_image_ids_do_not_depend_on_row_order(tmp_path):
    path, _ = _csv_2020(tmp_path)
    rows = list(csv.reader(path.open()))
    shuffled = _write_csv(tmp_path / "shuffled.csv", rows[:0:-1])
    a, _ = read_annotations(path, "imaterialist2020")
    b, _ = read_annotations(shuffled, "imaterialist2020")
    assert list(a.images) == list(b.images)


def test_csv_errors_name_the_line(tmp_path):
    rows = [
        ["img1", ENCODED, 3, 4, 10, ""],
        ["img1", "1 2 3", 3, 4, 10, ""],  # line 3: odd count
        ["img1", ENCODED, 3, 4, 99, ""],  # line 4: unknown category
        ["img1", ENCODED, 3, 4, 10, "5,999"],  # line 5: unknown attribute
        ["img1", ENCODED, 4, 4, 10, ""],  # line 6: size disagrees with line 2
        ["img2", "", 3, 4, 10, ""],  # line 7: empty mask
        ["img2", ENCODED, "x", 4, 10, ""],  # line 8: bad Height
        ["img2", ENCODED, 3, 4, 2**40, ""],  # line 9: out of range
        ["img2", ENCODED, 3, 4, 10, ""],  # line 10: fine, annotation id 9
    ]
    path = _write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(InvalidDataError) as err:
        read_annotations(path, "imaterialist2020")
    text = str(err.value)
    assert f"{path}: line 3: EncodedPixels has an odd number of values (3)" in text
    assert f"{path}: line 4: unknown category id 99" in text
    assert f"{path}: line 5: unknown attribute id(s) [999]" in text
    assert f"{path}: line 6: Height/Width 4/4 disagree with line 2 (3/4) for image img1" in text
    line7 = [p.message for p in err.value.problems if p.where == "line 7"]
    assert len(line7) == 1 and line7[0].endswith("RLE has no foreground pixel (empty mask)")
    assert f"{path}: line 8: Height 'x' is not an integer" in text
    assert f"{path}: line 9: ClassId 1099511627776 is out of range" in text
    assert len(err.value.problems) == 7

    ann_set, report = read_annotations(path, "imaterialist2020", on_invalid="skip")
    assert [a.id for a in ann_set.iter_annotations()] == [1, 9]
    assert [p.where for p in report.problems] == [f"line {n}" for n in range(3, 10)]
    assert report.problems == err.value.problems


def test_bad_header(tmp_path):
    path = _write_csv(tmp_path / "train.csv", [], header=["ImageId", "Pixels"])
    with pytest.raises(InvalidDataError, match="line 1: header must start with ImageId"):
        read_annotations(path, "imaterialist2020")


def test_images_beside_csv_are_checked(tmp_path):
    path, _ = _csv_2020(tmp_path)
    (tmp_path / "train").mkdir()
    Image.new("RGB", (4, 3)).save(tmp_path / "train" / "ffee01.jpg")
    with pytest.raises(InvalidDataError) as err:
        read_annotations(path, "imaterialist2020")
    assert "image aa0002: image file" in str(err.value)
    assert "aa0002.jpg is missing" in str(err.value)
    Image.new("RGB", (7, 5)).save(tmp_path / "train" / "aa0002.jpg")
    ann_set, report = read_annotations(path, "imaterialist2020")
    assert not report.problems
    assert [n.where for n in report.notices] == ["image aa0002"]
    assert "is 7x5 but the annotations say 6x5" in report.notices[0].message


def test_label_descriptions_beside_csv(tmp_path):
    path, _ = _csv_2020(tmp_path)
    ont = load_ontology()
    labels = {"categories": ont.categories_json(), "attributes": ont.attributes_json()}
    (tmp_path / "label_descriptions.json").write_text(json.dumps(labels))
    ann_set, _ = read_annotations(path, "imaterialist2020")
    assert ann_set.ontology is ont  # agreeing label file: exactly the built-in ontology
    labels["categories"] = labels["categories"][:20]  # a file that knows fewer classes
    (tmp_path / "label_descriptions.json").write_text(json.dumps(labels))
    with pytest.raises(InvalidDataError, match="line 3: unknown category id 31"):
        read_annotations(path, "imaterialist2020")


def test_2019_mapping_covers_published_names():
    cat_map, att_map, unmapped = imaterialist2019_mapping()
    assert len(IMATERIALIST2019_ATTRIBUTES) == 92
    assert unmapped == {"categories": [], "attributes": []}
    assert cat_map == {i: i for i in range(46)}
    ont = load_ontology()
    for i, fp_id in att_map.items():
        assert ont.attribute(fp_id).name == IMATERIALIST2019_ATTRIBUTES[i]


def test_2019_csv(tmp_path):
    rows = [
        ["ffee01.jpg", ENCODED, 3, 4, "10_95"],  # 95 is out of the 2019 range
        ["ffee01.jpg", ENCODED, 3, 4, "1_0_8"],
        ["ffee01.jpg", ENCODED, 3, 4, "46"],
    ]
    path = _write_csv(tmp_path / "train.csv", rows, header=HEADER_2020[:5])
    ann_set, report = read_annotations(path, "imaterialist2019", on_invalid="skip")
    assert [im.file_name for im in ann_set.images] == ["ffee01.jpg"]
    assert ann_set.images[0].extra["kaggle_id"] == "ffee01"
    got = [(a.id, a.category_id, a.attribute_ids) for a in ann_set.annotations(1)]
    assert got == [(1, 10, ()), (2, 1, (0, 8))]
    assert [(p.where, p.message) for p in report.problems] == [
        ("line 4", "ClassId category 46 has no Fashionpedia category")
    ]
    assert [p.where for p in report.notices] == ["line 2"]
    assert "2019 attribute 95 has no Fashionpedia attribute" in report.notices[0].message


def test_2019_label_file_with_unmapped_names(tmp_path):
    rows = [["ffee01.jpg", ENCODED, 3, 4, "10_0_1"]]
    path = _write_csv(tmp_path / "train.csv", rows, header=HEADER_2020[:5])
    ont = load_ontology()
    labels = {
        "categories": [{"id": c.id, "name": c.name} for c in ont.categories],
        "attributes": [{"id": 0, "name": "classic (t-shirt)"}, {"id": 1, "name": "moonwalk"}],
    }
    (tmp_path / "label_descriptions.json").write_text(json.dumps(labels))
    ann_set, report = read_annotations(path, "imaterialist2019")
    assert ann_set.annotations(1)[0].attribute_ids == (0,)
    messages = [str(p) for p in report.notices]
    assert any("line 2" in m and "2019 attribute 1 has no Fashionpedia" in m for m in messages)
    assert any("not mapped to Fashionpedia: 1 moonwalk" in m for m in messages)


def test_rle_areas_beyond_pycocotools_uint8_limit():
    from pycocotools import mask as mask_utils

    from fashionkit.data.masks import rle_areas

    rles = [
        mask_utils.encode(np.asfortranarray(np.eye(5, k=k % 3, dtype=np.uint8))) for k in range(600)
    ]
    expected = [int(mask_utils.area(r)) for r in rles]
    assert rle_areas(rles).tolist() == expected


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        arrays(np.bool_, st.tuples(st.integers(2, 7), st.integers(2, 7))).filter(np.any),
        min_size=1,
        max_size=4,
    )
)
def test_set_to_csv_to_set_is_pixel_exact(tmp_path_factory, masks):
    """Any non-empty masks: AnnotationSet → Kaggle CSV → AnnotationSet → JSON → pycocotools."""
    from pycocotools import mask as mask_utils

    from fashionkit.data import Annotation, AnnotationSet, ImageInfo

    images, anns = [], []
    for i, m in enumerate(masks, start=1):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        box = tuple(float(v) for v in mask_utils.toBbox(rle))
        images.append(ImageInfo(i, f"im{i:02d}.jpg", m.shape[1], m.shape[0]))
        anns.append(Annotation(i, i, i % 46, box, float(m.sum()), rle, 0, (i,)))
    folder = tmp_path_factory.mktemp("csv")
    write_imaterialist2020(AnnotationSet(images, anns), folder / "train.csv")
    back, report = read_annotations(folder / "train.csv", "imaterialist2020")
    assert not report
    back.write(folder / "fp.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(folder / "fp.json"))
    for i, m in enumerate(masks, start=1):
        [ann] = back.annotations(i)
        assert (ann.category_id, ann.attribute_ids) == (i % 46, (i,))
        np.testing.assert_array_equal(back.mask(ann), m)
        np.testing.assert_array_equal(coco.annToMask(coco.anns[ann.id]).astype(bool), m)


def test_csv_with_byte_order_mark(tmp_path):
    path, _ = _csv_2020(tmp_path)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    a, _ = read_annotations(path, "imaterialist2020")
    b, _ = read_annotations(bom, "imaterialist2020")
    assert list(a.images) == list(b.images)
    assert list(a.iter_annotations()) == list(b.iter_annotations())


# -- crashes found by fuzzing (tests/data/test_fuzz_readers.py) ----------------------------


def test_rows_that_crashed_the_reader_are_reported_by_line(tmp_path):
    long_runs = " ".join(f"{1 + 2 * k} 1" for k in range(12_000))  # > 128 KiB: csv's default limit
    rows = [
        ["img1", ENCODED, 3, 4, 10, ""],
        ["img1", "9223372036854775807 9223372036854775807", 3, 4, 10, ""],  # line 3: overflow
        ["img2", "1 1", 70_000, 70_000, 10, ""],  # line 4: more pixels than COCO RLE holds
        ["img3", long_runs, 200, 200, 10, ""],  # line 5: a long field, fine
    ]
    path = _write_csv(tmp_path / "train.csv", rows)
    # line 6: a byte that is not UTF-8 spoils its row only
    path.write_bytes(path.read_bytes() + b"img\xff4,1 1,3,4,10,\r\n")
    ann_set, report = read_annotations(path, "imaterialist2020", on_invalid="skip")
    got = {p.where: p.message for p in report.problems}
    assert list(got) == ["line 3", "line 4", "line 6"]
    assert got["line 3"] == ("EncodedPixels run ends at pixel 18446744073709551613 beyond "
                             "3x4=12 pixels")
    assert got["line 4"].startswith("image size 70000x70000 cannot hold a COCO RLE mask")
    assert got["line 6"] == "holds bytes that are not UTF-8 text"
    assert [a.id for a in ann_set.iter_annotations()] == [1, 4]
    assert ann_set.annotation_at(1).area == 12_000


@pytest.mark.parametrize(("content", "message"), [
    (b'{"categories": [{"id": 0, "name": "\xff"}]}', "not a label_descriptions file"),
    (b'{"categories": [{"id": 0, "name": "a", "level": "x"}]}', "Expected `int | null`"),
    (b'{"categories": [{"id": true, "name": "a"}]}', "Expected `int`, got `bool`"),
    (b'{"categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}',
     "category id 1: appears more than once"),
    (b'{"categories": [{"id": 1000000000000000000, "name": "a"}]}', "Expected `int` <= 100000"),
])
@pytest.mark.parametrize("version", [2020, 2019])
def test_damaged_label_file_is_a_clear_error(tmp_path, content, message, version):
    path, _ = _csv_2020(tmp_path)
    (tmp_path / "label_descriptions.json").write_bytes(content)
    with pytest.raises(InvalidDataError, match="label_descriptions.json") as err:
        read_annotations(path, f"imaterialist{version}")
    assert message in str(err.value)
