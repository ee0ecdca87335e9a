"""What the :class:`~fashionkit.inference.predictor.Predictor` returns for one photo."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fashionkit.data.masks import decode_rle
from fashionkit.errors import Problem
from fashionkit.inference.images import Photo

__all__ = ["AttributeScore", "DetectedItem", "Prediction"]


@dataclass(frozen=True)
class AttributeScore:
    """A Fashionpedia attribute (id 0..340, its name) and its sigmoid score in [0, 1]."""

    id: int
    name: str
    score: float


@dataclass(frozen=True)
class DetectedItem:
    """One detected item, in the original photo's pixels.

    - ``index``: position in :attr:`Prediction.items` (items are sorted by decreasing score).
    - ``category_id`` / ``name`` / ``supercategory`` / ``group``: the Fashionpedia category
      (id 0..45, e.g. ``"top, t-shirt, sweatshirt"``, super category ``"upperbody"``, and the
      evaluator's group ``"garment"``, ``"accessory"`` or ``"part"``).
    - ``box``: XYXY float pixels. ``score``: detection confidence in [0, 1].
    - ``mask``: compressed COCO RLE ``{"size": [H, W], "counts": str}`` of the photo's size.
    - ``attributes``: the attributes scored at least the attribute threshold, best first.
    - ``parent``: for a part (sleeve, pocket …), the ``index`` of the item it belongs to,
      found by mask overlap (:func:`~fashionkit.inference.parts.link_parts`); else ``None``.
    """

    index: int
    category_id: int
    name: str
    supercategory: str
    group: str
    box: tuple[float, float, float, float]
    score: float
    mask: dict
    attributes: tuple[AttributeScore, ...]
    parent: int | None = None

    @property
    def short_name(self) -> str:
        """The category's first name form: ``"top"`` for ``"top, t-shirt, sweatshirt"``."""
        return self.name.split(",")[0].strip()

    def mask_array(self) -> np.ndarray:
        """The mask as ``H×W`` bool."""
        return decode_rle(self.mask)

    def to_dict(self) -> dict:
        """JSON-ready builtins."""
        return {
            "index": self.index,
            "category_id": self.category_id,
            "name": self.name,
            "supercategory": self.supercategory,
            "group": self.group,
            "box": list(self.box),
            "score": self.score,
            "mask": dict(self.mask),
            "attributes": [{"id": a.id, "name": a.name, "score": a.score}
                           for a in self.attributes],
            "parent": self.parent,
        }


@dataclass
class Prediction:
    """The items found in one photo.

    ``name``: the photo's file path (or ``"<image i>"``). ``image_size``: ``(H, W)`` of the
    photo as decoded (EXIF orientation applied); every box and mask refers to it. ``items``:
    best score first. ``photo``: the decoded photo (kept for drawing; ``None`` once dropped).
    ``error``: set, with no items, when the photo could not be loaded or read.
    """

    name: str
    image_size: tuple[int, int]
    items: list[DetectedItem] = field(default_factory=list)
    photo: Photo | None = None
    error: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def parts_of(self, index: int) -> list[DetectedItem]:
        """The parts linked to item ``index``."""
        return [item for item in self.items if item.parent == index]

    def to_results(self, image_id: int, *, with_attribute_scores: bool = True) -> list[dict]:
        """Fashionpedia result-format records, one per item: ``{"image_id", "category_id",
        "attribute_ids", "segmentation": RLE, "bbox": [x, y, w, h], "score"}`` and, with
        ``with_attribute_scores``, ``"attribute_scores"`` in the order of ``attribute_ids``."""
        out = []
        for item in self.items:
            x0, y0, x1, y1 = item.box
            record = {
                "image_id": int(image_id),
                "category_id": item.category_id,
                "attribute_ids": [a.id for a in item.attributes],
                "segmentation": dict(item.mask),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": item.score,
            }
            if with_attribute_scores:
                record["attribute_scores"] = [a.score for a in item.attributes]
            out.append(record)
        return out

    def to_dict(self) -> dict:
        """JSON-ready builtins (without the photo's pixels)."""
        return {
            "name": self.name,
            "image_size": list(self.image_size),
            "items": [item.to_dict() for item in self.items],
            "error": None if self.error is None else str(self.error),
        }
