"""The synthetic world's ground truth as real :class:`~fashionkit.inference.Prediction`s, for
tests of what consumes detections (ingest, the service) without a trained model, and the
person's own word on which of their items are one (merging by the ground truth)."""

from __future__ import annotations

from pycocotools import mask as mask_utils

from fashionkit.inference import AttributeScore, Prediction
from fashionkit.inference import DetectedItem as Detection
from fashionkit.inference.images import Photo, load_photo
from fashionkit.ontology import load_ontology


def rle_of(segmentation, h, w):
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    else:
        rle = dict(segmentation)
    if isinstance(rle["counts"], bytes):
        rle["counts"] = rle["counts"].decode()
    return rle


def truth_prediction(path, annotations: list[dict]) -> Prediction:
    """Photo ``path`` with its synthetic ``annotations`` as detections (score 0.9, attributes
    0.8, parts linked through the annotations' ``synth.part_of``)."""
    onto = load_ontology()
    photo = load_photo(path)
    h, w = photo.size
    position = {a["id"]: k for k, a in enumerate(annotations)}
    items = []
    for k, a in enumerate(annotations):
        cat = onto.category(a["category_id"])
        x, y, bw, bh = a["bbox"]
        parent = a["synth"]["part_of"]
        items.append(
            Detection(
                index=k,
                category_id=cat.id,
                name=cat.name,
                supercategory=cat.supercategory,
                group=cat.group,
                box=(x, y, x + bw, y + bh),
                score=0.9,
                mask=rle_of(a["segmentation"], h, w),
                attributes=tuple(
                    AttributeScore(i, onto.attribute(i).name, 0.8) for i in a["attribute_ids"]
                ),
                parent=position.get(parent) if parent is not None else None,
            )
        )
    return Prediction(name=str(path), image_size=(h, w), items=items,
                      photo=Photo(photo.pixels, str(path)))


def merge_as_the_person_says(wardrobe, truth_of: dict[str, str], first=frozenset()) -> dict:
    """Merge the wardrobe's items that are one item of the ground truth (``truth_of``: item id
    → its closet item), as the person who owns them would, into the one of ``first`` (added
    earlier) or else the first by id; closet item → the wardrobe item it is."""
    groups: dict[str, list[str]] = {}
    for key in sorted(wardrobe.existing_keys(truth_of), key=lambda k: (k not in first, k)):
        groups.setdefault(truth_of[key], []).append(key)
    for keys in groups.values():
        for key in keys[1:]:
            wardrobe.merge(keys[0], key)
    return {item: keys[0] for item, keys in groups.items()}
