"""The personal closet: fixed items worn again and again, exact item ground truth, own tags."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import chi2_contingency
from typer.testing import CliRunner

from fashionkit.data.readers import read_annotations
from fashionkit.data.synth.closet import TAG_TYPES, _draw_items, generate_closet, load_closet
from fashionkit.data.synth.closet_photos import render_photo
from fashionkit.data.synth.textures import TEXTURES, Finish
from fashionkit.errors import InvalidDataError

SIZE = 160


@pytest.fixture(scope="module")
def closet(tmp_path_factory):
    out = tmp_path_factory.mktemp("closet") / "c"
    summary = generate_closet(out, items=14, labelled_photos=14, new_photos=8, unseen_items=3,
                              image_size=SIZE, seed=5)
    assert (summary.labelled_photos, summary.new_photos) == (14, 8)
    return load_closet(out)


def _photos(closet):
    return [(0, p) for p in closet.labelled.photos] + [(1, p) for p in closet.new.photos]


def test_closet_json_follows_the_format(closet):
    doc = json.loads((closet.labelled.dir.parent / "closet.json").read_text())
    assert doc["version"] == 1 and doc["seed"] == 5
    assert set(doc["tag_types"]) == {"season", "material", "brand", "trend", "occasion"}
    grounded = {k for k, t in closet.tag_types.items() if t.grounded}
    assert len(grounded) >= 2 and len(set(closet.tag_types) - grounded) >= 1
    assert [it.id for it in closet.items] == [f"item-{i:03d}" for i in range(14)]
    assert sum(not it.known for it in closet.items) == 3
    for it in closet.items:
        assert set(it.tags) == set(closet.tag_types)
        for k, v in it.tags.items():
            assert v in closet.tag_types[k].values


def test_annotations_read_back_through_the_project_reader(closet):
    for split in (closet.labelled, closet.new):
        anns, report = read_annotations(split.annotations_path, images_dir=split.images_dir)
        assert not report
        assert len(anns) == len(split.photos)
        item_ids = [a.extra["item_id"] for a in anns.iter_annotations()]
        assert item_ids and all(isinstance(i, str) for i in item_ids)  # parts carry their garment's
        assert {a.image_id for a in anns.iter_annotations()} == {p.image_id for p in split.photos}


def test_splits_are_disjoint_and_unseen_items_appear_only_in_new_photos(closet):
    lab = {p.image_id for p in closet.labelled.photos}
    new = {p.image_id for p in closet.new.photos}
    assert not lab & new
    digest = {hashlib.sha256(p.path.read_bytes()).hexdigest() for p in closet.labelled.photos}
    assert not digest & {hashlib.sha256(p.path.read_bytes()).hexdigest() for p in closet.new.photos}
    seen_lab = set().union(*(p.item_ids for p in closet.labelled.photos))
    seen_new = set().union(*(p.item_ids for p in closet.new.photos))
    known = {it.id for it in closet.items if it.known}
    unseen = {it.id for it in closet.items if not it.known}
    assert seen_lab == known  # 14 labelled photos for 11 known items: each is seen
    assert unseen <= seen_new
    assert seen_new & known  # new photos also hold items the wardrobe knows


def test_objects_match_their_annotations(closet):
    ann_ids = set()
    for _, photo in _photos(closet):
        assert Image.open(photo.path).size == (SIZE, SIZE)
        for obj in photo.objects:
            assert obj.mask.shape == (SIZE, SIZE)
            ys, xs = np.nonzero(obj.mask)
            assert obj.bbox_xywh == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            item = closet.item(obj.item_id)
            if obj.part_of is None:
                assert obj.category_id == item.category_id
            ann_ids.add(obj.annotation_id)
    assert len(ann_ids) == sum(len(p.annotations) for _, p in _photos(closet))


def test_item_ids_are_where_the_items_are_drawn(closet):
    """Give one item another texture and render its photo again: the pixels that change are
    that item's, inside the masks annotated with its id, and most of them do change."""
    looks = {it.id: it.item_look for it in closet.items}
    checked = 0
    for stream, photo in _photos(closet)[::3]:
        figures = json.loads(closet.labelled.annotations_path.read_text() if stream == 0 else
                             closet.new.annotations_path.read_text())
        meta = next(i for i in figures["images"] if i["id"] == photo.image_id)["synth"]
        outfits = [f["items"] for f in meta["figures"]]
        index = int(photo.path.stem)
        again = render_photo(looks, outfits, closet.seed, stream, index, SIZE)
        assert np.array_equal(np.asarray(again.image), np.asarray(Image.open(photo.path)))
        garments = [o for o in photo.objects if o.part_of is None and o.mask.sum() > 150]
        for obj in garments[:2]:
            look = looks[obj.item_id]
            other = next(t for t in TEXTURES if t and t != look.finish.texture)
            changed = dict(looks, **{obj.item_id: dataclasses.replace(look, finish=Finish(other, look.finish.palette))})
            pixels = np.asarray(render_photo(changed, outfits, closet.seed, stream, index, SIZE).image)
            diff = np.any(pixels != np.asarray(again.image), axis=2)
            mine = np.zeros_like(diff)
            for o in photo.objects:
                if o.item_id == obj.item_id:
                    mine |= o.mask
            assert diff.any() and not (diff & ~mine).any()
            assert diff[mine].mean() > 0.5
            checked += 1
    assert checked >= 8


