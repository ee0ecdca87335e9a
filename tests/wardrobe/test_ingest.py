"""Ingest on synthetic photos. The predictor here is an oracle that reports the synthetic
world's own annotations as detections (a trained model is not needed to test what ingest does
with detections: colours from pixels, categories, parts, cut-outs, duplicates)."""

import json

import numpy as np
import pytest

from fashionkit.data.synth import render_image
from fashionkit.errors import NotFoundError
from fashionkit.inference.images import load_photo
from fashionkit.ontology import PAIR_IDS, PART_IDS
from fashionkit.wardrobe import Wardrobe, WardrobeItem
from fashionkit.wardrobe.colors import hex_to_rgb, srgb_to_oklab
from fashionkit.wardrobe.ingest import ingest_photos
from tests.synth_truth import rle_of, truth_prediction


class OraclePredictor:
    """Returns each photo's ground truth (kept in ``truth[path]``) as a Prediction."""

    def __init__(self):
        self.truth: dict[str, list[dict]] = {}

    def __call__(self, paths, on_error="raise"):
        return [truth_prediction(path, self.truth[path]) for path in paths]


def _write_photos(tmp_path, predictor, indices):
    paths = []
    for index in indices:
        synth = render_image(seed=11, index=index, size=320, max_figures=1)
        path = str(tmp_path / f"photo{index}.png")
        synth.image.save(path)
        predictor.truth[path] = synth.annotations
        paths.append(path)
    return paths


def test_ingest_synthetic_photos_matches_ground_truth(tmp_path):
    predictor = OraclePredictor()
    paths = _write_photos(tmp_path, predictor, range(4))
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        report = ingest_photos(wardrobe, predictor, paths)
        # The two shoes of one figure are one item, the pair: the larger one's.
        second_of_pair = {
            (path, b["id"])
            for path in paths
            for a in predictor.truth[path]
            for b in predictor.truth[path]
            if a["id"] != b["id"] and a["category_id"] == b["category_id"] in PAIR_IDS
            and a["synth"]["figure"] == b["synth"]["figure"]
            and (a["area"], -a["id"]) > (b["area"], -b["id"])
        }
        assert second_of_pair  # the photos show a pair of shoes
        truth = [
            (path, k, a)
            for path in paths
            for k, a in enumerate(predictor.truth[path])
            if a["category_id"] not in PART_IDS and (path, a["id"]) not in second_of_pair
        ]
        assert len(report.added) == len(truth) > 4
        # Both shoes stay annotated in their photo, as the one item.
        annotated = [o for photo in wardrobe.annotated_photos() for o in photo.objects
                     if not o.is_part]  # fmt: skip
        assert len(annotated) == len(truth) + len(second_of_pair)
        assert sum(o.is_appearance for o in annotated) == len(second_of_pair)
        items = {i.id: i for i in wardrobe.items()}
        distances = []
        for (path, _k, a), item_id in zip(truth, report.added, strict=True):
            item = items[item_id]
            assert item.category_id == a["category_id"]
            assert set(item.attribute_ids) == set(a["attribute_ids"])
            main = srgb_to_oklab(np.array([hex_to_rgb(item.colors[0])], np.uint8))
            gt = srgb_to_oklab(np.array([hex_to_rgb(a["synth"]["color"])], np.uint8))
            if max(a["synth"]["color_shares"]) >= 0.6:  # a 53/47 two-colour item has no clear main
                distances.append(float(np.linalg.norm(main - gt)))
            if a["synth"]["pattern"] not in (None, "plain") and a["category_id"] < 13:
                assert item.pattern is not None and item.pattern != "plain"
            # Parts linked in the ground truth are kept as the item's details.
            part_cats = sorted(
                b["category_id"] for b in predictor.truth[path] if b["synth"]["part_of"] == a["id"]
            )
            assert sorted(d.category_id for d in wardrobe.details(item_id)) == part_cats
            cutout = wardrobe.cutout_path(item_id)
            assert cutout is not None and cutout.exists()
        # Shading, outlines and sensor noise move the measured colour a little, never far
        # (0.05 in OkLab is about two just-noticeable differences).
        assert len(distances) >= 14 and max(distances) < 0.05, distances

        again = ingest_photos(wardrobe, predictor, paths[:1])
        assert again.added == [] and again.skipped == paths[:1]


