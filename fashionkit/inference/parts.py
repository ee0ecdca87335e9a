"""Linking garment parts to the item they belong to (sleeve → its top), by mask overlap.

Fashionpedia annotates a garment's mask over the whole garment, its parts included (a top's
mask covers its sleeves, collar and pockets), and parts as their own instances. So the item a
part belongs to is the whole item that covers most of the part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.ontology import PART_IDS

__all__ = ["DEFAULT_PART_OVERLAP", "link_parts"]

# A part is linked when at least this share of its pixels lies inside the item. Lower than
# one half because neckline and hood masks are drawn partly over skin and background.
DEFAULT_PART_OVERLAP = 0.3


def link_parts(category_ids: Sequence[int], masks: Sequence[dict],
               min_overlap: float = DEFAULT_PART_OVERLAP) -> list[int | None]:
    """For each detection, the index of the whole item it is a part of, or ``None``.

    ``category_ids``: Fashionpedia category ids of ``N`` detections, best score first.
    ``masks``: their masks as ``N`` compressed RLEs (pycocotools dicts, all the same size).
    Parts (categories 27..45) are linked to the non-part detection (garment or accessory:
    zippers and buckles also sit on bags, belts and shoes) covering the largest share of the
    part's pixels, ``|part ∩ item| / |part|``, if that share is at least ``min_overlap``; ties
    go to the earlier (higher-scoring) item. Non-parts and unlinked parts get ``None``.
    """
    if len(category_ids) != len(masks):
        raise ValueError(f"{len(category_ids)} category ids but {len(masks)} masks")
    parts = set(PART_IDS)
    part_rows = [i for i, c in enumerate(category_ids) if int(c) in parts]
    item_rows = [i for i, c in enumerate(category_ids) if int(c) not in parts]
    links: list[int | None] = [None] * len(category_ids)
    if not part_rows or not item_rows:
        return links
    # With iscrowd set for the "ground truth" side, pycocotools' iou is
    # |dt ∩ gt| / |dt|: exactly the share of the part inside the item.
    cover = np.asarray(mask_utils.iou([masks[i] for i in part_rows],
                                      [masks[j] for j in item_rows],
                                      [1] * len(item_rows))).reshape(len(part_rows),
                                                                     len(item_rows))
    for row, i in enumerate(part_rows):
        best = int(np.argmax(cover[row]))  # argmax keeps the first of equal maxima
        if cover[row, best] >= min_overlap and cover[row, best] > 0:
            links[i] = item_rows[best]
    return links
