"""Mask ops as pure functions: segmentation (polygons / RLE) ↔ compressed RLE ↔ bool arrays.

All RLE here is COCO's: column-major runs starting with background, ``size`` = ``[h, w]``.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["segmentation_to_rle", "encode_mask", "decode_rle", "rle_to_json"]


def segmentation_to_rle(segmentation, height: int, width: int) -> dict:
    """Polygons, uncompressed RLE or compressed RLE → one compressed RLE (counts bytes)."""
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        return mask_utils.merge(rles)
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            return {"size": list(segmentation["size"]), "counts": counts.encode("ascii")}
        return {"size": list(segmentation["size"]), "counts": counts}
    raise TypeError(f"segmentation must be a polygon list or an RLE dict, not {type(segmentation)}")


def encode_mask(mask: np.ndarray) -> dict:
    """``H×W`` bool/uint8 mask → compressed RLE (counts bytes)."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def decode_rle(rle: dict) -> np.ndarray:
    """Compressed RLE → ``H×W bool``."""
    if isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def rle_to_json(rle: dict) -> dict:
    """Compressed RLE with ``counts`` as str, ready for JSON."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": counts}
