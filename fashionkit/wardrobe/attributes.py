"""Item properties derived from Fashionpedia attributes: pattern, material, season suggestion.

These are suggestions filled in at ingest or import when the person gave none; the person can
correct every field afterwards.

Season suggestion table (:func:`suggest_seasons`). Each rule that fires names the seasons it
admits; a season's vote is the number of rules admitting it, and the suggestion is the seasons
with the most votes. No rule firing means "any season" (an empty list, which the outfit
conditions treat as untagged).

================================================  =================================
evidence                                          seasons
================================================  =================================
category coat (9)                                 autumn, winter
category sweater (2)                              autumn, winter
category cardigan (3)                             spring, autumn, winter
category shorts (7)                               spring, summer
material wool, cashmere, fleece, down, fur,       autumn, winter
shearling, tweed, corduroy, velvet, flannel,
mohair, alpaca, angora, quilted
material linen, seersucker, chiffon, voile,       spring, summer
mesh, gauze, crochet, eyelet
attribute fur (289), shearling (291),             autumn, winter
quilted (303), puffer jacket/coat (19, 85),
parka (80), shearling/teddy/duffle coat (83, 84,
91), turtle neck (198)
attribute sleeveless (156), tank top (11),        spring, summer
camisole (10), halter/tube/crop top (9, 13, 8),
sundress (104), slip dress (98), booty shorts
(51), boardshorts (55), micro/mini (148, 149)
attribute wrist-length sleeve (160)               spring, autumn, winter
attribute short sleeve (157)                      spring, summer, autumn
================================================  =================================
"""

from __future__ import annotations

from collections.abc import Iterable

from fashionkit.ontology import load_ontology

__all__ = ["SEASONS", "pattern_from_attributes", "material_from_attributes", "suggest_seasons"]

SEASONS: tuple[str, ...] = ("spring", "summer", "autumn", "winter")

_COLD = frozenset({"autumn", "winter"})
_WARM = frozenset({"spring", "summer"})

_CATEGORY_SEASONS: dict[int, frozenset[str]] = {
    9: _COLD,
    2: _COLD,
    3: frozenset({"spring", "autumn", "winter"}),
    7: _WARM,
}
_COLD_MATERIALS = (
    "wool", "cashmere", "fleece", "down", "fur", "shearling", "tweed", "corduroy", "velvet",
    "flannel", "mohair", "alpaca", "angora", "quilted",
)  # fmt: skip
_WARM_MATERIALS = ("linen", "seersucker", "chiffon", "voile", "mesh", "gauze", "crochet", "eyelet")
_ATTRIBUTE_SEASONS: dict[int, frozenset[str]] = {
    **dict.fromkeys((289, 291, 303, 19, 85, 80, 83, 84, 91, 198), _COLD),
    **dict.fromkeys((156, 11, 10, 9, 13, 8, 104, 98, 51, 55, 148, 149), _WARM),
    160: frozenset({"spring", "autumn", "winter"}),
    157: frozenset({"spring", "summer", "autumn"}),
}

# Attribute groups whose names are patterns; "plain (pattern)" (317) means no pattern.
_PATTERN_GROUPS = ("textile pattern", "animal")
# Non-textile materials and leathers worth naming as the material ("no non-textile" is not).
_MATERIAL_IDS = (281, 282, 283, 285, 289, 290, 291, 292, 293, 294)


def _short(name: str) -> str:
    return name.split(",")[0].split("(")[0].strip()


def pattern_from_attributes(attribute_ids: Iterable[int]) -> str | None:
    """The pattern named by the attributes (``"stripe"``, ``"floral"``, ``"plain"`` …), the
    lowest attribute id winning when several are present; ``None`` when no pattern attribute."""
    onto = load_ontology()
    for att_id in sorted(set(attribute_ids)):
        if not onto.has_attribute(att_id):
            continue
        att = onto.attribute(att_id)
        if att.supercategory in _PATTERN_GROUPS:
            return _short(att.name)
    return None


def material_from_attributes(attribute_ids: Iterable[int]) -> str | None:
    """A material named by the attributes (leathers, fur, metal, plastic …) or ``None``.

    Fashionpedia's 294 attributes have no textile fibres (cotton, wool …), so textile
    materials come only from the person or an import."""
    ids = set(attribute_ids)
    for att_id in _MATERIAL_IDS:
        if att_id in ids:
            return _short(load_ontology().attribute(att_id).name)
    return None


def suggest_seasons(
    category_id: int, attribute_ids: Iterable[int] = (), material: str | None = None
) -> list[str]:
    """Seasons suggested by the table in this module's docstring, in calendar order; ``[]`` when
    nothing in category, attributes or material points to a season."""
    rules: list[frozenset[str]] = []
    if category_id in _CATEGORY_SEASONS:
        rules.append(_CATEGORY_SEASONS[category_id])
    for att_id in sorted(set(attribute_ids)):
        if att_id in _ATTRIBUTE_SEASONS:
            rules.append(_ATTRIBUTE_SEASONS[att_id])
    if material:
        text = material.lower()
        if any(word in text for word in _COLD_MATERIALS):
            rules.append(_COLD)
        if any(word in text for word in _WARM_MATERIALS):
            rules.append(_WARM)
    if not rules:
        return []
    votes = {s: sum(s in rule for rule in rules) for s in SEASONS}
    best = max(votes.values())
    return [s for s in SEASONS if votes[s] == best]
