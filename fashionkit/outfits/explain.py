"""Exact score breakdown of one outfit and its short human-readable explanation.

:func:`score_breakdown` applies the rules of :mod:`~fashionkit.outfits.rules` to one set
of items directly; the search computes the same sums incrementally, and the tests check that
both agree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np

from fashionkit.outfits import rules
from fashionkit.outfits.conditions import Conditions
from fashionkit.outfits.features import WardrobeIndex
from fashionkit.outfits.slots import ACCESSORY, GARMENT_SLOTS
from fashionkit.outfits.taste import TasteModel
from fashionkit.wardrobe.attributes import SEASONS, pattern_from_attributes
from fashionkit.wardrobe.colors import describe_color

__all__ = ["Breakdown", "score_breakdown", "explain", "how_long"]


@dataclass(frozen=True)
class Breakdown:
    """``total`` is the sum of ``parts`` (colour, pattern, formality, climate, taste,
    favourites, accessories, rotation); ``relations`` maps item-row pairs to colour relation codes."""

    total: float
    parts: dict[str, float]
    relations: dict[tuple[int, int], int]


def score_breakdown(
    index: WardrobeIndex, rows, conditions: Conditions, taste: TasteModel | None = None
) -> Breakdown:
    rows = [int(r) for r in rows]
    n = len(rows)
    colour_sum, colour_cnt = 0.0, 0
    relations: dict[tuple[int, int], int] = {}
    taste_matrix = (
        taste.pair_matrix(index, np.array(rows)) if taste is not None else np.zeros((n, n))
    )
    taste_sum, pair_cnt = 0.0, 0
    for x in range(n):
        for y in range(x + 1, n):
            a, b = rows[x], rows[y]
            pair_cnt += 1
            taste_sum += float(taste_matrix[x, y])
            if index.has_color[a] and index.has_color[b]:
                value, relation = rules.color_harmony(
                    index.lightness[a], index.chroma[a], index.hue[a], index.neutral[a],
                    index.lightness[b], index.chroma[b], index.hue[b], index.neutral[b],
                )  # fmt: skip
                colour_sum += float(value)
                colour_cnt += 1
                relations[(a, b)] = int(relation)
    formality = index.formality[rows].astype(int)
    target = conditions.target_formality
    parts = {
        "colour": colour_sum / max(colour_cnt, 1),
        "pattern": float(rules.pattern_part(int(index.bold[rows].sum()))),
        "formality": float(
            rules.formality_part(
                formality.min(),
                formality.max(),
                formality.sum(),
                n,
                np.abs(formality - target).sum() if target is not None else 0,
                target,
            )
        ),
        "climate": 0.0,
        "taste": rules.TASTE_WEIGHT * taste_sum / max(pair_cnt, 1),
        "favourites": rules.FAVOURITE_WEIGHT * float(index.favorite[rows].sum()) / n,
        "accessories": rules.ACCESSORY_BONUS * int((index.slot[rows] == ACCESSORY).sum()),
        "rotation": (
            rules.ROTATION_WEIGHT * float(rules.rarity(index.recent_wears[rows]).mean())
            if conditions.favour_rarely_worn
            else 0.0
        ),
    }
    if conditions.temperature is not None:
        garments = [r for r in rows if int(index.slot[r]) in GARMENT_SLOTS]
        if garments:
            fit = rules.climate_fit(
                index.warmth[garments], rules.warmth_target(conditions.temperature)
            )
            parts["climate"] += float(fit.mean())
    if conditions.season is not None:
        bit = 1 << SEASONS.index(conditions.season)
        tagged = int(((index.season_bits[rows] & bit) != 0).sum())
        parts["climate"] += rules.SEASON_BONUS * tagged / n
    return Breakdown(total=float(sum(parts.values())), parts=parts, relations=relations)


def _label(index: WardrobeIndex, row: int) -> str:
    item = index.items[row]
    if item.name:
        return item.name
    colour = describe_color(item.colors[0]).name + " " if item.colors else ""
    return colour + item.category_name


def how_long(days: int) -> str:
    """A span of days as a person says it: ``"5 days"``, ``"3 weeks"``, ``"4 months"``,
    ``"2 years"`` (rounded down)."""
    if days < 14:
        return f"{days} day{'s' if days != 1 else ''}"
    if days < 61:
        return f"{days // 7} weeks"
    if days < 730:
        return f"{days // 30} months"
    return f"{days // 365} years"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _wear_reasons(index: WardrobeIndex, rows: list[int], conditions: Conditions) -> list[str]:
    """Why the outfit fits the wear log: its least recently worn piece, and (when rarely worn
    pieces are favoured) a piece worn often lately, which the rest of the outfit outweighed."""
    today = (conditions.today or dt.date.today()).toordinal()
    last = index.last_worn[rows]
    oldest = rows[int(np.argmin(last))]
    reasons = []
    if index.last_worn[oldest] < 0:
        reasons.append(f"{_label(index, oldest)} never worn")
    elif today - index.last_worn[oldest] > 0:
        reasons.append(
            f"{_label(index, oldest)} not worn for {how_long(today - int(index.last_worn[oldest]))}"
        )
    if conditions.favour_rarely_worn:
        worn = index.recent_wears[rows]
        busiest = rows[int(np.argmax(worn))]
        if index.recent_wears[busiest] >= 3:
            reasons.append(
                f"{_label(index, busiest)} worn {_times(int(index.recent_wears[busiest]))} in "
                f"{rules.ROTATION_WINDOW_DAYS} days"
            )
    return reasons


def explain(index: WardrobeIndex, rows, conditions: Conditions, breakdown: Breakdown) -> str:
    """One line: the pieces, then the reasons that carried the score."""
    rows = [int(r) for r in rows]
    reasons: list[str] = []

    if breakdown.relations:
        clashes = [pair for pair, rel in breakdown.relations.items() if rel == rules.CLASH]
        if clashes:
            a, b = clashes[0]
            reasons.append(
                f"{describe_color(index.items[a].colors[0]).name} and "
                f"{describe_color(index.items[b].colors[0]).name} clash"
            )
        else:
            coloured = [r for r in rows if index.has_color[r]]
            accents = [r for r in coloured if not index.neutral[r]]
            names = [describe_color(index.items[r].colors[0]).name for r in accents]
            if not accents:
                reasons.append("all neutrals, which go with everything")
            elif len(accents) == 1:
                reasons.append(f"neutrals with a {names[0]} accent")
            else:
                chromatic = Counter(
                    rel
                    for (a, b), rel in breakdown.relations.items()
                    if not index.neutral[a] and not index.neutral[b]
                )
                relation = min(chromatic, key=lambda r: (-chromatic[r], r))
                text = {
                    rules.MONOCHROME: "a monochrome palette",
                    rules.ANALOGOUS: "analogous hues",
                    rules.TRIADIC: "a triadic colour scheme",
                    rules.COMPLEMENTARY: "complementary colours",
                }[relation]
                reasons.append(f"{' and '.join(sorted(set(names)))}: {text}")
        lights = index.lightness[[r for r in rows if index.has_color[r]]]
        if len(lights) > 1 and lights.max() - lights.min() >= 0.4:
            reasons.append("strong light–dark contrast")

    bold = [r for r in rows if index.bold[r]]
    if len(bold) > 1:
        reasons.append(
            "competing patterns ("
            + ", ".join(
                index.items[r].pattern
                or pattern_from_attributes(index.items[r].attribute_ids)
                or ""
                for r in bold
            )
            + ")"
        )
    elif bold:
        item = index.items[bold[0]]
        pattern = item.pattern or pattern_from_attributes(item.attribute_ids)
        reasons.append(f"one statement pattern ({pattern})")

    formality = index.formality[rows].astype(int)
    low, high = int(formality.min()), int(formality.max())
    span = str(low) if low == high else f"{low}–{high}"
    if high - low <= 1:
        reasons.append(f"consistent formality {span}/5")
    else:
        reasons.append(f"mixed formality {span}/5")

    if conditions.temperature is not None:
        garments = [r for r in rows if int(index.slot[r]) in GARMENT_SLOTS]
        if garments:
            warmth = float(index.warmth[garments].mean())
            target = rules.warmth_target(conditions.temperature)
            t = f"{conditions.temperature:g} °C"
            if abs(warmth - target) <= 1:
                reasons.append(f"warm enough for {t}")
            elif warmth > target:
                reasons.append(f"warm for {t}")
            else:
                reasons.append(f"light for {t}")
    if conditions.season is not None:
        reasons.append(f"fits {conditions.season}")
    taste = breakdown.parts["taste"]
    if taste > 0.05:
        reasons.append("close to outfits you liked")
    elif taste < -0.05:
        reasons.append("resembles outfits you disliked")
    if breakdown.parts["favourites"] > 0:
        reasons.append("includes a favourite")
    if conditions.favour_rarely_worn or conditions.not_worn_days is not None:
        reasons.extend(_wear_reasons(index, rows, conditions))
    locked = [index.position[k] for k in conditions.lock if k in index.position]
    if locked:
        reasons.insert(0, "built around " + " and ".join(_label(index, r) for r in locked))
    pieces = " + ".join(_label(index, r) for r in rows)
    return f"{pieces} — " + "; ".join(reasons)
