"""Fashionpedia/COCO JSON readers and the columnar AnnotationSet, checked against pycocotools."""

from __future__ import annotations

import contextlib
import io
import json

import msgspec
import numpy as np
import pytest
from pycocotools.coco import COCO
from readers_helpers import fashionpedia_doc, write_json

from fashionkit.data import Annotation, AnnotationSet, ImageInfo, read_annotations


def _coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.fixture
def fp_file(tmp_path):
    return write_json(tmp_path / "fp.json", fashionpedia_doc())


def test_index_matches_pycocotools(fp_file):
    ann_set, report = read_annotations(fp_file)
    coco = _coco(fp_file)
    assert not report
    assert len(ann_set) == len(coco.imgs) == 3
    assert ann_set.image_ids == [7, 3, 11]  # input order
    assert ann_set.num_annotations == len(coco.anns) == 5
    for image_id in ann_set.image_ids:
        ours = ann_set.annotations(image_id)
        assert [a.id for a in ours] == coco.getAnnIds(imgIds=[image_id])
        for ann in ours:
            ref = coco.anns[ann.id]
            assert ann.segmentation == ref["segmentation"]
            assert list(ann.bbox) == ref["bbox"]
            assert ann.category_id == ref["category_id"]
            assert list(ann.attribute_ids) == ref["attribute_ids"]
            assert ann.iscrowd == ref["iscrowd"]
            np.testing.assert_array_equal(ann_set.mask(ann), coco.annToMask(ref).astype(bool))
    assert ann_set.annotations(11) == []
    assert [a.id for a in ann_set.iter_annotations()] == [40, 41, 5, 42, 6]


def test_segmentation_stays_raw_until_asked(fp_file):
    ann_set, _ = read_annotations(fp_file)
    assert all(isinstance(s, msgspec.Raw) for s in ann_set.columns.segmentations)


def test_image_lookup_and_unknown_image(fp_file):
    ann_set, _ = read_annotations(fp_file)
    assert ann_set.image(3) == ImageInfo(
        3,
        "three.jpg",
        12,
        16,
        extra={
            "license": 3,
            "original_url": "https://example.org/3.jpg",
            "time_captured": "n/a",
            "isstatic": 1,
            "kaggle_id": "0003",
        },
    )
    with pytest.raises(KeyError, match="no image with id 99"):
        ann_set.image(99)


def test_round_trip_keeps_everything(fp_file, tmp_path):
    doc = json.loads(fp_file.read_text())
    ann_set, _ = read_annotations(fp_file)
    out = tmp_path / "out.json"
    ann_set.write(out)
    written = json.loads(out.read_text())
    assert written["info"] == doc["info"]
    assert written["licenses"] == doc["licenses"]
    assert written["images"] == doc["images"]
    assert written["categories"] == doc["categories"]
    assert written["attributes"] == doc["attributes"]
    assert written["annotations"] == doc["annotations"]
    # to_json (decoded segmentations) says the same as write (raw segmentations).
    assert json.loads(json.dumps(ann_set.to_json())) == written
    again, _ = read_annotations(out)
    assert list(again.iter_annotations()) == list(ann_set.iter_annotations())
    assert list(again.images) == list(ann_set.images)


def test_set_built_from_objects_writes_loadable_json(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 1
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(m))  # counts as bytes
    anns = [
        Annotation(1, 1, 3, (3.0, 2.0, 6.0, 3.0), 18.0, rle, 0, (1, 2)),
        Annotation(2, 1, 5, (1.0, 1.0, 4.0, 4.0), 8.0, [[1, 1, 5, 1, 5, 5, 1, 5]]),
    ]
    ann_set = AnnotationSet([ImageInfo(1, "a.jpg", 12, 10)], anns)
    assert list(ann_set.iter_annotations()) == anns
    path = tmp_path / "built.json"
    ann_set.write(path)
    coco = _coco(path)
    np.testing.assert_array_equal(coco.annToMask(coco.anns[1]), m)
    back, report = read_annotations(path)
    assert not report
    np.testing.assert_array_equal(back.mask(back.annotations(1)[0]), m.astype(bool))


def test_columns_take_keeps_attribute_slices(fp_file):
    ann_set, _ = read_annotations(fp_file)
    cols = ann_set.columns.take(np.array([4, 0, 3]))
    assert cols.ids.tolist() == [6, 40, 42]
    offs = cols.attribute_offsets.tolist()
    vals = cols.attribute_values.tolist()
    assert [vals[offs[i] : offs[i + 1]] for i in range(3)] == [[160], [115, 136], [0, 300]]