def test_same_garment_photographed_twice_is_offered_for_merge(tmp_path):
    predictor = OraclePredictor()
    [first] = _write_photos(tmp_path, predictor, [0])
    # The same garments, photographed again: slightly brighter, one pixel shifted.
    pixels = np.asarray(load_photo(first).pixels, dtype=np.int16)
    second = str(tmp_path / "again.png")
    from PIL import Image

    Image.fromarray(np.clip(pixels + 6, 0, 255).astype(np.uint8)).save(second)
    predictor.truth[second] = predictor.truth[first]
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        one = ingest_photos(wardrobe, predictor, [first])
        assert one.duplicates == []  # items of one photo are never each other's duplicates
        two = ingest_photos(wardrobe, predictor, [second])
        pairs = {(d.new, d.existing) for d in two.duplicates}
        for new_id, old_id in zip(two.added, one.added, strict=True):
            assert (new_id, old_id) in pairs
        # No false matches across categories.
        cats = {i.id: i.category_id for i in wardrobe.items()}
        assert all(cats[d.new] == cats[d.existing] for d in two.duplicates)

        new_id, old_id = two.added[0], one.added[0]
        wardrobe.record_feedback([new_id], "wore")
        details_before = len(wardrobe.details(old_id)) + len(wardrobe.details(new_id))
        merged = wardrobe.merge(old_id, new_id)
        assert merged.last_worn is not None
        assert len(wardrobe.details(old_id)) == details_before
        with pytest.raises(NotFoundError):
            wardrobe.get(new_id)


