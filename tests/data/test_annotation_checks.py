"""Every validation error: triggered on a hand-built file, its message checked, and skipped
records listed exactly (nothing dropped silently)."""

from __future__ import annotations

import copy
import json

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from readers_helpers import fashionpedia_doc, rle_str, write_json

from fashionkit.data import InvalidDataError, read_annotations
from fashionkit.data.segmentation_checks import check_segmentation, check_segmentations


def _ann(doc, ann_id):
    return next(a for a in doc["annotations"] if a["id"] == ann_id)


def _empty_rle(h, w):
    return rle_str(np.zeros((h, w), bool))


# (name, edit of the good document, where, expected message fragment)
CASES = [
    (
        "unknown category",
        lambda d: _ann(d, 40).update(category_id=46),
        "annotation id 40",
        "unknown category id 46",
    ),
    (
        "unknown attribute",
        lambda d: _ann(d, 6).update(attribute_ids=[160, 341, 93000]),
        "annotation id 6",
        "unknown attribute id(s) [341, 93000]",
    ),
    (
        "polygon with 2 points",
        lambda d: _ann(d, 40).update(segmentation=[[1, 1, 5, 5]]),
        "annotation id 40",
        "polygon 0 has 2 point(s); a polygon needs at least 3",
    ),
    (
        "odd polygon",
        lambda d: _ann(d, 6)["segmentation"][1].append(3),
        "annotation id 6",
        "polygon 1 has an odd number of coordinates (9)",
    ),
    (
        "RLE size",
        lambda d: _ann(d, 41).update(segmentation=rle_str(np.ones((20, 29), bool))),
        "annotation id 41",
        "RLE size [20, 29] disagrees with the image size [20, 30]",
    ),
    (
        "RLE counts",
        lambda d: _ann(d, 42)["segmentation"]["counts"].append(4),
        "annotation id 42",
        "RLE counts cover 604 pixels; the image has 20x30=600",
    ),
    (
        "box outside",
        lambda d: _ann(d, 40).update(bbox=[20.0, 3.0, 12.0, 5.0]),
        "annotation id 40",
        "box [20.0, 3.0, 12.0, 5.0] (XYWH) lies outside the image 30x20",
    ),
    (
        "box negative",
        lambda d: _ann(d, 5).update(bbox=[-2.5, 0.0, 3.0, 3.0]),
        "annotation id 5",
        "lies outside the image 12x16",
    ),
    (
        "box empty",
        lambda d: _ann(d, 5).update(bbox=[1.0, 1.0, 0.0, 3.0]),
        "annotation id 5",
        "box [1.0, 1.0, 0.0, 3.0] has non-positive width or height",
    ),
    (
        "empty compressed RLE",
        lambda d: _ann(d, 41).update(segmentation=_empty_rle(20, 30)),
        "annotation id 41",
        "RLE has no foreground pixel (empty mask)",
    ),
    (
        "empty uncompressed RLE",
        lambda d: _ann(d, 42).update(segmentation={"size": [20, 30], "counts": [600]}),
        "annotation id 42",
        "RLE has no foreground pixel (empty mask)",
    ),
    (
        "degenerate polygon",
        lambda d: _ann(d, 40).update(segmentation=[[1, 1, 5, 5, 9, 9]]),
        "annotation id 40",
        "polygon covers no pixel (empty mask)",
    ),
    (
        "no polygons",
        lambda d: _ann(d, 40).update(segmentation=[]),
        "annotation id 40",
        "segmentation is an empty polygon list (empty mask)",
    ),
    (
        "bad segmentation type",
        lambda d: _ann(d, 40).update(segmentation="M 1 1 L 5 5"),
        "annotation id 40",
        "segmentation must be a polygon list or an RLE object, not str",
    ),
    (
        "duplicate annotation id",
        lambda d: _ann(d, 6).update(id=41),
        "annotation id 41",
        "duplicate annotation id 41",
    ),
    (
        "unknown image",
        lambda d: _ann(d, 6).update(image_id=99),
        "annotation id 6",
        "image id 99 is not among the file's images",
    ),
    (
        "duplicate image id",
        lambda d: d["images"].append(dict(d["images"][2])),
        "image id 11",
        "duplicate image id 11",
    ),
    (
        "image size",
        lambda d: d["images"][2].update(width=0),
        "image id 11",
        "image size 0x8 is not positive",
    ),
    (
        "wrong field type",
        lambda d: _ann(d, 6).update(category_id="neckline"),
        "annotation id 6",
        "Expected `int`, got `str` - at `$.category_id`",
    ),
    # Found by fuzzing (tests/data/test_fuzz_readers.py): each of these passed validation and
    # then decoded to a garbage mask, hung or crashed pycocotools when the mask was asked for.
    (
        "compressed RLE short of the image",
        lambda d: _ann(d, 41).update(
            segmentation={"size": [20, 30], "counts": rle_str(np.ones((20, 29), bool))["counts"]}
        ),
        "annotation id 41",
        "RLE counts cover 580 pixels; the image has 20x30=600",
    ),
    (
        "compressed RLE not a COCO string",
        lambda d: _ann(d, 41).update(segmentation={"size": [20, 30], "counts": "0ÿ"}),
        "annotation id 41",
        "compressed RLE counts are not a valid COCO RLE string",
    ),
    (
        "polygon far outside the image",
        lambda d: _ann(d, 40).update(segmentation=[[0, 0, 1e12, 0, 1e12, 1e12]]),
        "annotation id 40",
        "polygon 0 has point (1e+12, 0) outside the image 30x20",
    ),
    (
        "image too large for COCO masks",
        lambda d: d["images"][2].update(width=70_000, height=70_000),
        "image id 11",
        "image size 70000x70000 is too large for COCO masks",
    ),
]


