import numpy as np
import pytest
from coloraide import Color

from fashionkit.wardrobe.attributes import (
    material_from_attributes,
    pattern_from_attributes,
    suggest_seasons,
)
from fashionkit.wardrobe.colors import (
    COLOR_FAMILIES,
    describe_color,
    dominant_colors,
    hex_to_rgb,
    hue_distance,
    named_colors,
    normalize_hex,
    oklab_to_oklch,
    oklab_to_srgb,
    srgb_to_oklab,
)


def test_oklab_matches_coloraide():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(200, 3), dtype=np.uint8)
    ours = srgb_to_oklab(rgb)
    ref = np.array([Color("srgb", list(c / 255.0)).convert("oklab").coords() for c in rgb])
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    lch = oklab_to_oklch(ours)
    ref_lch = np.array([Color("srgb", list(c / 255.0)).convert("oklch").coords() for c in rgb])
    np.testing.assert_allclose(lch[:, :2], ref_lch[:, :2], atol=2e-4)
    chromatic = ref_lch[:, 1] > 0.02
    assert (
        max(
            hue_distance(a, b)
            for a, b in zip(lch[chromatic, 2], ref_lch[chromatic, 2], strict=True)
        )
        < 0.1
    )
    np.testing.assert_allclose(oklab_to_srgb(ours) * 255, rgb, atol=0.01)


def test_named_colour_list():
    names = named_colors()
    assert len(names) == 139 and len({c.hex for c in names}) == 139
    assert {c.family for c in names} == set(COLOR_FAMILIES)
    by_name = {c.name: c for c in names}
    assert by_name["navy"].neutral and by_name["white"].neutral and by_name["beige"].neutral
    assert not by_name["red"].neutral and not by_name["royalblue"].neutral


@pytest.mark.parametrize(
    "hex_, name, family, neutral",
    [
        ("#000080", "navy", "blue", True),
        ("#1b1f5e", "midnightblue", "blue", True),
        ("#fefefe", "white", "white", True),
        ("#f80404", "red", "red", False),
        ("#7f7f7f", "gray", "gray", True),
        ("#fc0", "gold", "yellow", False),
    ],
)
def test_describe_color(hex_, name, family, neutral):
    info = describe_color(hex_)
    assert (info.name, info.family, info.neutral) == (name, family, neutral)


def test_normalize_hex():
    assert normalize_hex("ABC") == "#aabbcc"
    with pytest.raises(ValueError):
        normalize_hex("#12345")


def _two_colour_image():
    rng = np.random.default_rng(1)
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[:] = hex_to_rgb("#00ff00")  # background, excluded by the mask
    mask = np.zeros((60, 80), dtype=bool)
    mask[10:50, 10:70] = True  # 2400 px
    image[10:50, 10:52] = hex_to_rgb("#1f2a44")  # 1680 px navy (70 %)
    image[10:50, 52:70] = hex_to_rgb("#f5f5f0")  # 720 px off-white (30 %)
    noise = rng.integers(-6, 7, size=image.shape)  # fabric texture: one colour, not many
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), mask


def test_dominant_colors_of_masked_item():
    image, mask = _two_colour_image()
    colours = dominant_colors(image, mask)
    assert len(colours) == 2
    assert [describe_color(c.hex).family for c in colours] == ["blue", "white"]
    assert colours[0].share == pytest.approx(0.7, abs=0.02)
    main = srgb_to_oklab(np.array([hex_to_rgb(colours[0].hex)], dtype=np.uint8))
    truth = srgb_to_oklab(np.array([hex_to_rgb("#1f2a44")], dtype=np.uint8))
    assert np.linalg.norm(main - truth) < 0.02
    assert dominant_colors(image, mask) == colours  # deterministic
    assert describe_color(dominant_colors(image)[0].hex).family == "green"  # no mask: background
    assert dominant_colors(image, np.zeros_like(mask)) == []
    with pytest.raises(ValueError, match="mask shape"):
        dominant_colors(image, mask[:10])


def test_season_table():
    assert suggest_seasons(9) == ["autumn", "winter"]  # coat
    assert suggest_seasons(7) == ["spring", "summer"]  # shorts
    assert suggest_seasons(1, [156]) == ["spring", "summer"]  # sleeveless top
    assert suggest_seasons(1, material="Linen blend") == ["spring", "summer"]
    assert suggest_seasons(0, [160], material="flannel") == ["autumn", "winter"]
    assert suggest_seasons(6) == []  # plain pants: any season


def test_pattern_and_material_from_attributes():
    assert pattern_from_attributes([135, 328]) == "stripe"
    assert pattern_from_attributes([317]) == "plain"
    assert pattern_from_attributes([333]) == "leopard"
    assert pattern_from_attributes([135]) is None
    assert material_from_attributes([290, 295]) == "suede"
    assert material_from_attributes([295]) is None
