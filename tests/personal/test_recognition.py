"""Item embeddings and the Gallery: recognition above chance with the real embedding (and at
chance with noise in its place), the calibrated "new item" decision, storage, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fashionkit.errors import InvalidDataError
from fashionkit.modeling import build_model, model_config_from_preset
from fashionkit.personal.embedding import ItemEmbedder, colour_descriptor, embedding_blocks
from fashionkit.personal.recognition import (
    FALLBACK_NEW_QUANTILE,
    NEW_ITEM_SHARE,
    Gallery,
    best_threshold,
)
from fashionkit.wardrobe.ingest import appearance_descriptor
from tests.personal.drawn_items import drawn_closet, woven_cloth


@pytest.fixture(scope="module")
def embedder() -> ItemEmbedder:
    torch.manual_seed(0)
    return ItemEmbedder(build_model(model_config_from_preset("cpu-tiny")))


@pytest.fixture(scope="module")
def closet(embedder):
    photos, masks, boxes, ids, tags = drawn_closet(seed=3, items=8, photos_per_item=3)
    vectors = np.concatenate([embedder.embed(p, m[None], b[None])
                              for p, m, b in zip(photos, masks, boxes, strict=True)])
    return vectors, ids, tags


def _top1(vectors: np.ndarray, ids: list[str]) -> float:
    """Recognition of each item's last photo against a gallery of its first two."""
    query = np.array([i % 3 == 2 for i in range(len(ids))])
    gallery = Gallery.fit(vectors[~query], [i for i, q in zip(ids, query, strict=True) if not q],
                          groups=[str(i) for i in np.flatnonzero(~query)])
    found = [m.candidates[0][0] for m in gallery.match(vectors[query])]
    truth = [i for i, q in zip(ids, query, strict=True) if q]
    return float(np.mean([f == t for f, t in zip(found, truth, strict=True)]))


def test_embedding_shape_and_norm(embedder, closet):
    vectors, ids, _ = closet
    assert vectors.shape == (len(ids), embedder.dims)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.key.startswith("fk-item-v5:torchvision-resnet18:")


def test_recognition_beats_noise(closet):
    vectors, ids, _ = closet
    real = _top1(vectors, ids)
    noise = _top1(np.random.default_rng(0).normal(size=vectors.shape), ids)
    # 8 items: chance is 1/8.
    assert real >= 0.75, real
    assert noise <= 0.4, noise
    assert real - noise >= 0.5


def test_one_backbone_pass_describes_each_item_alone(embedder):
    photos, masks, boxes, _, _ = drawn_closet(seed=5, items=2, photos_per_item=1)
    both = embedder.embed(photos[0], np.stack([masks[0], ~masks[0]]),
                          np.stack([boxes[0], [0, 0, 128, 128]]))
    alone = embedder.embed(photos[0], masks[0][None], boxes[0][None])
    np.testing.assert_allclose(both[0], alone[0], atol=1e-5)
    assert float(both[0] @ both[1]) < 0.99


def test_colour_descriptor_is_the_wardrobe_descriptor():
    photos, masks, _, _, _ = drawn_closet(seed=1, items=1, photos_per_item=1)
    rgba = np.concatenate([photos[0], masks[0][..., None].astype(np.uint8) * 255], axis=2)
    np.testing.assert_allclose(colour_descriptor(photos[0], masks[0]),
                               appearance_descriptor(rgba), atol=1e-6)


def test_official_architecture_embeds(closet):
    torch.manual_seed(0)
    config = model_config_from_preset("official-r50")
    embedder = ItemEmbedder(build_model(config), {"data": {"transform": "official",
                                                           "image_size": 128}})
    photos, masks, boxes, _, _ = drawn_closet(seed=2, items=2, photos_per_item=1)
    vectors = np.concatenate([embedder.embed(p, m[None], b[None])
                              for p, m, b in zip(photos, masks, boxes, strict=True)])
    assert vectors.shape == (2, embedder.dims) \
        == (2, 4 * config.fpn_channels + 216 + 27 + 30 + 378 + 6 + 27 + 15)
    assert np.isfinite(vectors).all()
    assert embedder.key.startswith("fk-item-v5:official-resnet50:")


