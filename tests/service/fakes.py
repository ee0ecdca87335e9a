"""A predictor that returns the synthetic world's ground truth for photos it was shown.

It knows photos by the SHA-256 of their bytes (the service stores uploads under names of its
own), and returns real :class:`~fashionkit.inference.Prediction` objects, so ingest and the
overlay drawing run exactly as with the model.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

from pycocotools import mask as mask_utils

from fashionkit.data.synth import render_image
from fashionkit.inference import AttributeScore, Prediction
from fashionkit.inference import Item as Detection
from fashionkit.inference.images import Photo, load_photo
from fashionkit.ontology import load_ontology


def _rle(segmentation, h, w):
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    else:
        rle = dict(segmentation)
    if isinstance(rle["counts"], bytes):
        rle["counts"] = rle["counts"].decode()
    return rle


class TruthPredictor:
    def __init__(self):
        self.truth: dict[str, list[dict]] = {}
        self.calls = 0
        self.gate: threading.Event | None = None  # when set, calls wait for it
        self.fail: Exception | None = None

    def photo(self, index: int, size: int = 160) -> bytes:
        """PNG bytes of synthetic photo ``index``, remembered with its annotations."""
        synth = render_image(seed=5, index=index, size=size, max_figures=1)
        buffer = io.BytesIO()
        synth.image.save(buffer, format="PNG")
        data = buffer.getvalue()
        self.truth[hashlib.sha256(data).hexdigest()] = synth.annotations
        return data

    def garments(self, data: bytes) -> int:
        """How many of the photo's objects are not parts (the items ingest should add)."""
        from fashionkit.ontology import PART_IDS

        annotations = self.truth[hashlib.sha256(data).hexdigest()]
        return sum(a["category_id"] not in PART_IDS for a in annotations)

    def __call__(self, paths, on_error="raise"):
        self.calls += 1
        if self.gate is not None and not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.fail is not None:
            raise self.fail
        onto = load_ontology()
        out = []
        for path in paths:
            annotations = self.truth[hashlib.sha256(Path(path).read_bytes()).hexdigest()]
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
                        mask=_rle(a["segmentation"], h, w),
                        attributes=tuple(
                            AttributeScore(i, onto.attribute(i).name, 0.8)
                            for i in a["attribute_ids"]
                        ),
                        parent=position.get(parent) if parent is not None else None,
                    )
                )
            out.append(
                Prediction(
                    name=str(path),
                    image_size=(h, w),
                    items=items,
                    photo=Photo(photo.pixels, str(path)),
                )
            )
        return out
