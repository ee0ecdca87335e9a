import datetime as dt
import itertools

import numpy as np
import pytest

from fashionkit.outfits import (
    Conditions,
    SearchSettings,
    TasteModel,
    WardrobeIndex,
    score_breakdown,
    suggest_outfits,
)
from fashionkit.outfits.slots import ACCESSORY, slot_of
from fashionkit.wardrobe import WardrobeItem

PALETTE = ["#1f2a44", "#ffffff", "#111111", "#ff8c00", "#ff00ff", "#4169e1", "#d2b48c",
           "#008000", "#c71585", "#808080", "#ffd700", "#8b4513"]  # fmt: skip
PATTERNS = [None, None, None, "stripe", "floral", "check"]
SEASON_SETS = [(), (), ("summer",), ("winter",), ("autumn", "winter"), ("spring", "summer")]
CATEGORIES = [0, 1, 2, 6, 7, 8, 10, 11, 23, 23, 3, 4, 9, 24, 19, 25, 16, 14]


def random_wardrobe(n, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for k in range(n):
        items.append(
            WardrobeItem(
                id=f"i{k:05d}",
                category_id=int(rng.choice(CATEGORIES)),
                colors=(str(rng.choice(PALETTE)),),
                pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
                season=SEASON_SETS[int(rng.integers(len(SEASON_SETS)))],
                formality=int(rng.integers(1, 6)) if rng.random() < 0.5 else None,
                favorite=bool(rng.random() < 0.1),
            )
        )
    return items


def brute_force_best(index, conditions, taste=None):
    """Exhaustive best score over every valid outfit (tiny wardrobes only)."""
    from fashionkit.outfits.conditions import admissible

    ok = admissible(index, conditions)
    by_slot = {s: [r for r in np.flatnonzero(ok) if index.slot[r] == s] for s in range(6)}
    bases = [(t, b) for t in by_slot[0] for b in by_slot[1]] + [(d,) for d in by_slot[2]]
    shoes = [(s,) for s in by_slot[3]] or [()]
    mode = conditions.outer_mode()
    outers = {"none": [()], "optional": [()] + [(o,) for o in by_slot[4]],
              "required": [(o,) for o in by_slot[4]] or [()]}[mode]  # fmt: skip
    accs = [()] + [(a,) for a in by_slot[5]]
    accs += [
        (a, b)
        for a, b in itertools.combinations(by_slot[5], 2)
        if index.category[a] != index.category[b]
    ]
    best = -np.inf
    for base, shoe, outer, acc in itertools.product(bases, shoes, outers, accs):
        rows = base + shoe + outer + acc
        cats = {int(index.category[r]) for r in rows}
        if 16 in cats and 0 not in cats:  # a tie needs a shirt
            continue
        best = max(best, score_breakdown(index, rows, conditions, taste).total)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "conditions",
    [Conditions(), Conditions(temperature=5.0), Conditions(season="summer", temperature=20.0)],
)
def test_beam_finds_the_exhaustive_best_on_small_wardrobes(seed, conditions):
    index = WardrobeIndex.build(random_wardrobe(20, seed))
    best = brute_force_best(index, conditions)
    outfits = suggest_outfits(index, conditions, k=5, settings=SearchSettings(diversity=0.0))
    assert outfits[0].score == pytest.approx(best, abs=1e-9)
    assert [o.score for o in outfits] == sorted((o.score for o in outfits), reverse=True)