def test_embed_rejects_bad_inputs(embedder):
    photo = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 10:20, 10:20] = True
    box = np.array([[10, 10, 20, 20]], float)
    with pytest.raises(InvalidDataError, match="masks"):
        embedder.embed(photo, np.zeros((1, 32, 64), bool), box)
    with pytest.raises(InvalidDataError, match="boxes"):
        embedder.embed(photo, mask, np.zeros((2, 4)))
    with pytest.raises(InvalidDataError, match="NaN"):
        embedder.embed(photo, mask, np.full((1, 4), np.nan))
    with pytest.raises(InvalidDataError, match="empty"):
        embedder.embed(photo, np.zeros((1, 64, 64), bool), box)
    with pytest.raises(InvalidDataError, match="uint8"):
        embedder.embed(photo.astype(np.float32), mask, box)
    assert embedder.embed(photo, np.zeros((0, 64, 64), bool), np.zeros((0, 4))).shape == (
        0, embedder.dims)


# -- Gallery on clustered vectors ------------------------------------------------------------
def _clusters(seed: int, items: int, per_item: int, spread: float, dims: int = 40):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(items, dims))
    x = np.repeat(centres, per_item, axis=0) + spread * rng.normal(size=(items * per_item, dims))
    ids = [f"i{k}" for k in range(items) for _ in range(per_item)]
    groups = [f"p{j}" for _ in range(items) for j in range(per_item)]
    return x, ids, groups, centres


def test_new_item_threshold_separates_known_from_new():
    x, ids, groups, centres = _clusters(0, items=10, per_item=4, spread=0.5)
    gallery = Gallery.fit(x, ids, groups=groups)
    assert gallery.calibrated
    known = gallery.calibration["known"]
    new = gallery.calibration["new"]
    assert len(known) == 40 and len(new) == 40
    assert np.median(known) > gallery.threshold > np.median(new)
    rng = np.random.default_rng(1)
    seen = centres[[2, 7]] + 0.5 * rng.normal(size=(2, x.shape[1]))
    unseen = rng.normal(size=(3, x.shape[1]))
    matches = gallery.match(np.concatenate([seen, unseen]))
    assert [m.item_id for m in matches[:2]] == ["i2", "i7"]
    assert not any(m.is_new for m in matches[:2])
    assert all(m.is_new and m.item_id is None for m in matches[2:])
    assert all(len(m.candidates) == 5 for m in matches)


def test_whitening_removes_a_nuisance_direction():
    # Photos of one item vary a lot along a direction (lighting), items differ little along
    # it: the adapted space must ignore it and beat plain cosine.
    x, ids, groups, centres = _clusters(2, items=12, per_item=4, spread=0.15, dims=30)
    rng = np.random.default_rng(3)
    nuisance = np.zeros(30)
    nuisance[0] = 1.0
    x = x + 6 * rng.normal(size=(len(x), 1)) * nuisance
    adapted = Gallery.fit(x, ids, groups=groups)
    plain = Gallery.fit(x, ids, groups=groups, shrinkage=1.0)
    queries = centres + 0.15 * rng.normal(size=centres.shape) \
        + 6 * rng.normal(size=(12, 1)) * nuisance
    truth = [f"i{k}" for k in range(12)]
    acc = {name: np.mean([m.candidates[0][0] == t for m, t in
                          zip(g.match(queries), truth, strict=True)])
           for name, g in (("adapted", adapted), ("plain", plain))}
    assert adapted.shrinkage < 1.0
    assert acc["adapted"] >= 0.9 and acc["adapted"] > acc["plain"] + 0.2, acc


def test_exclusive_matching_gives_two_rows_two_items():
    x, ids, groups, centres = _clusters(4, items=5, per_item=3, spread=0.3)
    gallery = Gallery.fit(x, ids, groups=groups, threshold=-1.0)
    # Two photos' worth of the same item's neighbourhood: a row leans to i1 but i1 is taken.
    a = centres[1]
    b = 0.55 * centres[1] + 0.45 * centres[3]
    free = gallery.match(np.stack([a, b]))
    one_photo = gallery.match(np.stack([a, b]), exclusive=True)
    assert [m.item_id for m in free] == ["i1", "i1"]
    assert [m.item_id for m in one_photo] == ["i1", "i3"]


