"""Part → item links on hand-drawn masks."""

from __future__ import annotations

import numpy as np
import pytest

from fashionkit.data.masks import encode_mask
from fashionkit.inference.parts import link_parts
from fashionkit.ontology import load_ontology

ONT = load_ontology()
TOP = ONT.find_category("top").id
PANTS = ONT.find_category("pants").id
BAG = ONT.find_category("bag").id
SLEEVE = ONT.find_category("sleeve").id
POCKET = ONT.find_category("pocket").id
ZIPPER = ONT.find_category("zipper").id
NECKLINE = ONT.find_category("neckline").id


def _box(y0: int, y1: int, x0: int, x1: int) -> dict:
    m = np.zeros((20, 20), bool)
    m[y0:y1, x0:x1] = True
    return encode_mask(m)


def test_parts_go_to_the_item_covering_most_of_them():
    masks = [
        _box(0, 10, 0, 20),    # 0 top: upper half
        _box(10, 20, 0, 20),   # 1 pants: lower half
        _box(2, 8, 0, 4),      # 2 sleeve inside the top
        _box(8, 14, 10, 14),   # 3 pocket: 2 rows on the top, 4 on the pants → pants
        _box(0, 2, 8, 12),     # 4 neckline: all on the top
        _box(16, 20, 16, 20),  # 5 zipper: pants
        _box(12, 16, 2, 6),    # 6 bag over the pants (an item, never a part)
    ]
    cats = [TOP, PANTS, SLEEVE, POCKET, NECKLINE, ZIPPER, BAG]
    assert link_parts(cats, masks) == [None, None, 0, 1, 0, 1, None]


def test_thresholds_ties_and_empty_cases():
    away = np.zeros((20, 20), bool)
    away[15:20, 15:20] = True
    masks = [_box(0, 10, 0, 10), _box(0, 10, 0, 10), encode_mask(away), _box(8, 12, 0, 10)]
    cats = [TOP, TOP, SLEEVE, SLEEVE]
    # Sleeve 2 touches no item; sleeve 3 is half inside both (identical) tops: the first wins.
    assert link_parts(cats, masks) == [None, None, None, 0]
    assert link_parts(cats, masks, min_overlap=0.6) == [None, None, None, None]
    assert link_parts([SLEEVE], [_box(0, 2, 0, 2)]) == [None]
    assert link_parts([], []) == []
    with pytest.raises(ValueError):
        link_parts([TOP], [])
