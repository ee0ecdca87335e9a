"""Photos of one person's own items: outfits planned from a closet and rendered on posed figures.

An item is its builder (``"tee"``, ``"bag"``) plus a look seed: the builder draws every choice of
the item's look from a generator seeded with it, so the item looks the same in every photo while
the figure, pose, size, background, light and layering vary (see
:class:`~.garments.GarmentBuilder`). Its :class:`~.textures.Finish` gives it its material's
texture and its brand's palette, and :func:`draw_mark` its brand's mark.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fashionkit.data.synth import geometry as g
from fashionkit.data.synth.accessories import AccessoryBuilder
from fashionkit.data.synth.backgrounds import background
from fashionkit.data.synth.canvas import Canvas, SceneObject
from fashionkit.data.synth.figures import Figure, Z, body_ops, sample_pose
from fashionkit.data.synth.garments import GarmentBuilder
from fashionkit.data.synth.scene import (
    SceneConfig,
    SynthImage,
    attribute_id,
    default_min_area,
    drop_shadow,
    place_figures,
)
from fashionkit.data.synth.textures import COLORS, Finish, Paint

__all__ = [
    "KINDS",
    "MARK_SHAPES",
    "PHOTO_SCENE",
    "ItemLook",
    "build_item",
    "draw_mark",
    "plan_outfit",
    "render_photo",
]

# Builder name → (slot, builder class, method). Slots decide what can be worn together.
KINDS: dict[str, tuple[str, type, str]] = {
    "tee": ("top", GarmentBuilder, "tee"),
    "shirt": ("top", GarmentBuilder, "shirt"),
    "sweater": ("top", GarmentBuilder, "sweater"),
    "hoodie": ("top", GarmentBuilder, "hoodie"),
    "pants": ("bottom", GarmentBuilder, "pants"),
    "shorts": ("bottom", GarmentBuilder, "shorts"),
    "skirt": ("bottom", GarmentBuilder, "skirt"),
    "dress": ("one-piece", GarmentBuilder, "dress"),
    "jumpsuit": ("one-piece", GarmentBuilder, "jumpsuit"),
    "jacket": ("outer", GarmentBuilder, "jacket"),
    "coat": ("outer", GarmentBuilder, "coat"),
    "cardigan": ("outer", GarmentBuilder, "cardigan"),
    "vest": ("outer", GarmentBuilder, "vest"),
    "shoes": ("shoes", AccessoryBuilder, "shoes"),
    "bag": ("bag", AccessoryBuilder, "bag"),
    "hat": ("hat", AccessoryBuilder, "hat"),
    "scarf": ("scarf", AccessoryBuilder, "scarf"),
    "belt": ("belt", AccessoryBuilder, "belt"),
}

MARK_SHAPES = ("circle", "triangle", "square", "diamond", "cross", "bar")

# Drawing order of the slots: what goes on later covers what went on before at the same depth.
_SLOT_ORDER = ("top", "one-piece", "bottom", "belt", "outer", "shoes", "bag", "hat", "scarf")

# One or two people, rarely cropped, upright enough that an item's mark stays on it.
PHOTO_SCENE = SceneConfig(figure_weights=(0.7, 0.3), closeup=0.12, height=(0.62, 0.97),
                          feet_x=(0.12, 0.88), tilt=0.05)


@dataclass(frozen=True)
class ItemLook:
    """What it takes to draw one closet item again: ``kind`` (a :data:`KINDS` key),
    ``look_seed`` (seeds every random choice of its look), its ``finish``, and its brand's mark
    (``mark_shape`` of :data:`MARK_SHAPES`, ``mark_color`` a :data:`~.textures.COLORS` name);
    ``hood_up``: it is a top worn with its hood up (no hat goes over it)."""

    id: str
    kind: str
    look_seed: int
    finish: Finish
    mark_shape: str
    mark_color: str
    hood_up: bool = False

    @property
    def slot(self) -> str:
        return KINDS[self.kind][0]


def build_item(look: ItemLook, fig: Figure, *, z: float | None = None, collar_z: float | None = None,
               belt_y: float = 3.0) -> list[SceneObject]:
    """Add ``look`` to ``fig`` and return its objects (a pair of shoes is two). ``z``/``collar_z``
    re-layer a top (a shirt under a sweater); ``belt_y`` is where a belt sits."""
    _, cls, method = KINDS[look.kind]
    builder = cls(fig, np.random.default_rng(look.look_seed), look.finish)
    if look.kind == "belt":
        out = builder.belt(belt_y, 0.08)
    elif look.kind == "shirt" and z is not None:
        out = builder.shirt(z=z, collar_z=collar_z)
    elif z is not None:
        out = getattr(builder, method)(z)
    else:
        out = getattr(builder, method)()
    objs = out if isinstance(out, list) else [out]
    for obj in objs:
        obj.info["item_id"] = look.id
    draw_mark(look, fig, objs, belt_y)
    return objs


def _mark_polys(shape: str, cx: float, cy: float, r: float) -> list[np.ndarray]:
    if shape == "circle":
        return [g.ellipse(cx, cy, r, r, n=14)]
    if shape == "triangle":
        return [g.quad((cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8))]
    if shape == "square":
        return [g.rect(cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85)]
    if shape == "diamond":
        return [g.quad((cx, cy - r * 1.1), (cx + r * 0.8, cy), (cx, cy + r * 1.1), (cx - r * 0.8, cy))]
    if shape == "cross":
        return [g.rect(cx - r, cy - r * 0.3, cx + r, cy + r * 0.3), g.rect(cx - r * 0.3, cy - r, cx + r * 0.3, cy + r)]
    if shape == "bar":
        return [g.rect(cx - r * 1.2, cy - r * 0.45, cx + r * 1.2, cy + r * 0.45)]
    raise ValueError(f"unknown mark shape {shape!r}")


def _mark_place(look: ItemLook, fig: Figure, obj: SceneObject, index: int, belt_y: float) -> tuple[float, float, float]:
    """Where the mark sits on ``obj`` (figure space) and its radius in head units."""
    p = fig.pose
    slot, kind = look.slot, look.kind
    if slot in ("top", "one-piece"):
        return 0.5, 1.85, 0.17
    if slot == "outer":
        return 0.62, 2.5, 0.17
    if kind == "pants" or kind == "shorts":
        hip, knee = p.leg_line(-1)[:2]
        at = hip + (knee - hip) * (0.45 if kind == "pants" else 0.15)
        return float(at[0]) + 0.05, float(at[1]), 0.16
    if kind == "skirt":
        return -0.45, p.HIP_Y + 0.3, 0.16
    if kind == "shoes":
        a, t = p.ankles[index], p.toes[index]
        return float(a[0] + t[0]) / 2.0, float(a[1]) + 0.2, 0.11
    if kind == "belt":
        return 0.5, belt_y, 0.08
    # bag, hat, scarf: the middle of the item's largest piece
    own = [poly for op in fig.ops if op.item is obj and not op.decor for poly in op.polygons]
    big = max(own, key=lambda q: float(np.ptp(q[:, 0]) * np.ptp(q[:, 1])))
    return float(big[:, 0].mean()), float(big[:, 1].mean()), 0.15


def draw_mark(look: ItemLook, fig: Figure, objs: Sequence[SceneObject], belt_y: float = 3.0) -> None:
    """The brand's mark on each object of one item: its shape in its colour on a backing of the
    opposite lightness, so that it shows on any fabric. Drawn as decor, it changes no mask."""
    rgb = COLORS[look.mark_color]
    light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 128
    backing = Paint("plain", (COLORS["black"] if light else COLORS["white"],), shade=0.0, outline=1.0)
    mark = Paint("plain", (rgb,), shade=0.0, outline=1.0, names=(look.mark_color,))
    for i, obj in enumerate(objs):
        z = next(op.z for op in fig.ops if op.item is obj and not op.decor)
        cx, cy, r = _mark_place(look, fig, obj, i, belt_y)
        fig.add(obj, z, _mark_polys(look.mark_shape, cx, cy, r * 1.35), backing, decor=True)
        fig.add(obj, z, _mark_polys(look.mark_shape, cx, cy, r), mark, decor=True)


def plan_outfit(rng: np.random.Generator, pool: Sequence[ItemLook], worn: Mapping[str, int],
                required: Sequence[ItemLook] = ()) -> list[ItemLook] | None:
    """One plausible outfit from ``pool`` that holds every item of ``required``: a one-piece, or
    a top and a bottom (a shirt may go under a sweater), maybe outerwear (a vest only over a
    top; none over a required top, which it might hide), shoes, a belt, a bag, a hat (not over
    a raised hood, when another top will do), a scarf. Items worn less often (``worn``: times
    per item id) are likelier. ``None`` when ``required`` cannot be worn together from ``pool``."""
    by_slot: dict[str, list[ItemLook]] = {}
    for look in pool:
        by_slot.setdefault(look.slot, []).append(look)
    need = {look.slot: look for look in required}
    if len(need) != len(required):
        return None  # two required items compete for one slot

    def pick(slot: str, where=lambda look: True) -> ItemLook | None:
        if slot in need:
            return need[slot]
        options = [look for look in by_slot.get(slot, []) if where(look)] or by_slot.get(slot, [])
        if not options:
            return None
        w = np.array([1.0 / (1.0 + worn.get(look.id, 0)) ** 2 for look in options])
        return options[int(rng.choice(len(options), p=w / w.sum()))]

    separates = {"top", "bottom"} <= need.keys() | by_slot.keys()
    vest = need.get("outer") is not None and need["outer"].kind == "vest"
    if "one-piece" in need:
        if "top" in need or "bottom" in need or vest:
            return None
        one = True
    elif "top" in need or "bottom" in need or vest or "one-piece" not in by_slot:
        if not separates:
            return None
        one = False
    else:
        one = not separates or rng.random() < 0.3
    out: list[ItemLook] = []
    if one:
        out.append(pick("one-piece"))  # type: ignore[arg-type]
    else:
        top = pick("top", lambda look: not ("hat" in need and look.hood_up))
        assert top is not None
        out += [top, pick("bottom")]  # type: ignore[list-item]
        shirts = [look for look in by_slot.get("top", []) if look.kind == "shirt"]
        if top.kind == "sweater" and shirts and rng.random() < 0.35:
            out.append(shirts[int(rng.integers(len(shirts)))])
    base = out[0]
    if "outer" in need or ("top" not in need and rng.random() < 0.5):
        outer = pick("outer", lambda look: look.kind != "vest" or not one)
        if outer is not None and (outer.kind != "vest" or not one):
            out.append(outer)
    for slot, odds in (("shoes", 0.9), ("belt", 0.3), ("bag", 0.35), ("hat", 0.25), ("scarf", 0.2)):
        if slot not in need and (slot == "belt" and base.kind in ("sweater", "hoodie")
                                 or slot == "hat" and base.hood_up):
            continue
        if slot in need or rng.random() < odds:
            item = pick(slot)
            if item is not None:
                out.append(item)
    return out


def _light(rgb: np.ndarray, rng: np.random.Generator) -> dict:
    """Relight the picture in place: exposure, white balance and a light gradient across it."""
    h, w = rgb.shape[:2]
    exposure = float(rng.uniform(0.72, 1.18))
    warmth = float(rng.uniform(-0.08, 0.08))
    angle = float(rng.uniform(0, 2 * math.pi))
    strength = float(rng.uniform(0.0, 0.25))
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    ramp = 1.0 + strength * (x * math.cos(angle) + y * math.sin(angle)) / math.sqrt(2)
    gain = exposure * np.array([1 + warmth, 1.0, 1 - warmth], dtype=np.float32)
    rgb *= ramp[..., None].astype(np.float32) * gain[None, None, :]
    return {"exposure": round(exposure, 3), "warmth": round(warmth, 3), "gradient": round(strength, 3)}


def _wear(fig: Figure, rng: np.random.Generator, outfit: Sequence[ItemLook]) -> None:
    """Draw ``outfit`` on ``fig``, each item layered by its slot."""
    kinds = {look.kind for look in outfit}
    layered = {"shirt", "sweater"} <= kinds
    has_belt = "belt" in kinds
    attrs: dict[str, tuple[str, ...]] = {}
    tucked = False
    for look in sorted(outfit, key=lambda item: (_SLOT_ORDER.index(item.slot), item.kind != "shirt")):
        z: float | None = None
        collar_z = None
        belt_y = fig.pose.WAIST_Y
        if look.slot == "top":
            if layered and look.kind == "shirt":
                z, collar_z = Z.TOP - 0.2, Z.TOP + 0.1
            else:
                tucked = look.kind in ("tee", "shirt") and (has_belt or rng.random() < 0.3)
                z = Z.TOP_TUCKED if tucked else Z.TOP
        elif look.kind == "belt":
            if "empire waistline" in attrs.get("one-piece", ()):
                belt_y = 2.45
            elif "low waist" in attrs.get("bottom", ()):
                belt_y += 0.4
        objs = build_item(look, fig, z=z, collar_z=collar_z, belt_y=belt_y)
        attrs[look.slot] = objs[0].attributes


def render_photo(looks: Mapping[str, ItemLook], outfits: Sequence[Sequence[str]], seed: int,
                 stream: int, index: int, size: int, min_area: int | None = None) -> SynthImage:
    """Photo ``index`` of ``stream`` (one per split) of the closet ``seed``: one figure per
    outfit (item ids, drawn back to front) on a ``size × size`` background, relit.

    Annotations are :class:`~.scene.SynthImage`'s, each with an ``"item_id"``: the item an
    object is, or for a part (sleeve, pocket, buckle) the item it belongs to."""
    rng = np.random.default_rng([int(seed), 7, int(stream), int(index)])
    bg, bg_kind, floor = background(rng, size, size)
    places = place_figures(rng, size, size, len(outfits), PHOTO_SCENE, floor)
    for scale, x, y, _ in places:
        drop_shadow(bg, x, y, scale)
    canvas = Canvas(bg)
    figures = []
    for k, ((scale, x, y, angle), outfit) in enumerate(zip(places, outfits, strict=True)):
        fig = Figure(sample_pose(rng), scale=scale, angle=angle, feet=(x, y), index=k)
        body_ops(fig, rng)
        _wear(fig, rng, [looks[i] for i in outfit])
        figures.append({"figure": k, "height_px": round(scale * 8, 1), "items": list(outfit)})
        for op in fig.image_ops():
            if op.item.category_id is not None:
                op.item.info.setdefault("figure", k)
            canvas.draw(op)
    light = _light(canvas.rgb, rng)
    area = default_min_area(size, size) if min_area is None else int(min_area)
    anns = canvas.annotations(attribute_id, area)
    item_of: dict[int, str | None] = {}
    for ann in anns:
        synth = ann["synth"]
        own = synth.pop("item_id", None)
        ann["item_id"] = item_of[ann["id"]] = own if synth["part_of"] is None else item_of[synth["part_of"]]
    pixels = canvas.image(rng, noise=PHOTO_SCENE.noise)
    meta = {"background": bg_kind, "light": light, "figures": figures}
    return SynthImage(Image.fromarray(pixels, "RGB"), anns, meta)

