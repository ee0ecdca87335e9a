"""``fashionkit detect`` end to end on photos and on an annotation file's images."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.errors import InvalidDataError

from .conftest import SIZE, synthetic_photo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _detect(*args: str):
    return CliRunner().invoke(app, ["detect", *map(str, args)])


def test_photos_folder_and_glob(untrained_checkpoint, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(synthetic_photo(90, 60, seed=1)).save(photos / "a.jpg")
    Image.fromarray(synthetic_photo(64, 64, seed=2)).save(photos / "sub" / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(synthetic_photo(50, 80, seed=3)).save(tmp_path / "rotated.jpg", exif=exif)
    (photos / "broken.jpg").write_bytes(b"GIF89a garbage")
    out = tmp_path / "out"
    result = _detect("--weights", untrained_checkpoint, photos, str(tmp_path / "*.jpg"),
                     "--out", out, "--score-threshold", "0", "--workers", "0",
                     "--batch-size", "3")
    assert result.exit_code == 1, result.output
    assert "1 image(s) could not be read" in result.output and "broken.jpg" in result.output

    images = json.loads((out / "images.json").read_text())["images"]
    assert [(i["id"], i["file_name"].split("/")[-1], i["height"], i["width"]) for i in images] == [
        (1, "a.jpg", 90, 60), (3, "a.png", 64, 64), (4, "rotated.jpg", 80, 50)]
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} == {1, 3, 4} and len(results) == 60
    sizes = {i["id"]: [i["height"], i["width"]] for i in images}
    assert all(r["segmentation"]["size"] == sizes[r["image_id"]] for r in results)
    failures = json.loads((out / "failures.json").read_text())
    assert failures["skipped"] == 1 and failures["problems"][0]["source"].endswith("broken.jpg")
    details = json.loads((out / "predictions.json").read_text())
    assert [d["image_id"] for d in details] == [1, 3, 4]
    assert details[0]["items"][0]["name"] and "supercategory" in details[0]["items"][0]

    visuals = sorted(p.name for p in (out / "visuals").iterdir())
    assert visuals[:6] == ["a-3_items", "a-3_overlay.png", "a-3_supercategories.png",
                           "a_items", "a_overlay.png", "a_supercategories.png"]
    assert len(list((out / "visuals" / "a_items").glob("*.png"))) >= 1

    # The official Fashionpedia API loads the results against images.json.
    fp = pytest.importorskip("fashionpedia.fp")
    gt = fp.Fashionpedia(str(out / "images.json"))
    loaded = gt.loadRes(str(out / "results.json"))
    assert len(loaded.getAnnIds()) == 60


def test_dataset_mode_uses_its_ids_and_evaluates(untrained_checkpoint, tmp_path):
    from fashionkit.data.synth import generate_world

    generate_world(tmp_path / "w", images=10, size=SIZE, seed=5, max_figures=1)
    val = tmp_path / "w" / "val.json"
    out = tmp_path / "out"
    result = _detect("--weights", untrained_checkpoint, "--dataset", val,
                     "--images", tmp_path / "w" / "images", "--out", out, "--workers", "0")
    assert result.exit_code == 0, result.output
    want = {i["id"] for i in json.loads(val.read_text())["images"]}
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} == want
    assert not (out / "visuals").exists()  # off by default for --dataset
    metrics = tmp_path / "metrics.json"
    evaluated = CliRunner().invoke(app, ["evaluate", "--gt", str(val), "--results",
                                         str(out / "results.json"), "--json", str(metrics)])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0.0 <= json.loads(metrics.read_text())["iou_f1"]["AP"] <= 1.0


def test_argument_errors(untrained_checkpoint, tmp_path):
    result = _detect("--weights", untrained_checkpoint, "--dataset", tmp_path / "x.json",
                     "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--images" in result.output
    result = _detect("--weights", untrained_checkpoint, "--out", tmp_path / "o")
    assert result.exit_code == 2
    result = _detect("--weights", untrained_checkpoint, str(tmp_path / "nothing*.jpg"),
                     "--out", tmp_path / "o")
    assert isinstance(result.exception, InvalidDataError)
    assert "matches no file" in str(result.exception)
    result = _detect("--weights", untrained_checkpoint, str(tmp_path), "--backend", "fp8",
                     "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--backend" in result.output and "eager" in result.output
