"""Outfit coordination: slots, conditions, scoring rules, learned taste, search, explanations.

Public API::

    from fashionkit.outfits import Conditions, WardrobeIndex, suggest_outfits
    index = WardrobeIndex.build(wardrobe.items())          # once per wardrobe state
    outfits = suggest_outfits(index, Conditions(season="winter", temperature=4),
                              feedback=[(e.items, e.kind) for e in wardrobe.feedback()])
    outfits[0].items, outfits[0].score, outfits[0].explanation
"""

from fashionkit.outfits.conditions import Conditions, admissible
from fashionkit.outfits.explain import Breakdown, explain, score_breakdown
from fashionkit.outfits.features import WardrobeIndex
from fashionkit.outfits.rules import color_harmony, is_bold_pattern
from fashionkit.outfits.search import (
    Outfit,
    SearchSettings,
    suggest_for_wardrobe,
    suggest_outfits,
)
from fashionkit.outfits.taste import TasteModel

__all__ = [
    "Conditions",
    "WardrobeIndex",
    "TasteModel",
    "Outfit",
    "SearchSettings",
    "suggest_outfits",
    "suggest_for_wardrobe",
    "score_breakdown",
    "Breakdown",
    "explain",
    "admissible",
    "color_harmony",
    "is_bold_pattern",
]