def test_outfits_are_valid_distinct_and_scored_exactly():
    items = random_wardrobe(400, seed=3)
    index = WardrobeIndex.build(items)
    conditions = Conditions(temperature=8.0)
    outfits = suggest_outfits(index, conditions, k=10)
    assert len(outfits) == 10
    assert len({frozenset(o.items) for o in outfits}) == 10
    for outfit in outfits:
        rows = [index.position[i] for i in outfit.items]
        slots = [slot_of(index.items[r].category_id) for r in rows]
        assert (slots.count(0) == 1 and slots.count(1) == 1) != (slots.count(2) == 1)
        assert slots.count(3) == 1  # footwear exists in this wardrobe
        assert slots.count(4) == 1  # 8 °C asks for an outer layer
        accessories = [
            index.items[r].category_id for r, s in zip(rows, slots, strict=True) if s == ACCESSORY
        ]
        assert len(accessories) == len(set(accessories)) <= 2
        assert outfit.score == pytest.approx(score_breakdown(index, rows, conditions).total)
        assert outfit.score == pytest.approx(sum(outfit.parts.values()))
        assert " — " in outfit.explanation and "8 °C" in outfit.explanation
    # The same request gives the same answer, from items or from a prebuilt index.
    assert suggest_outfits(items, conditions, k=10) == outfits


def test_diversity_spreads_items_across_suggestions():
    index = WardrobeIndex.build(random_wardrobe(400, seed=4))
    plain = suggest_outfits(index, k=10, settings=SearchSettings(diversity=0.0))
    diverse = suggest_outfits(index, k=10)

    def distinct(outfits):
        return len({i for o in outfits for i in o.items})

    assert distinct(diverse) > distinct(plain)


def test_summer_request_never_returns_winter_only_items():
    items = random_wardrobe(300, seed=5)
    winter_only = {i.id for i in items if i.season and "summer" not in i.season}
    assert winter_only
    outfits = suggest_outfits(items, Conditions(season="summer"), k=10)
    assert outfits
    for outfit in outfits:
        assert not winter_only & set(outfit.items)


def test_lock_always_appears():
    items = random_wardrobe(300, seed=6)
    for category in (0, 6, 10, 23, 4, 24):
        locked = next(i for i in items if i.category_id == category)
        outfits = suggest_outfits(items, Conditions(lock=(locked.id,), season="summer"), k=10)
        assert outfits and all(locked.id in o.items for o in outfits)
        assert all("built around" in o.explanation for o in outfits)
    shirt = next(i.id for i in items if i.category_id == 0)
    bag = next(i.id for i in items if i.category_id == 24)
    outfits = suggest_outfits(items, Conditions(lock=(shirt, bag)), k=5)
    assert all({shirt, bag} <= set(o.items) for o in outfits)
    dress = next(i.id for i in items if i.category_id == 10)
    with pytest.raises(ValueError, match="one-piece"):
        suggest_outfits(items, Conditions(lock=(shirt, dress)))
    with pytest.raises(KeyError, match="nope"):
        suggest_outfits(items, Conditions(lock=("nope",)))


def test_conditions_filter_items():
    items = [
        WardrobeItem("tee", 1, brand="Acme", colors=("#ffffff",)),
        WardrobeItem("shirt", 0, brand="Other", colors=("#ff0000",)),
        WardrobeItem("jeans", 6, colors=("#1f2a44",), material="denim"),
        WardrobeItem("chinos", 6, colors=("#d2b48c",), material="cotton"),
        WardrobeItem("shoe", 23, colors=("#111111",)),
    ]

    def used(**kw):
        return {i for o in suggest_outfits(items, Conditions(**kw), k=10) for i in o.items}

    assert used(include_brands=("acme",)) == {"tee", "jeans", "chinos", "shoe"}
    assert "jeans" not in used(exclude_materials=("Denim",))
    assert "shirt" not in used(exclude_colors=("red",))
    assert used(include_colors=("white", "blue", "black")) == {"tee", "jeans", "shoe"}
    today = dt.date(2026, 6, 10)
    worn = [i.with_changes(last_worn=dt.date(2026, 6, 8)) if i.id == "tee" else i for i in items]
    assert "tee" not in {
        i for o in suggest_outfits(worn, Conditions(not_worn_days=3, today=today)) for i in o.items
    }
    assert "tee" in {
        i for o in suggest_outfits(worn, Conditions(not_worn_days=1, today=today)) for i in o.items
    }


