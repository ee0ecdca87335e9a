"""COCO AP/AR for boxes and masks, computed by faster-coco-eval (pycocotools' definitions).

Keys follow detectron2's naming: ``AP`` (IoU .50:.05:.95), ``AP50``, ``AP75``, ``APs``/``APm``/
``APl`` (area < 32², 32²–96², > 96²), ``AR1``/``AR10``/``AR100`` (max detections per image and
category), ``ARs``/``ARm``/``ARl``. Values are fractions in [0, 1]; ``-1`` means no ground truth
to average over. Categories are Fashionpedia ids; attributes play no part here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fashionkit.evaluation.records import GroundTruth, ResultsTable

__all__ = ["COCO_KEYS", "coco_ap", "coco_inputs"]

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_inputs(gt: GroundTruth, dt: ResultsTable) -> tuple[dict, list[dict]]:
    """The COCO ground-truth dict and results list for ``gt``/``dt`` (masks as compressed RLE)."""
    from fashionkit.data.masks import rle_to_json

    images = [
        {"id": int(i), "height": int(h), "width": int(w)}
        for i, h, w in zip(gt.image_ids, gt.heights, gt.widths, strict=True)
    ]
    anns = []
    for k in range(len(gt)):
        seg = gt.segmentations[k]
        anns.append(
            {
                "id": int(gt.ann_ids[k]),
                "image_id": int(gt.image_ids[gt.image_index[k]]),
                "category_id": int(gt.category_ids[k]),
                "bbox": [float(v) for v in gt.boxes[k]],
                "area": float(gt.areas[k]),
                "iscrowd": int(gt.iscrowd[k]),
                "segmentation": seg if seg is not None else [],
            }
        )
    categories = [{"id": c.id, "name": c.name} for c in gt.ontology.categories]
    results: list[dict[str, Any]] = []
    for k in range(len(dt)):
        r: dict[str, Any] = {
            "image_id": int(gt.image_ids[dt.image_index[k]]),
            "category_id": int(dt.category_ids[k]),
            "score": float(dt.scores[k]),
        }
        if dt.boxes is not None:
            r["bbox"] = [float(v) for v in dt.boxes[k]]
        if dt.segmentations is not None:
            seg = dt.segmentations[k]
            r["segmentation"] = seg if isinstance(seg["counts"], str) else rle_to_json(seg)
        results.append(r)
    return {"images": images, "annotations": anns, "categories": categories}, results


def coco_ap(
    gt: GroundTruth, dt: ResultsTable, iou_type: str = "segm", per_category: bool = False
) -> dict[str, Any]:
    """COCO summary metrics (``COCO_KEYS``) of ``dt`` against ``gt``; with ``per_category``, also
    ``"per_category": {category id: AP}`` (IoU .50:.95, all areas, 100 detections)."""
    from faster_coco_eval import COCO, COCOeval_faster

    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', not {iou_type!r}")
    gt_dict, results = coco_inputs(gt, dt)
    coco_gt = COCO(gt_dict)
    coco_dt = coco_gt.loadRes(results)
    ev = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=lambda *a, **k: None)
    ev.params.imgIds = [int(i) for i in gt.image_ids]
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    out: dict[str, Any] = {k: float(v) for k, v in zip(COCO_KEYS, ev.stats[:12], strict=True)}
    if per_category:
        prec = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]  # (T, R, K): all areas, 100 dets
        cats = list(ev.params.catIds)
        per = {}
        for k, c in enumerate(cats):
            p = prec[:, :, k]
            p = p[p > -1]
            per[int(c)] = float(p.mean()) if p.size else -1.0
        out["per_category"] = per
    return out
