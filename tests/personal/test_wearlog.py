"""The wear log from outfit photos, with a real ItemEmbedder (a tiny random-weight detector)
and the synthetic world's ground truth as detections: recognised items get one wear a day,
the others are offered (and added with ``add_new``), reindex recomputes what is stored, and a
wardrobe with nothing to recognise by says so."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashionkit.errors import InvalidDataError
from fashionkit.modeling import build_model, model_config_from_preset
from fashionkit.personal.embedding import ItemEmbedder
from fashionkit.personal.wearlog import log_outfit_photos, reindex
from fashionkit.wardrobe import Wardrobe, WardrobeItem
from fashionkit.wardrobe.ingest import ingest_photos
from tests.service.fakes import TruthPredictor
from tests.synth_truth import merge_as_the_person_says

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def embedder() -> ItemEmbedder:
    torch.manual_seed(0)
    return ItemEmbedder(build_model(model_config_from_preset("cpu-tiny")))


@pytest.fixture(scope="module")
def stocked(tmp_path_factory, embedder):
    """A wardrobe of two photos' items (with embeddings), made once: the folder, the
    predictor, the photos and the item ids."""
    folder = tmp_path_factory.mktemp("closet")
    truth = TruthPredictor()
    paths = []
    for index in (0, 2):
        path = folder / f"photo{index}.png"
        path.write_bytes(truth.photo(index))
        paths.append(path)
    with Wardrobe(f"sqlite:///{folder / 'w.sqlite'}") as wardrobe:
        added = ingest_photos(wardrobe, truth, paths, embedder=embedder).added
    return folder, truth, paths, added


@pytest.fixture
def closet(stocked, tmp_path):
    """A copy of the stocked wardrobe for one test (database and image folder)."""
    folder, truth, paths, added = stocked
    copy = tmp_path / "closet"
    shutil.copytree(folder, copy)
    wardrobe = Wardrobe(f"sqlite:///{copy / 'w.sqlite'}")
    yield wardrobe, truth, [copy / p.name for p in paths], added
    wardrobe.close()


def _same_pixels_new_file(src, dst):
    """The photo again in a file of other bytes (PNG compression level), as a camera
    re-saving it would: the same garments, another photo id."""
    with Image.open(src) as image:
        image.save(dst, format="PNG", compress_level=1)
    assert dst.read_bytes() != src.read_bytes()
    return dst


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_items_of_photos_keep_their_embeddings(closet, embedder):
    wardrobe, _, _, added = closet
    keys, vectors = wardrobe.embeddings(embedder.key)
    assert keys == sorted(added) and vectors.shape == (len(added), embedder.dims)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert wardrobe.embedders() == {embedder.key: len(added)}


def test_worn_items_are_recognised_and_logged_once_a_day(closet, embedder, tmp_path):
    wardrobe, truth, paths, _ = closet
    again = _same_pixels_new_file(paths[0], tmp_path / "today.png")
    truth.truth[_digest(again)] = truth.truth[_digest(paths[0])]
    first_photo = set(wardrobe.photo_items(_digest(paths[0])))
    reports, problems = log_outfit_photos(wardrobe, truth, embedder, [again], on=DAY)
    assert problems == [] and len(reports) == 1
    report = reports[0]
    assert {r.item_id for r in report.recognised} == first_photo
    assert all(r.similarity > 0.99 for r in report.recognised) and report.new == []
    assert sorted(report.logged) == sorted(first_photo)
    stats = wardrobe.wear_stats()
    assert set(stats) == first_photo
    assert all(s.times_worn == 1 and s.last_worn == DAY for s in stats.values())
    # The same photo again that day logs nothing more; the next day, once more.
    assert log_outfit_photos(wardrobe, truth, embedder, [again], on=DAY)[0][0].logged == []
    log_outfit_photos(wardrobe, truth, embedder, [again], on=DAY + dt.timedelta(days=1))
    assert all(s.times_worn == 2 for s in wardrobe.wear_stats().values())


def test_new_garments_are_offered_and_added_on_request(closet, embedder, tmp_path):
    wardrobe, truth, paths, added = closet
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(truth.outfit(0, 1))  # photo 0's garments beside photo 1's
    before = len(wardrobe)
    report = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)[0][0]
    photo0 = set(added[: truth.garments(truth.photo(0))])
    assert report.recognised and {r.item_id for r in report.recognised} <= photo0
    # Photo 1's garments were never seen: all of them are offered, none is taken for an item.
    offered = [o.detected.item for o in report.new]
    assert len(offered) >= truth.garments(truth.photo(1))
    assert all(o.detected.embedding is not None for o in report.new)
    assert len(wardrobe) == before  # nothing added without asking
    with_new = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY, add_new=True)[0][0]
    assert sorted(with_new.added) == sorted(i.id for i in offered)
    assert len(wardrobe) == before + len(offered)
    keys, _ = wardrobe.embeddings(embedder.key)
    assert set(with_new.added) <= set(keys)
    assert all(wardrobe.cutout_path(k).exists() for k in with_new.added)
    assert all(wardrobe.photo_of(k) is None for k in with_new.added)  # not a wardrobe photo
    # Now they are known: the next outfit photo recognises them.
    third = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)[0][0]
    assert {r.item_id for r in third.recognised} >= set(with_new.added)


def test_nothing_to_recognise_by_and_unreadable_photos(tmp_path, embedder):
    truth = TruthPredictor()
    photo = tmp_path / "p.png"
    photo.write_bytes(truth.photo(0))
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as wardrobe:
        with pytest.raises(InvalidDataError, match="reindex"):
            log_outfit_photos(wardrobe, truth, embedder, [photo])
        ingest_photos(wardrobe, truth, [photo], embedder=embedder)

        def unreadable(paths, on_error="raise"):
            from fashionkit.errors import Problem
            from fashionkit.inference import Prediction

            return [Prediction(name=p, image_size=(0, 0), items=[],
                               error=Problem(p, "file", "not an image")) for p in paths]  # fmt: skip

        reports, problems = log_outfit_photos(wardrobe, unreadable, embedder, [tmp_path / "x.jpg"])
        assert reports == [] and "x.jpg" in str(problems[0])


def test_reindex_recomputes_from_photos_and_cutouts(closet, embedder, tmp_path):
    wardrobe, truth, _, added = closet
    keys, before = wardrobe.embeddings(embedder.key)
    flat = np.ones(embedder.dims) / embedder.dims**0.5
    wardrobe.set_embeddings(embedder.key, {k: flat for k in keys})
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(truth.outfit(1))
    from_outfit = log_outfit_photos(
        wardrobe, truth, embedder, [outfit], add_new=True
    )[0][0].added
    wardrobe.add(WardrobeItem(id="by-hand", category_id=0))
    report = reindex(wardrobe, embedder)
    assert report.embedded == sorted(added + from_outfit)
    assert report.without_picture == ["by-hand"]
    again_keys, after = wardrobe.embeddings(embedder.key)
    assert again_keys == report.embedded
    position = {k: n for n, k in enumerate(again_keys)}
    # Items of wardrobe photos get back exactly what ingest stored.
    assert np.allclose(after[[position[k] for k in keys]], before, atol=1e-5)


def test_recognised_items_keep_their_view_of_the_photo(closet, embedder, tmp_path):
    wardrobe, truth, _, added = closet
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(truth.outfit(0, 1))
    # Each item's own picture, and the other shoe of a pair as seen in its photo.
    before = len(wardrobe.embedding_samples(embedder.key)[0])
    assert before > len(added)
    report = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)[0][0]
    seen = {r.item_id for r in report.recognised}
    assert seen
    keys, sources, vectors = wardrobe.embedding_samples(embedder.key)
    views = {k for k, s in zip(keys, sources, strict=True) if s == _digest(outfit)}
    assert views == seen and len(keys) == before + len(seen)
    own_keys, _ = wardrobe.embeddings(embedder.key)
    assert own_keys == sorted(added)  # the views are extra samples, not the items' own
    # The same photo again replaces its views; a reindex keeps them.
    log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)
    assert len(wardrobe.embedding_samples(embedder.key)[0]) == before + len(seen)
    reindex(wardrobe, embedder)
    assert len(wardrobe.embedding_samples(embedder.key)[0]) == before + len(seen)
    gone = sorted(seen)[0]
    wardrobe.remove(gone)
    assert gone not in wardrobe.embedding_samples(embedder.key)[0]


def test_offered_garments_carry_tags_suggested_from_my_items(closet, embedder, tmp_path):
    wardrobe, truth, _, added = closet
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(truth.outfit(0, 1))
    bare = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)[0][0]
    assert bare.new and all("brand" not in o.suggested_tags for o in bare.new)
    for key in added:
        wardrobe.update(key, brand="acme")
    report = log_outfit_photos(wardrobe, truth, embedder, [outfit], on=DAY)[0][0]
    assert report.new
    for offered in report.new:
        brand = offered.suggested_tags["brand"]
        assert (brand.value, brand.confidence, brand.source) == ("acme", 1.0, "prior")


def test_the_wardrobe_gallery_matches_within_a_category(tmp_path):
    # A black tee and black trousers look alike to a poor embedding: a detection labelled
    # trousers is matched with the trousers only, and a new kind of garment is new.
    from fashionkit.personal.wearlog import gallery_for

    rng = np.random.default_rng(0)
    look = rng.normal(size=16)
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as wardrobe:
        for key, category in (("tee", 1), ("trousers", 6), ("coat", 9)):
            wardrobe.add(WardrobeItem(id=key, category_id=category))
        other = rng.normal(size=16)
        vectors = {"tee": look, "trousers": look + 0.05 * rng.normal(size=16), "coat": other}
        wardrobe.set_embeddings("key", vectors)
        wardrobe.add_views("key", [(k, f"photo-{k}", v + 0.02 * rng.normal(size=16))
                                   for k, v in vectors.items()])
        gallery = gallery_for(wardrobe, "key")
        query = (look + 0.02 * rng.normal(size=16))[None]
        assert gallery.match(query, categories=[6])[0].candidates[0][0] == "trousers"
        assert gallery.match(query, categories=[1])[0].candidates[0][0] == "tee"
        assert gallery.match(query, categories=[10])[0].is_new  # no dress in this wardrobe


@pytest.fixture(scope="module")
def person(tmp_path_factory):
    """A person's closet (its own synthetic world: one pair of shoes worn in most photos, the
    same garments in many photos) and a predictor that finds its ground truth."""
    from fashionkit.data.synth.closet import generate_closet, load_closet
    from tests.synth_truth import truth_prediction

    folder = tmp_path_factory.mktemp("person") / "closet"
    generate_closet(folder, items=10, labelled_photos=8, new_photos=5, unseen_items=2,
                    image_size=192, seed=3)  # fmt: skip
    closet = load_closet(folder)
    by_digest = {_digest(p.path): p for s in (closet.labelled, closet.new) for p in s.photos}

    def predictor(paths, on_error="raise"):
        return [truth_prediction(path, by_digest[_digest(Path(path))].annotations)
                for path in paths]

    truth_of = {f"{_digest(p.path)[:12]}-{k}": a["item_id"]
                for p in closet.labelled.photos for k, a in enumerate(p.annotations)}
    return closet, predictor, truth_of


def test_a_closet_set_up_from_photos_knows_every_item_in_new_photos(person, tmp_path):
    """Add the labelled photos, merge what the person says is the same item, then log the new
    photos. Every garment of the labelled photos stays annotated (the two shoes of a pair and
    merged duplicates included), and in the new photos every known item is recognised, the
    pair as one item, and only the never-seen ones are offered."""
    from fashionkit.ontology import PAIR_IDS
    from tests.service.fakes import tiny_embedder

    closet, predictor, truth_of = person
    embedder = tiny_embedder()
    garments = lambda photo: [o for o in photo.objects if o.part_of is None]  # noqa: E731
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as wardrobe:
        ingest_photos(wardrobe, predictor, [p.path for p in closet.labelled.photos],
                      embedder=embedder)  # fmt: skip
        kept = merge_as_the_person_says(wardrobe, truth_of, set())
        assert len(wardrobe) == len(kept)
        assert any(sum(o.category_id in PAIR_IDS for o in garments(p)) == 2
                   for p in closet.new.photos)  # fmt: skip
        assert sum(len([o for o in p.objects if not o.is_part])
                   for p in wardrobe.annotated_photos()) == \
            sum(len(garments(p)) for p in closet.labelled.photos)  # fmt: skip
        mine = {key: item for item, key in kept.items()}
        reports, _ = log_outfit_photos(wardrobe, predictor, embedder,
                                       [p.path for p in closet.new.photos], on=DAY)  # fmt: skip
        for report, photo in zip(reports, closet.new.photos, strict=True):
            worn = {o.item_id for o in garments(photo)}
            assert {mine[r.item_id] for r in report.recognised} == worn & set(kept), report.path
            assert len(report.new) == len(worn - set(kept)), report.path


def test_recognition_finds_the_duplicates_that_colours_miss(person, tmp_path):
    """Photos added one at a time, the person merging the duplicates as they go: recognition
    of their items (once it is calibrated) names far more of the garments photographed again
    than the colour-histogram rule, and seldom a wrong item (precision at least 0.9)."""
    from fashionkit.personal.wearlog import recognised_duplicates
    from tests.service.fakes import tiny_embedder

    closet, predictor, truth_of = person
    embedder = tiny_embedder()
    counts = {}
    for finder in ("colour", "recognition"):
        duplicates = (lambda w, ids: recognised_duplicates(w, embedder.key, ids)) \
            if finder == "recognition" else None
        should = proposed = right = by_recognition = 0
        with Wardrobe(f"sqlite:///{tmp_path / f'{finder}.sqlite'}") as wardrobe:
            for photo in closet.labelled.photos:
                before = {i.id for i in wardrobe.items()}
                report = ingest_photos(wardrobe, predictor, [photo.path], embedder=embedder,
                                       duplicates=duplicates)  # fmt: skip
                should += sum(any(truth_of[b] == truth_of[a] for b in before)
                              for a in report.added)  # fmt: skip
                best = {}
                for d in report.duplicates:
                    best.setdefault(d.new, d)
                proposed += len(best)
                right += sum(truth_of[d.existing] == truth_of[d.new] for d in best.values())
                by_recognition += sum(d.found_by == "recognition" for d in best.values())
                merge_as_the_person_says(wardrobe, truth_of, before)
        counts[finder] = (should, proposed, right, by_recognition)
    (should, _, colour_right, _), (_, proposed, right, by_recognition) = \
        counts["colour"], counts["recognition"]
    assert by_recognition > 0 and counts["colour"][3] == 0, counts
    assert right / proposed >= 0.9, counts
    assert right >= colour_right + 0.25 * should, counts
