"""The synthetic world: exact annotations, real attribute ids, occlusion, determinism, files
that pycocotools and the official Fashionpedia API load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fashionkit.data.masks import segmentation_to_rle
from fashionkit.data.synth import generate_world, render_image
from fashionkit.data.synth.canvas import Canvas, Op, SceneObject, snap
from fashionkit.data.synth.geometry import rect
from fashionkit.data.synth.scene import attribute_id, default_min_area
from fashionkit.data.synth.textures import PATTERN_ATTRIBUTES, Paint
from fashionkit.ontology import ATTRIBUTE_CATEGORY_IDS, load_ontology

# pycocotools' Cython decode predates numpy 2's copy keyword; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ONT = load_ontology()
SIZE = 96
CASES = [(0, i) for i in range(6)] + [(7, 3)]
GARMENTS = set(range(13))
PATTERN_GROUPS = {"textile pattern", "animal"}


@pytest.fixture(scope="module")
def rendered():
    return {case: render_image(*case, SIZE) for case in CASES}


def _mask(ann: dict, h: int, w: int) -> np.ndarray:
    return mask_utils.decode(segmentation_to_rle(ann["segmentation"], h, w)).astype(bool)


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def test_annotations_are_exact(rendered):
    kinds = set()
    for (seed, index), out in rendered.items():
        assert out.image.size == (SIZE, SIZE) and out.image.mode == "RGB"
        assert out.annotations, f"image {seed}/{index} has no annotations"
        for a in out.annotations:
            m = _mask(a, SIZE, SIZE)
            kinds.add(type(a["segmentation"]).__name__)
            assert a["area"] == float(m.sum()) >= default_min_area(SIZE, SIZE)
            assert a["bbox"] == _bbox(m)
            rle = segmentation_to_rle(a["segmentation"], SIZE, SIZE)
            assert float(mask_utils.area(rle)) == a["area"]
            assert np.allclose(mask_utils.toBbox(rle), a["bbox"])
            assert a["iscrowd"] == 0 and ONT.has_category(a["category_id"])
    assert kinds == {"list", "dict"}, "expected a mix of polygons and RLE"


def test_occlusion_leaves_each_pixel_to_one_item(rendered):
    """Garments and accessories never overlap (what is covered is cut out of the mask);
    parts of one garment never overlap each other."""
    for out in rendered.values():
        owners = np.zeros((SIZE, SIZE), int)
        parts: dict[int, np.ndarray] = {}
        for a in out.annotations:
            m = _mask(a, SIZE, SIZE)
            parent = a["synth"]["part_of"]
            if parent is None:
                owners += m
            else:
                parts[parent] = parts.get(parent, np.zeros((SIZE, SIZE), int)) + m
        assert owners.max() <= 1
        assert all(p.max() <= 1 for p in parts.values())


def test_parts_lie_inside_their_garment(rendered):
    n_parts = 0
    for out in rendered.values():
        by_id = {a["id"]: a for a in out.annotations}
        for a in out.annotations:
            parent = a["synth"]["part_of"]
            if ONT.category(a["category_id"]).group == "part":
                assert parent in by_id, f"part {a['id']} without its garment"
                owner = by_id[parent]
                assert owner["category_id"] in GARMENTS | {19}  # a buckle belongs to a belt
                pm, gm = _mask(a, SIZE, SIZE), _mask(owner, SIZE, SIZE)
                assert not (pm & ~gm).any()
                n_parts += 1
            else:
                assert parent is None
    assert n_parts > 10


def test_attributes_are_valid_and_placed_where_fashionpedia_has_them(rendered):
    for out in rendered.values():
        for a in out.annotations:
            cat = a["category_id"]
            if cat not in ATTRIBUTE_CATEGORY_IDS:
                assert a["attribute_ids"] == []
                continue
            groups = [ONT.attribute(i).supercategory for i in a["attribute_ids"]]
            assert all(ONT.has_attribute(i) for i in a["attribute_ids"])
            if cat in GARMENTS:
                # Exactly one pattern, and it is the one painted.
                assert sum(g in PATTERN_GROUPS for g in groups) == 1
                assert attribute_id(PATTERN_ATTRIBUTES[a["synth"]["pattern"]]) in a["attribute_ids"]
            if cat == 31:  # sleeve: one length, one sleeve type
                assert groups.count("length") == 1 and groups.count("nickname") == 1
            if cat == 33:
                assert groups == ["neckline type"]


def test_attribute_names_resolve_exactly():
    assert attribute_id("plain (pattern)") == 317
    assert attribute_id("oversized") == 138  # not the collar's or the lapel's "oversized"
    assert attribute_id("wrist-length") == 160
    for name in PATTERN_ATTRIBUTES.values():
        assert ONT.attribute(attribute_id(name)).supercategory in PATTERN_GROUPS


def test_every_builder_uses_real_attribute_names():
    """All branches of every garment builder, over many seeds, name real attributes of the
    right groups (a typo in a rare branch would otherwise surface in some image, some day)."""
    from fashionkit.data.synth.figures import Figure, sample_pose
    from fashionkit.data.synth.garments import GarmentBuilder

    builders = ["tee", "hoodie", "shirt", "sweater", "cardigan", "vest", "jacket", "coat",
                "cape", "pants", "shorts", "skirt", "dress", "jumpsuit"]
    seen: dict[int, set[str]] = {}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        for name in builders:
            fig = Figure(sample_pose(rng), scale=10.0, angle=0.0, feet=(50.0, 90.0))
            getattr(GarmentBuilder(fig, rng), name)()
            for op in fig.ops:
                if op.item.category_id is not None:
                    seen.setdefault(op.item.category_id, set()).update(op.item.attributes)
    for cat, names in seen.items():
        if cat not in ATTRIBUTE_CATEGORY_IDS:
            assert not names, (cat, names)
        groups = {ONT.attribute(attribute_id(n)).supercategory for n in names}
        if cat == 31:
            assert groups == {"length", "nickname"}
        if cat == 32 or cat == 28 or cat == 29:
            assert groups == {"nickname"}
    assert set(seen) >= set(range(13)) | {27, 28, 29, 30, 31, 32, 33, 35, 38}


def test_every_accessory_is_drawn_and_annotated():
    from fashionkit.data.synth.accessories import AccessoryBuilder
    from fashionkit.data.synth.figures import Figure, sample_pose

    rng = np.random.default_rng(3)
    pose = sample_pose(rng)
    pose.raised[1] = False
    fig = Figure(pose, scale=24.0, angle=0.0, feet=(100.0, 196.0))
    ab = AccessoryBuilder(fig, rng)
    for name in ("shoes", "socks", "tights", "tie", "scarf", "bag", "hat", "glasses", "watch",
                 "gloves", "headband", "umbrella"):
        getattr(ab, name)()
    ab.belt(3.7, 0.1)  # below the tie, which would cover the buckle
    canvas = Canvas(np.zeros((200, 200, 3), np.float32))
    for op in fig.image_ops():
        canvas.draw(op)
    cats = {a["category_id"] for a in canvas.annotations(attribute_id, min_area=1)}
    assert cats == {13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 34}


def test_plain_garment_colour_is_the_recorded_colour(rendered):
    checked = 0
    for out in rendered.values():
        pixels = np.asarray(out.image, dtype=np.float32)
        for a in out.annotations:
            if a["category_id"] not in GARMENTS or a["synth"]["pattern"] != "plain" or a["area"] < 150:
                continue
            m = _mask(a, SIZE, SIZE)
            median = np.median(pixels[m], axis=0)
            want = np.array([int(a["synth"]["color"][k:k + 2], 16) for k in (1, 3, 5)])
            # Shading and outlines darken some pixels; the bulk stays at the fabric colour.
            assert np.abs(median - want).max() < 40, (a["synth"], median)
            checked += 1
    assert checked >= 3


def test_colour_ground_truth_is_consistent(rendered):
    for out in rendered.values():
        for a in out.annotations:
            syn = a["synth"]
            shares = syn["color_shares"]
            assert len(shares) == len(syn["colors"])
            if sum(shares) == 0:  # only buttons or other fabrics visible
                continue
            assert abs(sum(shares) - 1.0) < 0.01
            assert syn["color"] == syn["colors"][int(np.argmax(shares))]


def test_canvas_occlusion_is_exact():
    paint = Paint("plain", ((200, 0, 0),))
    canvas = Canvas(np.zeros((20, 30, 3), np.float32))
    top = SceneObject(1, paint)
    sleeve = SceneObject(31, paint, parent=top)
    jacket = SceneObject(4, Paint("plain", ((0, 0, 200),)))
    canvas.draw(Op(top, 0, [rect(2, 2, 12, 12)]))
    canvas.draw(Op(sleeve, 0, [rect(10, 4, 16, 8)]))  # sticks out of the body: still the top's
    canvas.draw(Op(jacket, 1, [rect(8, 0, 30, 20)]))  # covers the sleeve and part of the body
    anns = {a["category_id"]: a for a in canvas.annotations(lambda n: 0, min_area=1)}
    top_mask = _mask(anns[1], 20, 30)
    expected = np.zeros((20, 30), bool)
    expected[2:12, 2:8] = True
    assert np.array_equal(top_mask, expected)
    assert 31 not in anns  # fully hidden under the jacket
    assert anns[4]["segmentation"] == [[8.0, 0.0, 30.0, 0.0, 30.0, 20.0, 8.0, 20.0]]
    assert isinstance(anns[1]["segmentation"], dict)  # occluded → RLE
    # The pixels agree with the masks.
    rgb = canvas.image()
    assert (rgb[top_mask][:, 0] > 100).all() and (rgb[_mask(anns[4], 20, 30)][:, 2] > 100).all()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans(),
                          st.lists(st.floats(-8, 40, allow_nan=False), min_size=6, max_size=10)),
                min_size=1, max_size=8))
def test_canvas_matches_a_full_frame_painter(steps):
    """Random polygons (some off the image), parts and decor: the canvas's cropped compositing
    gives the masks a naive full-frame painter's algorithm gives."""
    h, w = 24, 32
    paint = Paint("stripe", ((200, 10, 10), (10, 10, 200)), scale=3.0)
    garments = [SceneObject(k, paint) for k in range(4)]
    part_cats = [31, 32, 33, 35]
    parts = [SceneObject(c, paint, parent=g) for c, g in zip(part_cats, garments, strict=True)]
    canvas = Canvas(np.zeros((h, w, 3), np.float32))
    label = np.full((h, w), -1)
    part = np.full((h, w), -1)
    for k, (owner, is_part, decor, coords) in enumerate(steps):
        poly = np.array(coords[: len(coords) // 2 * 2], dtype=np.float64).reshape(-1, 2)
        item = parts[owner] if is_part else garments[owner]
        canvas.draw(Op(item, k, [poly], decor=decor))
        if decor or len(poly) < 3:
            continue
        flat = snap(poly).ravel().tolist()
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([flat], h, w))).astype(bool)
        label[m] = owner
        part[m] = owner if is_part else -1
    got = {a["category_id"]: _mask(a, h, w) for a in canvas.annotations(lambda n: 0, min_area=1)}
    none = np.zeros((h, w), bool)
    for owner in range(4):
        assert np.array_equal(got.get(owner, none), label == owner)
        assert np.array_equal(got.get(part_cats[owner], none), part == owner)


