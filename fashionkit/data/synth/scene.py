"""One synthetic image: background, 1–3 dressed figures back to front, exact annotations.

:func:`render_image` is a pure function of ``(seed, index, size)``: the same arguments give the
same pixels and annotations on any machine with the same library versions.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from PIL import Image

from fashionkit.data.synth.accessories import AccessoryBuilder
from fashionkit.data.synth.backgrounds import background
from fashionkit.data.synth.canvas import Canvas
from fashionkit.data.synth.figures import Figure, Z, body_ops, sample_pose
from fashionkit.data.synth.garments import GarmentBuilder
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS, load_ontology

__all__ = ["SynthImage", "render_image", "default_min_area", "attribute_id"]


class SynthImage(NamedTuple):
    """One rendered picture.

    ``image``: RGB ``PIL.Image`` of ``size × size``. ``annotations``: Fashionpedia annotation
    dicts, in drawing order: local ``id`` 1..n (no ``image_id`` yet), ``category_id``,
    ``segmentation`` (polygons when nothing covers the item and it lies inside the image, else
    compressed RLE with str counts; both decode to exactly the visible pixels), ``bbox`` XYWH of
    the mask, ``area`` = mask pixels, ``iscrowd`` 0, ``attribute_ids``, and ``synth``:

    - ``color`` ``"#rrggbb"`` / ``color_name``: the fabric colour covering most of the visible
      item (before shading, outlines and sensor noise);
    - ``colors``, ``color_shares``: the fabric's palette and each colour's share of the item's
      visible pixels in its own fabric (parts in another fabric and buttons left out);
    - ``pattern``: a :data:`~.textures.PATTERN_ATTRIBUTES` key;
    - ``part_of``: local id of the garment (or belt) a part belongs to, else ``None``;
    - ``figure``: which person (0 = farthest); ``kind`` where drawn (``"hoodie"``, ``"boot"``).

    ``meta``: the scene (``background`` kind; per figure its height in pixels and what it wears).
    """

    image: Image.Image
    annotations: list[dict]
    meta: dict


@functools.cache
def _attribute_ids() -> dict[str, int]:
    return {a.name.lower(): a.id for a in load_ontology().attributes}


def attribute_id(name: str) -> int:
    """Fashionpedia attribute id of an exact attribute name (e.g. ``"plain (pattern)"``);
    falls back to the ontology's lenient lookup."""
    found = _attribute_ids().get(name.lower())
    return found if found is not None else load_ontology().find_attribute(name).id


def default_min_area(width: int, height: int) -> int:
    """Smallest visible area (pixels) an item must keep to be annotated."""
    return max(10, round(4e-4 * width * height))


def _dress(fig: Figure, rng: np.random.Generator) -> dict:
    """Choose and draw one outfit on ``fig``; returns a short description."""
    gb = GarmentBuilder(fig, rng)
    ab = AccessoryBuilder(fig, rng)
    worn: list[str] = []
    r = rng.random()
    one_piece = "dress" if r < 0.22 else ("jumpsuit" if r < 0.34 else None)
    legs_bare = False
    hood_up = False
    top_kind = None
    belt_y = None
    if one_piece == "dress":
        dress = gb.dress()
        legs_bare = True
        if rng.random() < 0.25:
            belt_y = fig.pose.WAIST_Y if "empire waistline" not in dress.attributes else 2.45
    elif one_piece == "jumpsuit":
        gb.jumpsuit()
        if rng.random() < 0.4:
            belt_y = fig.pose.WAIST_Y
    else:
        top_kind = str(rng.choice(["tee", "shirt", "sweater", "hoodie"], p=[0.33, 0.27, 0.22, 0.18]))
        tucked = top_kind in ("tee", "shirt") and rng.random() < 0.3
        z = Z.TOP_TUCKED if tucked else Z.TOP
        top = getattr(gb, top_kind)(z)
        if top_kind == "sweater" and rng.random() < 0.3:
            gb.shirt(z=Z.TOP - 0.2, collar_z=Z.TOP + 0.1)
            worn.append("shirt")
        bottom_kind = str(rng.choice(["pants", "shorts", "skirt"], p=[0.47, 0.2, 0.33]))
        bottom = getattr(gb, bottom_kind)()
        legs_bare = bottom_kind != "pants"
        worn += [top.info["kind"], bottom.info["kind"]]
        if tucked and rng.random() < 0.6:
            belt_y = fig.pose.WAIST_Y + (0.4 if "low waist" in bottom.attributes else 0.0)
        if top_kind == "shirt" and rng.random() < 0.4:
            ab.tie()
            worn.append("tie")
    if one_piece:
        worn.append(one_piece)
    if belt_y is not None:
        ab.belt(belt_y, 0.08)
        worn.append("belt")
    if rng.random() < 0.45:
        choices = ["jacket", "coat", "cardigan"] + (["vest"] if top_kind in ("tee", "shirt") else [])
        outer = str(rng.choice(choices))
        getattr(gb, outer)()
        worn.append(outer)
    if legs_bare:
        r = rng.random()
        if r < 0.3:
            ab.tights()
            worn.append("tights")
        elif r < 0.55:
            ab.socks()
            worn.append("socks")
    if rng.random() < 0.9:
        ab.shoes()
        worn.append("shoes")
    hood_up = any(op.item.category_id == 27 and op.z > Z.HAIR for op in fig.ops)
    extras = [("bag", 0.35), ("hat", 0.0 if hood_up else 0.25), ("glasses", 0.22), ("watch", 0.2), ("scarf", 0.15)]
    for name, prob in extras:
        if rng.random() < prob:
            getattr(ab, name)()
            worn.append(name)
    return {"worn": worn}