def _chromaticity(photo_pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rgb = photo_pixels[mask].astype(np.float64) + 1.0
    return np.median(rgb / rgb.sum(axis=1, keepdims=True), axis=0)


def test_the_same_item_looks_the_same_in_every_photo(closet):
    """Across photos (other poses, sizes, backgrounds, light), an item's colour inside its
    mask agrees far better with itself than with other items of its category."""
    colour = defaultdict(list)
    for _, photo in _photos(closet):
        pixels = np.asarray(Image.open(photo.path))
        for obj in photo.objects:
            if obj.part_of is None and obj.mask.sum() >= 250:
                colour[obj.item_id].append(_chromaticity(pixels, obj.mask))
    within, between = [], []
    by_cat = defaultdict(list)
    for item_id, cs in colour.items():
        by_cat[closet.item(item_id).category_id].append(item_id)
        within += [np.abs(a - b).sum() for i, a in enumerate(cs) for b in cs[i + 1:]]
    for ids in by_cat.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                between += [np.abs(x - y).sum() for x in colour[a] for y in colour[b]]
    assert len(within) >= 20 and len(between) >= 20
    assert np.median(within) < 0.4 * np.median(between)


def test_same_seed_same_files_whatever_the_workers_and_another_seed_another_closet(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    kw = dict(items=6, labelled_photos=3, new_photos=2, unseen_items=1, image_size=96)
    calls = []
    generate_closet(tmp_path / "a", seed=3, progress=lambda d, t: calls.append((d, t)), **kw)
    assert calls == [(i, 5) for i in range(1, 6)]
    generate_closet(tmp_path / "b", seed=3, workers=2, **kw)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    generate_closet(tmp_path / "c", seed=4, **kw)
    a, c = load_closet(tmp_path / "a"), load_closet(tmp_path / "c")
    assert [it.to_json() for it in a.items] != [it.to_json() for it in c.items]


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    bad = [
        (dict(items=5, unseen_items=4), "unseen_items"),
        (dict(items=1, unseen_items=0), "items must be at least 2"),
        (dict(new_photos=2, unseen_items=3), "new_photos"),
        (dict(labelled_photos=0), "labelled_photos"),
        (dict(image_size=32), "image_size"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            generate_closet(tmp_path / "x", **kwargs)
        assert not (tmp_path / "x").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        generate_closet(tmp_path / "used", items=4, labelled_photos=1, new_photos=1, unseen_items=1)
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]
    with pytest.raises(InvalidDataError, match="closet.json"):
        load_closet(tmp_path / "used")


def test_cli_writes_a_closet_and_refuses_a_used_folder(tmp_path):
    from fashionkit.cli import app

    args = ["synth", "closet", str(tmp_path / "c"), "--items", "5", "--labelled-photos", "2",
            "--new-photos", "1", "--unseen-items", "1", "--size", "64", "--seed", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 items (1 unseen)" in result.output
    c = load_closet(tmp_path / "c")
    assert (len(c.labelled.photos), len(c.new.photos)) == (2, 1)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "not an empty folder" in again.output
    bad = CliRunner().invoke(app, ["synth", "closet", str(tmp_path / "d"), "--items", "4", "--unseen-items", "3"])
    assert bad.exit_code == 2 and "unseen_items" in bad.output and not (tmp_path / "d").exists()
    world = CliRunner().invoke(app, ["synth", "world", str(tmp_path / "w"), "--images", "1", "--size", "64"])
    assert world.exit_code == 0 and (tmp_path / "w" / "train.json").is_file()


def _many_items() -> list:
    return [it for seed in range(40) for it in _draw_items(seed, 24, 0)]


def test_ungrounded_tags_are_independent_of_the_look_and_grounded_ones_follow_it():
    """Over many items: season and occasion are independent of every look parameter (a
    chi-square test does not reject it), while material, brand and trend are functions of the
    texture, the mark and the pattern."""
    items = _many_items()
    looks = {"kind": lambda it: it.kind, "texture": lambda it: it.texture,
             "pattern": lambda it: it.look["pattern"], "mark": lambda it: it.mark,
             "colour": lambda it: it.look["colors"][0]}
    for tag, t in TAG_TYPES.items():
        if t.grounded:
            continue
        for name, of in looks.items():
            table = Counter((of(it), it.tags[tag]) for it in items)
            rows = sorted({k[0] for k in table}, key=str)
            cols = sorted({k[1] for k in table})
            counts = np.array([[table[(r, c)] for c in cols] for r in rows])
            counts = counts[counts.sum(axis=1) >= 20]  # the test needs filled cells
            assert chi2_contingency(counts).pvalue > 0.01, (tag, name)
    for tag, of in (("material", looks["texture"]), ("brand", looks["mark"]), ("trend", looks["pattern"])):
        assert TAG_TYPES[tag].grounded
        seen: dict = {}
        for it in items:
            assert seen.setdefault(of(it), it.tags[tag]) == it.tags[tag], tag
        assert len(set(seen.values())) == len(TAG_TYPES[tag].values)
    # The material does depend on the kind (wool coats, leather belts), as a wardrobe's does.
    table = Counter((it.kind, it.tags["material"]) for it in items)
    assert table[("belt", "leather")] > 0 and table[("belt", "silk")] == 0