def test_render_is_deterministic(rendered):
    again = render_image(0, 3, SIZE)
    first = rendered[(0, 3)]
    assert again.annotations == first.annotations
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image))
    other = render_image(1, 3, SIZE)
    assert not np.array_equal(np.asarray(other.image), np.asarray(first.image))


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_world_files_load_and_are_byte_identical(tmp_path):
    calls = []
    a = generate_world(tmp_path / "a", images=5, size=64, seed=11, val_fraction=0.4,
                       progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    generate_world(tmp_path / "b", images=5, size=64, seed=11, val_fraction=0.4, workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (a.train_images, a.val_images) == (3, 2)
    ids = []
    for split, n in (("train", 3), ("val", 2)):
        path = tmp_path / "a" / f"{split}.json"
        coco = COCO(str(path))
        assert len(coco.getImgIds()) == n
        data = json.loads(path.read_text())
        assert {"info", "images", "annotations", "categories", "attributes"} <= data.keys()
        assert len(data["categories"]) == 46 and len(data["attributes"]) == 294
        for img in data["images"]:
            assert (tmp_path / "a" / "images" / img["file_name"]).is_file()
        for ann in data["annotations"]:
            m = coco.annToMask(ann).astype(bool)
            assert m.sum() == ann["area"]
            part_of = ann["synth"]["part_of"]
            if part_of is not None:
                assert coco.anns[part_of]["image_id"] == ann["image_id"]
            ids.append(ann["id"])
    assert len(ids) == len(set(ids)) == a.train_annotations + a.val_annotations


def test_official_fashionpedia_api_reads_the_world(tmp_path):
    fp = pytest.importorskip("fashionpedia.fp")
    generate_world(tmp_path, images=2, size=64, seed=2, val_fraction=0.0)
    api = fp.Fashionpedia(str(tmp_path / "train.json"))
    assert len(api.getImgIds()) == 2
    att = attribute_id("plain (pattern)")
    assert set(api.getAnnIds(attIds=[att])) <= set(api.getAnnIds())


def test_world_covers_the_ontology_it_promises(tmp_path):
    s = generate_world(tmp_path, images=30, size=128, seed=5)
    wanted = set(range(12)) | {13, 14, 16, 18, 19, 21, 22, 23, 24, 25, 27, 28, 29, 31, 32, 33, 34, 35}
    missing = wanted - set(s.categories)
    assert not missing, f"categories never drawn in 30 images: {sorted(missing)}"


def test_cli_writes_a_world(tmp_path):
    from typer.testing import CliRunner

    from fashionkit.cli import app

    result = CliRunner().invoke(app, ["synth", str(tmp_path / "w"), "--images", "3", "--size", "64", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "2 train + 1 val" in result.output
    assert COCO(str(tmp_path / "w" / "train.json")).getImgIds() == [1, 2]


def test_category_filter_keeps_pictures_and_drops_other_annotations(tmp_path):
    from typer.testing import CliRunner

    from fashionkit.cli import app

    full = generate_world(tmp_path / "full", images=3, size=64, seed=4, val_fraction=0.0)
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "some"), "--images", "3", "--size", "64",
                                      "--seed", "4", "--val-fraction", "0", "--categories", "0-12,31"])
    assert result.exit_code == 0, result.output
    some = json.loads((tmp_path / "some" / "train.json").read_text())
    assert {a["category_id"] for a in some["annotations"]} <= set(range(13)) | {31}
    assert some["info"]["categories"] == [*range(13), 31]
    assert sum(1 for a in some["annotations"]) == sum(n for c, n in full.categories.items() if c < 13 or c == 31)
    ids = {a["id"] for a in some["annotations"]}
    assert all(a["synth"]["part_of"] in ids for a in some["annotations"] if a["category_id"] == 31)
    assert _digest(tmp_path / "full" / "images") == _digest(tmp_path / "some" / "images")
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--categories", "shirts"])
    assert bad.exit_code != 0 and "category ids" in bad.output
    (tmp_path / "file").write_text("")
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "file"), "--images", "1"])
    assert bad.exit_code != 0 and "not a folder" in bad.output


