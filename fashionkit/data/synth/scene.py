"""One synthetic image: background, 1–3 dressed figures back to front, exact annotations.

:func:`render_image` is a pure function of ``(seed, index, size)``: the same arguments give the
same pixels and annotations on any machine with the same library versions.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image

from fashionkit.data.synth.accessories import AccessoryBuilder
from fashionkit.data.synth.backgrounds import KINDS, background
from fashionkit.data.synth.canvas import Canvas
from fashionkit.data.synth.figures import Figure, Z, body_ops, sample_pose
from fashionkit.data.synth.garments import GarmentBuilder
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS, load_ontology

__all__ = [
    "SCENES",
    "SceneConfig",
    "SynthImage",
    "attribute_id",
    "drop_shadow",
    "default_min_area",
    "get_scene",
    "place_figures",
    "render_image",
]


class SynthImage(NamedTuple):
    """One rendered picture.

    ``image``: RGB ``PIL.Image`` of the requested size. ``annotations``: Fashionpedia annotation
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


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are composed.

    ``figure_weights``: relative odds of 1, 2, 3 … figures per image. ``closeup``: share of
    figures framed from the head down to past the image's bottom edge. ``height``: a full
    figure's height as a fraction of the image height (lo, hi). ``feet_x``: where a figure
    stands, as a fraction of the image width (lo, hi; beyond 0..1 crops it at the side).
    ``tilt``: largest lean in radians. ``accessories``: factor on the odds of bag, hat, glasses,
    watch, scarf and tie. ``backgrounds``: kinds drawn (see :data:`~.backgrounds.KINDS`).
    ``noise``: sensor noise, standard deviation in grey levels.
    """

    figure_weights: tuple[float, ...] = (0.5, 0.35, 0.15)
    closeup: float = 0.25
    height: tuple[float, float] = (0.55, 0.98)
    feet_x: tuple[float, float] = (-0.02, 1.02)
    tilt: float = 0.07
    accessories: float = 1.0
    backgrounds: tuple[str, ...] = KINDS
    noise: float = 2.0

    def __post_init__(self):
        if not self.figure_weights or min(self.figure_weights) < 0 or sum(self.figure_weights) <= 0:
            raise ValueError("figure_weights must be non-negative with a positive sum")
        unknown = set(self.backgrounds) - set(KINDS)
        if unknown or not self.backgrounds:
            raise ValueError(f"backgrounds must be among {KINDS}, not {sorted(unknown)}")

    @property
    def max_figures(self) -> int:
        return len(self.figure_weights)

    def with_max_figures(self, n: int) -> SceneConfig:
        if not 1 <= n <= len(self.figure_weights):
            raise ValueError(f"max_figures must be within 1..{len(self.figure_weights)}, not {n}")
        return dataclasses.replace(self, figure_weights=self.figure_weights[:n])


SCENES: dict[str, SceneConfig] = {
    # The world as documented: crowds of up to three, close-ups, crops, clutter.
    "default": SceneConfig(),
    # One upright, centred, nearly full-height person per image and half the accessories:
    # larger items and fewer small ones, for short training runs.
    "simple": SceneConfig(figure_weights=(1.0,), closeup=0.0, height=(0.84, 0.97),
                          feet_x=(0.35, 0.65), tilt=0.0, accessories=0.5),
}


def get_scene(scene: str | SceneConfig) -> SceneConfig:
    if isinstance(scene, SceneConfig):
        return scene
    try:
        return SCENES[scene]
    except KeyError:
        raise ValueError(f"unknown scene {scene!r}; known: {sorted(SCENES)}") from None


# The garments and accessories a scene draws by name, as explicit tables: every name a scene
# can choose is listed here, and a misspelt one fails at the lookup, not as a missing attribute.
_TOPS = {
    "tee": GarmentBuilder.tee,
    "shirt": GarmentBuilder.shirt,
    "sweater": GarmentBuilder.sweater,
    "hoodie": GarmentBuilder.hoodie,
}
_BOTTOMS = {
    "pants": GarmentBuilder.pants,
    "shorts": GarmentBuilder.shorts,
    "skirt": GarmentBuilder.skirt,
}
_OUTERWEAR = {
    "jacket": GarmentBuilder.jacket,
    "coat": GarmentBuilder.coat,
    "cardigan": GarmentBuilder.cardigan,
    "cape": GarmentBuilder.cape,
    "vest": GarmentBuilder.vest,
}
_EXTRAS = {
    "bag": AccessoryBuilder.bag,
    "hat": AccessoryBuilder.hat,
    "glasses": AccessoryBuilder.glasses,
    "watch": AccessoryBuilder.watch,
    "scarf": AccessoryBuilder.scarf,
    "gloves": AccessoryBuilder.gloves,
    "headband": AccessoryBuilder.headband,
    "umbrella": AccessoryBuilder.umbrella,
}


def _dress(fig: Figure, rng: np.random.Generator, accessories: float = 1.0) -> dict:
    """Choose and draw one outfit on ``fig``; returns a short description. ``accessories``
    scales the odds of the optional accessories."""
    gb = GarmentBuilder(fig, rng)
    ab = AccessoryBuilder(fig, rng)
    worn: list[str] = []
    r = rng.random()
    one_piece = "dress" if r < 0.22 else ("jumpsuit" if r < 0.34 else None)
    legs_bare = False
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
        top = _TOPS[top_kind](gb, z)
        if top_kind == "sweater" and rng.random() < 0.3:
            gb.shirt(z=Z.TOP - 0.2, collar_z=Z.TOP + 0.1)
            worn.append("shirt")
        bottom_kind = str(rng.choice(["pants", "shorts", "skirt"], p=[0.47, 0.2, 0.33]))
        bottom = _BOTTOMS[bottom_kind](gb)
        legs_bare = bottom_kind != "pants"
        worn += [top.info["kind"], bottom.info["kind"]]
        if tucked and rng.random() < 0.6:
            belt_y = fig.pose.WAIST_Y + (0.4 if "low waist" in bottom.attributes else 0.0)
        if top_kind == "shirt" and rng.random() < 0.4 * accessories:
            ab.tie()
            worn.append("tie")
    if one_piece:
        worn.append(one_piece)
    if belt_y is not None:
        ab.belt(belt_y, 0.08)
        worn.append("belt")
    if rng.random() < 0.45:
        choices = ["jacket", "coat", "cardigan", "cape"] + (["vest"] if top_kind in ("tee", "shirt") else [])
        weights = np.array([1.0, 1.0, 1.0, 0.25] + ([1.2] if len(choices) > 4 else []))
        outer = str(rng.choice(choices, p=weights / weights.sum()))
        _OUTERWEAR[outer](gb)
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
    hat = 0.0 if hood_up else 0.25
    extras = [("bag", 0.35), ("hat", hat), ("glasses", 0.22), ("watch", 0.2), ("scarf", 0.15),
              ("gloves", 0.07), ("headband", 0.0 if hood_up else 0.06), ("umbrella", 0.05)]
    for name, prob in extras:
        if rng.random() < prob * accessories:
            _EXTRAS[name](ab)
            worn.append(name)
    return {"worn": worn}


def place_figures(
    rng: np.random.Generator, width: int, size: int, count: int, cfg: SceneConfig, floor: float | None
) -> list[tuple[float, float, float, float]]:
    """(pixels per head unit, feet x, feet y, angle) per figure, back to front, in an image
    ``width`` wide and ``size`` high. On a background with a floor line (``floor``, pixels)
    feet stand below it, nearer the line the smaller (farther) the figure."""
    out = []
    for _ in range(count):
        if rng.random() < cfg.closeup:  # cropped at the bottom (and maybe the sides)
            height = size * rng.uniform(1.1, 1.8)
            top = size * rng.uniform(-0.02, 0.1)
            feet = top + height
            x = width * rng.uniform(0.2, 0.8)
        else:
            height = size * rng.uniform(*cfg.height) / (1.0 + 0.12 * (count - 1))
            top = rng.uniform(0.0, max(size - height, 0.0) * 0.6 + size * 0.02)
            feet = top + height
            x = width * rng.uniform(*cfg.feet_x)
            if floor is not None:
                depth = min(1.0, height / size * rng.uniform(0.85, 1.15))
                feet = max(floor + (size - floor) * depth, height - 0.02 * size)
        out.append((height / 8.0, x, feet, float(rng.uniform(-cfg.tilt, cfg.tilt))))
    out.sort(key=lambda t: t[0])  # smaller = farther away = drawn first
    return out


def drop_shadow(bg: np.ndarray, x: float, y: float, unit: float) -> None:
    """Darken a soft ellipse on the ground around feet at ``(x, y)`` (in place)."""
    rx, ry = 1.3 * unit, 0.28 * unit
    h, w = bg.shape[:2]
    x0, x1 = max(int(x - rx), 0), min(int(x + rx) + 1, w)
    y0, y1 = max(int(y - ry), 0), min(int(y + ry) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - x) / rx
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - y) / ry
    d = dx[None, :] ** 2 + dy[:, None] ** 2
    bg[y0:y1, x0:x1] *= (1.0 - 0.35 * np.clip(1.0 - d, 0.0, 1.0))[..., None]


def render_image(
    seed: int,
    index: int,
    size: int | tuple[int, int] = 256,
    *,
    min_area: int | None = None,
    scene: str | SceneConfig = "default",
    max_figures: int | None = None,
) -> SynthImage:
    """Image ``index`` of the world ``seed``: ``size × size`` pixels, or ``(width, height)``,
    composed as ``scene`` (a :data:`SCENES` name or a :class:`SceneConfig`) says;
    ``max_figures`` caps the people per image."""
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, not {size!r}")
    cfg = get_scene(scene)
    if max_figures is not None:
        cfg = cfg.with_max_figures(max_figures)
    rng = np.random.default_rng([int(seed), int(index)])
    kinds = cfg.backgrounds
    bg, bg_kind, floor = background(rng, width, height, None if kinds == KINDS else kinds[int(rng.integers(len(kinds)))])
    weights = np.asarray(cfg.figure_weights, dtype=np.float64)
    count = int(rng.choice(np.arange(1, len(weights) + 1), p=weights / weights.sum()))
    places = place_figures(rng, width, height, count, cfg, floor)
    for scale, x, y, _ in places:
        drop_shadow(bg, x, y, scale)
    canvas = Canvas(bg)
    figures = []
    for k, (scale, x, y, angle) in enumerate(places):
        fig = Figure(sample_pose(rng), scale=scale, angle=angle, feet=(x, y), index=k)
        body_ops(fig, rng)
        outfit = _dress(fig, rng, cfg.accessories)
        figures.append({"figure": k, "height_px": round(scale * 8, 1), **outfit})
        for op in fig.image_ops():
            if op.item.category_id is not None:
                op.item.info.setdefault("figure", k)
            canvas.draw(op)
    area = default_min_area(width, height) if min_area is None else int(min_area)
    anns = canvas.annotations(attribute_id, area)
    for a in anns:
        if a["attribute_ids"] and a["category_id"] not in ATTRIBUTE_CATEGORY_IDS:
            raise AssertionError(f"category {a['category_id']} must not carry attributes")
    pixels = canvas.image(rng, noise=cfg.noise)
    return SynthImage(Image.fromarray(pixels, "RGB"), anns, {"background": bg_kind, "figures": figures})

