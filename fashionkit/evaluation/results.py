"""Reading ground truth and result files for evaluation, and writing results.

Result format (Fashionpedia's, loadable by the official API): a JSON list of
``{"image_id", "category_id", "attribute_ids", "segmentation": RLE, "bbox": XYWH, "score"}``
with optional ``"attribute_scores"`` (one per attribute id). ``segmentation`` is a compressed RLE
``{"size": [h, w], "counts": str}`` in the image's size; ``bbox`` is ``[x, y, w, h]`` in pixels.
Invalid records raise :class:`~fashionkit.data.errors.InvalidDataError` naming the file and the
result's index in the list (or the annotation id for ground truth).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from fashionkit.data.errors import read_input
from fashionkit.data.masks import encode_mask, rle_to_json
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.evaluation.gc_pause import collector_paused
from fashionkit.evaluation.records import GroundTruth, ResultsTable
from fashionkit.evaluation.result_files import convert_results, decode_results
from fashionkit.ontology import Ontology

__all__ = [
    "load_ground_truth",
    "read_results",
    "results_from_records",
    "predictions_to_results",
    "write_results",
]


class _GTFile(msgspec.Struct):
    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []


@collector_paused()
def load_ground_truth(source: Any, ontology: Ontology | None = None) -> GroundTruth:
    """Ground truth from a Fashionpedia/COCO JSON file path, its parsed dict, an
    :class:`~fashionkit.data.AnnotationSet`, or a :class:`GroundTruth` (returned as is).

    The file's ``area`` and ``iscrowd`` are used as given (they decide area ranges and crowd
    handling, as in the official evaluator)."""
    if isinstance(source, GroundTruth):
        return source
    if hasattr(source, "iter_annotations") and hasattr(source, "images"):
        return GroundTruth.from_annotation_set(source)
    name = "ground truth"
    if isinstance(source, str | Path):
        name = str(source)
        try:
            data = msgspec.json.decode(read_input(source), type=_GTFile)
        except (msgspec.ValidationError, msgspec.DecodeError) as err:
            raise InvalidDataError(
                [Problem(name, "file", f"not a COCO/Fashionpedia annotation file: {err}")]
            ) from None
        images, anns, cats = data.images, data.annotations, data.categories
    elif isinstance(source, Mapping):
        images = list(source.get("images", []))
        anns = list(source.get("annotations", []))
        cats = list(source.get("categories", []))
    else:
        raise TypeError(f"cannot read ground truth from {type(source).__name__}")
    return GroundTruth.from_records(images, anns, ontology, source=name, categories=cats)


@collector_paused()
def read_results(path: str | Path, gt: GroundTruth, iou_type: str | None = None) -> ResultsTable:
    """A results file → :class:`ResultsTable`, checked against ``gt`` (image ids, size of every
    RLE, categories, attributes). ``iou_type`` makes ``segmentation`` or ``bbox`` mandatory."""
    name = str(path)
    data = read_input(path)
    return ResultsTable.from_records(decode_results(data, name), gt, name, iou_type)


@collector_paused()
def results_from_records(
    records: Sequence[Any], gt: GroundTruth, iou_type: str | None = None, source: str = "results"
) -> ResultsTable:
    """In-memory result records (dicts in the result format) → :class:`ResultsTable`."""
    return ResultsTable.from_records(convert_results(records, source), gt, source, iou_type)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def predictions_to_results(image_id: int, prediction: Mapping[str, Any]) -> list[dict]:
    """One image's model output → result records.

    ``prediction`` holds arrays (numpy or torch) for ``N`` detections: ``boxes (N, 4)`` XYXY in
    pixels, ``category_ids`` (or ``labels``) ``(N,)`` Fashionpedia category ids, ``scores (N,)``,
    optionally ``masks``: ``N×H×W`` bool/0-1 (or ``N×1×H×W`` probabilities, cut at 0.5) or a list
    of RLE dicts, ``attribute_ids``: N lists of Fashionpedia attribute ids, ``attribute_scores``:
    N lists of matching scores.
    """
    boxes = _numpy(prediction["boxes"]).astype(np.float64).reshape(-1, 4)
    labels = prediction.get("category_ids", prediction.get("labels"))
    if labels is None:
        raise KeyError(
            "prediction needs 'category_ids' (or 'labels') with Fashionpedia category ids"
        )
    cats = _numpy(labels).astype(np.int64).reshape(-1)
    scores = _numpy(prediction["scores"]).astype(np.float64).reshape(-1)
    n = len(scores)
    if len(boxes) != n or len(cats) != n:
        raise ValueError(f"image {image_id}: boxes, category ids and scores differ in length")
    masks = prediction.get("masks")
    rles: list[dict] | None = None
    if masks is not None:
        if isinstance(masks, list | tuple) and (not masks or isinstance(masks[0], Mapping)):
            rles = [rle_to_json(dict(m)) for m in masks]
        else:
            arr = _numpy(masks)
            if arr.ndim == 4:
                arr = arr[:, 0]
            arr = arr > 0.5 if arr.dtype.kind == "f" else arr.astype(bool)
            rles = [rle_to_json(encode_mask(m)) for m in arr]
    att_ids = prediction.get("attribute_ids")
    att_scores = prediction.get("attribute_scores")
    out = []
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        r: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": int(cats[i]),
            "attribute_ids": [int(a) for a in _numpy(att_ids[i]).reshape(-1)]
            if att_ids is not None
            else [],
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": float(scores[i]),
        }
        if rles is not None:
            r["segmentation"] = rles[i]
        if att_scores is not None:
            r["attribute_scores"] = [float(s) for s in _numpy(att_scores[i]).reshape(-1)]
        out.append(r)
    return out


def write_results(path: str | Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Write result records as a JSON list (RLE counts as str, numbers as plain JSON)."""

    def plain(r: Mapping[str, Any]) -> dict:
        out = dict(r)
        seg = out.get("segmentation")
        if isinstance(seg, Mapping) and isinstance(seg.get("counts"), bytes):
            out["segmentation"] = rle_to_json(dict(seg))
        return out

    Path(path).write_text(json.dumps([plain(r) for r in records]), encoding="utf-8")
