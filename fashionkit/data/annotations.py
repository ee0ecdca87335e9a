"""The in-memory annotation set every reader returns and every consumer reads.

Records use Fashionpedia ids and COCO conventions:

- :class:`ImageInfo`: ``id``, ``file_name`` (relative to the images folder), ``width``,
  ``height`` (as the annotation file states them).
- :class:`Annotation`: ``bbox`` is XYWH in pixels, ``area`` the mask's pixel count,
  ``segmentation`` a list of polygons (``[[x0, y0, x1, y1, ...], ...]``) or an RLE dict
  (``{"size": [h, w], "counts": str | list[int]}``, compressed or uncompressed),
  ``attribute_ids`` Fashionpedia attribute ids.

Masks are decoded only on request (:meth:`AnnotationSet.mask`, :meth:`AnnotationSet.rle`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fashionkit.ontology import Ontology, load_ontology

__all__ = ["ImageInfo", "Annotation", "AnnotationSet"]

Segmentation = list | dict


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Annotation:
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    segmentation: Segmentation
    iscrowd: int = 0
    attribute_ids: tuple[int, ...] = field(default_factory=tuple)


class AnnotationSet:
    """Images and their annotations, indexed by image id.

    ``images`` keep their input order; ``annotations(image_id)`` returns that image's
    annotations in input order. ``source`` names the file it was read from (for messages).
    """

    def __init__(
        self,
        images: Sequence[ImageInfo],
        annotations: Sequence[Annotation],
        ontology: Ontology | None = None,
        source: str | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.ontology = ontology or load_ontology()
        self.source = source
        self.info = dict(info or {})
        self._images = list(images)
        self._image_by_id = {im.id: im for im in self._images}
        self._anns = list(annotations)
        by_image: dict[int, list[int]] = {}
        for i, a in enumerate(self._anns):
            by_image.setdefault(a.image_id, []).append(i)
        self._by_image = by_image

    # -- images ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._images)

    @property
    def images(self) -> Sequence[ImageInfo]:
        return self._images

    @property
    def image_ids(self) -> list[int]:
        return [im.id for im in self._images]

    def image(self, image_id: int) -> ImageInfo:
        try:
            return self._image_by_id[image_id]
        except KeyError:
            raise KeyError(f"no image with id {image_id} in {self.source or 'this set'}") from None

    # -- annotations -----------------------------------------------------------------------
    @property
    def num_annotations(self) -> int:
        return len(self._anns)

    def annotations(self, image_id: int) -> list[Annotation]:
        return [self._anns[i] for i in self._by_image.get(image_id, ())]

    def iter_annotations(self) -> Iterator[Annotation]:
        return iter(self._anns)

    # -- masks -----------------------------------------------------------------------------
    def rle(self, ann: Annotation) -> dict:
        """Compressed RLE (pycocotools form, ``counts`` as bytes) in the image's size."""
        from fashionkit.data.masks import segmentation_to_rle

        im = self.image(ann.image_id)
        return segmentation_to_rle(ann.segmentation, im.height, im.width)

    def mask(self, ann: Annotation) -> np.ndarray:
        """The annotation's mask, ``H×W bool``."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.rle(ann)).astype(bool)

    # -- output ----------------------------------------------------------------------------
    def to_json(self) -> dict:
        """Fashionpedia JSON (``info``, ``images``, ``annotations``, ``categories``,
        ``attributes``). Compressed RLE counts are written as str."""
        anns = []
        for a in self._anns:
            seg = a.segmentation
            if isinstance(seg, dict) and isinstance(seg.get("counts"), bytes):
                seg = {"size": list(seg["size"]), "counts": seg["counts"].decode("ascii")}
            anns.append(
                {
                    "id": a.id,
                    "image_id": a.image_id,
                    "category_id": a.category_id,
                    "segmentation": seg,
                    "bbox": [float(v) for v in a.bbox],
                    "area": float(a.area),
                    "iscrowd": int(a.iscrowd),
                    "attribute_ids": [int(v) for v in a.attribute_ids],
                }
            )
        return {
            "info": self.info,
            "images": [
                {"id": im.id, "file_name": im.file_name, "width": im.width, "height": im.height}
                for im in self._images
            ],
            "annotations": anns,
            "categories": self.ontology.categories_json(),
            "attributes": self.ontology.attributes_json(),
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()), encoding="utf-8")
