"""What one person owns: a closet's items, each a fixed individual with the owner's tags.

An item is a kind of garment or accessory (a :data:`~.closet_photos.KINDS` key) and a look seed
that fixes every random choice of its look; its material gives its fabric a texture, its brand
a mark and a palette (see :mod:`.closet` for the tags and their grounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fashionkit.data.synth.closet_photos import KINDS, ItemLook
from fashionkit.data.synth.figures import Figure, Z, sample_pose
from fashionkit.data.synth.garments import HOOD
from fashionkit.data.synth.textures import Finish

__all__ = ["BRANDS", "MATERIAL_TEXTURES", "TAG_TYPES", "TRENDS", "ClosetItem", "TagType", "draw_items"]


@dataclass(frozen=True)
class TagType:
    """One kind of tag: whether it has a visual correlate (``grounded``, and which one as
    ``correlate``), and the values it takes."""

    grounded: bool
    values: tuple[str, ...]
    correlate: str | None = None


# Brand → (mark shape, mark colour, palette of main colours).
BRANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "northline": ("circle", "white", ("navy", "denim", "charcoal", "light grey", "white", "black")),
    "sole": ("triangle", "red", ("cream", "beige", "camel", "brown", "olive", "khaki")),
    "kobalt": ("square", "yellow", ("royal blue", "black", "grey", "sky blue", "teal", "navy")),
    "verano": ("diamond", "black", ("coral", "orange", "yellow", "mint", "turquoise", "sky blue")),
    "maison rue": ("cross", "mustard", ("burgundy", "black", "pink", "lavender", "purple", "magenta")),
    "fernwood": ("bar", "white", ("green", "olive", "khaki", "camel", "mustard", "brown")),
}

MATERIAL_TEXTURES = {"cotton": "", "denim": "twill", "wool": "heather", "leather": "sheen",
                     "silk": "satin", "linen": "slub"}

# The materials each kind comes in, with their odds.
_MATERIALS: dict[str, dict[str, float]] = {
    "tee": {"cotton": 3, "linen": 1},
    "shirt": {"cotton": 2, "linen": 1.5, "silk": 1, "denim": 1},
    "sweater": {"wool": 3, "cotton": 1},
    "hoodie": {"cotton": 3, "wool": 1},
    "pants": {"denim": 2, "cotton": 1.5, "wool": 1, "linen": 1, "leather": 0.5},
    "shorts": {"denim": 1.5, "cotton": 1.5, "linen": 1},
    "skirt": {"denim": 1, "cotton": 1, "wool": 1, "leather": 1, "silk": 1},
    "dress": {"cotton": 1.5, "silk": 1.5, "linen": 1, "wool": 0.5},
    "jumpsuit": {"cotton": 1, "linen": 1, "denim": 1},
    "jacket": {"denim": 1.5, "leather": 1.5, "wool": 1, "cotton": 1},
    "coat": {"wool": 2.5, "cotton": 1, "leather": 0.5},
    "cardigan": {"wool": 2, "cotton": 1},
    "vest": {"wool": 1, "cotton": 1, "denim": 1},
    "shoes": {"leather": 3, "cotton": 1},
    "bag": {"leather": 3, "cotton": 1},
    "hat": {"wool": 1, "cotton": 1},
    "scarf": {"wool": 1.5, "silk": 1.5, "cotton": 1},
    "belt": {"leather": 1},
}

# How many of each kind a wardrobe holds, relatively.
_KIND_ODDS = {"tee": 3, "shirt": 2.5, "sweater": 2, "hoodie": 1.2, "pants": 2.5, "shorts": 1.2,
              "skirt": 1.5, "dress": 1.5, "jumpsuit": 0.5, "jacket": 1.2, "coat": 1, "cardigan": 1,
              "vest": 0.4, "shoes": 1.6, "bag": 1, "hat": 0.6, "scarf": 0.5, "belt": 0.5}

TRENDS = {"plain": "minimal", "stripe": "preppy", "check": "preppy", "argyle": "preppy",
          "floral": "romantic", "dot": "romantic", "chevron": "romantic",
          "leopard": "statement", "zebra": "statement", "camouflage": "statement"}

# The ungrounded tags' values and their prior odds (uneven, so that the prior is a real baseline).
_SEASONS = {"all-season": 0.35, "summer": 0.25, "winter": 0.25, "spring-autumn": 0.15}
_OCCASIONS = {"casual": 0.4, "work": 0.25, "evening": 0.15, "sport": 0.1, "travel": 0.1}

TAG_TYPES: dict[str, TagType] = {
    "season": TagType(False, tuple(_SEASONS)),
    "material": TagType(True, tuple(MATERIAL_TEXTURES), "texture"),
    "brand": TagType(True, tuple(BRANDS), "mark and palette"),
    "trend": TagType(True, tuple(dict.fromkeys(TRENDS.values())), "pattern"),
    "occasion": TagType(False, tuple(_OCCASIONS)),
}


@dataclass(frozen=True)
class ClosetItem:
    """One of the person's items: ``tags`` holds one value per tag type. ``look`` is what the
    item shows (see the module docstring); :attr:`item_look` draws it again."""

    id: str
    category_id: int
    known: bool
    tags: dict[str, str]
    kind: str = ""
    look_seed: int = 0
    texture: str = ""
    palette: tuple[str, ...] = ()
    mark: tuple[str, str] = ("circle", "white")
    look: dict = field(default_factory=dict)

    @property
    def item_look(self) -> ItemLook:
        return ItemLook(self.id, self.kind, self.look_seed, Finish(self.texture, self.palette), *self.mark,
                        hood_up=bool(self.look.get("hood_up", False)))

    def to_json(self) -> dict:
        return {"id": self.id, "category_id": self.category_id, "known": self.known, "tags": self.tags,
                "kind": self.kind, "look_seed": self.look_seed, "texture": self.texture,
                "palette": list(self.palette), "mark": {"shape": self.mark[0], "color": self.mark[1]},
                "look": self.look}


def _weighted(rng: np.random.Generator, odds: dict[str, float]) -> str:
    keys = list(odds)
    w = np.array([odds[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _realise(kind: str, look_seed: int, finish: Finish) -> tuple[int, dict]:
    """Build the item on a reference figure: its category and what it shows."""
    _, cls, method = KINDS[kind]
    fig = Figure(sample_pose(np.random.default_rng(0)), scale=40.0, angle=0.0, feet=(200.0, 380.0))
    builder = cls(fig, np.random.default_rng(look_seed), finish)
    out = builder.belt(3.0, 0.08) if kind == "belt" else getattr(builder, method)()
    obj = out[0] if isinstance(out, list) else out
    look = {"pattern": obj.paint.pattern, "colors": list(obj.paint.names),
            "attributes": list(obj.attributes), "style": obj.info.get("kind") or kind,
            "hood_up": any(op.item.category_id == HOOD and op.z > Z.HAIR for op in fig.ops)}
    assert obj.category_id is not None
    return int(obj.category_id), look


def draw_items(seed: int, items: int, unseen: int) -> list[ClosetItem]:
    """The closet's ``items`` items, ``unseen`` of them ``known: False``. The first ones are a
    known top, bottom and (with three known items or more) shoes, so that the known items always
    make an outfit. The ungrounded tags come from a generator of their own per item, which
    nothing else reads: they are independent of everything drawn."""
    rng = np.random.default_rng([seed, 1])
    kinds = [_weighted(rng, _KIND_ODDS) for _ in range(items)]
    known = items - unseen
    kinds[0] = _weighted(rng, {k: _KIND_ODDS[k] for k in ("tee", "shirt", "sweater", "hoodie")})
    kinds[1] = _weighted(rng, {k: _KIND_ODDS[k] for k in ("pants", "shorts", "skirt")})
    fixed = 2
    if known >= 3:  # and a pair of shoes
        kinds[2], fixed = "shoes", 3
    unknown_at = set((fixed + rng.permutation(items - fixed)[:unseen]).tolist()) if unseen else set()
    out = []
    for i, kind in enumerate(kinds):
        brand = str(list(BRANDS)[int(rng.integers(len(BRANDS)))])
        shape, mark_color, palette = BRANDS[brand]
        material = _weighted(rng, _MATERIALS[kind])
        look_seed = int(rng.integers(2**31))
        texture = MATERIAL_TEXTURES[material]
        category_id, look = _realise(kind, look_seed, Finish(texture, palette))
        blind = np.random.default_rng([seed, 2, i])
        tags = {"season": _weighted(blind, _SEASONS), "material": material, "brand": brand,
                "trend": TRENDS[look["pattern"]], "occasion": _weighted(blind, _OCCASIONS)}
        out.append(ClosetItem(f"item-{i:03d}", category_id, i not in unknown_at, tags, kind, look_seed,
                              texture, palette, (shape, mark_color), look))
    assert sum(it.known for it in out) == known
    return out
