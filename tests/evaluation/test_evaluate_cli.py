"""``fashionkit evaluate``: tables, JSON with the official keys, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fashionkit.evaluation.testing import CaseSpec, make_case, run_official

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli(*args: str) -> subprocess.CompletedProcess:
    code = "from fashionkit.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_evaluate_writes_official_numbers(tmp_path):
    gt, res = make_case(31, CaseSpec(num_images=5, jitter=0.05))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    out = tmp_path / "out.json"
    p = cli(
        "evaluate",
        "--gt",
        str(tmp_path / "gt.json"),
        "--results",
        str(tmp_path / "res.json"),
        "--iou-type",
        "bbox",
        "--json",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert "AP_IOU50_F150" in p.stdout and "per category" in p.stdout
    got = json.loads(out.read_text())
    ref = run_official(gt, res, "bbox")
    assert {"iou_f1", "iou", "f1", "per_super_class", "per_category", "coco", "attributes"} <= set(
        got
    )
    for group in ("iou_f1", "iou", "f1"):
        assert list(got[group]) == list(ref[group])
        for k, v in ref[group].items():
            assert got[group][k] == pytest.approx(v, abs=1e-6)


def test_bad_results_exit_2_with_the_record(tmp_path):
    gt, res = make_case(32, CaseSpec(num_images=3, images_without_gt=0))
    res[1]["category_id"] = 99
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    p = cli("evaluate", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"))
    assert p.returncode == 2
    assert "res.json: result 1: unknown category id 99" in p.stderr
    assert "Traceback" not in p.stderr


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom fashionkit.cli import app\n"
        "heavy = [m for m in ('torch', 'pycocotools', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "[]", p.stdout + p.stderr
