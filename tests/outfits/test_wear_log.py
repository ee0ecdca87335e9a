"""Suggestions and the wear log: "favour rarely worn" ranks the less worn piece first, its
score is the breakdown's, and explanations say how long a piece has rested."""

import datetime as dt

import pytest

from fashionkit.outfits import Conditions, WardrobeIndex, rules, score_breakdown, suggest_outfits
from fashionkit.outfits.explain import how_long
from fashionkit.outfits.search import suggest_for_wardrobe
from fashionkit.wardrobe import Wardrobe, WardrobeItem

TODAY = dt.date(2026, 6, 30)


def _closet(worn_shirt_last: dt.date | None = None):
    # Two shirts alike in everything but the wear log; "a-shirt" comes first in the index, so
    # it wins every tie.
    return [
        WardrobeItem(id="a-shirt", category_id=0, colors=("#ffffff",), last_worn=worn_shirt_last),
        WardrobeItem(id="b-shirt", category_id=0, colors=("#ffffff",)),
        WardrobeItem(id="jeans", category_id=6, colors=("#1f2a44",)),
    ]


def _best(index, **conditions) -> tuple[str, ...]:
    return suggest_outfits(index, Conditions(today=TODAY, **conditions), k=1)[0].items


def test_favouring_rarely_worn_picks_the_less_worn_piece():
    index = WardrobeIndex.build(_closet(TODAY - dt.timedelta(days=2)), {"a-shirt": 5})
    assert "a-shirt" in _best(index)  # ignored wear counts: the tie goes to the first
    assert "b-shirt" in _best(index, favour_rarely_worn=True)
    # Without wear counts the setting changes nothing.
    plain = WardrobeIndex.build(_closet())
    assert "a-shirt" in _best(plain, favour_rarely_worn=True)


def test_rotation_score_is_the_breakdowns_and_follows_rarity():
    index = WardrobeIndex.build(_closet(), {"a-shirt": 3, "jeans": 1})
    conditions = Conditions(today=TODAY, favour_rarely_worn=True)
    for outfit in suggest_outfits(index, conditions, k=3):
        rows = [index.position[k] for k in outfit.items]
        assert outfit.score == pytest.approx(score_breakdown(index, rows, conditions).total)
        expected = rules.ROTATION_WEIGHT * sum(
            1 / (1 + int(index.recent_wears[r])) for r in rows
        ) / len(rows)
        assert outfit.parts["rotation"] == pytest.approx(expected)
    off = score_breakdown(index, [0, 2], Conditions(today=TODAY))
    assert off.parts["rotation"] == 0


def test_explanations_say_how_long_and_how_often():
    index = WardrobeIndex.build(
        [
            WardrobeItem(id="shirt", category_id=0, colors=("#ffffff",),
                         last_worn=TODAY - dt.timedelta(days=21)),
            WardrobeItem(id="jeans", category_id=6, colors=("#1f2a44",),
                         last_worn=TODAY - dt.timedelta(days=1)),
        ],
        {"jeans": 5, "shirt": 1},
    )  # fmt: skip
    text = suggest_outfits(index, Conditions(today=TODAY, favour_rarely_worn=True), k=1)[0]
    assert "white shirt not worn for 3 weeks" in text.explanation
    assert "pants worn 5 times in 30 days" in text.explanation
    # Without a wear-log setting the explanation does not talk about wears.
    plain = suggest_outfits(index, Conditions(today=TODAY), k=1)[0]
    assert "worn" not in plain.explanation
    never = WardrobeIndex.build(_closet())
    avoid = suggest_outfits(never, Conditions(today=TODAY, not_worn_days=3), k=1)[0]
    assert "never worn" in avoid.explanation


def test_how_long():
    assert [how_long(d) for d in (1, 5, 21, 45, 90, 800)] == [
        "1 day", "5 days", "3 weeks", "6 weeks", "3 months", "2 years",
    ]  # fmt: skip


def test_suggestions_of_a_wardrobe_count_its_wears_of_the_last_30_days(tmp_path):
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as wardrobe:
        wardrobe.put_many(_closet())
        for days_ago in (1, 3, 5):
            wardrobe.record_wears(["a-shirt"], on=TODAY - dt.timedelta(days=days_ago))
        for days_ago in (40, 50, 60, 70):  # outside the window: they do not count
            wardrobe.record_wears(["b-shirt"], on=TODAY - dt.timedelta(days=days_ago))
        favour = Conditions(today=TODAY, favour_rarely_worn=True)
        assert "b-shirt" in suggest_for_wardrobe(wardrobe, favour, k=1)[0].items
        # Seen from before those wears, a-shirt is the rested one.
        earlier = Conditions(today=TODAY - dt.timedelta(days=10), favour_rarely_worn=True)
        assert "a-shirt" in suggest_for_wardrobe(wardrobe, earlier, k=1)[0].items
