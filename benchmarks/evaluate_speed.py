"""Fashionpedia evaluation speed: ours against the official evaluator (fashionpedia 1.1).

A Fashionpedia-val-scale case is generated (1,158 images, ~8.8 instances each as polygons, RLE
and crowd RLE, attributes; 100 detections per image as a model's top-100 output: jittered
re-detections, confusions and background) and written to files. Both evaluators then run as
whole processes on the same files (start-up, imports, reading JSON, evaluating, writing the
metrics):

* official: ``Fashionpedia(gt).loadRes(res)``, ``FPEval(...).run()`` and ``summarize_class()``
  (with the ``numpy.float = float`` shim it needs on numpy >= 1.24);
* ours: ``fashionkit evaluate --iou-type segm --no-coco --no-attributes --json`` (the same
  metrics: three groups, per super class, per category), and, for information, the full command.

Every official key is compared with ours (|difference| <= 1e-6, or the run fails).
``--quick`` uses a tenth of the images. Ends with ``RESULT eval_speedup_vs_official X``.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="116 images instead of 1,158")
    ap.add_argument("--iou-type", default="segm", choices=["segm", "bbox"])
    ap.add_argument("--seed", type=int, default=2020)
    args = ap.parse_args()

    from fashionkit.evaluation.testing import CaseSpec, make_case

    n_images = 116 if args.quick else 1158
    spec = CaseSpec(
        num_images=n_images,
        image_size=(400, 1024),
        instances_per_image=8.8,
        images_without_gt=max(1, n_images // 100),
        detections_per_gt=(1, 3),
        false_positives_per_image=(5, 15),
        max_detections_per_image=100,
        padding_near_gt=0.6,
        attribute_pool=60,
        max_attributes=8,
        jitter=0.06,
    )
    t = time.perf_counter()
    gt, res = make_case(args.seed, spec)
    print(
        f"case: {len(gt['images'])} images, {len(gt['annotations'])} instances, {len(res)} detections "
        f"(generated in {time.perf_counter() - t:.1f} s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gt_path, res_path = d / "gt.json", d / "results.json"
        gt_path.write_text(json.dumps(gt))
        res_path.write_text(json.dumps(res))
        del gt, res
        py = sys.executable
        common = [
            "evaluate",
            "--gt",
            str(gt_path),
            "--results",
            str(res_path),
            "--iou-type",
            args.iou_type,
        ]
        t_ours, c_ours = run(
            [
                py,
                "-c",
                OURS,
                *common,
                "--no-coco",
                "--no-attributes",
                "--json",
                str(d / "ours.json"),
            ]
        )
        print(
            f"ours     (fashionkit evaluate, same metrics):           wall {t_ours:8.2f} s  cpu {c_ours:8.2f} s"
        )
        t_full, c_full = run([py, "-c", OURS, *common, "--json", str(d / "ours_full.json")])
        print(
            f"ours     (+ COCO AP + attribute metrics):               wall {t_full:8.2f} s  cpu {c_full:8.2f} s"
        )
        t_off, c_off = run(
            [
                py,
                "-c",
                OFFICIAL,
                str(gt_path),
                str(res_path),
                args.iou_type,
                str(d / "official.json"),
            ]
        )
        print(
            f"official (FPEval.run + summarize_class):                wall {t_off:8.2f} s  cpu {c_off:8.2f} s"
        )
        print(
            f"speed-up: wall {t_off / t_ours:.1f}x, cpu {c_off / c_ours:.1f}x (full command: wall {t_off / t_full:.1f}x)"
        )

        ref = json.loads((d / "official.json").read_text())
        got = json.loads((d / "ours.json").read_text())
        per_class = {**got["per_super_class"], **got["per_category"]}
        ref_per_class = ref.pop("per_class")
        n, bad = compare(ref, got)
        m, bad2 = compare(ref_per_class, per_class, "/per_class")
        if bad or bad2:
            print("\n".join((bad + bad2)[:20]))
            sys.exit(f"numbers differ: {len(bad) + len(bad2)} of {n + m}")
        print(
            f"identical numbers: {n + m} values (3 groups, per super class, per category) within 1e-6"
        )
        print(
            f"AP (IoU+F1) {got['iou_f1']['AP']:.4f}, AP (IoU) {got['iou']['AP']:.4f}, AP (F1) {got['f1']['AP']:.4f}"
        )
    print(f"RESULT eval_speedup_vs_official {t_off / t_ours:.1f}")


if __name__ == "__main__":
    main()
