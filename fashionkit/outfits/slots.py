"""Outfit slots: which Fashionpedia categories can fill which place in an outfit.

An outfit is a base — a top and a bottom, or one piece — plus footwear when the wardrobe has
any, an outer layer when the temperature or the person asks for one, and up to
:data:`MAX_ACCESSORIES` accessories of different categories. Other categories (garment parts,
socks, tights, umbrellas …) never fill a slot.
"""

from __future__ import annotations

__all__ = [
    "TOP",
    "BOTTOM",
    "ONE_PIECE",
    "FOOTWEAR",
    "OUTER",
    "ACCESSORY",
    "SLOT_NAMES",
    "SLOT_OF_CATEGORY",
    "GARMENT_SLOTS",
    "MAX_ACCESSORIES",
    "slot_of",
]

TOP, BOTTOM, ONE_PIECE, FOOTWEAR, OUTER, ACCESSORY = range(6)
NO_SLOT = -1
SLOT_NAMES: tuple[str, ...] = ("top", "bottom", "one piece", "footwear", "outer layer", "accessory")
# Slots whose warmth counts for the temperature fit.
GARMENT_SLOTS: frozenset[int] = frozenset({TOP, BOTTOM, ONE_PIECE, OUTER})
MAX_ACCESSORIES = 2

SLOT_OF_CATEGORY: dict[int, int] = {
    0: TOP,  # shirt, blouse
    1: TOP,  # top, t-shirt, sweatshirt
    2: TOP,  # sweater
    6: BOTTOM,  # pants
    7: BOTTOM,  # shorts
    8: BOTTOM,  # skirt
    10: ONE_PIECE,  # dress
    11: ONE_PIECE,  # jumpsuit
    23: FOOTWEAR,  # shoe
    3: OUTER,  # cardigan
    4: OUTER,  # jacket
    5: OUTER,  # vest
    9: OUTER,  # coat
    12: OUTER,  # cape
    24: ACCESSORY,  # bag, wallet
    14: ACCESSORY,  # hat
    25: ACCESSORY,  # scarf
    19: ACCESSORY,  # belt
    18: ACCESSORY,  # watch
    13: ACCESSORY,  # glasses
    16: ACCESSORY,  # tie
}


def slot_of(category_id: int) -> int:
    """The slot a category fills, or ``-1`` when it fills none."""
    return SLOT_OF_CATEGORY.get(category_id, NO_SLOT)
