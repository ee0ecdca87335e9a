"""``fashionkit convert`` and ``fashionkit stats`` end to end, through the real entry point."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO
from readers_helpers import fashionpedia_doc, write_json

from fashionkit.data import read_annotations
from fashionkit.data.stats import compute_stats


def _fashionkit(*args: str) -> subprocess.CompletedProcess:
    # The real entry point: exit code 2 and "no traceback" are main()'s job, not Typer's.
    return subprocess.run(
        [sys.executable, "-c", "from fashionkit.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _kaggle_csv(tmp_path):
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds"])
        w.writerow(["b2", "2 3 11 2", 3, 4, 10, "115"])
        w.writerow(["b2", "1 1 12 1", 3, 4, 23, ""])
        w.writerow(["a1", "3 5", 4, 2, 31, ""])
        w.writerow(["a1", "3 9", 4, 2, 31, ""])  # line 5: past 4x2 = 8 pixels
    return path


def test_convert_invalid_exits_2_naming_the_line(tmp_path):
    src = _kaggle_csv(tmp_path)
    out = tmp_path / "out.json"
    res = _fashionkit("convert", "--from", "imaterialist2020", src, "--to", out)
    assert res.returncode == 2
    assert f"{src}: line 5: EncodedPixels run ends at pixel 11 beyond 4x2=8 pixels" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()


def test_convert_skip_invalid_writes_json_and_report(tmp_path):
    src = _kaggle_csv(tmp_path)
    out = tmp_path / "out" / "fp.json"
    res = _fashionkit("convert", "--from", "imaterialist2020", src, "--to", out, "--skip-invalid")
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "fp.skipped.json").read_text())
    assert report["skipped"] == 1
    assert report["problems"] == [
        {
            "source": str(src),
            "where": "line 5",
            "message": "EncodedPixels run ends at pixel 11 beyond 4x2=8 pixels",
        }
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    assert sorted(coco.anns) == [1, 2, 3]
    expected = np.zeros((4, 2), np.uint8)
    expected[2:, 0] = 1
    expected[:3, 1] = 1
    np.testing.assert_array_equal(coco.annToMask(coco.anns[3]), expected)
    assert {im["file_name"] for im in coco.imgs.values()} == {"a1.jpg", "b2.jpg"}


@pytest.mark.parametrize("fmt", ["fashionpedia", "coco"])
def test_convert_json_keeps_ids_and_masks(tmp_path, fmt):
    src = write_json(tmp_path / "src.json", fashionpedia_doc())
    out = tmp_path / "out.json"
    res = _fashionkit("convert", "--from", fmt, src, "--to", out)
    assert res.returncode == 0, res.stderr
    a, _ = read_annotations(src)
    b, _ = read_annotations(out)
    assert b.image_ids == a.image_ids
    assert [im.file_name for im in b.images] == [im.file_name for im in a.images]
    for x, y in zip(a.iter_annotations(), b.iter_annotations(), strict=True):
        assert (x.id, x.image_id, x.category_id) == (y.id, y.image_id, y.category_id)
        np.testing.assert_array_equal(a.mask(x), b.mask(y))


def test_convert_rejects_unknown_format(tmp_path):
    res = _fashionkit("convert", "--from", "voc", tmp_path / "x", "--to", tmp_path / "y.json")
    assert res.returncode == 2
    assert "'voc' is not one of" in res.stderr


def test_stats_tables_json_and_plots(tmp_path):
    src = write_json(tmp_path / "fp.json", fashionpedia_doc())
    plots = tmp_path / "plots"
    res = _fashionkit("stats", src, "--plot", plots, "--json", tmp_path / "stats.json")
    assert res.returncode == 0, res.stderr
    for title in (
        "super categories",
        "categories",
        "attributes (used)",
        "masks per image",
        "image sizes",
    ):
        assert title in res.stdout
    assert "0 / 1.67 / 2 / 3" in res.stdout  # masks per image 3, 2, 0: min/mean/median/max
    for name in ("categories", "supercategories", "attributes", "masks_per_image", "image_sizes"):
        png = plots / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "stats.json").read_text())
    assert data["num_images"] == 3 and data["num_annotations"] == 5
    assert data["masks_per_image"] == {"0": 1, "2": 1, "3": 1}


def test_compute_stats_counts():
    doc = fashionpedia_doc()
    from fashionkit.data import Annotation, AnnotationSet, ImageInfo

    images = [ImageInfo(i["id"], i["file_name"], i["width"], i["height"]) for i in doc["images"]]
    anns = [
        Annotation(
            a["id"],
            a["image_id"],
            a["category_id"],
            tuple(a["bbox"]),
            a["area"],
            a["segmentation"],
            a["iscrowd"],
            tuple(a["attribute_ids"]),
        )
        for a in doc["annotations"]
    ]
    st = compute_stats(AnnotationSet(images, anns))
    counts = {cid: n for cid, _, _, n in st.categories if n}
    assert counts == {1: 1, 6: 1, 23: 1, 31: 1, 33: 1}
    supers = dict(st.supercategories)
    assert supers["upperbody"] == 1 and supers["lowerbody"] == 1
    assert supers["legs and feet"] == 1 and supers["garment parts"] == 2
    assert sum(supers.values()) == 5
    atts = {aid: n for aid, _, _, n in st.attributes if n}
    assert atts == {0: 1, 115: 1, 136: 1, 160: 1, 300: 1}
    assert st.masks_per_image == {0: 1, 2: 1, 3: 1}
    assert st.image_sizes == [((30, 20), 1), ((12, 16), 1), ((8, 8), 1)]
    assert st.segmentation_kinds == {"polygon": 2, "rle": 3}
    assert st.masks_per_image_summary == {"min": 0, "mean": 5 / 3, "median": 2.0, "max": 3}


def test_invalid_message_with_brackets_is_printed_verbatim(tmp_path):
    doc = fashionpedia_doc()
    doc["annotations"][0]["attribute_ids"] = [115, 9999]
    doc["annotations"][1]["segmentation"] = "[/bold]"
    src = write_json(tmp_path / "fp.json", doc)
    res = _fashionkit("convert", "--from", "fashionpedia", src, "--to", tmp_path / "o.json")
    assert res.returncode == 2, res.stderr
    assert f"{src}: annotation id 40: unknown attribute id(s) [9999]" in res.stderr
    assert "not str" in res.stderr and "Traceback" not in res.stderr