def test_the_two_of_a_pair_in_one_photo_may_be_one_item():
    x, ids, groups, centres = _clusters(4, items=5, per_item=3, spread=0.3)
    shoe, shirt = 23, 0
    cats = [shoe if i in ("i1", "i3") else shirt for i in ids]
    gallery = Gallery.fit(x, ids, groups=groups, categories=cats, threshold=-1.0)
    left, right = centres[1] + 0.1, centres[1] - 0.1
    b = 0.55 * centres[1] + 0.45 * centres[3]
    rows = np.stack([left, right, b])
    paired = gallery.match(rows, categories=[shoe] * 3, exclusive=True, paired=[shoe])
    # Both shoes are the pair i1; a third shoe is not a third of it.
    assert [m.item_id for m in paired] == ["i1", "i1", "i3"]
    alone = [m.item_id for m in gallery.match(rows, categories=[shoe] * 3, exclusive=True)]
    assert alone.count("i1") == 1 and None in alone
    # Other categories stay one row an item, paired or not.
    shirts = np.stack([centres[0] + 0.1, centres[0] - 0.1])
    first, second = gallery.match(shirts, categories=[shirt] * 2, exclusive=True, paired=[shoe])
    assert first.item_id == "i0" and second.item_id not in ("i0", None)


def test_best_threshold():
    assert best_threshold(np.array([0.8, 0.9, 0.95]), np.array([0.1, 0.3, 0.5])) == \
        pytest.approx(0.65)
    # Overlap: one error either way is best; balanced accuracy picks between them.
    t = best_threshold(np.array([0.4, 0.8, 0.9]), np.array([0.2, 0.5, 0.3]))
    assert 0.3 < t <= 0.8
    with pytest.raises(ValueError):
        best_threshold(np.array([]), np.array([0.1]))


def test_the_threshold_weighs_the_mistakes_by_the_share_of_new_items():
    known, new = np.array([0.4, 0.6, 0.7, 0.8, 0.9]), np.array([0.2, 0.3, 0.45, 0.62, 0.65])
    # Alike: rejecting two known (0.4, 0.6) beats accepting three new.
    assert best_threshold(known, new, 0.5) == pytest.approx(0.675)
    # One new in ten: a known item rejected costs nine times a new one accepted, so every
    # known score is accepted, with the fewest new ones beside them.
    assert best_threshold(known, new, 0.1) == pytest.approx(0.35)
    # Most queries new: the last new score goes below, the lowest known ones with it.
    assert best_threshold(known, new, 0.9) == pytest.approx(0.675)
    with pytest.raises(ValueError, match="new_share"):
        best_threshold(known, new, 1.0)


def test_few_new_items_expected_gives_fewer_false_new_calls():
    # Known and never-seen scores overlap; queries hold one new item in ten.
    called = {0.5: [0, 0], NEW_ITEM_SHARE: [0, 0]}  # [called new, right]
    for seed in range(4):
        x, ids, groups, centres = _clusters(20 + seed, items=24, per_item=4, spread=1.3)
        unseen = {f"i{k}" for k in range(21, 24)}
        fit = np.array([g != "p3" and i not in unseen for i, g in zip(ids, groups, strict=True)])
        query_new = np.array([i in unseen for i in ids])[~fit]
        for share in called:
            gallery = Gallery.fit(x[fit], [i for i, f in zip(ids, fit, strict=True) if f],
                                  groups=[g for g, f in zip(groups, fit, strict=True) if f],
                                  new_share=share)
            is_new = np.array([m.is_new for m in gallery.match(x[~fit])])
            called[share][0] += int(is_new.sum())
            called[share][1] += int((is_new & query_new).sum())
    precision = {share: right / max(n, 1) for share, (n, right) in called.items()}
    assert called[NEW_ITEM_SHARE][0] < called[0.5][0], called
    assert precision[NEW_ITEM_SHARE] > precision[0.5] + 0.1, precision
    assert Gallery.fit(x, ids, groups=groups).threshold < \
        Gallery.fit(x, ids, groups=groups, new_share=0.5).threshold


def test_uncalibrated_gallery_falls_back_to_new_scores():
    x, ids, _, _ = _clusters(5, items=6, per_item=1, spread=0.1)
    gallery = Gallery.fit(x, ids)  # one photo per item: no "known" scores
    assert not gallery.calibrated
    assert gallery.threshold == pytest.approx(np.quantile(gallery.calibration["new"], 0.9))


