"""Fig. 7/8/9 pictures from a hand-built prediction (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fashionkit.data.masks import encode_mask, rle_to_json
from fashionkit.inference.images import Photo
from fashionkit.inference.prediction import AttributeScore, DetectedItem, Prediction
from fashionkit.inference.visualize import (
    SUPERCATEGORY_COLORS,
    cutouts,
    draw_overlay,
    draw_supercategories,
    item_color,
    save_visuals,
)
from fashionkit.ontology import load_ontology

H, W = 120, 160


def _item(index: int, name: str, box: tuple[int, int, int, int], parent=None) -> DetectedItem:
    ontology = load_ontology()
    category = ontology.find_category(name)
    x0, y0, x1, y1 = box
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return DetectedItem(index, category.id, category.name, category.supercategory, category.group,
                (float(x0), float(y0), float(x1), float(y1)), 0.9 - 0.1 * index,
                rle_to_json(encode_mask(mask)),
                (AttributeScore(115, ontology.attribute(115).name, 0.8),), parent)


@pytest.fixture
def prediction() -> Prediction:
    rng = np.random.default_rng(0)
    pixels = rng.integers(90, 110, (H, W, 3), dtype=np.uint8)
    items = [_item(0, "top", (20, 30, 80, 90)), _item(1, "sleeve", (20, 40, 35, 70), parent=0),
             _item(2, "shoe", (120, 100, 140, 115))]
    return Prediction("photo.jpg", (H, W), items, photo=Photo(pixels, "photo.jpg"))


def test_overlay_tints_masks_and_leaves_the_rest(prediction):
    pixels = prediction.photo.pixels
    out = np.asarray(draw_overlay(prediction, min_side=0))  # at the photo's own size
    assert out.shape == (H, W, 3)
    # Inside the top (away from edges, tags and the sleeve) the colour moved to the item's.
    inside, original = out[80, 60].astype(float), pixels[80, 60].astype(float)
    target = np.array(item_color(0), float)
    assert np.linalg.norm(inside - target) < np.linalg.norm(original - target) - 30
    assert (out[5:20, 100:110] == pixels[5:20, 100:110]).all()  # nothing drawn there
    assert (out[60, 20] == item_color(1)).all() or (out[60, 20] == item_color(0)).all()


def test_supercategory_view_has_a_legend_beside_the_photo(prediction):
    image = draw_supercategories(prediction, min_side=0)
    out = np.asarray(image)
    assert image.height == H and image.width > W
    upper = np.array(SUPERCATEGORY_COLORS["upperbody"], float)
    assert np.abs(out[80, 60] - (0.55 * prediction.photo.pixels[80, 60] + 0.45 * upper)).max() <= 1
    legend = out[:, W:].reshape(-1, 3)
    for name in ("upperbody", "garment parts", "legs and feet"):
        assert (legend == SUPERCATEGORY_COLORS[name]).all(axis=1).any(), name
    assert not (legend == SUPERCATEGORY_COLORS["lowerbody"]).all(axis=1).any()


def _tag_share(image: Image.Image, items: list[DetectedItem]) -> float:
    """Share of the figure in the items' solid colours: tags, plus box and mask outlines."""
    out = np.asarray(image).reshape(-1, 3)
    return float(np.isin(out.view([("", out.dtype)] * 3).ravel(),
                         np.array([item_color(i.index) for i in items], np.uint8)
                         .view([("", np.uint8)] * 3).ravel()).mean())


def test_small_photos_are_drawn_enlarged_so_tags_stay_small(prediction):
    native = draw_overlay(prediction, min_side=0)
    image = draw_overlay(prediction)
    assert image.size == (5 * W, 5 * H)  # the smallest whole factor that reaches 512 px
    # Tags are sized to the figure: on the 120-px photo they cover a large part of it.
    assert _tag_share(native, prediction.items) > 0.2
    assert _tag_share(image, prediction.items) < 0.1
    out = np.asarray(image).astype(float)
    enlarged = np.asarray(Image.fromarray(prediction.photo.pixels).resize(
        (5 * W, 5 * H), Image.Resampling.BICUBIC)).astype(float)
    target = np.array(item_color(0), float)
    inside, original = out[5 * 80, 5 * 60], enlarged[5 * 80, 5 * 60]
    assert np.linalg.norm(inside - target) < np.linalg.norm(original - target) - 30
    assert (out[5 * 50, 5 * 20 + 1] == item_color(1)).all()  # the sleeve's edge, scaled
    assert (out[100:200, 550:600] == enlarged[100:200, 550:600]).all()  # nothing drawn there
    view = draw_supercategories(prediction)
    assert view.height == 5 * H and view.width > 5 * W
    big = Prediction("big", (600, 700), [], photo=Photo(np.zeros((600, 700, 3), np.uint8), "b"))
    assert draw_overlay(big).size == (700, 600)  # large enough: drawn as it is


def test_cutouts_are_transparent_outside_the_mask(prediction):
    pieces = cutouts(prediction)
    assert [item.index for item, _ in pieces] == [0, 1, 2]
    item, image = pieces[0]
    assert image.mode == "RGBA" and image.size == (60, 60)
    rgba = np.asarray(image)
    assert (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3], prediction.photo.pixels[30:90, 20:80])


def test_cutout_of_an_irregular_mask(prediction):
    mask = np.zeros((H, W), bool)
    mask[10:20, 10:15] = True
    mask[15:30, 14:40] = True
    item = DetectedItem(0, 0, "top", "upperbody", "garment", (10.0, 10.0, 40.0, 30.0), 0.5,
                rle_to_json(encode_mask(mask)), ())
    [(_, image)] = cutouts(Prediction("x", (H, W), [item], photo=prediction.photo))
    rgba = np.asarray(image)
    assert image.size == (30, 20)
    np.testing.assert_array_equal(rgba[..., 3] > 0, mask[10:30, 10:40])


def test_save_visuals_writes_all_three(prediction, tmp_path):
    paths = save_visuals(prediction, tmp_path, "photo")
    names = sorted(p.relative_to(tmp_path).as_posix() for p in paths)
    assert names == ["photo_items/000_top.png", "photo_items/001_sleeve.png",
                     "photo_items/002_shoe.png", "photo_overlay.png",
                     "photo_supercategories.png"]
    assert Image.open(tmp_path / "photo_overlay.png").size == (5 * W, 5 * H)  # 120 → 600 px
    assert Image.open(tmp_path / "photo_items/000_top.png").size == (60, 60)  # photo pixels
    empty = Prediction("e", (H, W), [], photo=prediction.photo)
    assert len(save_visuals(empty, tmp_path, "empty")) == 2
    with pytest.raises(ValueError, match="no photo"):
        draw_overlay(Prediction("x", (H, W), []))
