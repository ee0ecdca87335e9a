"""The scoring rules of an outfit, as pure numpy functions (arrays in, numbers out).

An outfit's score is the sum of these parts (each documented below with its range):

==============  =====================================================================  =========
part            definition                                                             range
==============  =====================================================================  =========
colour          mean over item pairs of :func:`color_harmony` (main colours; items     -1 … 1
                without colour are left out)
pattern         ``-0.8 × (bold patterns − 1)`` when more than one item has a bold      ≤ 0
                pattern (:func:`is_bold_pattern`): at most one statement piece
formality       ``-0.5 × max(spread − 1, 0)`` with spread = max − min formality, then   ≤ 0
                ``-0.5 × mean |formality − target|`` when an occasion/formality is
                asked
climate         with a temperature: mean over garments of                              0 … 1.2
                ``1 − |warmth − target| / 4`` (:func:`warmth_target`); with a season:
                ``+0.2 ×`` the share of items tagged for it
taste           ``0.6 ×`` mean over pairs of the learned pair score                    -0.6 … 0.6
                (:mod:`~fashionkit.outfits.taste`), clipped to ±1
favourites      ``0.1 ×`` the share of favourite items                                 0 … 0.1
accessories     ``+0.05`` per accessory (a finished look), at most two                 0 … 0.1
rotation        only when rarely worn items are favoured: ``0.4 ×`` the mean over      0 … 0.4
                items of :func:`rarity` (wears in the last 30 days)
==============  =====================================================================  =========
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RELATIONS",
    "color_harmony",
    "is_bold_pattern",
    "pattern_part",
    "formality_part",
    "warmth_target",
    "climate_fit",
    "OCCASION_FORMALITY",
    "PATTERN_WEIGHT",
    "FORMALITY_WEIGHT",
    "TASTE_WEIGHT",
    "FAVOURITE_WEIGHT",
    "ACCESSORY_BONUS",
    "SEASON_BONUS",
    "ROTATION_WEIGHT",
    "ROTATION_WINDOW_DAYS",
    "rarity",
]

PATTERN_WEIGHT = 0.8
FORMALITY_WEIGHT = 0.5
TASTE_WEIGHT = 0.6
FAVOURITE_WEIGHT = 0.1
ACCESSORY_BONUS = 0.05
SEASON_BONUS = 0.2
# Large enough that a never-worn piece beats one worn every few days when they are otherwise
# alike (a whole outfit of them: 0.4 apart), small against a colour clash (−0.6 per pair).
ROTATION_WEIGHT = 0.4
ROTATION_WINDOW_DAYS = 30

# Relation codes returned by color_harmony, and their names in explanations.
NEUTRAL_PAIR, NEUTRAL_ACCENT, MONOCHROME, ANALOGOUS, TRIADIC, COMPLEMENTARY, CLASH = range(7)
RELATIONS: tuple[str, ...] = (
    "neutrals",
    "a neutral with a colour",
    "monochrome",
    "analogous",
    "triadic",
    "complementary",
    "clashing",
)
# Base harmony of each relation. Neutrals go with everything; same-hue (monochrome) and
# neighbouring hues (analogous) are the safest colour schemes; complementary (opposite) and
# triadic (120° apart) hues work but are bolder; other hue gaps read as a clash.
_BASE = np.array([0.6, 0.6, 0.7, 0.5, 0.3, 0.4, -0.6])
_LOUD_CHROMA = 0.15  # OkLCh chroma above which a colour is "loud" (pure red is 0.26)
_LOUD_PENALTY = 0.3
_CONTRAST_BONUS = 0.2  # for a lightness gap of 0.5 or more (navy with white)

# Patterns that do not count as bold: quiet textures that read as solid from a distance.
_QUIET_PATTERNS = frozenset({"", "plain", "solid", "none", "herringbone", "pinstripe", "twill"})

# Target formality (1 athletic … 5 black tie) for common occasion words.
OCCASION_FORMALITY: dict[str, int] = {
    "sport": 1, "gym": 1, "lounge": 1, "home": 1, "beach": 1,
    "casual": 2, "weekend": 2, "travel": 2,
    "date": 3, "party": 3, "work": 3, "office": 3, "dinner": 3,
    "business": 4, "interview": 4, "wedding": 4, "ceremony": 4,
    "formal": 5, "gala": 5, "black tie": 5,
}  # fmt: skip


def _hue_gap(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    d = np.abs(h1 - h2) % 360.0
    return np.minimum(d, 360.0 - d)


def color_harmony(l1, c1, h1, neutral1, l2, c2, h2, neutral2) -> tuple[np.ndarray, np.ndarray]:
    """Harmony of colour pairs given in OkLCh (lightness 0..1, chroma, hue in degrees) with
    their neutral flags; arrays broadcast. Returns ``(value, relation)``: value in -1..1 and
    the relation code (index into :data:`RELATIONS`).

    Hue gap Δh: ≤ 20° monochrome, ≤ 50° analogous, 100–140° triadic, ≥ 160° complementary,
    anything else clashing. Two loud colours (chroma > 0.15) that are not monochrome lose 0.3;
    a lightness contrast adds up to 0.2 (full at a gap of 0.5), except to a clash.
    """
    l1, c1, h1, l2, c2, h2 = (np.asarray(x, dtype=np.float64) for x in (l1, c1, h1, l2, c2, h2))
    n1, n2 = np.asarray(neutral1, dtype=bool), np.asarray(neutral2, dtype=bool)
    gap = _hue_gap(h1, h2)
    relation = np.select(
        [
            n1 & n2,
            n1 | n2,
            gap <= 20,
            gap <= 50,
            (gap >= 100) & (gap <= 140),
            gap >= 160,
        ],
        [NEUTRAL_PAIR, NEUTRAL_ACCENT, MONOCHROME, ANALOGOUS, TRIADIC, COMPLEMENTARY],
        default=CLASH,
    )
    value = _BASE[relation]
    loud = (c1 > _LOUD_CHROMA) & (c2 > _LOUD_CHROMA) & ~n1 & ~n2 & (relation != MONOCHROME)
    value = value - _LOUD_PENALTY * loud
    contrast = np.minimum(np.abs(l1 - l2) / 0.5, 1.0) * _CONTRAST_BONUS
    value = value + np.where(relation == CLASH, 0.0, contrast)
    return np.clip(value, -1.0, 1.0), relation


def is_bold_pattern(pattern: str | None) -> bool:
    """Any named pattern except plain and quiet textures (herringbone, pinstripe, twill)."""
    return pattern is not None and pattern.strip().lower() not in _QUIET_PATTERNS


def pattern_part(bold_count):
    """``-0.8 × (bold − 1)`` beyond the first bold pattern; arrays or ints."""
    return -PATTERN_WEIGHT * np.maximum(np.asarray(bold_count) - 1, 0)


def formality_part(fmin, fmax, fsum, fcount, fdev_sum, target: int | None):
    """Formality consistency from running statistics of the items' formality (1..5): min,
    max, sum, count and the sum of |formality − target|. Arrays broadcast."""
    spread = np.where(np.asarray(fcount) > 0, np.asarray(fmax) - np.asarray(fmin), 0)
    part = -FORMALITY_WEIGHT * np.maximum(spread - 1, 0)
    if target is not None:
        mean_dev = np.asarray(fdev_sum) / np.maximum(np.asarray(fcount), 1)
        part = part - FORMALITY_WEIGHT * mean_dev
    return part


def warmth_target(temperature_c: float) -> float:
    """Wanted warmth (1 light … 5 very warm) of each garment at an air temperature in °C:
    1 at 25 °C and above, one step per 7 °C colder, 5 at −3 °C and below."""
    return float(np.clip(1.0 + (25.0 - temperature_c) / 7.0, 1.0, 5.0))


def climate_fit(warmth, target: float):
    """``1 − |warmth − target| / 4`` per garment, 0..1."""
    return 1.0 - np.abs(np.asarray(warmth, dtype=np.float64) - target) / 4.0


def rarity(recent_wears):
    """``1 / (1 + wears)`` of an item worn ``recent_wears`` days in the last
    :data:`ROTATION_WINDOW_DAYS` (array or number): 1 for an item not worn lately, ½ once,
    ⅓ twice … (each further wear matters less)."""
    return 1.0 / (1.0 + np.asarray(recent_wears, dtype=np.float64))