def test_the_two_of_a_pair_stand_in_for_an_item_seen_again():
    # Every item in one photo; items 0 and 1 seen twice there (the two shoes of a pair).
    rng = np.random.default_rng(8)
    centres = rng.normal(size=(8, 40))
    twins = centres[:2] + 0.4 * rng.normal(size=(2, 40))
    x = np.concatenate([centres, twins])
    ids = [f"i{k}" for k in range(8)] + ["i0", "i1"]
    groups = [f"p{k}" for k in range(8)] + ["p0", "p1"]
    gallery = Gallery.fit(x, ids, groups=groups)
    assert not gallery.calibrated and len(gallery.calibration["known"]) == 0
    new = gallery.calibration["new"]
    quantile = float(np.quantile(new, FALLBACK_NEW_QUANTILE))
    # Between the twins' scores and the new ones: well above what the quantile alone gives.
    assert gallery.threshold > quantile + 0.1 and gallery.threshold > np.max(new)
    seen_again = gallery.match(centres[:2] + 0.4 * rng.normal(size=(2, 40)))
    assert [m.item_id for m in seen_again] == ["i0", "i1"]
    # Something a little like item 2, but not it: new, where the quantile would take it.
    look_alike = centres[2] * 0.3 + rng.normal(size=40)
    [m] = gallery.match(look_alike[None])
    assert m.is_new and quantile < m.similarity < gallery.threshold, (m.similarity, quantile)


def test_bytes_round_trip():
    x, ids, groups, _ = _clusters(6, items=4, per_item=3, spread=0.3)
    gallery = Gallery.fit(x, ids, groups=groups)
    again = Gallery.from_bytes(gallery.to_bytes())
    assert again.item_ids == gallery.item_ids and again.threshold == gallery.threshold
    assert again.shrinkage == gallery.shrinkage and again.calibrated == gallery.calibrated
    q = np.random.default_rng(7).normal(size=(3, x.shape[1]))
    np.testing.assert_allclose(again.similarities(q), gallery.similarities(q))
    with pytest.raises(InvalidDataError, match="gallery"):
        Gallery.from_bytes(b"not a gallery")


def test_gallery_rejects_bad_inputs():
    x, ids, groups, _ = _clusters(8, items=3, per_item=2, spread=0.3)
    with pytest.raises(InvalidDataError, match="at least one"):
        Gallery.fit(np.zeros((0, 5)), [])
    with pytest.raises(InvalidDataError, match="item ids"):
        Gallery.fit(x, ids[:-1])
    with pytest.raises(InvalidDataError, match="groups"):
        Gallery.fit(x, ids, groups=groups[:2])
    for share in (0.0, 1.0, True, "0.1"):
        with pytest.raises(InvalidDataError, match="new_share"):
            Gallery.fit(x, ids, new_share=share)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidDataError, match="row 3"):
        Gallery.fit(bad, ids)
    gallery = Gallery.fit(x, ids, groups=groups)
    with pytest.raises(InvalidDataError, match="dimensions"):
        gallery.match(np.zeros((1, x.shape[1] + 1)))
    with pytest.raises(InvalidDataError, match="N×D"):
        gallery.match(np.zeros(x.shape[1]))


def test_categories_keep_matches_within_a_category():
    x, ids, groups, centres = _clusters(9, items=4, per_item=3, spread=0.3)
    cats = [1 if i in ("i0", "i1") else 2 for i in ids]
    gallery = Gallery.fit(x, ids, groups=groups, categories=cats)
    # i0's look, but said to be of category 2: it can only be i2 or i3, and looks like neither.
    free, gated = gallery.match(centres[:1])[0], gallery.match(centres[:1], categories=[2])[0]
    assert free.item_id == "i0"
    assert gated.candidates[0][0] in ("i2", "i3") and gated.is_new
    sims = gallery.similarities(centres[:1], categories=[2])
    assert sims[0, gallery.item_ids.index("i0")] == -1.0
    again = Gallery.from_bytes(gallery.to_bytes())
    np.testing.assert_allclose(again.similarities(centres[:1], categories=[2]), sims)
    with pytest.raises(InvalidDataError, match="categories"):
        gallery.match(centres[:2], categories=[1])
    with pytest.raises(InvalidDataError, match="categories"):
        Gallery.fit(x, ids, categories=cats[:-1])


