import numpy as np
import pytest

from fashionkit.outfits import Conditions, WardrobeIndex, rules, score_breakdown
from fashionkit.wardrobe import WardrobeItem
from fashionkit.wardrobe.colors import describe_color


def harmony(hex1, hex2):
    a, b = describe_color(hex1), describe_color(hex2)
    value, relation = rules.color_harmony(
        a.lightness, a.chroma, a.hue, a.neutral, b.lightness, b.chroma, b.hue, b.neutral
    )
    return float(value), rules.RELATIONS[int(relation)]


def breakdown(items, **conditions):
    index = WardrobeIndex.build(items)
    return score_breakdown(index, range(len(items)), Conditions(**conditions))


@pytest.mark.parametrize(
    "pair, relation",
    [
        (("#1f2a44", "#ffffff"), "neutrals"),
        (("#000080", "#ff0000"), "a neutral with a colour"),
        (("#4169e1", "#b0c4de"), "monochrome"),  # royal blue, light steel blue
        (("#ff0000", "#ff8c00"), "analogous"),  # red, dark orange
        (("#ff8c00", "#1e90ff"), "complementary"),  # orange, dodger blue
        (("#ff0000", "#00a000"), "triadic"),  # red, green (113° apart in OkLCh)
        (("#ff8c00", "#ff00ff"), "clashing"),  # orange, magenta (~90° apart)
    ],
)
def test_hue_relations(pair, relation):
    assert harmony(*pair)[1] == relation


def test_harmony_ordering_and_contrast():
    navy_white = harmony("#1f2a44", "#ffffff")[0]
    navy_gray = harmony("#1f2a44", "#2f3f4f")[0]
    clash = harmony("#ff8c00", "#ff00ff")[0]
    assert navy_white > navy_gray > 0 > clash
    # Two loud colours in a bold relation lose against the same hues muted.
    loud = harmony("#ff8c00", "#1e90ff")[0]
    muted = harmony("#cd853f", "#4682b4")[0]
    assert harmony("#cd853f", "#4682b4")[1] == "complementary" and muted > loud


def test_navy_and_white_outfit_beats_a_clashing_one():
    navy_white = [
        WardrobeItem("shirt", 0, colors=("#ffffff",)),
        WardrobeItem("chinos", 6, colors=("#1f2a44",)),
        WardrobeItem("shoes", 23, colors=("#1a1a1a",)),
    ]
    clashing = [
        WardrobeItem("top", 1, colors=("#ff8c00",)),  # orange
        WardrobeItem("skirt", 8, colors=("#ff00ff",)),  # magenta
        WardrobeItem("shoes", 23, colors=("#7cfc00",)),  # lawn green
    ]
    good, bad = breakdown(navy_white), breakdown(clashing)
    assert good.parts["colour"] > 0.5 > 0 > bad.parts["colour"]
    assert good.total > bad.total + 1.0


def test_two_bold_patterns_are_penalised():
    plain = [WardrobeItem("t", 1, pattern="stripe"), WardrobeItem("p", 6, pattern="plain")]
    two_bold = [WardrobeItem("t", 1, pattern="stripe"), WardrobeItem("p", 6, pattern="floral")]
    by_attribute = [WardrobeItem("t", 1, attribute_ids=(328,)), WardrobeItem("p", 6, attribute_ids=(325,))]
    quiet = [WardrobeItem("t", 1, pattern="stripe"), WardrobeItem("p", 6, pattern="herringbone")]
    assert breakdown(plain).parts["pattern"] == 0
    assert breakdown(quiet).parts["pattern"] == 0
    assert breakdown(two_bold).parts["pattern"] == pytest.approx(-rules.PATTERN_WEIGHT)
    assert breakdown(by_attribute).parts["pattern"] == pytest.approx(-rules.PATTERN_WEIGHT)
    three = two_bold + [WardrobeItem("j", 4, pattern="leopard")]
    assert breakdown(three).parts["pattern"] == pytest.approx(-2 * rules.PATTERN_WEIGHT)


def test_formality_consistency_and_target():
    suit = [WardrobeItem("blazer", 4, attribute_ids=(17,)), WardrobeItem("trousers", 6, formality=4)]
    mixed = [WardrobeItem("tux", 4, attribute_ids=(33,)), WardrobeItem("sweats", 6, attribute_ids=(37,))]
    assert breakdown(suit).parts["formality"] == 0
    # spread 5 - 1 = 4 → -0.5 × 3
    assert breakdown(mixed).parts["formality"] == pytest.approx(-1.5)
    # target 2 (casual): mean |4 - 2| = 2 → -0.5 × 2
    assert breakdown(suit, occasion="casual").parts["formality"] == pytest.approx(-1.0)
    assert breakdown(suit, occasion="business").parts["formality"] == 0


def test_temperature_fit():
    assert rules.warmth_target(30) == 1 and rules.warmth_target(-10) == 5
    assert rules.warmth_target(18) == pytest.approx(2)
    winter = [
        WardrobeItem("sweater", 2, material="wool"),
        WardrobeItem("pants", 6),
        WardrobeItem("coat", 9, season=("winter",)),
    ]
    summer = [WardrobeItem("tank", 1, attribute_ids=(11,)), WardrobeItem("shorts", 7, material="linen")]
    assert (
        breakdown(winter, temperature=0).parts["climate"]
        > breakdown(summer, temperature=0).parts["climate"]
    )
    assert breakdown(summer, temperature=30).parts["climate"] == pytest.approx(1.0)
    assert breakdown(winter, temperature=30).parts["climate"] < 0.4
    # A season request rewards items tagged for it.
    tagged = breakdown([WardrobeItem("a", 1, season=("summer",)), WardrobeItem("b", 7)], season="summer")
    assert tagged.parts["climate"] == pytest.approx(rules.SEASON_BONUS / 2)


def test_formality_part_vectorised_matches_scalar():
    fmin, fmax = np.array([1, 2, 3]), np.array([4, 2, 5])
    got = rules.formality_part(fmin, fmax, None, np.array([2, 1, 3]), np.array([3, 0, 2]), 3)
    expected = [-0.5 * 2 - 0.5 * 1.5, 0.0, -0.5 * 1 - 0.5 * (2 / 3)]
    np.testing.assert_allclose(got, expected)
