"""The weave and print blocks: one split of an item's pixels into its ground colour and its
print, the weave read on the ground alone, the print by its shapes in any colours."""

from __future__ import annotations

import numpy as np
import pytest

from fashionkit.errors import InvalidDataError
from fashionkit.personal.embedding import edge_colour_descriptor, fabric_descriptor
from fashionkit.personal.surface import (
    PRINT_DIMS,
    WEAVE_DIMS,
    ground_colour,
    print_descriptor,
    weave_descriptor,
)
from fashionkit.wardrobe.colors import srgb_to_oklab
from tests.personal.drawn_items import SIZE, draw_item, place_mark, woven_cloth


def test_the_ground_is_the_most_common_colour_shading_and_all():
    rng = np.random.default_rng(3)
    # A ground shaded by ±0.03 in lightness, a print colour far from it, a third colour, a few
    # stray pixels between them.
    ground = np.array([0.6, 0.05, 0.02]) + np.array([0.03, 0.0, 0.0]) * rng.uniform(-1, 1, (600, 1))
    second = np.array([0.3, -0.1, 0.1]) + rng.normal(0, 0.01, (250, 3))
    third = np.array([0.8, 0.1, -0.15]) + rng.normal(0, 0.01, (120, 3))
    stray = np.array([0.45, -0.02, 0.06]) + rng.normal(0, 0.003, (10, 3))
    colours = np.concatenate([second, ground, stray, third])
    group = ground_colour(colours)
    assert (group[250:850] == 0).all()  # the ground is one colour across its shading
    assert (group[:250] == 1).all() and (group[860:] == 2).all()  # by share, not by order
    assert (group[850:860] == -1).all()  # under 3 % of the item: of no colour


def test_the_weave_block_reads_the_weave_under_a_print_on_any_colour():
    yellow = (240, 220, 60)
    d, fabric = {}, {}
    for colour, rgb in (("dark", (110, 55, 65)), ("light", (150, 190, 230))):
        for weave in ("twill", "twill-mirrored", "slub", "plain"):
            for dotted in (False, True):
                photo, mask = woven_cloth(rgb, weave, dots=yellow if dotted else None)
                d[colour, weave, dotted] = weave_descriptor(photo, mask)
                fabric[colour, weave, dotted] = fabric_descriptor(photo, mask)
    assert all(v.shape == (WEAVE_DIMS,) and v.dtype == np.float32 and np.isfinite(v).all()
               for v in d.values())

    def nearest_weave(table, key):
        scale = np.std(np.array(list(table.values())), axis=0) + 1e-6
        others = [k for k in table if k != key]
        return min(others, key=lambda k: np.linalg.norm((table[k] - table[key]) / scale))[1]

    # Every cloth, dotted or not, dark or light, is nearest to one of its own weave.
    for key in d:
        assert nearest_weave(d, key) == key[1], key
    # The fabric block, which reads the whole item, takes the dots for a weave: dotted cloths
    # of different weaves are nearer each other than to their own weave's plain cloth.
    assert sum(nearest_weave(fabric, key) != key[1] for key in fabric) >= 4
    # Twill's ribs run along one diagonal: its grain correlates along it (lag (1, −1) for ribs
    # of constant x + y), and against it along the other; mirrored for the mirrored weave.
    lag = 6 + 2 + 1  # quantiles, bands, spread: then the lags (0,1), (1,0), (1,1), (1,−1), …
    twill, mirrored = d["light", "twill", True], d["light", "twill-mirrored", True]
    assert twill[lag + 3] > 0.8 > 0 > twill[lag + 2]
    assert mirrored[lag + 2] > 0.8 > 0 > mirrored[lag + 3]


def _distinct_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two random colours a print could be in, told apart at a glance."""
    while True:
        pair = rng.uniform(20, 235, (2, 3))
        lab = srgb_to_oklab(pair.astype(np.uint8))
        if np.linalg.norm((lab[0] - lab[1]) * (0.5, 1.0, 1.0)) > 0.15:
            return pair[0], pair[1]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_print_block_reads_the_pattern_in_any_colours(seed):
    rng = np.random.default_rng(seed)
    prints, edges, patterns = [], [], []
    for k in range(32):  # plain, striped, checked, dotted; a random mark on half of them
        colour, second = _distinct_pair(rng)
        photo, mask, _ = draw_item(rng, colour, second, k % 4, 2 * SIZE)
        if k % 8 >= 4:
            photo = place_mark(rng, photo, mask, rng.uniform(0, 255, 3), rng.uniform(0, 255, 3))
        prints.append(print_descriptor(photo, mask))
        edges.append(np.log1p(edge_colour_descriptor(photo, mask)))
        patterns.append(k % 4)
    patterns_ = np.array(patterns)

    def nearest_right(rows):
        x = np.array(rows)
        z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
        dist = np.linalg.norm(z[:, None] - z[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        return int((patterns_[dist.argmin(axis=1)] == patterns_).sum())

    x = np.array(prints)
    assert x.shape == (32, PRINT_DIMS) and x.dtype == np.float32 and np.isfinite(x).all()
    # The nearest other item by print has the same pattern; by the colours that meet at its
    # edges (the edges block) it seldom does.
    assert nearest_right(prints) >= 27, nearest_right(prints)
    assert nearest_right(edges) <= 16
    plain, stripe, dot = x[patterns_ == 0], x[patterns_ == 1], x[patterns_ == 3]
    # A plain item's print is its mark or nothing: under 1 % of it, in one shape.
    assert (np.exp(plain[:, 0]) < 0.01 + 1e-3).all()
    assert ((plain[:, 9] == 1.0) | (plain[:, 9] == 0.0)).all()
    # Horizontal stripes: long shapes whose axes agree, and no outline met along a row.
    assert (stripe[:, 13] > 0.8).all() and (stripe[:, 11] > 1.0).all()
    assert (stripe[:, 4] < 0.1).all()
    # Dots: many small shapes of one size.
    assert (dot[:, 8] > plain[:, 8].max() + 1.0).all() and (dot[:, 10] < 0.5).all()


def test_the_weave_and_print_blocks_refuse_an_empty_mask():
    photo, mask = woven_cloth((120, 80, 60), "plain")
    for descriptor in (weave_descriptor, print_descriptor):
        with pytest.raises(InvalidDataError, match="empty"):
            descriptor(photo, np.zeros_like(mask))
        with pytest.raises(InvalidDataError, match="photo"):
            descriptor(photo.astype(np.float32), mask)
    # One pixel: the statistics are of that pixel, and finite.
    one = np.zeros_like(mask)
    one[60, 60] = True
    assert np.isfinite(weave_descriptor(photo, one)).all()
    assert np.isfinite(print_descriptor(photo, one)).all()