def _place(rng: np.random.Generator, size: int, count: int) -> list[tuple[float, float, float, float]]:
    """(pixels per head unit, feet x, feet y, angle) per figure, back to front."""
    out = []
    for _ in range(count):
        if rng.random() < 0.25:  # close-up: cropped at the bottom (and maybe the sides)
            height = size * rng.uniform(1.1, 1.8)
            top = size * rng.uniform(-0.02, 0.1)
            x = size * rng.uniform(0.2, 0.8)
        else:
            height = size * rng.uniform(0.55, 0.98) / (1.0 + 0.12 * (count - 1))
            top = rng.uniform(0.0, max(size - height, 0.0) * 0.6 + size * 0.02)
            x = size * rng.uniform(-0.02, 1.02)
        out.append((height / 8.0, x, top + height, float(rng.uniform(-0.07, 0.07))))
    out.sort(key=lambda t: t[0])  # smaller = farther away = drawn first
    return out


_FIGURE_COUNT_WEIGHTS = (0.5, 0.35, 0.15)


def render_image(
    seed: int, index: int, size: int = 256, *, min_area: int | None = None, max_figures: int = 3
) -> SynthImage:
    """Image ``index`` of the world ``seed``, ``size × size`` pixels, with 1..``max_figures``
    (at most 3) figures."""
    if not 1 <= max_figures <= len(_FIGURE_COUNT_WEIGHTS):
        raise ValueError(f"max_figures must be within 1..{len(_FIGURE_COUNT_WEIGHTS)}, not {max_figures}")
    rng = np.random.default_rng([int(seed), int(index)])
    bg, bg_kind = background(rng, size, size)
    canvas = Canvas(bg)
    weights = np.array(_FIGURE_COUNT_WEIGHTS[:max_figures])
    count = int(rng.choice(np.arange(1, max_figures + 1), p=weights / weights.sum()))
    figures = []
    for k, (scale, x, y, angle) in enumerate(_place(rng, size, count)):
        fig = Figure(sample_pose(rng), scale=scale, angle=angle, feet=(x, y), index=k)
        body_ops(fig, rng)
        outfit = _dress(fig, rng)
        figures.append({"figure": k, "height_px": round(scale * 8, 1), **outfit})
        for op in fig.image_ops():
            if op.item.category_id is not None:
                op.item.info.setdefault("figure", k)
            canvas.draw(op)
    area = default_min_area(size, size) if min_area is None else int(min_area)
    anns = canvas.annotations(attribute_id, area)
    for a in anns:
        if a["attribute_ids"] and a["category_id"] not in ATTRIBUTE_CATEGORY_IDS:
            raise AssertionError(f"category {a['category_id']} must not carry attributes")
    pixels = canvas.image(rng, noise=2.0)
    return SynthImage(Image.fromarray(pixels, "RGB"), anns, {"background": bg_kind, "figures": figures})