def test_non_square_images(tmp_path):
    out = render_image(5, 0, (96, 64))
    assert out.image.size == (96, 64)
    for a in out.annotations:
        m = _mask(a, 64, 96)
        assert a["area"] == m.sum() and a["bbox"] == _bbox(m)
    from typer.testing import CliRunner

    from fashionkit.cli import app

    result = CliRunner().invoke(app, ["synth", str(tmp_path), "--images", "2", "--size", "80x48"])
    assert result.exit_code == 0, result.output
    coco = COCO(str(tmp_path / "train.json"))
    img = coco.imgs[1]
    assert (img["width"], img["height"]) == (80, 48)
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert coco.annToMask(ann).shape == (48, 80)
    bad = CliRunner().invoke(app, ["synth", str(tmp_path), "--size", "80x8"])
    assert bad.exit_code != 0


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="val_fraction"):
        generate_world(tmp_path, images=2, size=64, val_fraction=1.5)
    with pytest.raises(ValueError, match="size"):
        generate_world(tmp_path, images=2, size=8)
    with pytest.raises(ValueError, match="unknown category"):
        generate_world(tmp_path, images=2, size=64, categories=[46])


def test_min_area_drops_items_and_their_parts_together():
    full = render_image(3, 1, 128, min_area=1)
    pruned = render_image(3, 1, 128, min_area=300)
    assert np.array_equal(np.asarray(full.image), np.asarray(pruned.image))  # same picture
    assert all(a["area"] >= 300 for a in pruned.annotations)
    assert len(pruned.annotations) < len(full.annotations)
    ids = {a["id"] for a in pruned.annotations}
    assert all(a["synth"]["part_of"] in ids for a in pruned.annotations if a["synth"]["part_of"])
    kept = sorted((a["category_id"], a["area"]) for a in pruned.annotations)
    assert kept == sorted((a["category_id"], a["area"]) for a in full.annotations if a["area"] >= 300)


def test_simple_scene_has_one_large_person(tmp_path):
    from fashionkit.data.synth import SCENES, SceneConfig

    for i in range(4):
        out = render_image(9, i, 64, scene="simple")
        assert len(out.meta["figures"]) == 1 and out.meta["figures"][0]["height_px"] >= 0.84 * 64
    s = generate_world(tmp_path, images=2, size=64, scene=SCENES["simple"], val_fraction=0.5)
    info = json.loads((tmp_path / "train.json").read_text())["info"]
    assert info["scene_config"]["figure_weights"] == [1.0] and s.val_images == 1
    with pytest.raises(ValueError, match="unknown scene"):
        render_image(9, 0, 64, scene="crowded")
    with pytest.raises(ValueError, match="backgrounds"):
        SceneConfig(backgrounds=("beach",))


def test_max_figures_caps_people_per_image():
    counts = {len(render_image(9, i, 64, max_figures=1).meta["figures"]) for i in range(6)}
    assert counts == {1}
    with pytest.raises(ValueError, match="max_figures"):
        render_image(9, 0, 64, max_figures=4)