def test_an_item_with_no_other_of_its_kind_is_never_a_match_across_categories():
    # Every item the only one of its category: no item's leave-one-out score is a new item's
    # (each is new by its category alone), so nothing sets the threshold low for another.
    x, ids, groups, centres = _clusters(10, items=3, per_item=2, spread=0.2)
    cats = [{"i0": 1, "i1": 6, "i2": 23}[i] for i in ids]
    gallery = Gallery.fit(x, ids, groups=groups, categories=cats)
    assert len(gallery.calibration["new"]) == 0
    look = centres[[0, 1]]
    for exclusive in (False, True):
        kept, stray = gallery.match(look, categories=[1, 10], exclusive=exclusive)
        assert kept.item_id == "i0" and not kept.is_new
        assert stray.item_id is None and stray.is_new  # no dress in this wardrobe
    # Only items that have another of their kind give new scores.
    cats = [1 if i in ("i0", "i1") else 23 for i in ids]
    gallery = Gallery.fit(x, ids, groups=groups, categories=cats)
    assert len(gallery.calibration["new"]) == 4


def test_an_item_is_matched_under_its_own_category_and_those_it_was_seen_under():
    x, ids, groups, centres = _clusters(11, items=4, per_item=3, spread=0.3)
    seen = [1 if i in ("i0", "i1") else 2 for i in ids]
    seen[1] = 4  # one photo of i0 the detector called a jacket
    gallery = Gallery.fit(x, ids, groups=groups, categories=seen, item_categories={"i0": 9})
    assert gallery.item_categories["i0"] == [1, 4, 9]
    assert gallery.item_categories["i1"] == [1]
    for category in (1, 4, 9):  # seen as, seen as once, and what the person calls it
        assert gallery.match(centres[:1], categories=[category])[0].item_id == "i0"
    assert gallery.match(centres[:1], categories=[2])[0].item_id is None
    again = Gallery.from_bytes(gallery.to_bytes())
    assert again.item_categories == gallery.item_categories
    with pytest.raises(InvalidDataError, match="item_categories"):
        Gallery.fit(x, ids, item_categories={"i0": 9})


def test_a_gallery_stored_with_one_category_per_item_still_reads():
    import io
    import json

    x, ids, groups, centres = _clusters(12, items=3, per_item=2, spread=0.2)
    gallery = Gallery.fit(x, ids, groups=groups, categories=[1, 1, 1, 1, 2, 2])
    with np.load(io.BytesIO(gallery.to_bytes())) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    header["format_version"] = 1
    header["item_categories"] = {"i0": 1, "i1": 1, "i2": 2}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    old = Gallery.from_bytes(buffer.getvalue())
    assert old.item_categories == {"i0": [1], "i1": [1], "i2": [2]}
    np.testing.assert_allclose(old.similarities(centres, categories=[1, 2, 2]),
                               gallery.similarities(centres, categories=[1, 2, 2]))


def test_thin_items_embed(embedder):
    """An item one pixel wide or tall (a strap, a detection at the photo's edge) has no
    gradient to describe, but still an embedding: finite and of unit length."""
    photo = np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    masks = np.zeros((2, 40, 30), bool)
    masks[0, 5:35, 10] = True  # one column
    masks[1, 20, 3:25] = True  # one row
    boxes = np.array([[10, 5, 11, 35], [3, 20, 25, 21]], np.float32)
    vectors = embedder.embed(photo, masks, boxes)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_region_an_item_with_an_empty_mask_is_embedded_from():
    """A detection whose mask the threshold left empty still becomes an item, embedded from
    its box (the ingest path end to end: tests/test_reliability_images.py, whose untrained
    detector gives such masks)."""
    from fashionkit.wardrobe.ingest import _box_region

    region = _box_region((10, 8), (2.4, 3.0, 5.2, 9.9))
    assert region.sum() == 4 * 7 and region[3:10, 2:6].all()
    # A box off the photo or of no size still names one pixel.
    assert _box_region((10, 8), (20.0, -5.0, 20.0, -5.0)).sum() == 1


def test_embedding_blocks_tile_the_embedding(embedder):
    blocks = embedding_blocks(embedder.dims)
    assert list(blocks) == ["features", "colour", "texture", "fabric", "edges", "mark", "weave",
                            "print"]
    assert blocks["features"] == slice(0, 4 * embedder.config.fpn_channels)
    assert blocks["print"].stop == embedder.dims
    assert sum(s.stop - s.start for s in blocks.values()) == embedder.dims
    with pytest.raises(InvalidDataError, match="not an item embedding"):
        embedding_blocks(100)


