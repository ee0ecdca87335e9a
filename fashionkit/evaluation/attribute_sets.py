"""Attribute sets as bit-packed multi-hot rows, the form both ground truth and detections use.

Attribute ids are mapped to contiguous indices in the ontology's id order; row ``i`` of a packed
array is ``(W,) uint64`` with ``W = ceil(num_attributes / 64)``.
"""

from __future__ import annotations

import numpy as np

from fashionkit.ontology import Ontology

__all__ = ["attribute_index_lookup", "pack_attributes"]


def attribute_index_lookup(ontology: Ontology) -> np.ndarray:
    """``(max_id + 1,)`` int: attribute id → contiguous index, ``-1`` where no attribute has it."""
    ids = np.asarray(ontology.attribute_ids, dtype=np.int64)
    lut = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    lut[ids] = np.arange(len(ids))
    return lut


def pack_attributes(
    offsets: np.ndarray, indices: np.ndarray, num_rows: int, num_attributes: int
) -> np.ndarray:
    """Ragged attribute indices (row ``i`` is ``indices[offsets[i]:offsets[i+1]]``, contiguous
    0-based) → ``(num_rows, W)`` uint64 bit sets. Duplicates collapse, as in a multi-hot vector."""
    words = (num_attributes + 63) // 64
    packed = np.zeros(num_rows * words, dtype=np.uint64)
    if len(indices):
        rows = np.repeat(np.arange(num_rows), np.diff(offsets))
        flat = rows * words + indices // 64
        bits = np.left_shift(np.uint64(1), (indices % 64).astype(np.uint64))
        np.bitwise_or.at(packed, flat, bits)
    return packed.reshape(num_rows, words)