def test_cli_add_photos(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    import fashionkit.inference
    from fashionkit.cli import app

    oracle = OraclePredictor()
    paths = _write_photos(tmp_path, oracle, [0, 1])
    monkeypatch.setattr(fashionkit.inference, "Predictor", lambda *a, **k: oracle)
    # Detection is the oracle's; the items' embeddings come from this (random-weight) model.
    from fashionkit.modeling import build_model, model_config_from_preset, save_checkpoint

    weights = save_checkpoint(
        build_model(model_config_from_preset("cpu-tiny")), tmp_path / "model.pt"
    )
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    result = CliRunner().invoke(
        app, ["wardrobe", "add", *paths, "--weights", str(weights), "--db", db]
    )
    assert result.exit_code == 0, result.output
    expected = sum(a["category_id"] not in PART_IDS for p in paths for a in oracle.truth[p])
    assert f"{expected} item(s) added from 2 photo(s)" in result.output
    listed = CliRunner().invoke(app, ["wardrobe", "list", "--json", "--db", db])
    assert len(json.loads(listed.stdout)) == expected
    from fashionkit.personal.embedding import ItemEmbedder

    with Wardrobe(db) as wardrobe:
        keys, _ = wardrobe.embeddings(ItemEmbedder.from_checkpoint(weights).key)
        assert len(keys) == expected
    missing = CliRunner().invoke(app, ["wardrobe", "add", *paths, "--db", db])
    assert missing.exit_code == 2 and "--weights" in missing.output


def test_export_dataset_for_fine_tuning(tmp_path):
    from fashionkit.data import read_annotations
    from fashionkit.data.masks import decode_rle
    from fashionkit.wardrobe.dataset import export_dataset

    oracle = OraclePredictor()
    paths = _write_photos(tmp_path, oracle, [0, 1])
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        report = ingest_photos(wardrobe, oracle, paths)
        first = report.added[0]
        corrected = 9 if wardrobe.get(first).category_id != 9 else 4
        wardrobe.update(first, category=corrected, attribute_ids=[317])
        wardrobe.add(WardrobeItem("by-hand", 1))  # no photo: not in the dataset
        path = export_dataset(wardrobe, tmp_path / "dataset")
    annotations, _ = read_annotations(path, images_dir=tmp_path / "dataset" / "images")
    raw = json.loads(path.read_text())
    truth = [a for p in paths for a in oracle.truth[p]]
    assert len(raw["images"]) == 2 and len(raw["annotations"]) == len(truth)
    assert len(annotations.images) == 2 and annotations.num_annotations == len(truth)
    first_ann = raw["annotations"][0]
    assert first_ann["category_id"] == corrected and first_ann["attribute_ids"] == [317]
    # Masks are carried through exactly (same pixels as the synthetic ground truth).
    h, w = raw["images"][0]["height"], raw["images"][0]["width"]
    expected = sorted(
        int(decode_rle(rle_of(a["segmentation"], h, w)).sum()) for a in oracle.truth[paths[0]]
    )
    got = sorted(int(a["area"]) for a in raw["annotations"] if a["image_id"] == 1)
    assert got == expected


@pytest.mark.slow
def test_fine_tune_on_exported_wardrobe_end_to_end(tmp_path):
    """Photos → wardrobe (with a correction) → Fashionpedia dataset → ``fashionkit train
    --recipe finetune --weights BASE`` (shrunk to the CPU model) → a checkpoint that loads."""
    from typer.testing import CliRunner

    from fashionkit.cli import app
    from fashionkit.modeling import build_model, load_checkpoint, save_checkpoint
    from fashionkit.modeling.config import model_config_from_preset
    from fashionkit.wardrobe.dataset import export_dataset

    oracle = OraclePredictor()
    paths = _write_photos(tmp_path, oracle, range(4))
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        report = ingest_photos(wardrobe, oracle, paths)
        wardrobe.update(report.added[0], formality=2)
        dataset = export_dataset(wardrobe, tmp_path / "dataset")
    base = tmp_path / "base.pt"
    save_checkpoint(build_model(model_config_from_preset("cpu-tiny")), base)
    args = ["train", "--train", dataset, "--images", tmp_path / "dataset" / "images",
            "--out", tmp_path / "run", "--recipe", "finetune", "--weights", base,
            "--epochs", "1", "--no-eval", "--no-progress", "--accelerator", "cpu",
            "--set", "model_preset=cpu-tiny", "--set", "data.image_size=160",
            "--set", "data.batch_size=2", "--set", "precision=32-true"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    model = load_checkpoint(tmp_path / "run" / "model.pt")
    assert model is not None


def test_ingest_with_the_real_predictor(tmp_path):
    """The real Predictor's output (untrained model, box score threshold 0 so it returns
    boxes on any image) goes through ingest: the contract between the two, not accuracy."""
    import torch

    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.inference import Predictor
    from fashionkit.modeling import build_model

    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        "data.image_size=96", "model.box_score_thresh=0.0", "model.box_detections_per_img=20",
        "model.rpn_pre_nms_top_n_test=100", "model.rpn_post_nms_top_n_test=40",
    ])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe)).eval()
    predictor = Predictor(model, score_threshold=0.0, recipe=recipe)
    oracle = OraclePredictor()
    paths = _write_photos(tmp_path, oracle, [0, 1])
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img") as wardrobe:
        predictions = []

        def recording(sources, **kwargs):
            predictions.extend(predictor(sources, **kwargs))
            return predictions

        report = ingest_photos(wardrobe, recording, paths, min_score=0.0)
        expected = sum(it.category_id not in PART_IDS for p in predictions for it in p.items)
        assert len(report.added) == expected > 0 and not report.problems
        for key in report.added:
            item = wardrobe.get(key)
            assert item.colors and wardrobe.cutout_path(key).exists()


@pytest.mark.parametrize("box", [(39.6, 0.0, 40.0, 30.0), (0.0, 29.7, 40.0, 30.0),
                                 (45.0, 35.0, 50.0, 40.0), (-5.0, -5.0, -1.0, -1.0)])
def test_cutout_of_a_box_on_the_edge_is_never_empty(box):
    # A detection whose box starts on the right or bottom edge made an empty cut-out, and
    # writing it as PNG failed the whole photo ("cannot write empty image"); found by
    # tests/test_reliability_images.py.
    from fashionkit.wardrobe.ingest import _cutout, _png

    image = np.zeros((30, 40, 3), np.uint8)
    mask = np.zeros((30, 40), bool)
    rgba = _cutout(image, mask, box)
    assert rgba.shape[0] >= 1 and rgba.shape[1] >= 1 and rgba.shape[2] == 4
    assert _png(rgba)
