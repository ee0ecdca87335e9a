"""Per-item features the outfit search works on, as column arrays over a wardrobe.

:class:`WardrobeIndex` is built once per wardrobe state and reused for every request;
suggestions only read it.

Formality (1 athletic/lounge … 5 black tie) is the person's value when set, otherwise inferred:
the category's default (:data:`CATEGORY_FORMALITY`) overridden by telling attributes (blazer 4,
tuxedo 5, hoodie 1 … :data:`ATTRIBUTE_FORMALITY`). Warmth (1 light … 5 very warm) starts at the
category's default (:data:`CATEGORY_WARMTH`) and moves one step for: a warm material or
attribute (wool, down, puffer, fur …) up; a light material or sleeveless/mini cut down; season
tags only for summer down, only for autumn/winter up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fashionkit.outfits.rules import is_bold_pattern
from fashionkit.outfits.slots import slot_of
from fashionkit.wardrobe.attributes import SEASONS, pattern_from_attributes
from fashionkit.wardrobe.colors import COLOR_FAMILIES, describe_color
from fashionkit.wardrobe.items import WardrobeItem

__all__ = [
    "WardrobeIndex",
    "CATEGORY_FORMALITY",
    "ATTRIBUTE_FORMALITY",
    "CATEGORY_WARMTH",
    "infer_formality",
    "infer_warmth",
    "formality_is_known",
    "NO_COLOR",
]

CATEGORY_FORMALITY: dict[int, int] = {
    0: 3, 1: 2, 2: 2, 3: 2, 4: 3, 5: 3, 6: 3, 7: 1, 8: 3, 9: 3, 10: 3, 11: 3, 12: 3,
    13: 2, 14: 2, 16: 4, 18: 3, 19: 3, 23: 3, 24: 3, 25: 2,
}  # fmt: skip
ATTRIBUTE_FORMALITY: dict[int, int] = {
    17: 4,  # blazer
    33: 5,  # tuxedo jacket
    108: 5,  # gown
    69: 5,  # ball gown skirt
    90: 4,  # dress coat
    102: 4,  # sheath dress
    16: 1,  # hoodie
    37: 1,  # sweatpants
    29: 1,  # track jacket
    48: 1,  # track pants
    38: 1,  # leggings
    11: 1,  # tank top
    55: 1,  # boardshorts
    36: 2,  # jeans
    1: 2,  # polo shirt
    297: 1,  # distressed
}
CATEGORY_WARMTH: dict[int, int] = {
    0: 2, 1: 1, 2: 3, 3: 3, 4: 3, 5: 2, 6: 3, 7: 1, 8: 2, 9: 4, 10: 2, 11: 2, 12: 3,
}  # fmt: skip
_WARM_ATTRIBUTES = frozenset({19, 85, 80, 83, 84, 91, 289, 291, 303, 198})
_LIGHT_ATTRIBUTES = frozenset({156, 148, 149, 10, 11, 13, 104, 98, 51, 55})
_WARM_MATERIALS = ("wool", "cashmere", "fleece", "down", "fur", "shearling", "tweed", "flannel")
_LIGHT_MATERIALS = ("linen", "chiffon", "silk", "mesh", "seersucker", "voile", "gauze")

NO_COLOR = len(COLOR_FAMILIES)  # family code of an item without colours


def formality_is_known(item: WardrobeItem) -> bool:
    """Whether the formality comes from the person or a telling attribute, not a category
    default."""
    return item.formality is not None or any(a in ATTRIBUTE_FORMALITY for a in item.attribute_ids)


def infer_formality(item: WardrobeItem) -> int:
    if item.formality is not None:
        return item.formality
    for att_id in item.attribute_ids:
        if att_id in ATTRIBUTE_FORMALITY:
            return ATTRIBUTE_FORMALITY[att_id]
    return CATEGORY_FORMALITY.get(item.category_id, 3)


def infer_warmth(item: WardrobeItem) -> float:
    warmth = float(CATEGORY_WARMTH.get(item.category_id, 2))
    material = (item.material or "").lower()
    attributes = set(item.attribute_ids)
    if attributes & _WARM_ATTRIBUTES or (material and any(m in material for m in _WARM_MATERIALS)):
        warmth += 1
    if attributes & _LIGHT_ATTRIBUTES or (
        material and any(m in material for m in _LIGHT_MATERIALS)
    ):
        warmth -= 1
    seasons = set(item.season)
    if seasons == {"summer"}:
        warmth -= 1
    elif seasons and seasons <= {"autumn", "winter"}:
        warmth += 1
    return min(max(warmth, 1.0), 5.0)


def _norm(value: str | None) -> str:
    return (value or "").strip().lower()


@dataclass
class WardrobeIndex:
    """Column arrays over ``items`` (length N each). Colours are the main colour's OkLCh
    (``lightness``, ``chroma``, ``hue``), ``neutral`` flag and ``family`` code (index into
    ``COLOR_FAMILIES``, :data:`NO_COLOR` when the item has none). ``season_bits`` has bit i set
    for ``SEASONS[i]`` (0 = untagged). ``last_worn`` is a date ordinal (−1 never);
    ``recent_wears`` how many days each item was worn in the last
    :data:`~fashionkit.outfits.rules.ROTATION_WINDOW_DAYS` (0 when not given)."""

    items: tuple[WardrobeItem, ...]
    slot: np.ndarray  # int8, slots.* or -1
    category: np.ndarray  # int16
    lightness: np.ndarray
    chroma: np.ndarray
    hue: np.ndarray
    neutral: np.ndarray  # bool
    has_color: np.ndarray  # bool
    family: np.ndarray  # int8
    bold: np.ndarray  # bool
    formality: np.ndarray  # int8, 1..5
    formality_known: np.ndarray  # bool: given or from an attribute, not a category default
    warmth: np.ndarray  # float, 1..5
    season_bits: np.ndarray  # uint8
    favorite: np.ndarray  # bool
    last_worn: np.ndarray  # int64
    position: dict[str, int]  # item id -> row
    # int64; left empty: nobody's wear counts are known, all 0.
    recent_wears: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if len(self.recent_wears) == 0:
            self.recent_wears = np.zeros(len(self.items), np.int64)
        if len(self.recent_wears) != len(self.items):
            raise ValueError(
                f"recent_wears has {len(self.recent_wears)} entries for {len(self.items)} items"
            )

    @classmethod
    def build(
        cls, items: Sequence[WardrobeItem], recent_wears: Mapping[str, int] | None = None
    ) -> WardrobeIndex:
        """Index ``items`` (ids must be unique); ``recent_wears``: item id → days worn in the
        last :data:`~fashionkit.outfits.rules.ROTATION_WINDOW_DAYS` (absent ids: 0)."""
        items = tuple(items)
        n = len(items)
        position: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.id in position:
                raise ValueError(f"duplicate item id {item.id!r}")
            position[item.id] = i
        light, chroma, hue = np.zeros(n), np.zeros(n), np.zeros(n)
        neutral, has_color = np.zeros(n, bool), np.zeros(n, bool)
        family = np.full(n, NO_COLOR, np.int8)
        family_code = {f: k for k, f in enumerate(COLOR_FAMILIES)}
        for i, item in enumerate(items):
            if item.colors:
                info = describe_color(item.colors[0])
                light[i], chroma[i], hue[i] = info.lightness, info.chroma, info.hue
                neutral[i], has_color[i] = info.neutral, True
                family[i] = family_code[info.family]
        season_bit = {s: 1 << k for k, s in enumerate(SEASONS)}
        return cls(
            items=items,
            slot=np.array([slot_of(i.category_id) for i in items], np.int8),
            category=np.array([i.category_id for i in items], np.int16),
            lightness=light,
            chroma=chroma,
            hue=hue,
            neutral=neutral,
            has_color=has_color,
            family=family,
            bold=np.array(
                [
                    is_bold_pattern(i.pattern or pattern_from_attributes(i.attribute_ids))
                    for i in items
                ],
                bool,
            ),
            formality=np.array([infer_formality(i) for i in items], np.int8),
            formality_known=np.array([formality_is_known(i) for i in items], bool),
            warmth=np.array([infer_warmth(i) for i in items], np.float64),
            season_bits=np.array(
                [sum(season_bit[s] for s in set(i.season)) for i in items], np.uint8
            ),
            favorite=np.array([i.favorite for i in items], bool),
            last_worn=np.array(
                [i.last_worn.toordinal() if i.last_worn else -1 for i in items], np.int64
            ),
            position=position,
            recent_wears=np.array(
                [int((recent_wears or {}).get(i.id, 0)) for i in items], np.int64
            ),
        )

    def __len__(self) -> int:
        return len(self.items)

    def text_mask(self, field: str, values: Sequence[str]) -> np.ndarray:
        """Items whose ``field`` (brand, trend, material, pattern) equals one of ``values``
        (case-insensitive)."""
        wanted = {_norm(v) for v in values}
        return np.array([_norm(getattr(i, field)) in wanted for i in self.items], bool)

    def has_text(self, field: str) -> np.ndarray:
        return np.array([bool(_norm(getattr(i, field))) for i in self.items], bool)

    def color_mask(self, values: Sequence[str]) -> np.ndarray:
        """Items with any colour matching one of ``values``: a family (``"blue"``), a CSS
        colour name (``"navy"``) or a hex colour (exact)."""
        wanted = {_norm(v) for v in values}
        out = np.zeros(len(self.items), bool)
        for k, item in enumerate(self.items):
            for colour in item.colors:
                info = describe_color(colour)
                if wanted & {info.family, info.name, info.hex}:
                    out[k] = True
                    break
        return out

    def occasion_mask(self, occasion: str) -> np.ndarray:
        """Items tagged for ``occasion`` or not tagged for any occasion."""
        word = _norm(occasion)
        return np.array([not i.occasion or word in i.occasion for i in self.items], bool)
