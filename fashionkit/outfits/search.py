"""Outfit search: the top-k outfits of a wardrobe under conditions, without the cross product.

1. Admit items by the conditions (:func:`~fashionkit.outfits.conditions.admissible`); locked
   items are always admitted and are the only candidates of their slot.
2. Prune each slot to its ``per_slot`` best candidates by a unary priority (temperature fit,
   season tag, neutral colour — neutrals combine with most things —, favourite, learned
   affinity, and colour harmony with the locked items); ties go to the earlier item in the
   index, so results are deterministic.
3. Beam search over the slots in order — base (top → bottom, or one piece), footwear, outer
   layer, accessory, accessory — keeping the ``beam_width`` best partial outfits after each
   slot. Pair terms (colour harmony, taste) come from K×K matrices over the pruned candidates
   and are accumulated incrementally, so a partial outfit's score is exactly
   :func:`~fashionkit.outfits.explain.score_breakdown` of its items.
4. From the final beams, pick ``k`` distinct item sets greedily by score minus ``diversity`` ×
   the largest Jaccard overlap with those already picked (maximal marginal relevance).

Work is O(slots × beam_width × per_slot × outfit size) after an O(N) admission pass, so the
latency barely grows with the wardrobe (``benchmarks/outfits_latency.py`` measures it on 10,000
items).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fashionkit.outfits import rules
from fashionkit.outfits.conditions import Conditions, admissible
from fashionkit.outfits.explain import explain, score_breakdown
from fashionkit.outfits.features import WardrobeIndex
from fashionkit.outfits.slots import (
    ACCESSORY,
    BOTTOM,
    FOOTWEAR,
    GARMENT_SLOTS,
    MAX_ACCESSORIES,
    ONE_PIECE,
    OUTER,
    SLOT_NAMES,
    TOP,
)
from fashionkit.outfits.taste import TasteModel
from fashionkit.wardrobe.attributes import SEASONS
from fashionkit.wardrobe.items import WardrobeItem

__all__ = ["Outfit", "suggest_outfits", "suggest_for_wardrobe", "SearchSettings"]

_NONE = -1
# Accessories that only go with certain pieces: a tie needs a shirt (category 0).
_REQUIRES: dict[int, frozenset[int]] = {16: frozenset({0})}


@dataclass(frozen=True)
class Outfit:
    """A suggestion: item ids (base, footwear, outer layer, accessories), the total score,
    its parts (see :mod:`~fashionkit.outfits.rules`) and a one-line explanation."""

    items: tuple[str, ...]
    score: float
    parts: dict[str, float] = field(compare=False)
    explanation: str = field(compare=False)

    def to_json(self) -> dict:
        """``{"items": [ids], "score": float, "explanation": str}`` (the CLI's ``--json``)."""
        return {
            "items": list(self.items),
            "score": round(self.score, 6),
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class SearchSettings:
    beam_width: int = 64
    per_slot: int = 40
    per_base: int = 8  # beam states sharing one base (top + bottom, or one piece)
    diversity: float = 0.3


class _Beam:
    """Partial outfits as parallel arrays (S states); ``members`` holds local candidate
    indices, −1 for an empty optional slot."""

    def __init__(self, members: np.ndarray, stats: dict[str, np.ndarray]):
        self.members = members
        self.stats = stats

    def __len__(self) -> int:
        return len(self.members)


class _Search:
    def __init__(
        self,
        index: WardrobeIndex,
        conditions: Conditions,
        taste: TasteModel,
        candidates: np.ndarray,
    ):
        self.index = index
        self.conditions = conditions
        self.rows = candidates  # local index -> index row
        i = index
        r = candidates
        harmony, _ = rules.color_harmony(
            i.lightness[r][:, None], i.chroma[r][:, None], i.hue[r][:, None], i.neutral[r][:, None],
            i.lightness[r][None], i.chroma[r][None], i.hue[r][None], i.neutral[r][None],
        )  # fmt: skip
        valid = i.has_color[r][:, None] & i.has_color[r][None]
        self.colour = np.where(valid, harmony, 0.0)
        self.colour_valid = valid.astype(np.float64)
        self.taste = taste.pair_matrix(index, r)
        self.formality = i.formality[r].astype(np.int64)
        self.bold = i.bold[r].astype(np.int64)
        self.favorite = i.favorite[r].astype(np.int64)
        self.is_accessory = (i.slot[r] == ACCESSORY).astype(np.int64)
        self.target = conditions.target_formality
        if conditions.temperature is not None:
            is_garment = np.isin(i.slot[r], list(GARMENT_SLOTS))
            fit = rules.climate_fit(i.warmth[r], rules.warmth_target(conditions.temperature))
            self.climate = np.where(is_garment, fit, 0.0)
            self.climate_counts = is_garment.astype(np.int64)
        else:
            self.climate = np.zeros(len(r))
            self.climate_counts = np.zeros(len(r), np.int64)
        if conditions.season is not None:
            bit = 1 << SEASONS.index(conditions.season)
            self.season = ((i.season_bits[r] & bit) != 0).astype(np.int64)
        else:
            self.season = np.zeros(len(r), np.int64)
        self.favour_rare = conditions.favour_rarely_worn
        self.rarity = rules.rarity(i.recent_wears[r]) if self.favour_rare else np.zeros(len(r))

    def start(self) -> _Beam:
        zeros_f = np.zeros(1)
        zeros_i = np.zeros(1, np.int64)
        stats = {
            "colour_sum": zeros_f, "colour_cnt": zeros_f, "taste_sum": zeros_f,
            "pair_cnt": zeros_i, "n": zeros_i, "bold": zeros_i, "fmin": np.full(1, 99),
            "fmax": np.full(1, -99), "fsum": zeros_i, "fdev": zeros_i, "clim_sum": zeros_f,
            "clim_cnt": zeros_i, "season": zeros_i, "fav": zeros_i, "acc": zeros_i,
            "rare": zeros_f,
        }  # fmt: skip
        return _Beam(np.zeros((1, 0), np.int64), stats)

    def scores(self, s: dict[str, np.ndarray]) -> np.ndarray:
        n = np.maximum(s["n"], 1)
        total = s["colour_sum"] / np.maximum(s["colour_cnt"], 1)
        total = total + rules.pattern_part(s["bold"])
        total = total + rules.formality_part(
            s["fmin"], s["fmax"], s["fsum"], s["n"], s["fdev"], self.target
        )
        if self.conditions.temperature is not None:
            total = total + np.where(
                s["clim_cnt"] > 0, s["clim_sum"] / np.maximum(s["clim_cnt"], 1), 0.0
            )
        if self.conditions.season is not None:
            total = total + rules.SEASON_BONUS * s["season"] / n
        total = total + rules.TASTE_WEIGHT * s["taste_sum"] / np.maximum(s["pair_cnt"], 1)
        total = total + rules.FAVOURITE_WEIGHT * s["fav"] / n
        if self.favour_rare:
            total = total + rules.ROTATION_WEIGHT * s["rare"] / n
        return total + rules.ACCESSORY_BONUS * s["acc"]

    def expand(
        self,
        beam: _Beam,
        options: np.ndarray,
        allowed: np.ndarray | None,
        base_slots: int = 0,
    ) -> _Beam:
        """Every state × every option (−1 = leave the slot empty); ``allowed`` (S×O bool)
        removes combinations. Returns the best ``beam_width`` states, at most
        ``per_base`` of them sharing the first ``base_slots`` members (0: no cap)."""
        n_states, n_options = len(beam), len(options)
        members = beam.members
        present = members >= 0
        opt = np.maximum(options, 0)
        real = (options >= 0)[None, :]  # 1×O
        safe_members = np.maximum(members, 0)
        # Σ over existing members of the pair value with the new option: S×O.
        colour_add = np.einsum("sd,sdo->so", present, self.colour[safe_members][:, :, opt])
        valid_add = np.einsum("sd,sdo->so", present, self.colour_valid[safe_members][:, :, opt])
        taste_add = np.einsum("sd,sdo->so", present, self.taste[safe_members][:, :, opt])
        n_present = present.sum(axis=1)[:, None]
        s = beam.stats
        f = self.formality[opt][None]
        new = {
            "colour_sum": s["colour_sum"][:, None] + real * colour_add,
            "colour_cnt": s["colour_cnt"][:, None] + real * valid_add,
            "taste_sum": s["taste_sum"][:, None] + real * taste_add,
            "pair_cnt": s["pair_cnt"][:, None] + real * n_present,
            "n": s["n"][:, None] + real,
            "bold": s["bold"][:, None] + real * self.bold[opt][None],
            "fmin": np.where(real, np.minimum(s["fmin"][:, None], f), s["fmin"][:, None]),
            "fmax": np.where(real, np.maximum(s["fmax"][:, None], f), s["fmax"][:, None]),
            "fsum": s["fsum"][:, None] + real * f,
            "fdev": s["fdev"][:, None]
            + real * (np.abs(f - self.target) if self.target is not None else 0),
            "clim_sum": s["clim_sum"][:, None] + real * self.climate[opt][None],
            "clim_cnt": s["clim_cnt"][:, None] + real * self.climate_counts[opt][None],
            "season": s["season"][:, None] + real * self.season[opt][None],
            "fav": s["fav"][:, None] + real * self.favorite[opt][None],
            "acc": s["acc"][:, None] + real * self.is_accessory[opt][None],
            "rare": s["rare"][:, None] + real * self.rarity[opt][None],
        }
        new = {key: np.broadcast_to(v, (n_states, n_options)) for key, v in new.items()}
        score = self.scores(new)
        if allowed is not None:
            score = np.where(allowed, score, -np.inf)
        flat = score.reshape(-1)
        order = np.argsort(-flat, kind="stable")
        order = order[np.isfinite(flat[order])]
        if base_slots and len(order) > self.beam_width:
            keep = self._capped(order // n_options, members[:, :base_slots], order)
        else:
            keep = order[: self.beam_width]
        state, option = np.divmod(keep, n_options)
        members = np.concatenate([members[state], options[option][:, None]], axis=1)
        return _Beam(members, {key: v.reshape(-1)[keep] for key, v in new.items()})

    def _capped(self, parent: np.ndarray, bases: np.ndarray, order: np.ndarray) -> np.ndarray:
        """The first ``beam_width`` of ``order`` with at most ``per_base`` per base outfit, so
        the beam keeps several bases instead of accessory variations of the best one (the
        diversity step can only pick among what the beam kept)."""
        _, base_of_state = np.unique(bases, axis=0, return_inverse=True)
        group = base_of_state.reshape(-1)[parent]
        counts = np.zeros(group.max() + 1, np.int64)
        # With few bases (a locked one piece, or a locked top and bottom) the cap rises so
        # the beam still fills.
        cap = max(self.per_base, -(-self.beam_width // len(counts)))
        keep = []
        for position, g in enumerate(group.tolist()):
            if counts[g] < cap:
                counts[g] += 1
                keep.append(order[position])
                if len(keep) == self.beam_width:
                    break
        return np.array(keep, np.int64)

    beam_width = 64
    per_base = 8


def _locks(index: WardrobeIndex, lock: Sequence[str]) -> dict[int, list[int]]:
    by_slot: dict[int, list[int]] = {}
    for key in dict.fromkeys(lock):
        if key not in index.position:
            raise KeyError(f"locked item {key!r} is not in the wardrobe")
        row = index.position[key]
        slot = int(index.slot[row])
        if slot < 0:
            raise ValueError(
                f"locked item {key!r} ({index.items[row].category_name}) does not fill any "
                "outfit slot"
            )
        by_slot.setdefault(slot, []).append(row)
    for slot, rows in by_slot.items():
        limit = MAX_ACCESSORIES if slot == ACCESSORY else 1
        if len(rows) > limit:
            names = [index.items[r].id for r in rows]
            raise ValueError(f"cannot lock {names} together: one {SLOT_NAMES[slot]} per outfit")
    accessories = by_slot.get(ACCESSORY, [])
    if len({int(index.category[r]) for r in accessories}) < len(accessories):
        raise ValueError("locked accessories must be of different categories")
    if ONE_PIECE in by_slot and (TOP in by_slot or BOTTOM in by_slot):
        raise ValueError("cannot lock a one-piece together with a top or bottom")
    return by_slot


def _priority(
    index: WardrobeIndex, conditions: Conditions, taste: TasteModel, locked: list[int]
) -> np.ndarray:
    priority = 0.2 * index.neutral + rules.FAVOURITE_WEIGHT * index.favorite
    coloured = [r for r in locked if index.has_color[r]]
    if coloured:
        # Building around an item: prefer candidates whose colour goes with it.
        i = index
        harmony, _ = rules.color_harmony(
            i.lightness[:, None], i.chroma[:, None], i.hue[:, None], i.neutral[:, None],
            i.lightness[coloured][None], i.chroma[coloured][None], i.hue[coloured][None],
            i.neutral[coloured][None],
        )  # fmt: skip
        priority = priority + np.where(i.has_color, harmony.mean(axis=1), 0.0)
    if conditions.temperature is not None:
        priority = priority + rules.climate_fit(
            index.warmth, rules.warmth_target(conditions.temperature)
        )
    if conditions.season is not None:
        bit = 1 << SEASONS.index(conditions.season)
        priority = priority + rules.SEASON_BONUS * ((index.season_bits & bit) != 0)
    if not taste.is_empty:
        priority = priority + 0.5 * taste.item_affinity(index)
    if conditions.favour_rarely_worn:
        priority = priority + rules.ROTATION_WEIGHT * rules.rarity(index.recent_wears)
    return priority


def suggest_outfits(
    wardrobe: WardrobeIndex | Iterable[WardrobeItem],
    conditions: Conditions | None = None,
    *,
    k: int = 10,
    taste: TasteModel | None = None,
    feedback: Iterable[tuple[Sequence[str], str]] | None = None,
    settings: SearchSettings = SearchSettings(),
) -> list[Outfit]:
    """The ``k`` best distinct outfits, best first.

    ``wardrobe``: a prebuilt :class:`WardrobeIndex` (reuse it across requests) or items.
    ``taste``: a fitted :class:`TasteModel`, or ``feedback`` as ``(item ids, kind)`` pairs to
    fit one. Deterministic for the same wardrobe, conditions and feedback. Raises
    ``KeyError``/``ValueError`` for a lock that is unknown or cannot be satisfied.
    """
    index = wardrobe if isinstance(wardrobe, WardrobeIndex) else WardrobeIndex.build(list(wardrobe))
    conditions = conditions or Conditions()
    if taste is None:
        taste = TasteModel.fit(index, feedback or ())
    locks = _locks(index, conditions.lock)
    if k <= 0 or len(index) == 0:
        return []
    admitted = admissible(index, conditions)
    priority = _priority(index, conditions, taste, [r for rows in locks.values() for r in rows])

    # A locked accessory that needs a certain top (a tie needs a shirt) narrows the tops.
    needed_tops: set[int] = set()
    for row in locks.get(ACCESSORY, []):
        needed_tops |= _REQUIRES.get(int(index.category[row]), frozenset())

    def candidates(slot: int) -> np.ndarray:
        if slot in locks and slot != ACCESSORY:
            return np.array(locks[slot], np.int64)
        mask = admitted & (index.slot == slot)
        if slot == TOP and needed_tops:
            mask &= np.isin(index.category, list(needed_tops))
        if slot == ONE_PIECE and needed_tops:
            mask &= False
        rows = np.flatnonzero(mask)
        order = np.lexsort((rows, -priority[rows]))
        chosen = rows[order[: settings.per_slot]]
        if slot == ACCESSORY and slot in locks:
            chosen = np.array(
                locks[slot] + [r for r in chosen.tolist() if r not in locks[slot]], np.int64
            )
        return chosen

    per_slot = {slot: candidates(slot) for slot in range(6)}
    all_rows = np.unique(np.concatenate(list(per_slot.values())))
    local = {int(r): j for j, r in enumerate(all_rows)}
    search = _Search(index, conditions, taste, all_rows)
    search.beam_width = settings.beam_width
    search.per_base = settings.per_base

    def loc(rows: np.ndarray) -> np.ndarray:
        return np.array([local[int(r)] for r in rows], np.int64)

    bases = []
    if ONE_PIECE not in locks and len(per_slot[TOP]) and len(per_slot[BOTTOM]):
        bases.append([TOP, BOTTOM])
    if TOP not in locks and BOTTOM not in locks and len(per_slot[ONE_PIECE]):
        bases.append([ONE_PIECE])

    outer_mode = "required" if OUTER in locks else conditions.outer_mode()
    acc_rows = per_slot[ACCESSORY]
    acc_local = loc(acc_rows)
    acc_locked = loc(np.array(locks.get(ACCESSORY, []), np.int64))
    acc_category = index.category[acc_rows] if len(acc_rows) else np.zeros(0, np.int16)
    category_of_local = dict(zip(acc_local.tolist(), acc_category.tolist(), strict=True))

    finals: list[_Beam] = []
    for base in bases:
        beam = search.start()
        for slot in base:
            beam = search.expand(beam, loc(per_slot[slot]), None)
        nb = len(base)
        if len(per_slot[FOOTWEAR]):
            beam = search.expand(beam, loc(per_slot[FOOTWEAR]), None, nb)
        if outer_mode != "none" and len(per_slot[OUTER]):
            options = loc(per_slot[OUTER])
            if outer_mode == "optional":
                options = np.append(options, _NONE)
            beam = search.expand(beam, options, None, nb)
        for step in range(MAX_ACCESSORIES):
            if not len(acc_local):
                break
            if step < len(acc_locked):
                options = acc_locked[step : step + 1]
            else:
                options = np.append(acc_local, _NONE)
            allowed = _requirements(index, all_rows, beam.members, options)
            if step > 0:
                previous = beam.members[:, -1]
                prev_cat = np.array([category_of_local.get(int(p), -1) for p in previous])
                opt_cat = np.array([category_of_local.get(int(o), -2) for o in options])
                allowed &= prev_cat[:, None] != opt_cat[None, :]
                # After an empty accessory slot only "none" follows; without a lock forcing
                # the first, keep the pair ordered so {a, b} is not also found as {b, a}.
                allowed &= (previous[:, None] != _NONE) | (options[None, :] == _NONE)
                if len(acc_locked) == 0:
                    allowed &= (options[None, :] == _NONE) | (options[None, :] > previous[:, None])
            beam = search.expand(beam, options, allowed, nb)
        finals.append(beam)

    pool: dict[frozenset[int], tuple[float, tuple[int, ...]]] = {}
    for beam in finals:
        totals = search.scores(beam.stats)
        for members, total in zip(beam.members, totals, strict=True):
            rows = tuple(int(all_rows[m]) for m in members if m >= 0)
            key = frozenset(rows)
            if key not in pool or total > pool[key][0]:
                pool[key] = (float(total), rows)
    ranked = sorted(pool.values(), key=lambda t: (-t[0], [index.items[r].id for r in t[1]]))
    # The diverse set, shown best first.
    picked = sorted(
        _diverse(ranked, k, settings.diversity),
        key=lambda t: (-t[0], [index.items[r].id for r in t[1]]),
    )

    out = []
    for _, rows in picked:
        breakdown = score_breakdown(index, rows, conditions, taste)
        out.append(
            Outfit(
                items=tuple(index.items[r].id for r in rows),
                score=breakdown.total,
                parts=breakdown.parts,
                explanation=explain(index, rows, conditions, breakdown),
            )
        )
    return out


def suggest_for_wardrobe(
    wardrobe, conditions: Conditions | None = None, *, k: int = 10
) -> list[Outfit]:
    """:func:`suggest_outfits` over a :class:`~fashionkit.wardrobe.Wardrobe` store: its items,
    their wears of the last :data:`~fashionkit.outfits.rules.ROTATION_WINDOW_DAYS` before the
    conditions' day, and all its feedback (the CLI's and the service's call)."""
    import datetime as dt

    conditions = conditions or Conditions()
    items = wardrobe.items()
    today = conditions.today or dt.date.today()
    since = today - dt.timedelta(days=rules.ROTATION_WINDOW_DAYS - 1)
    recent = {
        key: stats.times_worn
        for key, stats in wardrobe.wear_stats(since=since, until=today).items()
    }
    feedback = [(event.items, event.kind) for event in wardrobe.feedback()]
    index = WardrobeIndex.build(items, recent)
    return suggest_outfits(index, conditions, k=k, feedback=feedback)


def _requirements(
    index: WardrobeIndex, all_rows: np.ndarray, members: np.ndarray, options: np.ndarray
) -> np.ndarray:
    """S×O: which options each state may take under :data:`_REQUIRES`."""
    allowed = np.ones((len(members), len(options)), bool)
    member_cats = np.where(members >= 0, index.category[all_rows[np.maximum(members, 0)]], -1)
    for j, option in enumerate(options.tolist()):
        if option < 0:
            continue
        needed = _REQUIRES.get(int(index.category[all_rows[option]]))
        if needed:
            allowed[:, j] = np.isin(member_cats, list(needed)).any(axis=1)
    return allowed


def _diverse(ranked: list[tuple[float, tuple[int, ...]]], k: int, weight: float):
    """Greedy maximal marginal relevance over the ranked pool (best first)."""
    picked: list[tuple[float, tuple[int, ...]]] = []
    sets = [frozenset(rows) for _, rows in ranked]
    overlap = np.zeros(len(ranked))
    available = np.ones(len(ranked), bool)
    scores = np.array([s for s, _ in ranked])
    while len(picked) < k and available.any():
        value = np.where(available, scores - weight * overlap, -np.inf)
        best = int(np.argmax(value))  # first of equals: the better-ranked one
        picked.append(ranked[best])
        available[best] = False
        chosen = sets[best]
        for j in np.flatnonzero(available):
            jac = len(chosen & sets[j]) / len(chosen | sets[j])
            overlap[j] = max(overlap[j], jac)
    return picked
