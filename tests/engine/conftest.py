"""A tiny, fast shapes dataset in Fashionpedia format for engine tests: rectangles (``pants``),
ellipses (``bag, wallet``) and triangles (``skirt``) with a pattern attribute, on noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fashionkit.data.masks import encode_mask, rle_to_json
from fashionkit.ontology import load_ontology


def make_shapes_dataset(root: Path, n_images: int, size: int = 64, seed: int = 0,
                        name: str = "train") -> Path:
    ont = load_ontology()
    rng = np.random.default_rng(seed)
    stripe = ont.find_attribute("stripe").id
    plain = ont.find_attribute("plain (pattern)").id
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        image_id = seed * 10_000 + i + 1
        canvas = (rng.integers(0, 60, (size, size, 3))).astype(np.uint8)
        img = Image.fromarray(canvas)
        label_map = np.zeros((size, size), np.int32)
        items = []
        for k in range(int(rng.integers(1, 3))):
            kind = int(rng.integers(0, 3))
            w, h = rng.integers(size // 4, size // 2, 2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            layer = Image.new("L", (size, size), 0)
            draw = ImageDraw.Draw(layer)
            box = (int(x0), int(y0), int(x0 + w), int(y0 + h))
            if kind == 0:
                draw.rectangle(box, fill=1)
                cat = 6
            elif kind == 1:
                draw.ellipse(box, fill=1)
                cat = 24
            else:
                draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=1)
                cat = 8
            m = np.array(layer, bool)
            label_map[m] = k + 1
            striped = bool(rng.integers(0, 2))
            colour = rng.integers(120, 255, 3)
            pix = np.array(img)
            ys, xs = np.nonzero(m)
            col = np.tile(colour, (len(ys), 1))
            if striped:
                col[(ys // 4) % 2 == 0] //= 3
            pix[ys, xs] = col
            img = Image.fromarray(pix.astype(np.uint8))
            items.append((k + 1, cat, striped))
        for k, cat, striped in items:
            m = label_map == k
            if m.sum() < 20:
                continue
            ys, xs = np.nonzero(m)
            attrs = [stripe if striped else plain] if cat in (6, 8) else []
            anns.append({
                "id": len(anns) + 1 + seed * 100_000,
                "image_id": image_id,
                "category_id": cat,
                "segmentation": rle_to_json(encode_mask(m)),
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                         float(ys.max() - ys.min() + 1)],
                "area": float(m.sum()),
                "iscrowd": 0,
                "attribute_ids": attrs,
            })
        file_name = f"{name}_{i:04d}.png"
        img.save(images_dir / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
    path = root / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": ont.categories_json(),
                                "attributes": ont.attributes_json()}))
    return path


@pytest.fixture
def shapes(tmp_path):
    """``(train.json, val.json, images_dir)`` with 8 train and 4 val images of 64²."""
    train = make_shapes_dataset(tmp_path, 8, seed=0, name="train")
    val = make_shapes_dataset(tmp_path, 4, seed=1, name="val")
    return train, val, tmp_path / "images"
