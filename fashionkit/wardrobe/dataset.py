"""The wardrobe's photos as a Fashionpedia-format dataset, for fine-tuning on personal photos.

:func:`export_dataset` writes ``OUT/images/<sha256><suffix>`` (copies of the stored photos) and
``OUT/annotations.json`` in the Fashionpedia format (``images``, ``annotations`` with RLE
``segmentation``, XYWH ``bbox``, ``area``, ``iscrowd`` 0 and ``attribute_ids``, ``categories``
and ``attributes`` of the built-in ontology). Each item keeps the mask and box the detector
found and takes the category and attributes as the person corrected them; its parts
(details) are written as their own annotations, as Fashionpedia annotates them. An item seen
again in a photo (the other shoe of a pair, a duplicate merged into it: its appearances) is
annotated there too: a garment left out would teach the detector it is background. Items
entered by hand have no photo and are not part of the dataset.

The file reads back with :func:`fashionkit.data.read_annotations` and trains with
``fashionkit train --recipe finetune --weights BASE``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fashionkit.data.masks import rle_areas, rle_to_json
from fashionkit.ontology import load_ontology
from fashionkit.wardrobe.database import Wardrobe

__all__ = ["export_dataset"]


def export_dataset(wardrobe: Wardrobe, out_dir: str | Path) -> Path:
    """Write the dataset; returns the annotation file's path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    onto = load_ontology()
    images: list[dict] = []
    annotations: list[dict] = []
    for image_id, photo in enumerate(wardrobe.annotated_photos(), start=1):
        file_name = f"{photo.sha256}{photo.path.suffix}"
        target = out / "images" / file_name
        if not target.exists():
            shutil.copyfile(photo.path, target)
        images.append(
            {"id": image_id, "file_name": file_name, "width": photo.width, "height": photo.height}
        )
        areas = rle_areas([dict(o.mask) for o in photo.objects])
        for obj, area in zip(photo.objects, areas, strict=True):
            x0, y0, x1, y1 = obj.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj.category_id,
                    "segmentation": rle_to_json(dict(obj.mask)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float(area),
                    "iscrowd": 0,
                    "attribute_ids": list(obj.attribute_ids),
                }
            )
    payload = {
        "info": {"description": f"fashionkit wardrobe of {wardrobe.user!r}"},
        "images": images,
        "annotations": annotations,
        "categories": onto.categories_json(),
        "attributes": onto.attributes_json(),
    }
    path = out / "annotations.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path