def test_coco_categories_map_by_name(tmp_path):
    doc = fashionpedia_doc()
    for ann in doc["annotations"]:
        ann.pop("attribute_ids")
    names = {1: "t-shirt", 31: "sleeve", 23: "shoe", 6: "Pants", 33: "neckline"}
    # The COCO file numbers categories its own way.
    file_ids = {fp: 100 + k for k, fp in enumerate(names)}
    doc["categories"] = [
        {"id": file_ids[fp], "name": n, "supercategory": "x"} for fp, n in names.items()
    ]
    for ann in doc["annotations"]:
        ann["category_id"] = file_ids[ann["category_id"]]
    doc.pop("attributes")
    ann_set, report = read_annotations(write_json(tmp_path / "coco.json", doc), "coco")
    assert not report
    assert [a.category_id for a in ann_set.iter_annotations()] == [1, 31, 23, 6, 33]
    assert all(a.attribute_ids == () for a in ann_set.iter_annotations())


def test_coco_unmapped_category_is_named(tmp_path):
    doc = fashionpedia_doc()
    doc["categories"] = [
        {"id": c, "name": n}
        for c, n in [(1, "top"), (31, "sleeve"), (23, "shoe"), (6, "pants"), (33, "person")]
    ]
    from fashionkit.data import InvalidDataError

    with pytest.raises(InvalidDataError) as err:
        read_annotations(write_json(tmp_path / "coco.json", doc), "coco")
    assert "annotation id 6: category 'person' (id 33)" in str(err.value)
    assert "no Fashionpedia category is named 'person'" in str(err.value)
    assert len(err.value.problems) == 1


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown annotation format 'yolo'"):
        read_annotations("x.json", "yolo")


def test_written_file_loads_in_the_official_fashionpedia_api(fp_file, tmp_path):
    pytest.importorskip("skimage")  # the official package imports it at module level
    from fashionpedia.fp import Fashionpedia

    ann_set, _ = read_annotations(fp_file)
    out = tmp_path / "out.json"
    ann_set.write(out)
    with contextlib.redirect_stdout(io.StringIO()):
        fp = Fashionpedia(str(out))
    assert sorted(fp.attrs) == list(ann_set.ontology.attribute_ids)
    for att in (0, 115, 136, 160, 300):
        ours = sorted(a.id for a in ann_set.iter_annotations() if att in a.attribute_ids)
        assert sorted(fp.getAnnIds(attIds=[att])) == ours
    for ann in ann_set.iter_annotations():
        np.testing.assert_array_equal(fp.annToMask(fp.anns[ann.id]).astype(bool), ann_set.mask(ann))


def test_write_accepts_numpy_in_hand_built_segmentations(tmp_path):
    poly = np.array([1, 1, 6, 1, 6, 5, 1, 5], np.float32)
    counts = np.array([13, 3, 104], np.int64)
    anns = [
        Annotation(1, 1, 3, (1.0, 1.0, 5.0, 4.0), 20.0, [poly]),
        Annotation(2, 1, 4, (1.0, 3.0, 1.0, 3.0), 3.0, {"size": [10, 12], "counts": counts}),
    ]
    path = tmp_path / "np.json"
    AnnotationSet([ImageInfo(1, "a.jpg", 12, 10)], anns).write(path)
    back, report = read_annotations(path)
    assert not report
    [a, b] = back.iter_annotations()
    assert a.segmentation == [[1.0, 1.0, 6.0, 1.0, 6.0, 5.0, 1.0, 5.0]]
    assert b.segmentation == {"size": [10, 12], "counts": [13, 3, 104]}


def test_extra_annotation_fields_survive_the_round_trip(tmp_path):
    doc = fashionpedia_doc()
    doc["annotations"][1]["synth"] = {"color": "#6e7332", "shares": [0.5, 0.25]}
    doc["annotations"][4]["note"] = "checked"
    src = write_json(tmp_path / "extra.json", doc)
    ann_set, report = read_annotations(src)
    assert not report
    anns = list(ann_set.iter_annotations())
    assert anns[1].extra == {"synth": {"color": "#6e7332", "shares": [0.5, 0.25]}}
    assert anns[4].extra == {"note": "checked"}
    assert anns[0].extra == {}
    out = tmp_path / "out.json"
    ann_set.write(out)
    assert json.loads(out.read_text())["annotations"] == doc["annotations"]
    # Skipping rows keeps each extra with its own annotation.
    sub = ann_set.columns.take(np.array([4, 1]))
    assert sorted(sub.extras) == [0, 1] and b"checked" in bytes(sub.extras[0]["note"])
    # Built by hand: extra fields are written too, and never override the format's fields.
    built = AnnotationSet(
        [ImageInfo(1, "a.jpg", 12, 10)],
        [
            Annotation(
                1,
                1,
                5,
                (1.0, 1.0, 4.0, 4.0),
                9.0,
                [[1, 1, 5, 1, 5, 5, 1, 5]],
                extra={"source": "hand", "id": 99},
            )
        ],
    )
    built.write(tmp_path / "built.json")
    [rec] = json.loads((tmp_path / "built.json").read_text())["annotations"]
    assert rec["source"] == "hand" and rec["id"] == 1