# -- the weight of the detector's features --------------------------------------------------
def _blocked(seed: int, items: int, per_item: int, features_informative: bool):
    """Embeddings laid out as an ItemEmbedder's (features, colour, texture, fabric, edges, mark,
    weave, print blocks, each of unit norm, weighted 1 / 1 / 0.7 / 0.5 / 0.5 / 0.25 / 0.25 / 0.25):
    the features block or the others tell the items apart, the rest change from photo to photo
    as much as between items (pose and light seen by a poor detector)."""
    blocks = embedding_blocks(32 + 216 + 27 + 30 + 378 + 6 + 27 + 15)
    rng = np.random.default_rng(seed)
    n = items * per_item
    parts = {}
    for name, block in blocks.items():
        dims = block.stop - block.start
        centres = rng.normal(size=(items, dims))
        informative = (name == "features") == features_informative
        # An uninformative block's noise grows with its size, so that a large block does not
        # tell the items apart by the sheer number of its weak dimensions.
        spread = (1.4 if features_informative else 2.0) if informative \
            else 3.0 * max(1.0, np.sqrt(dims / 32))
        parts[name] = np.repeat(centres, per_item, axis=0) + spread * rng.normal(size=(n, dims))
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    weights = {"features": 1.0, "colour": 1.0, "texture": 0.7, "fabric": 0.5, "edges": 0.5,
               "mark": 0.25, "weave": 0.25, "print": 0.25}
    x = unit(np.concatenate([weights[name] * unit(parts[name]) for name in blocks], axis=1))
    ids = [f"i{k}" for k in range(items) for _ in range(per_item)]
    groups = [f"p{j}" for _ in range(items) for j in range(per_item)]
    return x, ids, groups, blocks


def _new_item_auc(gallery: Gallery, x: np.ndarray, ids: list[str], new_items: set[str]
                  ) -> float:
    """How well the best similarity ranks the known rows of ``x`` above the new ones (AUC)."""
    best = np.array([m.similarity for m in gallery.match(x)])
    new = np.array([i in new_items for i in ids])
    return float((best[~new][:, None] > best[new][None, :]).mean())


def test_features_that_vary_with_the_photo_are_weighed_down():
    gains = []
    for seed in range(4):
        x, ids, groups, blocks = _blocked(seed, items=16, per_item=4, features_informative=False)
        unseen = {"i13", "i14", "i15"}
        fit = np.array([g != "p3" and i not in unseen for i, g in zip(ids, groups, strict=True)])
        rows = dict(ids=[i for i, f in zip(ids, fit, strict=True) if f],
                    groups=[g for g, f in zip(groups, fit, strict=True) if f])
        weighed = Gallery.fit(x[fit], rows["ids"], groups=rows["groups"], blocks=blocks)
        fixed = Gallery.fit(x[fit], rows["ids"], groups=rows["groups"])
        assert weighed.feature_weight < 1.0 and fixed.feature_weight == 1.0
        # Held out: one photo of each known item, every photo of three items never seen.
        query_ids = [i for i, f in zip(ids, fit, strict=True) if not f]
        gains.append(_new_item_auc(weighed, x[~fit], query_ids, unseen)
                     - _new_item_auc(fixed, x[~fit], query_ids, unseen))
    assert np.mean(gains) > 0.05, gains


def test_informative_features_keep_their_weight():
    x, ids, groups, blocks = _blocked(2, items=12, per_item=4, features_informative=True)
    assert Gallery.fit(x, ids, groups=groups, blocks=blocks).feature_weight == 1.0