@pytest.mark.parametrize(("name", "edit", "where", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_error_raises_and_skips_exactly_it(tmp_path, name, edit, where, message):
    doc = fashionpedia_doc()
    edit(doc)
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(InvalidDataError) as err:
        read_annotations(path)
    [problem] = err.value.problems
    assert problem.source == str(path)
    assert problem.where == where
    assert message in problem.message
    assert f"{path}: {where}: " in str(err.value)

    ann_set, report = read_annotations(path, on_invalid="skip")
    assert report.problems == [problem]
    kept_ids = sorted(a.id for a in ann_set.iter_annotations())
    n_anns = len(doc["annotations"])
    n_images = len(doc["images"])
    if where.startswith("annotation"):
        assert ann_set.num_annotations == n_anns - 1
        assert len(ann_set) == n_images
    else:
        assert len(ann_set) == n_images - 1  # image 11 has no annotations
        assert ann_set.num_annotations == n_anns
    assert len(kept_ids) == ann_set.num_annotations
    report_json = report.to_json()
    assert report_json["skipped"] == 1
    assert report_json["problems"][0] == {
        "source": str(path),
        "where": where,
        "message": problem.message,
    }


def test_image_skipped_takes_its_annotations_along(tmp_path):
    doc = fashionpedia_doc()
    (tmp_path / "img").mkdir()
    for im in doc["images"]:
        if im["id"] != 3:
            Image.new("RGB", (im["width"], im["height"])).save(tmp_path / "img" / im["file_name"])
    path = write_json(tmp_path / "fp.json", doc)
    ann_set, report = read_annotations(path, images_dir=tmp_path / "img", on_invalid="skip")
    got = [(p.where, p.message) for p in report.problems]
    assert got[0] == ("image id 3", f"image file {tmp_path / 'img' / 'three.jpg'} is missing")
    assert got[1:] == [
        ("annotation id 5", "its image (id 3) is invalid"),
        ("annotation id 6", "its image (id 3) is invalid"),
    ]
    assert ann_set.image_ids == [7, 11]
    assert ann_set.num_annotations == 3


def test_size_mismatch_with_image_file_is_a_notice(tmp_path):
    doc = fashionpedia_doc()
    (tmp_path / "img").mkdir()
    for im in doc["images"]:
        w = im["width"] + (5 if im["id"] == 7 else 0)
        Image.new("RGB", (w, im["height"])).save(tmp_path / "img" / im["file_name"])
    ann_set, report = read_annotations(
        write_json(tmp_path / "fp.json", doc), images_dir=tmp_path / "img"
    )
    assert not report.problems and ann_set.num_annotations == 5
    [notice] = report.notices
    assert notice.where == "image id 7"
    assert "is 35x20 but the annotations say 30x20" in notice.message


def test_many_problems_are_all_reported(tmp_path):
    doc = fashionpedia_doc()
    for a in doc["annotations"]:
        a["category_id"] = 77
    with pytest.raises(InvalidDataError) as err:
        read_annotations(write_json(tmp_path / "bad.json", doc))
    assert len(err.value.problems) == 5


def test_not_json_and_not_readable(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [')
    with pytest.raises(InvalidDataError, match="broken.json: file: not valid JSON"):
        read_annotations(path)
    with pytest.raises(InvalidDataError, match="missing.json: file: cannot be read"):
        read_annotations(tmp_path / "missing.json")


def test_category_names_must_match_the_ontology(tmp_path):
    doc = fashionpedia_doc()
    doc["categories"][3]["name"] = "poncho"
    with pytest.raises(
        InvalidDataError, match="category id 3: is named 'poncho' here but 'cardigan'"
    ):
        read_annotations(write_json(tmp_path / "fp.json", doc))


_coord = st.floats(-3, 14, allow_nan=False).map(lambda v: round(v, 1))
_polygon = st.lists(_coord, min_size=0, max_size=12)
_segmentation = st.one_of(
    st.lists(_polygon, min_size=0, max_size=3),
    st.builds(
        lambda counts: {"size": [4, 5], "counts": counts},
        st.lists(st.integers(0, 8), min_size=1, max_size=6),
    ),
    st.builds(
        lambda m: rle_str(np.array(m, bool).reshape(4, 5)),
        st.lists(st.booleans(), min_size=20, max_size=20),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_segmentation, min_size=1, max_size=6))
def test_batched_check_agrees_with_reference(segs):
    """The fast path (typed decode, batched polygon areas) says what the reference says."""
    raws = [msgspec.Raw(msgspec.json.encode(s)) for s in segs]
    n = len(segs)
    fast = check_segmentations(raws, np.full(n, 4), np.full(n, 5), np.ones(n, bool))
    ref = {r: m for r, s in enumerate(copy.deepcopy(segs)) if (m := check_segmentation(s, 4, 5))}
    assert fast == ref


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (
            lambda d: d["images"][1].pop("file_name"),
            "image id 3",
            "Object missing required field `file_name`",
        ),
        (
            lambda d: d["images"][1].update(width="12"),
            "image id 3",
            "Expected `int`, got `str` - at `$.width`",
        ),
        (
            lambda d: d["images"][1].update(id=2**64),
            "image #1 (0-based position in the file)",
            "Expected `int` <= 9223372036854775807",
        ),
    ],
)
def test_malformed_image_records(tmp_path, edit, where, message):
    doc = fashionpedia_doc()
    edit(doc)
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(InvalidDataError) as err:
        read_annotations(path)
    assert err.value.problems[0].where == where
    assert message in err.value.problems[0].message
    ann_set, report = read_annotations(path, on_invalid="skip")
    assert ann_set.image_ids == [7, 11]
    assert ann_set.num_annotations == 3
    rest = [(p.where, p.message) for p in report.problems[1:]]
    if where == "image id 3":
        assert rest == [
            ("annotation id 5", "its image (id 3) is invalid"),
            ("annotation id 6", "its image (id 3) is invalid"),
        ]
    else:  # no usable id: its annotations point at an image that is not there
        assert rest == [
            ("annotation id 5", "image id 3 is not among the file's images"),
            ("annotation id 6", "image id 3 is not among the file's images"),
        ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iscrowd", 2, "Invalid enum value 2 - at `$.iscrowd`"),
        ("category_id", 2**40, "Expected `int` <= 2147483647 - at `$.category_id`"),
        ("attribute_ids", [1, -(2**33)], "Expected `int` >= -2147483648 - at `$.attribute_ids[1]`"),
        ("bbox", [1, 2, 3], "Expected `array` of length 4 - at `$.bbox`"),
    ],
)
def test_out_of_range_fields_are_record_errors(tmp_path, field, value, message):
    doc = fashionpedia_doc()
    _ann(doc, 42)[field] = value
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(InvalidDataError) as err:
        read_annotations(path)
    [problem] = err.value.problems
    assert (problem.where, problem.message) == ("annotation id 42", message)


def test_exif_rotation_is_taken_into_account(tmp_path):
    doc = fashionpedia_doc()
    (tmp_path / "img").mkdir()
    for im in doc["images"]:
        w, h = im["width"], im["height"]
        exif = Image.Exif()
        if im["id"] == 7:  # stored transposed, EXIF turns it back: shown as the JSON says
            exif[0x0112] = 6
            Image.new("RGB", (h, w)).save(tmp_path / "img" / im["file_name"], exif=exif)
        elif im["id"] == 3:  # stored as the JSON says, but EXIF would turn it
            exif[0x0112] = 8
            Image.new("RGB", (w, h)).save(tmp_path / "img" / im["file_name"], exif=exif)
        else:
            Image.new("RGB", (w, h)).save(tmp_path / "img" / im["file_name"])
    path = write_json(tmp_path / "fp.json", doc)
    _, report = read_annotations(path, images_dir=tmp_path / "img")
    assert not report.problems
    [notice] = report.notices
    assert notice.where == "image id 3"
    assert "is shown 16x12 (EXIF orientation 8)" in notice.message
    assert "match its stored 12x16 pixels" in notice.message


def test_in_memory_segmentations_are_checked_too():
    from fashionkit.data import Annotation, ImageInfo
    from fashionkit.data.annotation_checks import validate_records
    from fashionkit.data.annotations import AnnotationColumns
    from fashionkit.ontology import load_ontology

    segs = [
        [[1, 1, 6, 1, 6, 6]],
        [["a", "b", "c", "d", "e", "f"]],
        [[1, 1, 2, 2]],
        {"size": [10, 10], "counts": [100]},
        {"size": [10, 10], "counts": [10, 5, 85]},
    ]
    anns = [Annotation(i, 1, 1, (1.0, 1.0, 5.0, 5.0), 10.0, s) for i, s in enumerate(segs)]
    cols = AnnotationColumns.from_annotations(anns)
    _, kept, report = validate_records(
        [ImageInfo(1, "a.jpg", 10, 10)], cols, load_ontology(), "memory", on_invalid="skip"
    )
    assert kept.ids.tolist() == [0, 4]
    assert [(p.where, p.message) for p in report.problems] == [
        ("annotation id 1", "polygon 0 is not a list of numbers"),
        ("annotation id 2", "polygon 0 has 2 point(s); a polygon needs at least 3"),
        ("annotation id 3", "RLE has no foreground pixel (empty mask)"),
    ]


# -- more crashes found by fuzzing (tests/data/test_fuzz_readers.py) ----------------------


def test_duplicate_image_id_checks_annotations_against_the_kept_record(tmp_path):
    # The first record of a duplicated id is kept; its annotations were checked against the
    # last record's size, so a mask of the dropped image's size passed and did not decode.
    doc = fashionpedia_doc()
    doc["images"].append({"id": 7, "width": 12, "height": 16, "file_name": "seven-again.jpg"})
    _ann(doc, 41)["segmentation"] = rle_str(np.ones((16, 12), bool))
    path = write_json(tmp_path / "dup.json", doc)
    ann_set, report = read_annotations(path, on_invalid="skip")
    assert [(p.where, p.message) for p in report.problems] == [
        ("image id 7", "duplicate image id 7"),
        ("annotation id 41", "RLE size [16, 12] disagrees with the image size [20, 30]"),
    ]
    for ann in ann_set.iter_annotations():
        assert ann_set.mask(ann).shape == (ann_set.image(ann.image_id).height,
                                           ann_set.image(ann.image_id).width)


def test_unreadable_extra_field_is_the_annotations_problem(tmp_path):
    # 1e999 is valid JSON but no number holds it: kept as text, it crashed annotation_at().
    doc = fashionpedia_doc()
    _ann(doc, 6)["note"] = 123456789
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(doc).replace("123456789", "1e999"))
    ann_set, report = read_annotations(path, on_invalid="skip")
    [problem] = report.problems
    assert problem.where == "annotation id 6" and "field 'note'" in problem.message
    assert len(list(ann_set.iter_annotations())) == len(doc["annotations"]) - 1