def test_outer_layer_follows_temperature():
    items = random_wardrobe(200, seed=7)
    outer = {i.id for i in items if slot_of(i.category_id) == 4}
    hot = suggest_outfits(items, Conditions(temperature=30), k=10)
    cold = suggest_outfits(items, Conditions(temperature=-5), k=10)
    asked = suggest_outfits(items, Conditions(outer=True), k=10)
    assert all(not outer & set(o.items) for o in hot)
    assert all(len(outer & set(o.items)) == 1 for o in cold)
    assert all(len(outer & set(o.items)) == 1 for o in asked)


def test_feedback_moves_scores_in_the_expected_direction():
    items = random_wardrobe(200, seed=8)
    index = WardrobeIndex.build(items)
    first = suggest_outfits(index, k=10)
    liked, disliked = first[3], first[0]
    conditions = Conditions()
    rows = {o.items: [index.position[i] for i in o.items] for o in (liked, disliked)}

    taste = TasteModel.fit(index, [(liked.items, "like"), (disliked.items, "dislike")])
    assert score_breakdown(index, rows[liked.items], conditions, taste).total > liked.score
    assert score_breakdown(index, rows[disliked.items], conditions, taste).total < disliked.score
    after = suggest_outfits(index, k=10, taste=taste)
    assert after[0].items == liked.items
    assert disliked.items not in {o.items for o in after[:3]}
    assert "liked" in after[0].explanation

    # More consistent feedback moves further; "wore" is a weaker like.
    twice = TasteModel.fit(index, [(liked.items, "like")] * 2)
    once = TasteModel.fit(index, [(liked.items, "like")])
    wore = TasteModel.fit(index, [(liked.items, "wore")])
    s = {name: score_breakdown(index, rows[liked.items], conditions, t).total
         for name, t in (("twice", twice), ("once", once), ("wore", wore))}  # fmt: skip
    assert s["twice"] > s["once"] > s["wore"] > liked.score
    # Feedback transfers through colour families to pairs never rated.
    assert np.abs(once.family).sum() > 0


def test_empty_and_tiny_wardrobes():
    assert suggest_outfits([]) == []
    assert suggest_outfits([WardrobeItem("tee", 1)]) == []  # no bottom, no one piece
    dress_only = suggest_outfits([WardrobeItem("d", 10)])
    assert [o.items for o in dress_only] == [("d",)]


def test_locked_one_piece_still_gives_k_outfits():
    items = random_wardrobe(400, seed=9)
    dress = next(i.id for i in items if i.category_id == 10)
    outfits = suggest_outfits(items, Conditions(lock=(dress,), temperature=12.0), k=10)
    assert len(outfits) == 10 and all(dress in o.items for o in outfits)


def test_occasion_filters_known_formality_only():
    items = [
        WardrobeItem("hoodie", 1, attribute_ids=(16,)),  # formality 1 from the attribute
        WardrobeItem("blazer-top", 0, formality=4),
        WardrobeItem("joggers", 6, attribute_ids=(37,)),
        WardrobeItem("trousers", 6, formality=4),
        WardrobeItem("shoe", 23),  # category default 3: unknown, kept for any occasion
    ]

    def used(occasion):
        return {i for o in suggest_outfits(items, Conditions(occasion=occasion)) for i in o.items}

    assert used("gym") == {"hoodie", "joggers", "shoe"}
    assert used("business") == {"blazer-top", "trousers", "shoe"}


def test_locked_tie_brings_a_shirt():
    items = [WardrobeItem(f"tee{k}", 1, colors=("#ffffff",), favorite=True) for k in range(50)]
    items += [WardrobeItem("shirt", 0, colors=("#ff00ff",)), WardrobeItem("dress", 10), WardrobeItem("pants", 6)]
    items += [WardrobeItem("tie", 16, colors=("#1f2a44",))]
    outfits = suggest_outfits(
        items, Conditions(lock=("tie",)), k=3, settings=SearchSettings(per_slot=5)
    )
    assert outfits and all({"tie", "shirt"} <= set(o.items) for o in outfits)


def test_conditions_take_the_season_in_any_case_and_refuse_unknown_ones():
    assert Conditions(season="Summer").season == "summer"
    with pytest.raises(ValueError, match="season must be one of"):
        Conditions(season="monsoon")
