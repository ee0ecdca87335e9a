"""An item seen more than once in the wardrobe's photos: the two shoes of a pair are one item,
and a duplicate merged into an item stays where it was in its photo (an appearance), so the
photos' annotations for fine-tuning still hold every garment and recognition keeps every view.
Detections are the synthetic world's ground truth; the embedder is a stand-in that describes a
region by its mean colour (what is stored where, not how well it recognises)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fashionkit.data.masks import decode_rle
from fashionkit.data.synth import render_image
from fashionkit.inference.images import load_photo
from fashionkit.ontology import PAIR_IDS, PART_IDS
from fashionkit.personal.wearlog import reindex
from fashionkit.wardrobe import Wardrobe
from fashionkit.wardrobe.dataset import export_dataset
from fashionkit.wardrobe.image_files import file_digest
from fashionkit.wardrobe.ingest import ingest_photos
from tests.synth_truth import truth_prediction

# Photo 2 of this synthetic world shows a figure with both shoes, alike.
SEED, PAIR_PHOTO = 11, 2


class Oracle:
    def __init__(self):
        self.truth: dict[str, list[dict]] = {}

    def __call__(self, paths, on_error="raise"):
        return [truth_prediction(path, self.truth[str(path)]) for path in paths]


class MeanColour:
    """An embedder stand-in: a region's mean colour and its size, L2-normalised."""

    key = "mean-colour"

    def embed(self, pixels, masks, boxes):
        out = []
        for mask in masks:
            mean = pixels[mask].mean(axis=0) / 255 if mask.any() else np.zeros(3)
            v = np.array([*mean, mask.mean() * 10, 0.1], np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


def _photo(tmp_path, oracle, index, *, name=None, brighter=0):
    synth = render_image(seed=SEED, index=index, size=320, max_figures=1)
    path = tmp_path / (name or f"photo{index}.png")
    pixels = np.clip(np.asarray(synth.image, np.int16) + brighter, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    oracle.truth[str(path)] = synth.annotations
    return path


def _shoes(annotations):
    return [a for a in annotations if a["category_id"] in PAIR_IDS]


def test_a_pair_of_shoes_is_one_item_annotated_twice(tmp_path):
    oracle = Oracle()
    path = _photo(tmp_path, oracle, PAIR_PHOTO)
    shoes = _shoes(oracle.truth[str(path)])
    assert len(shoes) == 2 and shoes[0]["synth"]["color"] == shoes[1]["synth"]["color"]
    garments = [a for a in oracle.truth[str(path)] if a["category_id"] not in PART_IDS]
    embedder = MeanColour()
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        added = ingest_photos(wardrobe, oracle, [path], embedder=embedder).added
        assert len(added) == len(garments) - 1
        [pair] = [k for k in added if wardrobe.get(k).category_id == shoes[0]["category_id"]]
        # The item is the larger shoe's; the other is where the pair is seen again.
        larger = max(shoes, key=lambda a: a["area"])
        assert pair.endswith(f"-{oracle.truth[str(path)].index(larger)}")
        [photo] = wardrobe.annotated_photos()
        placed = [o for o in photo.objects if o.item == pair]
        assert [o.is_appearance for o in placed] == [False, True]
        for obj, shoe in zip(placed, sorted(shoes, key=lambda a: -a["area"]), strict=True):
            x, y, w, h = shoe["bbox"]
            assert np.allclose(obj.box, (x, y, x + w, y + h))
        # Both shoes' embeddings: the item's own, and the other as a view in that photo.
        keys, sources, _ = wardrobe.embedding_samples(embedder.key)
        assert sorted(s for k, s in zip(keys, sources, strict=True) if k == pair) == \
            ["", photo.sha256]
        # Both are in the dataset a personal detector is fine-tuned on.
        data = json.loads(export_dataset(wardrobe, tmp_path / "ds").read_text())
        category = shoes[0]["category_id"]
        assert sum(a["category_id"] == category for a in data["annotations"]) == 2
        assert len([a for a in data["annotations"] if a["category_id"] not in PART_IDS]) \
            == len(garments)


def test_two_shoes_that_look_different_stay_two_items(tmp_path):
    oracle = Oracle()
    path = _photo(tmp_path, oracle, PAIR_PHOTO)
    shoes = _shoes(oracle.truth[str(path)])
    pixels = np.array(load_photo(path).pixels)
    prediction = truth_prediction(path, oracle.truth[str(path)])
    other = next(d for d in prediction.items if d.category_id == shoes[1]["category_id"]
                 and d.box[0] == shoes[1]["bbox"][0])  # fmt: skip
    pixels[decode_rle(other.mask).astype(bool)] = (30, 60, 200)  # a blue shoe beside a brown
    Image.fromarray(pixels).save(path)
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        added = ingest_photos(wardrobe, oracle, [path]).added
        shoe_items = [k for k in added if wardrobe.get(k).category_id in PAIR_IDS]
        assert len(shoe_items) == 2
        assert not any(o.is_appearance for o in wardrobe.annotated_photos()[0].objects)


def test_a_merged_duplicate_stays_annotated_and_a_view_of_the_item(tmp_path):
    oracle = Oracle()
    first = _photo(tmp_path, oracle, 0)
    again = _photo(tmp_path, oracle, 0, name="again.png", brighter=6)  # photographed again
    embedder = MeanColour()
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        one = ingest_photos(wardrobe, oracle, [first], embedder=embedder).added
        two = ingest_photos(wardrobe, oracle, [again], embedder=embedder).added
        before = {p.sha256: [(o.category_id, o.box, o.is_part) for o in p.objects]
                  for p in wardrobe.annotated_photos()}  # fmt: skip
        samples = len(wardrobe.embedding_samples(embedder.key)[0])
        for keep, drop in zip(one, two, strict=True):
            wardrobe.merge(keep, drop)
        assert len(wardrobe) == len(one)
        photos = wardrobe.annotated_photos()
        # Every garment and part is still annotated where it was, now as the kept item.
        assert {p.sha256: [(o.category_id, o.box, o.is_part) for o in p.objects]
                for p in photos} == before  # fmt: skip
        second = next(p for p in photos if p.sha256 == file_digest(again))
        assert {o.item for o in second.objects} == set(one)
        assert all(o.is_appearance for o in second.objects)
        # Each dropped item's own picture is a view of the kept one, seen in its photo.
        keys, sources, _ = wardrobe.embedding_samples(embedder.key)
        assert len(keys) == samples
        for keep in one:
            assert second.sha256 in [s for k, s in zip(keys, sources, strict=True) if k == keep]
        # A reindex with another model embeds the kept items in both photos again.
        other = MeanColour()
        other.key = "mean-colour-2"
        reindex(wardrobe, other)
        again_keys, again_sources, _ = wardrobe.embedding_samples(other.key)
        assert sorted(zip(again_keys, again_sources, strict=True)) == \
            sorted(zip(keys, sources, strict=True))
        # Each item's own vector is of its own photo.
        assert np.allclose(wardrobe.embeddings(other.key)[1],
                           wardrobe.embeddings(embedder.key)[1], atol=1e-6)
        # Merging on: the item merged away brings its own appearances along.
        a, b = one[0], one[1]
        wardrobe.merge(a, b)
        seen = [o for p in wardrobe.annotated_photos() for o in p.objects
                if not o.is_part and o.item == a]  # fmt: skip
        assert len(seen) == 4 and sum(o.is_appearance for o in seen) == 3
