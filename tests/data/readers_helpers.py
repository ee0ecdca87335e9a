"""Hand-built annotation files for the reader/validation/convert tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.ontology import load_ontology


def rle_str(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_counts(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major counts starting with background)."""
    flat = mask.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def box_of(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    ]


def fashionpedia_doc() -> dict:
    """Three images, five annotations: polygon, compressed RLE, uncompressed RLE (crowd)."""
    ont = load_ontology()
    m1 = np.zeros((20, 30), bool)
    m1[3:9, 4:20] = True
    m1[5:7, 10:12] = False
    m2 = np.zeros((20, 30), bool)
    m2[10:18, 1:3] = True
    m3 = np.zeros((16, 12), bool)
    m3[2:14, 5:7] = True
    return {
        "info": {"year": 2020, "version": "1.0", "description": "hand-built"},
        "licenses": [{"id": 3, "name": "CC BY 2.0", "url": "https://example.org/by2"}],
        "images": [
            {
                "id": 7,
                "width": 30,
                "height": 20,
                "file_name": "seven.jpg",
                "license": 3,
                "original_url": "https://example.org/7.jpg",
                "time_captured": "March 29, 2016",
                "isstatic": 1,
                "kaggle_id": "0007",
            },
            {
                "id": 3,
                "width": 12,
                "height": 16,
                "file_name": "three.jpg",
                "license": 3,
                "original_url": "https://example.org/3.jpg",
                "time_captured": "n/a",
                "isstatic": 1,
                "kaggle_id": "0003",
            },
            {"id": 11, "width": 8, "height": 8, "file_name": "empty.jpg"},
        ],
        "annotations": [
            {
                "id": 40,
                "image_id": 7,
                "category_id": 1,
                "segmentation": [[4.5, 3.25, 19.0, 3.0, 19.5, 8.75, 4.0, 8.0]],
                "bbox": [4.0, 3.0, 15.5, 5.75],
                "area": 88.0,
                "iscrowd": 0,
                "attribute_ids": [115, 136],
            },
            {
                "id": 41,
                "image_id": 7,
                "category_id": 31,
                "segmentation": rle_str(m1),
                "bbox": box_of(m1),
                "area": float(m1.sum()),
                "iscrowd": 0,
                "attribute_ids": [],
            },
            {
                "id": 5,
                "image_id": 3,
                "category_id": 23,
                "segmentation": rle_counts(m3),
                "bbox": box_of(m3),
                "area": float(m3.sum()),
                "iscrowd": 1,
                "attribute_ids": [],
            },
            {
                "id": 42,
                "image_id": 7,
                "category_id": 6,
                "segmentation": rle_counts(m2),
                "bbox": box_of(m2),
                "area": float(m2.sum()),
                "iscrowd": 0,
                "attribute_ids": [0, 300],
            },
            {
                "id": 6,
                "image_id": 3,
                "category_id": 33,
                "segmentation": [[1, 1, 4, 1, 4, 4], [6, 6, 9, 6, 9, 10, 6, 10]],
                "bbox": [1.0, 1.0, 8.0, 9.0],
                "area": 18.0,
                "iscrowd": 0,
                "attribute_ids": [160],
            },
        ],
        "categories": ont.categories_json(),
        "attributes": ont.attributes_json(),
    }


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path
