"""Invalid results and ground truth raise InvalidDataError naming the file and the record."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fashionkit.data.masks import rle_string_totals
from fashionkit.errors import InvalidDataError
from fashionkit.evaluation.results import load_ground_truth, read_results, results_from_records
from fashionkit.evaluation.testing import CaseSpec, make_case


@pytest.fixture(scope="module")
def case():
    return make_case(2, CaseSpec(num_images=4, images_without_gt=0))


def _bad(results, gt, index, message, iou_type="segm"):
    with pytest.raises(InvalidDataError) as err:
        results_from_records(results, load_ground_truth(gt), iou_type=iou_type, source="res.json")
    text = str(err.value)
    assert f"res.json: result {index}: " in text, text
    assert message in text, text


def test_missing_key_names_the_result(case):
    gt, res = copy.deepcopy(case)
    del res[3]["score"]
    _bad(res, gt, 3, "score")


def test_unknown_category(case):
    gt, res = copy.deepcopy(case)
    res[2]["category_id"] = 46
    _bad(res, gt, 2, "unknown category id 46")


def test_image_not_in_ground_truth(case):
    gt, res = copy.deepcopy(case)
    res[1]["image_id"] = 99999
    _bad(res, gt, 1, "image id 99999 is not in the ground truth")


def test_unknown_attribute(case):
    gt, res = copy.deepcopy(case)
    res[0]["attribute_ids"] = [1, 2, 5000]
    _bad(res, gt, 0, "unknown attribute id(s) [5000]")


def test_rle_of_wrong_size(case):
    gt, res = copy.deepcopy(case)
    h, w = res[4]["segmentation"]["size"]
    res[4]["segmentation"]["size"] = [h + 1, w]
    _bad(res, gt, 4, "disagrees with the image size")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s[:-1],
        lambda s: s + "1",
        lambda s: s[: len(s) // 2],
        lambda s: s + "\x7f",
        lambda s: "",
    ],
)
def test_corrupt_rle_string(case, mutate):
    gt, res = copy.deepcopy(case)
    res[5]["segmentation"]["counts"] = mutate(res[5]["segmentation"]["counts"])
    with pytest.raises(InvalidDataError, match="result 5: .*RLE"):
        results_from_records(res, load_ground_truth(gt), iou_type="segm")


def test_missing_segmentation_for_segm_and_box_for_bbox(case):
    gt, res = copy.deepcopy(case)
    del res[6]["segmentation"]
    _bad(res, gt, 6, "missing 'segmentation'")
    gt, res = copy.deepcopy(case)
    for r in res:
        del r["bbox"]
    _bad(res, gt, 0, "missing 'bbox'", iou_type="bbox")


def test_non_finite_score_and_bad_box(case):
    gt, res = copy.deepcopy(case)
    res[7]["score"] = float("nan")
    res[8]["bbox"] = [0, 0, -3, 4]
    with pytest.raises(InvalidDataError) as err:
        results_from_records(res, load_ground_truth(gt), iou_type="segm", source="r")
    assert "result 7: score must be a finite number" in str(err.value)
    assert "result 8: bbox values" in str(err.value)


def test_results_file_errors(tmp_path, case):
    gt, res = copy.deepcopy(case)
    g = load_ground_truth(gt)
    p = tmp_path / "res.json"
    p.write_text("[{not json")
    with pytest.raises(InvalidDataError, match="res.json: file: not valid JSON"):
        read_results(p, g)
    res[9]["image_id"] = "seven"
    p.write_text(json.dumps(res))
    with pytest.raises(InvalidDataError, match=r"res.json: result 9: .*image_id"):
        read_results(p, g)
    with pytest.raises(InvalidDataError, match="nope.json: file: cannot be read"):
        read_results(tmp_path / "nope.json", g)


def test_results_without_boxes_take_mask_area_and_box(case):
    gt, res = copy.deepcopy(case)
    for r in res:
        del r["bbox"]
    d = results_from_records(res, load_ground_truth(gt), iou_type="segm")
    rles = [r["segmentation"] for r in res]
    np.testing.assert_allclose(d.areas, mask_utils.area(rles))
    np.testing.assert_allclose(d.boxes, mask_utils.toBbox(rles))


def test_more_than_255_box_less_results_get_their_mask_areas():
    # pycocotools 2.0.11's area() on a list of more than 255 RLEs fails under numpy 2 (a uint8
    # overflow); the loader must not pass it such a list.
    gt, res = make_case(5, CaseSpec(num_images=30, images_without_gt=0, detections_per_gt=(8, 12)))
    res = [{k: v for k, v in r.items() if k != "bbox"} for r in res]
    assert len(res) > 300
    d = results_from_records(res, load_ground_truth(gt), iou_type="segm")
    rles = [r["segmentation"] for r in res]
    expected = [mask_utils.area(rles[i : i + 200]) for i in range(0, len(rles), 200)]
    np.testing.assert_array_equal(d.areas, np.concatenate(expected))
    assert (d.areas > 0).any()


def test_results_with_neither_box_nor_mask_are_refused(case):
    gt, res = copy.deepcopy(case)
    for r in res:
        del r["bbox"], r["segmentation"]
    _bad(res, gt, 0, "results need 'bbox' or 'segmentation'", iou_type=None)


def test_ground_truth_problems_name_annotation_ids(case):
    gt = copy.deepcopy(case[0])
    anns = gt["annotations"]
    anns[0]["category_id"] = 77
    anns[1]["image_id"] = 123456
    anns[2]["attribute_ids"] = [999]
    anns[3]["id"] = anns[4]["id"]
    del anns[5]["area"]
    with pytest.raises(InvalidDataError) as err:
        load_ground_truth(gt)
    text = str(err.value)
    for needle in (
        f"annotation id {anns[0]['id']}: unknown category id 77",
        f"annotation id {anns[1]['id']}: image id 123456",
        f"annotation id {anns[2]['id']}: unknown attribute id(s) [999]",
        f"annotation id {anns[4]['id']}: duplicate annotation id",
        f"annotation id {anns[5]['id']}: missing area",
    ):
        assert needle in text, text


def test_rle_string_check_agrees_with_pycocotools():
    rng = np.random.default_rng(0)
    strings, sizes = [], []
    for i in range(150):
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        m = rng.random((h, w)) < rng.random() * 0.5
        if i % 4 == 0:
            m = np.zeros((h, w), bool)
            m[h // 3 : h // 2, w // 4 :] = True
        if i % 9 == 0:
            m = np.ones((h, w), bool)
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        strings.append(rle["counts"].decode())
        sizes.append(h * w)
    ok, total = rle_string_totals(strings)
    assert ok.all()
    np.testing.assert_array_equal(total, sizes)
    ok, _ = rle_string_totals(["", "abc", strings[0][:-1], strings[1] + "\x7f", "é"])
    assert not ok.any()



def _string_of_runs(runs: list[int]) -> str:
    """pycocotools' ``rleToString`` for any runs, negative ones included."""
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def _reference_totals(text: str) -> tuple[bool, int]:
    """pycocotools' ``rleFrString`` one character at a time, refusing what it would misread."""
    if not text or not text.isascii():
        return False, 0
    runs: list[int] = []
    i = 0
    while i < len(text):
        x = k = 0
        more = True
        while more:
            if i == len(text):
                return False, 0  # the last run is not terminated
            c = ord(text[i]) - 48
            if not 0 <= c <= 63:
                return False, 0
            x |= (c & 0x1F) << 5 * k
            more = bool(c & 0x20)
            i += 1
            k += 1
        if c & 0x10:
            x |= -1 << 5 * k
        if k > 6:
            return False, 0
        runs.append(x + (runs[-2] if len(runs) > 2 else 0))
    return min(runs) >= 0, sum(runs)


