"""Ground truth and detections as column arrays, the form every metric here reads.

Both index images by position in :attr:`GroundTruth.image_ids` (sorted ascending, as the official
evaluator orders them). Boxes are XYWH in pixels. Segmentations are kept as given (polygons,
uncompressed or compressed RLE) and turned into compressed RLE on demand. Attribute sets are
multi-hot vectors over the ontology's attributes in id order, bit-packed into ``uint64`` words
(:mod:`fashionkit.evaluation.attribute_sets`): row ``i`` of ``attributes`` is ``(W,)`` with
``W = ceil(num_attributes / 64)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fashionkit.data.masks import segmentation_to_rle
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.evaluation.result_files import build_detections, validate_gt_records
from fashionkit.ontology import Ontology, load_ontology

__all__ = ["GroundTruth", "ResultsTable"]


@dataclass
class GroundTruth:
    """Annotations of a set of images, as arrays (``G`` annotations, ``I`` images).

    ``image_ids (I,)`` sorted ascending; ``heights``/``widths (I,)``; per annotation:
    ``ann_ids (G,)``, ``image_index (G,)`` into ``image_ids``, ``category_ids (G,)``,
    ``iscrowd (G,) bool``, ``areas (G,) float64`` (the file's ``area``), ``boxes (G, 4)`` XYWH,
    ``segmentations`` (G items as in the file), ``attributes (G, W) uint64``.
    Annotation order within an image is the file's order (it breaks ties in matching).
    """

    image_ids: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    ann_ids: np.ndarray
    image_index: np.ndarray
    category_ids: np.ndarray
    iscrowd: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray
    segmentations: list[Any]
    attributes: np.ndarray
    ontology: Ontology = field(default_factory=load_ontology)
    source: str = "ground truth"
    category_names: dict[int, str] = field(default_factory=dict)
    _rles: list[dict] | None = field(default=None, repr=False)

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def __len__(self) -> int:
        return len(self.ann_ids)

    def rles(self) -> list[dict]:
        """Compressed RLE of every annotation (pycocotools form), computed once."""
        if self._rles is None:
            missing = [
                int(a) for a, s in zip(self.ann_ids, self.segmentations, strict=True) if s is None
            ]
            if missing:
                raise InvalidDataError(
                    [
                        Problem(
                            self.source,
                            f"annotation id {a}",
                            "has no segmentation (mask evaluation needs one)",
                        )
                        for a in missing
                    ]
                )
            h, w = self.heights[self.image_index], self.widths[self.image_index]
            self._rles = [
                segmentation_to_rle(seg, int(hh), int(ww))
                for seg, hh, ww in zip(self.segmentations, h, w, strict=True)
            ]
        return self._rles

    def subset(self, image_ids: Iterable[int]) -> GroundTruth:
        """The ground truth of these images only (ids must be present)."""
        keep_img = np.isin(self.image_ids, np.fromiter(image_ids, dtype=np.int64))
        new_index = np.cumsum(keep_img) - 1
        keep = keep_img[self.image_index]
        rles = self._rles
        return GroundTruth(
            image_ids=self.image_ids[keep_img],
            heights=self.heights[keep_img],
            widths=self.widths[keep_img],
            ann_ids=self.ann_ids[keep],
            image_index=new_index[self.image_index[keep]],
            category_ids=self.category_ids[keep],
            iscrowd=self.iscrowd[keep],
            areas=self.areas[keep],
            boxes=self.boxes[keep],
            segmentations=[s for s, k in zip(self.segmentations, keep, strict=True) if k],
            attributes=self.attributes[keep],
            ontology=self.ontology,
            source=self.source,
            category_names=self.category_names,
            _rles=None if rles is None else [r for r, k in zip(rles, keep, strict=True) if k],
        )

    def category_name(self, category_id: int) -> str:
        return self.category_names.get(category_id) or self.ontology.category(category_id).name

    @classmethod
    def from_records(
        cls,
        images: Sequence[dict],
        annotations: Sequence[dict],
        ontology: Ontology | None = None,
        source: str = "ground truth",
        categories: Sequence[dict] = (),
    ) -> GroundTruth:
        """From Fashionpedia/COCO dicts (``images``: ``id, height, width``; ``annotations``:
        ``id, image_id, category_id, bbox, area, segmentation, iscrowd, attribute_ids``).
        Invalid records raise :class:`~fashionkit.data.errors.InvalidDataError` naming them."""
        ontology = ontology or load_ontology()
        cols = validate_gt_records(images, annotations, ontology, source)
        names = {
            c["id"]: str(c["name"])
            for c in categories
            if isinstance(c, dict) and isinstance(c.get("id"), int) and "name" in c
        }
        return cls(ontology=ontology, source=source, category_names=names, **cols)

    @classmethod
    def from_annotation_set(cls, annotations: Any) -> GroundTruth:
        """From a :class:`fashionkit.data.AnnotationSet` (already validated by its reader)."""
        images = [
            {"id": im.id, "height": im.height, "width": im.width} for im in annotations.images
        ]
        anns = [
            {
                "id": a.id,
                "image_id": a.image_id,
                "category_id": a.category_id,
                "bbox": list(a.bbox),
                "area": a.area,
                "segmentation": a.segmentation,
                "iscrowd": a.iscrowd,
                "attribute_ids": list(a.attribute_ids),
            }
            for a in annotations.iter_annotations()
        ]
        source = getattr(annotations, "source", None) or "annotation set"
        return cls.from_records(images, anns, annotations.ontology, source)


@dataclass
class ResultsTable:
    """A results file: its detections (``N`` of them) in the Fashionpedia result format, as arrays.

    ``image_index (N,)`` into the ground truth's ``image_ids``; ``category_ids (N,)``;
    ``scores (N,) float64``; ``boxes (N, 4)`` XYWH or ``None`` when the results carry no boxes;
    ``segmentations``: N compressed RLE dicts or ``None`` for box-only results; ``areas (N,)``:
    the box area when boxes are given, else the mask area (the official loader's rule, which
    decides area-range membership); ``attributes (N, W) uint64``; ragged attribute indices
    ``attr_offsets (N+1,)``, ``attr_index`` and optional ``attr_scores`` (for attribute metrics).
    ``order (N,)`` is each detection's index in the results list (it breaks score ties).
    """

    image_index: np.ndarray
    category_ids: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray | None
    segmentations: list[dict] | None
    areas: np.ndarray
    attributes: np.ndarray
    attr_offsets: np.ndarray
    attr_index: np.ndarray
    attr_scores: np.ndarray | None
    order: np.ndarray
    source: str = "results"

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_records(
        cls,
        records: list[Any],
        gt: GroundTruth,
        source: str,
        iou_type: str | None = None,
    ) -> ResultsTable:
        """Typed result records (:func:`~fashionkit.evaluation.result_files.decode_results`)
        checked against ``gt``'s images and ontology; raises
        :class:`~fashionkit.errors.InvalidDataError` listing each bad record by its index."""
        cols = build_detections(
            records, gt.image_ids, gt.heights, gt.widths, gt.ontology, source, iou_type
        )
        return cls(source=source, **cols)
