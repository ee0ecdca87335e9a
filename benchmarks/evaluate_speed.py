"""Fashionpedia evaluation speed: ours against the official evaluator (fashionpedia 1.1).

Cases of several compositions are generated (polygon, RLE and crowd ground truth with
attributes; detections as a model's top-100 output: jittered re-detections, confusions and
background) and written to files:

* ``dense``: ~8.8 instances per image, each re-detected 1-3 times;
* ``sparse-gt``: ~2 instances per image, the rest of the 100 detections background;
* ``many-categories``: ~20 instances per image over many categories, confusions common;
* ``crowd``: a third of the ground truth crowd regions;
* ``val-like``: Fashionpedia val's size and make-up (1,158 images, ~7.6 instances each, mostly
  polygons, few crowd regions).

Both evaluators run as whole processes on the same files (start-up, imports, reading JSON,
evaluating, writing the metrics):

* official: ``Fashionpedia(gt).loadRes(res)``, ``FPEval(...).run()`` and ``summarize_class()``
  (with the ``numpy.float = float`` shim it needs on numpy >= 1.24);
* ours: ``fashionkit evaluate --iou-type segm --json`` as a user runs it (Fashionpedia AP, COCO
  AP and attribute metrics), and with ``--no-coco --no-attributes`` (the official's metrics only).

Both packages are compiled to bytecode first, as installing them does (with
``PYTHONDONTWRITEBYTECODE`` set, an editable checkout would otherwise be compiled from source in
every process). Every official key is compared with ours (|difference| <= 1e-6, or the run
fails). ``--quick`` uses a tenth of the images. Prints one line per case (wall-clock seconds,
and the processes' CPU seconds, steadier on a shared machine), then
``RESULT eval_speedup_vs_official`` (the smallest wall-clock speed-up of the full command over
the cases) and ``RESULT eval_speedup_vs_official_max``.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OFFICIAL = """
import json, sys, numpy as np
np.float = float  # removed in numpy 1.24, used by fashionpedia 1.1
import warnings; warnings.simplefilter("ignore")
from fashionpedia.fp import Fashionpedia
from fashionpedia.fp_eval import FPEval
gt = Fashionpedia(sys.argv[1])
dt = gt.loadRes(sys.argv[2])
ev = FPEval(gt, dt, sys.argv[3])
ev.run()
ev.summarize_class()
out = {"iou_f1": ev.results, "iou": ev.resultDet, "f1": ev.resultF1, "per_class": ev.results_per_class}
json.dump(out, open(sys.argv[4], "w"), default=float)
"""

OURS = "from fashionkit.cli import main; main()"


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd[:4])} ...\n{p.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def compare(ref: dict, got: dict, path: str = "") -> tuple[int, list[str]]:
    n, bad = 0, []
    for k, v in ref.items():
        if isinstance(v, dict):
            m, b = compare(v, got.get(k, {}), f"{path}/{k}")
            n, bad = n + m, bad + b
        else:
            w = got.get(k)
            if w is None or not math.isclose(float(v), float(w), abs_tol=1e-6):
                bad.append(f"{path}/{k}: official {v}, ours {w}")
            n += 1
    return n, bad


# name -> (images in the full run, CaseSpec fields); every case pads images to 100 detections.
CASES: dict[str, tuple[int, dict]] = {
    "dense": (1158, {"instances_per_image": 8.8, "detections_per_gt": (1, 3)}),
    "sparse-gt": (
        600,
        {"instances_per_image": 2.0, "detections_per_gt": (1, 2), "padding_near_gt": 0.2},
    ),
    "many-categories": (
        500,
        {"instances_per_image": 20.0, "detections_per_gt": (1, 2), "padding_near_gt": 0.8},
    ),
    "crowd": (600, {"instances_per_image": 8.8, "crowd_rate": 0.33}),
    "val-like": (
        1158,
        {
            "instances_per_image": 7.6,
            "crowd_rate": 0.01,
            "rle_gt_rate": 0.1,
            "image_size": (500, 1024),
            "detections_per_gt": (1, 2),
        },
    ),
}

_COMMON = {
    "image_size": (400, 1024),
    "detections_per_gt": (1, 3),
    "false_positives_per_image": (5, 15),
    "max_detections_per_image": 100,
    "padding_near_gt": 0.6,
    "attribute_pool": 60,
    "max_attributes": 8,
    "jitter": 0.06,
}


def run_case(name: str, n_images: int, fields: dict, iou_type: str, seed: int) -> float:
    """Generate, run both evaluators, compare every key; print one line; return the speed-up of
    the full command."""
    from fashionkit.evaluation.testing import CaseSpec, make_case

    spec = CaseSpec(
        num_images=n_images, images_without_gt=max(1, n_images // 100), **{**_COMMON, **fields}
    )
    gt, res = make_case(seed, spec)
    n_gt, n_dt = len(gt["annotations"]), len(res)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gt_path, res_path = d / "gt.json", d / "results.json"
        gt_path.write_text(json.dumps(gt))
        res_path.write_text(json.dumps(res))
        del gt, res
        py = sys.executable
        common = ["evaluate", "--gt", str(gt_path), "--results", str(res_path)]
        common += ["--iou-type", iou_type]
        t_same, _ = run(
            [py, "-c", OURS, *common, "--no-coco", "--no-attributes", "--json", str(d / "o.json")]
        )
        t_full, c_full = run([py, "-c", OURS, *common, "--json", str(d / "ours_full.json")])
        t_off, c_off = run(
            [py, "-c", OFFICIAL, str(gt_path), str(res_path), iou_type, str(d / "official.json")]
        )
        ref = json.loads((d / "official.json").read_text())
        got = json.loads((d / "o.json").read_text())
        full = json.loads((d / "ours_full.json").read_text())
    per_class = {**got["per_super_class"], **got["per_category"]}
    ref_per_class = ref.pop("per_class")
    n, bad = compare(ref, got)
    m, bad2 = compare(ref_per_class, per_class, "/per_class")
    n2, bad3 = compare(ref, full)
    if bad or bad2 or bad3:
        print("\n".join((bad + bad2 + bad3)[:20]))
        sys.exit(f"{name}: numbers differ: {len(bad) + len(bad2) + len(bad3)} of {n + m + n2}")
    print(
        f"{name:16s} {n_images:5d} images {n_gt:6d} gt {n_dt:7d} dt | official {t_off:7.2f} s | "
        f"ours {t_full:6.2f} s ({t_off / t_full:5.1f}x), official's metrics only {t_same:6.2f} s "
        f"({t_off / t_same:5.1f}x) | CPU official {c_off:6.1f} s, ours {c_full:5.2f} s "
        f"({c_off / c_full:5.1f}x) | {n + m} values equal, AP(IoU+F1) {got['iou_f1']['AP']:.4f}",
        flush=True,
    )
    return t_off / t_full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the images per case")
    ap.add_argument("--iou-type", default="segm", choices=["segm", "bbox"])
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    args = ap.parse_args()

    for package in ("fashionkit", "fashionpedia"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"{package} is not installed")
        for where in spec.submodule_search_locations:
            compileall.compile_dir(where, quiet=1)
    speedups = []
    for name in args.cases:
        n_images, fields = CASES[name]
        n = max(10, n_images // 10) if args.quick else n_images
        speedups.append(run_case(name, n, fields, args.iou_type, args.seed))
    print(f"RESULT eval_speedup_vs_official {min(speedups):.1f}")
    print(f"RESULT eval_speedup_vs_official_max {max(speedups):.1f}")


if __name__ == "__main__":
    main()