def test_rle_string_check_agrees_with_a_character_by_character_decoder():
    """Valid strings, arbitrary (also negative) runs and corruptions of them, in one call, so
    that the column-wise decoding must keep every string's runs apart."""
    rng = np.random.default_rng(1)
    strings = []
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        m = rng.random((h, w)) < rng.random()
        strings.append(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode())
    for _ in range(600):
        n = int(rng.integers(0, 14))
        scale = [40, 1 << 12, 1 << 31][int(rng.integers(3))]
        strings.append(_string_of_runs([int(v) for v in rng.integers(-scale // 8, scale, n)]))
    alphabet = [chr(c) for c in range(40, 120)] + ["\x00", "é"]
    for text in list(strings):
        j = int(rng.integers(len(text) + 1))
        kind = int(rng.integers(5))
        if kind == 0:
            strings.append(text[:j])
        elif kind == 1:
            strings.append(text[:j] + str(rng.choice(alphabet)) + text[j + 1 :])
        elif kind == 2:
            strings.append(text[:j] + text[j + 1 :])
        elif kind == 3:
            strings.append(text + str(rng.choice(alphabet)))
        else:
            strings.append(text[:j] + "o" * int(rng.integers(1, 9)) + text[j:])
    rng.shuffle(strings)
    ok, total = rle_string_totals(strings)
    expected = [_reference_totals(t) for t in strings]
    np.testing.assert_array_equal(ok, [e[0] for e in expected])
    np.testing.assert_array_equal(total[ok], [e[1] for e in expected if e[0]])
    assert 0.2 < ok.mean() < 0.8  # both kinds well represented

# -- crashes found by fuzzing (tests/evaluation/test_fuzz_results.py) ---------------------


@pytest.mark.parametrize(("field", "value"), [
    ("image_id", 2**64 - 1), ("category_id", -(2**63) - 1), ("attribute_ids", [2**63]),
])
def test_ids_beyond_int64_name_the_result(case, field, value):
    gt, res = copy.deepcopy(case)
    res[2][field] = value
    _bad(res, gt, 2, "Expected `int` ")


def test_result_polygons_far_outside_the_image_are_refused(case):
    gt, res = copy.deepcopy(case)
    res[1]["segmentation"] = [[0, 0, 3e9, 1, 5, 4]]  # hangs pycocotools' rasteriser
    _bad(res, gt, 1, "outside the image")


@pytest.mark.parametrize(("edit", "where", "message"), [
    (lambda g: g["images"][0].update(id=2**64), "image id 18446744073709551616", "is out of range"),
    (lambda g: g["images"][0].update(height="12"), "image id 1000", "height must be an integer"),
    (lambda g: g["images"][0].update(width=2**40), "image id 1000", "at most 4294967295 pixels"),
    (lambda g: g["annotations"][0].update(id=2**63), "annotation id 9223372036854775808",
     "is out of range"),
    (lambda g: g["annotations"][0].update(area=10**400), "annotation id 1", "area 1000"),
    (lambda g: g["annotations"][0].update(bbox="1234"), "annotation id 1", "bbox must be a list"),
    (lambda g: g["annotations"][0].update(attribute_ids=5), "annotation id 1",
     "attribute_ids must be a list"),
    (lambda g: g["annotations"][0].update(iscrowd=True), "annotation id 1", "iscrowd must be 0 or 1"),
    (lambda g: g["annotations"][0].update(segmentation={"size": ["a", 1], "counts": "0"}),
     "annotation id 1", "RLE size must be [height, width]"),
    (lambda g: g["annotations"][0].update(segmentation=[[0, 0, 1e12, 0, 1e12, 1e12]]),
     "annotation id 1", "outside the image"),
    (lambda g: g["annotations"][0].update(segmentation=[[0, 0, 10**400, 0, 5, 5]]),
     "annotation id 1", "non-finite coordinates"),
])
def test_ground_truth_records_that_crashed_the_loader(case, edit, where, message):
    gt = copy.deepcopy(case[0])
    edit(gt)
    with pytest.raises(InvalidDataError) as err:
        load_ground_truth(gt)
    assert any(p.where == where and message in p.message for p in err.value.problems), err.value


def test_ground_truth_without_a_mask_is_a_clear_error_for_mask_evaluation(case):
    gt = copy.deepcopy(case[0])
    del gt["annotations"][0]["segmentation"]
    gt["categories"] = [{"id": None, "name": "x"}, *gt.get("categories", [])]  # ignored
    g = load_ground_truth(gt)
    with pytest.raises(InvalidDataError, match="annotation id 1: has no segmentation"):
        g.rles()