def test_the_chosen_weighting_is_folded_into_the_projection():
    # A gallery fitted with blocks answers raw embeddings exactly as a gallery fitted on the
    # embeddings weighted by hand answers the weighted ones.
    x, ids, groups, blocks = _blocked(3, items=10, per_item=4, features_informative=False)
    weighed = Gallery.fit(x, ids, groups=groups, blocks=blocks)
    assert weighed.feature_weight < 1.0
    columns = np.ones(x.shape[1])
    columns[blocks["features"]] = weighed.feature_weight
    by_hand = Gallery.fit(x * columns, ids, groups=groups)
    assert by_hand.threshold == pytest.approx(weighed.threshold)
    q = np.random.default_rng(4).normal(size=(5, x.shape[1]))
    np.testing.assert_allclose(weighed.similarities(q), by_hand.similarities(q * columns),
                               atol=1e-9)
    again = Gallery.from_bytes(weighed.to_bytes())
    assert again.feature_weight == weighed.feature_weight
    np.testing.assert_allclose(again.similarities(q), weighed.similarities(q))


def test_principal_directions_from_the_gram_matrix_match_the_svd():
    from fashionkit.personal.recognition import _principal

    rng = np.random.default_rng(5)
    wide = rng.normal(size=(30, 80)) @ np.diag(np.linspace(3, 0.1, 80))
    mean, basis = _principal(wide)  # fewer samples than dimensions: the Gram path
    _, s, vt = np.linalg.svd(wide - wide.mean(axis=0), full_matrices=False)
    assert basis.shape == (80, 29)  # rank N − 1 after centring
    np.testing.assert_allclose(np.abs(np.sum(basis * vt[:29].T, axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(mean, wide.mean(axis=0))


# -- the fabric block ------------------------------------------------------------------------
def test_the_fabric_block_reads_the_weave_on_any_colour():
    from fashionkit.personal.embedding import fabric_descriptor

    d = {(colour, weave): fabric_descriptor(*woven_cloth(rgb, weave))
         for colour, rgb in (("dark", (110, 55, 65)), ("light", (150, 190, 230)))
         for weave in ("twill", "twill-mirrored", "slub", "plain", "plain-print")}
    assert all(v.shape == (30,) and np.isfinite(v).all() for v in d.values())
    dist = lambda a, b: float(np.linalg.norm(d[a] - d[b]))  # noqa: E731
    # The same weave on a dark and a light cloth is closer than two weaves on one cloth.
    for weave in ("twill", "slub", "plain"):
        same = dist(("dark", weave), ("light", weave))
        others = [dist((c, weave), (c, other)) for c in ("dark", "light")
                  for other in ("twill", "slub", "plain") if other != weave]
        assert same < min(others), (weave, same, others)
    # Twill's ribs run one way: at the finest scale one diagonal responds, the other less
    # (components 4 and 6: the medians of the two diagonal derivatives), mirrored for the
    # mirrored weave.
    twill, mirrored = d[("light", "twill")], d[("light", "twill-mirrored")]
    assert twill[4] - twill[6] > 0.5 and mirrored[6] - mirrored[4] > 0.5
    # A print's few sharp lines barely move the finest scale's medians of plain cloth (the
    # even components of the first ten); at the coarser scales a line's response is wide.
    plain, printed = d[("light", "plain")], d[("light", "plain-print")]
    fine = slice(0, 10, 2)
    assert np.abs(plain[fine] - printed[fine]).max() < np.abs(plain[fine] - twill[fine]).max() / 3


def test_the_mark_block_finds_a_badge_on_any_garment_but_not_a_print():
    from fashionkit.personal.embedding import mark_descriptor
    from fashionkit.wardrobe.colors import srgb_to_oklab
    from tests.personal.drawn_items import SIZE, draw_item, place_mark

    rng = np.random.default_rng(0)
    yellow, black = np.array((240.0, 205.0, 20.0)), np.array((15.0, 15.0, 15.0))
    want, backing = srgb_to_oklab(np.array([yellow, black], np.uint8))
    found, bare_found, framed = 0, 0, 0
    for trial in range(16):  # plain, striped, checked and dotted garments of random colours
        photo, mask, _ = draw_item(rng, rng.uniform(20, 235, 3), rng.uniform(20, 235, 3),
                                   trial % 4, 2 * SIZE)
        bare = mark_descriptor(photo, mask)
        assert bare.shape == (6,) and bare.dtype == np.float32
        bare_found += int(bare[0] > 0)
        d = mark_descriptor(place_mark(rng, photo, mask, yellow, black), mask)
        found += int(d[0] == 1.0 and np.linalg.norm(d[1:4] - want) < 0.05)
        framed += int(d[0] == 1.0 and np.linalg.norm(d[1:4] - backing) < 0.1)
    # The mark itself, never its backing (a frame around it), nor a print's dot, stripe or
    # check; a print's repeated patches are no mark.
    assert found >= 13 and framed == 0 and bare_found <= 1, (found, framed, bare_found)
    # Its shape: a bar is long, a square is not, and both fill their box.
    navy = (30, 40, 110)
    photo, mask = _marked(navy, 120, None)
    bar, square = photo.copy(), photo.copy()
    bar[60:64, 50:62] = (245, 245, 245)
    square[58:64, 52:58] = (245, 245, 245)
    bar_d, square_d = mark_descriptor(bar, mask), mark_descriptor(square, mask)
    assert bar_d[0] == square_d[0] == 1.0
    assert bar_d[4] > math.log(2.5) and abs(square_d[4]) < 0.1
    assert bar_d[5] > 0.9 and square_d[5] > 0.9
    one = np.zeros(photo.shape[:2], bool)
    one[20, 20] = True
    assert not mark_descriptor(photo, one).any()
    with pytest.raises(InvalidDataError, match="empty"):
        mark_descriptor(photo, np.zeros_like(one))


def _marked(colour, size: int, mark: tuple | None, seed: int = 0):
    """A plain garment of ``colour`` (a ``size``-pixel disc on a grey photo) with a ``mark``:
    (its colour, its backing's colour) as a 6-pixel square on a 10-pixel one, or none."""
    rng = np.random.default_rng(seed)
    photo = np.full((size + 20, size + 20, 3), 128.0)
    y, x = np.mgrid[0:size + 20, 0:size + 20]
    mask = (x - size / 2 - 10) ** 2 + (y - size / 2 - 10) ** 2 < (size * 0.45) ** 2
    photo[mask] = colour
    if mark is not None:
        cy, cx = (int(rng.integers(size // 2, size // 2 + 10)) for _ in range(2))
        photo[cy - 5:cy + 5, cx - 5:cx + 5] = mark[1]
        photo[cy - 3:cy + 3, cx - 3:cx + 3] = mark[0]
    photo += rng.normal(0, 2.0, size=photo.shape)
    return np.clip(photo, 0, 255).astype(np.uint8), mask


def test_the_edges_block_keeps_a_small_mark_that_the_colour_histogram_loses():
    from fashionkit.personal.embedding import _EDGE_PAIR_INDEX, _edge_bins, edge_colour_descriptor
    from fashionkit.wardrobe.colors import srgb_to_oklab

    yellow, black, navy, red = (235, 200, 20), (15, 15, 15), (30, 40, 110), (200, 30, 30)
    bins = _edge_bins(srgb_to_oklab(np.array([yellow, black], np.uint8)))
    mark_pair = int(_EDGE_PAIR_INDEX[bins[0], bins[1]])
    plain = edge_colour_descriptor(*_marked(navy, 120, None))
    small = edge_colour_descriptor(*_marked(navy, 60, (yellow, black), seed=1))
    large = edge_colour_descriptor(*_marked(navy, 160, (yellow, black), seed=2))
    elsewhere = edge_colour_descriptor(*_marked(red, 120, (yellow, black), seed=3))
    assert plain.shape == (378,) and np.isfinite(plain).all()
    # A plain garment has no edges inside it (its outline is eroded away).
    assert plain.max() == 0.0
    # The mark's colour on its backing is one pair, on any garment colour, and of the same
    # count on a small and a large garment: counts, not shares of the garment.
    for d in (small, large, elsewhere):
        assert d[mark_pair] > np.log1p(10), d[mark_pair]
    assert abs(small[mark_pair] - large[mark_pair]) < 0.3
    # In the colour histogram the same mark is a sliver of the large garment's pixels: it
    # barely tells the marked garment from the plain one.
    marked = colour_descriptor(*_marked(navy, 160, (yellow, black), seed=2))
    unmarked = colour_descriptor(*_marked(navy, 160, None, seed=2))
    assert np.abs(marked - unmarked).sum() < 0.05
    # A one-pixel mask is described (no edge) rather than refused; an empty one is refused.
    photo, _ = _marked(navy, 40, None)
    one = np.zeros(photo.shape[:2], bool)
    one[20, 20] = True
    assert edge_colour_descriptor(photo, one).max() == 0.0
    with pytest.raises(InvalidDataError, match="empty"):
        edge_colour_descriptor(photo, np.zeros_like(one))
