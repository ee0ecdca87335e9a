"""Property-based fuzzing of the evaluation loaders: result files (:func:`read_results`) and
ground-truth files (:func:`load_ground_truth`).

Each case must end in a result or an :class:`InvalidDataError` whose problems name the file
and the record (``result 3``, ``annotation id 17``, ``image id 2``), never in another exception.
Nothing is dropped: a loaded results file has one detection per record. What loads is usable:
masks have the image's size and the Fashionpedia evaluation runs on it.

The default suite runs a few hundred cases per loader; ``-m slow`` runs 10,000.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import strategies as st

from fashionkit.data import InvalidDataError
from fashionkit.data.masks import rle_areas
from fashionkit.errors import Problem
from fashionkit.evaluation import evaluate_fashionpedia, load_ground_truth, read_results
from fashionkit.evaluation.testing import CaseSpec, make_case
from tests.fuzzing import BYTE_DAMAGE, CASES, MUTATIONS, damage, dumps, focused, mutate, run_fuzz

SPEC = CaseSpec(num_images=3, image_size=(8, 40), instances_per_image=2.0,
                false_positives_per_image=(0, 2))
_RESULT = re.compile(r"result (\d+)$")


def _case(seed: int) -> tuple[dict, list[dict]]:
    gt, results = make_case(seed, SPEC)
    for k, r in enumerate(results):  # some results in the other forms the format allows
        if k % 3 == 1:
            r["attribute_scores"] = [0.5] * len(r["attribute_ids"])
    return gt, results


def _assert_clear(err: InvalidDataError, source: str, where: re.Pattern) -> None:
    assert err.problems
    for p in err.problems:
        assert isinstance(p, Problem) and p.source == source, p
        assert p.where == "file" or where.match(p.where), p
        assert p.message, p
    str(err)


def _assert_evaluates(gt, dt, iou_type: str | None) -> None:
    if dt.segmentations is not None:
        sizes = np.stack([gt.heights[dt.image_index], gt.widths[dt.image_index]], axis=1)
        assert [list(map(int, s["size"])) for s in dt.segmentations] == sizes.tolist()
        assert (rle_areas(dt.segmentations) <= sizes[:, 0] * sizes[:, 1]).all()
    assert np.isfinite(dt.areas).all() and (dt.areas >= 0).all()
    assert dt.boxes is not None and np.isfinite(dt.boxes).all()
    kind = iou_type or ("segm" if dt.segmentations is not None else "bbox")
    if kind == "segm" and dt.segmentations is None:
        return
    results = evaluate_fashionpedia(gt, dt, kind).results()  # type: ignore[arg-type]
    assert set(results) == {"iou_f1", "iou", "f1"}


@st.composite
def result_files(draw):
    """``(gt dict, results bytes, number of records or None, iou_type)``."""
    gt, results = _case(draw(st.integers(0, 2**32 - 1)))
    iou_type = draw(st.sampled_from([None, "segm", "bbox"]))
    kind = draw(st.integers(0, 9))
    if kind <= 7:
        mutated = mutate(results, draw(MUTATIONS))
        n = len(mutated) if isinstance(mutated, list) else None
        return gt, dumps(mutated), n, iou_type
    if kind == 8:
        return gt, damage(dumps(results), draw(BYTE_DAMAGE)), None, iou_type
    return gt, draw(st.binary(max_size=120)), None, iou_type


@pytest.mark.parametrize("cases", CASES)
def test_results_end_in_detections_or_a_clear_error(tmp_path, cases):
    path = tmp_path / "results.json"

    def check(case) -> None:
        gt_doc, data, n, iou_type = case
        gt = load_ground_truth(gt_doc)
        path.write_bytes(data)
        try:
            dt = read_results(path, gt, iou_type)
        except InvalidDataError as err:
            _assert_clear(err, str(path), _RESULT)
            if n is not None:
                for p in err.problems:
                    m = _RESULT.match(p.where)
                    assert m is None or int(m.group(1)) < n, p
            return
        if n is not None:
            assert len(dt) == n
        _assert_evaluates(gt, dt, iou_type)

    run_fuzz(check, result_files(), cases)


@st.composite
def ground_truth_files(draw):
    """``(gt bytes, results of the unmutated gt)``."""
    gt, results = _case(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.integers(0, 9))
    if kind <= 7:
        # Half the mutations start at the annotations, where most of the checks are.
        return dumps(mutate(gt, draw(focused(MUTATIONS, list(gt).index("annotations"))))), results
    if kind == 8:
        return damage(dumps(gt), draw(BYTE_DAMAGE)), results
    return draw(st.binary(max_size=120)), results


@pytest.mark.parametrize("cases", CASES)
def test_ground_truth_ends_in_columns_or_a_clear_error(tmp_path, cases):
    path = tmp_path / "gt.json"
    where = re.compile(r"(annotation|image|category) ")

    def check(case) -> None:
        data, results = case
        path.write_bytes(data)
        try:
            gt = load_ground_truth(path)
        except InvalidDataError as err:
            _assert_clear(err, str(path), where)
            return
        try:
            rles = gt.rles()
        except InvalidDataError as err:  # an annotation without a mask: no mask evaluation
            _assert_clear(err, str(path), where)
            assert all("has no segmentation" in p.message for p in err.problems)
            return
        for rle, k in zip(rles, gt.image_index, strict=True):
            assert [int(v) for v in rle["size"]] == [int(gt.heights[k]), int(gt.widths[k])]
        # The unmutated results, where their images are still there, evaluate against it.
        known = set(gt.image_ids.tolist())
        path.with_name("res.json").write_bytes(dumps([r for r in results
                                                      if r["image_id"] in known]))
        try:
            dt = read_results(path.with_name("res.json"), gt, "segm")
        except InvalidDataError:
            return  # the results no longer fit (an image changed size): a clear error
        _assert_evaluates(gt, dt, "segm")

    run_fuzz(check, ground_truth_files(), cases)
