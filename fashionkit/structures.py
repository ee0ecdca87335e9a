"""Per-image containers that cross layers.

:class:`Detections` is what the model predicts for one image, in Fashionpedia ids (never
contiguous training labels), ready to be written in the Fashionpedia result format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from fashionkit.data.masks import encode_mask, rle_to_json
from fashionkit.ontology import load_ontology

__all__ = ["Detections"]


@dataclass
class Detections:
    """Detections of one image, sorted by decreasing score.

    - ``boxes``: float32 ``N×4`` XYXY in pixels of the image of size ``image_size``.
    - ``category_ids``: int64 ``N`` Fashionpedia category ids (0..45).
    - ``scores``: float32 ``N`` detection confidence in [0, 1].
    - ``masks``: bool ``N×H×W`` with ``(H, W) == image_size``.
    - ``attribute_scores``: float32 ``N×A`` sigmoid scores, column ``j`` is contiguous
      attribute index ``j`` (``Ontology.index_to_attribute(j)`` gives its Fashionpedia id).
    - ``attribute_ids``: per detection, the Fashionpedia attribute ids whose score reached
      the model's threshold, highest score first.
    - ``image_size``: ``(H, W)`` of the image the coordinates refer to.
    """

    boxes: Tensor
    category_ids: Tensor
    scores: Tensor
    masks: Tensor
    attribute_scores: Tensor
    attribute_ids: list[list[int]]
    image_size: tuple[int, int]
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.boxes.shape[0]
        h, w = self.image_size
        checks = {
            "boxes": (tuple(self.boxes.shape), (n, 4)),
            "category_ids": (tuple(self.category_ids.shape), (n,)),
            "scores": (tuple(self.scores.shape), (n,)),
            "masks": (tuple(self.masks.shape), (n, h, w)),
        }
        for name, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"Detections.{name} has shape {got}, expected {want}")
        if self.attribute_scores.ndim != 2 or self.attribute_scores.shape[0] != n:
            raise ValueError(f"Detections.attribute_scores has shape "
                             f"{tuple(self.attribute_scores.shape)}, expected ({n}, A)")
        if len(self.attribute_ids) != n:
            raise ValueError(f"Detections.attribute_ids has {len(self.attribute_ids)} entries for "
                             f"{n} detections")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, image_size: tuple[int, int], num_attributes: int = 294) -> Detections:
        h, w = image_size
        return cls(
            boxes=torch.zeros((0, 4)),
            category_ids=torch.zeros((0,), dtype=torch.int64),
            scores=torch.zeros((0,)),
            masks=torch.zeros((0, h, w), dtype=torch.bool),
            attribute_scores=torch.zeros((0, num_attributes)),
            attribute_ids=[],
            image_size=(h, w),
        )

    def to(self, device: torch.device | str) -> Detections:
        return Detections(
            boxes=self.boxes.to(device),
            category_ids=self.category_ids.to(device),
            scores=self.scores.to(device),
            masks=self.masks.to(device),
            attribute_scores=self.attribute_scores.to(device),
            attribute_ids=[list(a) for a in self.attribute_ids],
            image_size=self.image_size,
            extra=dict(self.extra),
        )

    def __getitem__(self, index) -> Detections:
        """Select detections by a bool mask, an index tensor, a list or a slice."""
        if isinstance(index, slice):
            idx = torch.arange(len(self))[index]
        else:
            idx = torch.as_tensor(index)
            if idx.dtype == torch.bool:
                idx = torch.where(idx)[0]
            idx = idx.reshape(-1).long()
        return Detections(
            boxes=self.boxes[idx],
            category_ids=self.category_ids[idx],
            scores=self.scores[idx],
            masks=self.masks[idx],
            attribute_scores=self.attribute_scores[idx],
            attribute_ids=[self.attribute_ids[i] for i in idx.tolist()],
            image_size=self.image_size,
            extra=dict(self.extra),
        )

    def to_results(self, image_id: int, *, with_attribute_scores: bool = False) -> list[dict]:
        """Fashionpedia result-format records, one per detection.

        ``{"image_id", "category_id", "attribute_ids", "segmentation": {"size": [H, W],
        "counts": str}, "bbox": [x, y, w, h], "score"}``; with ``with_attribute_scores``, also
        ``"attribute_scores"``: the scores of the listed ``attribute_ids``, in the same order.
        """
        ontology = load_ontology()
        index_of = {a: ontology.attribute_to_index(a) for ids in self.attribute_ids for a in ids}
        boxes = self.boxes.detach().float().cpu().numpy()
        masks = self.masks.detach().cpu().numpy().astype(np.uint8)
        scores = self.scores.detach().float().cpu().tolist()
        cats = self.category_ids.detach().cpu().tolist()
        attr_scores = self.attribute_scores.detach().float().cpu()
        out = []
        for i in range(len(self)):
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            record = {
                "image_id": int(image_id),
                "category_id": int(cats[i]),
                "attribute_ids": [int(a) for a in self.attribute_ids[i]],
                "segmentation": rle_to_json(encode_mask(masks[i])),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(scores[i]),
            }
            if with_attribute_scores:
                record["attribute_scores"] = [
                    float(attr_scores[i, index_of[a]]) for a in self.attribute_ids[i]
                ]
            out.append(record)
        return out