def test_unreadable_value_inside_a_segmentation_is_its_annotations_problem(tmp_path):
    # The typed RLE decoder skipped the unknown key without reading its value; reading the
    # annotation then failed (found by the slow fuzzing).
    doc = fashionpedia_doc()
    _ann(doc, 41)["segmentation"]["note"] = 123456789
    path = tmp_path / "seg.json"
    path.write_text(json.dumps(doc).replace("123456789", "1E400"))
    ann_set, report = read_annotations(path, on_invalid="skip")
    [problem] = report.problems
    assert problem.where == "annotation id 41"
    assert "segmentation is not valid JSON (Number out of range" in problem.message
    assert len(list(ann_set.iter_annotations())) == len(doc["annotations"]) - 1


def test_bad_utf8_inside_an_annotation_is_its_problem(tmp_path):
    # Found by the slow fuzzing: the record-by-record pass raised msgspec.DecodeError.
    doc = fashionpedia_doc()
    _ann(doc, 40)["category_id"] = "neckline"  # sends the file down the record-by-record pass
    _ann(doc, 6)["note"] = "@@"
    path = tmp_path / "utf8.json"
    path.write_bytes(json.dumps(doc).encode().replace(b'"@@"', b'"\xff\xfe"'))
    ann_set, report = read_annotations(path, on_invalid="skip")
    got = {p.where: p.message for p in report.problems}
    assert set(got) == {"annotation id 40", "annotation id 6"}
    assert "Invalid UTF-8" in got["annotation id 6"] and "'note'" in got["annotation id 6"]
    assert ann_set.num_annotations == len(doc["annotations"]) - 2


def test_truncated_file_after_a_malformed_record_is_not_json(tmp_path):
    doc = fashionpedia_doc()
    _ann(doc, 40)["category_id"] = "neckline"  # the typed pass stops here, before the end
    path = tmp_path / "cut.json"
    path.write_bytes(json.dumps(doc).encode()[:-40])
    with pytest.raises(InvalidDataError, match=r"cut\.json: file: not valid JSON"):
        read_annotations(path, on_invalid="skip")


@pytest.mark.parametrize(("seg", "size", "message"), [
    ([[0, 0, 5, 0, 5, 5]], (0, 10), "image size 10x0 cannot hold a mask"),
    ([[0, 0, 5, 0, 5, 5]], (-3, 10), "image size 10x-3 cannot hold a mask"),
    ({"size": [4, 4], "counts": "0R"}, (4, 4), "not a valid COCO RLE string"),
    ({"size": [4, 4], "counts": b"02"}, (4, 4), "RLE counts cover 2 pixels"),
    ([[0, 0, 3e9, 1, 5, 4]], (10, 10), "outside the image 10x10"),
    ([[0, 0, float("nan"), 1, 5, 4]], (10, 10), "non-finite coordinates"),
    (msgspec.Raw(b"[[0, 0, 1" + b"0" * 400 + b", 1, 5, 4]]"), (10, 10), "non-finite coordinates"),
])
def test_segmentations_pycocotools_cannot_take_are_refused(seg, size, message):
    # Each of these crashed, hung or read uninitialised memory in pycocotools.
    assert message in check_segmentation(seg, *size)
