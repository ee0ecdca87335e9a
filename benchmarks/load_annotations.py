"""Load + index a Fashionpedia-train-sized annotation file: fashionkit vs pycocotools ``COCO()``.

Generates (once, cached in a temp folder) a Fashionpedia JSON with 45,623 images and 333,401
instances (``--quick``: a tenth), with the official file's shape: image records with
``original_url``/``license``/``time_captured``/``isstatic``/``kaggle_id``, mostly polygon
segmentations (1-3 rings, 8-120 points, coordinates with decimals), some compressed RLE and some
uncompressed (crowd) RLE, 0-8 attribute ids per instance.

Each side runs in its own fresh subprocess, so its peak RSS (``ru_maxrss``) is its own:
``fashionkit.data.read_annotations`` (decode, index *and* validate every record) against
``pycocotools.coco.COCO(path)`` (``json.load`` + ``createIndex``, no validation). Each side is run
``--repeat`` times, alternating; the best time and the peak RSS of each side are compared.

Ends with ``RESULT load_time_ratio_vs_pycocotools X`` (fashionkit seconds / pycocotools
seconds; < 1 is faster) and ``RESULT load_rss_ratio_vs_pycocotools Y`` (peak RSS ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FULL_IMAGES, FULL_ANNOTATIONS = 45_623, 333_401


def _polygon_pool(rng, size: int) -> list[tuple[bytes, list[float]]]:
    """Pre-formatted polygon segmentations (JSON text + XYWH box) inside a 480×480 area."""
    import numpy as np

    pool = []
    for _ in range(size):
        rings = []
        xs_all, ys_all = [], []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(8, 121))
            cx, cy = rng.uniform(60, 420, 2)
            radius = rng.uniform(10, 55)
            angles = np.sort(rng.uniform(0, 2 * np.pi, k))
            r = radius * rng.uniform(0.6, 1.0, k)
            xs = np.round(cx + r * np.cos(angles), 2)
            ys = np.round(cy + r * np.sin(angles), 2)
            xs_all.append(xs)
            ys_all.append(ys)
            coords = np.stack([xs, ys], axis=1).ravel()
            rings.append("[" + ", ".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in coords) + "]")
        x = np.concatenate(xs_all)
        y = np.concatenate(ys_all)
        box = [float(x.min()), float(y.min()), float(x.max() - x.min()), float(y.max() - y.min())]
        pool.append((("[" + ", ".join(rings) + "]").encode(), box))
    return pool


def _rle_pool(rng, size: int, compressed: bool) -> list[tuple[bytes, list[float], float]]:
    """RLE segmentations for a 480×480 mask region; the image size is filled in later."""
    import numpy as np
    from pycocotools import mask as mask_utils

    pool = []
    for _ in range(size):
        m = np.zeros((480, 480), np.uint8)
        x0, y0 = rng.integers(10, 300, 2)
        w, h = rng.integers(20, 170, 2)
        m[y0 : y0 + h, x0 : x0 + w] = 1
        m[y0 + h // 3 : y0 + h // 2, x0 : x0 + w // 2] = 0
        rle = mask_utils.encode(np.asfortranarray(m))
        box = [float(v) for v in mask_utils.toBbox(rle)]
        area = float(mask_utils.area(rle))
        if compressed:
            pool.append((rle["counts"], box, area))
        else:
            flat = m.ravel(order="F")
            edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
            counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
            pool.append((counts, box, area))
    return pool


def generate(path: Path, n_images: int, n_anns: int, seed: int = 0) -> None:
    """Write a Fashionpedia-shaped JSON file (see module docstring) to ``path``."""
    import numpy as np

    from fashionkit.ontology import load_ontology

    ont = load_ontology()
    rng = np.random.default_rng(seed)
    polys = _polygon_pool(rng, 3000)
    crle = _rle_pool(rng, 200, compressed=True)
    urle = _rle_pool(rng, 100, compressed=False)
    att_ids = np.asarray(ont.attribute_ids)
    # Masks live in a 480×480 corner; RLE must match the image size, so RLE images are 480×480.
    sizes = [
        (480, 480) if i % 7 == 0 else (int(rng.integers(500, 1200)), int(rng.integers(500, 1400)))
        for i in range(n_images)
    ]
    image_of_ann = np.sort(rng.integers(0, n_images, n_anns))
    out = bytearray()
    out += b'{"info": {"description": "generated Fashionpedia-scale benchmark", "year": 2020}, '
    out += b'"licenses": [{"id": 1, "name": "CC BY 2.0", "url": "https://example.org"}], '
    out += b'"images": ['
    for i, (w, h) in enumerate(sizes):
        rec = {
            "id": i + 1,
            "width": w,
            "height": h,
            "file_name": f"{i:032x}.jpg",
            "license": 1,
            "original_url": f"https://farm{i % 9}.example.org/{i * 7919 % 10**9}_{i:x}_o.jpg",
            "time_captured": "March 29, 2016",
            "isstatic": 1,
            "kaggle_id": f"{i:032x}",
        }
        out += json.dumps(rec).encode() + (b", " if i + 1 < n_images else b"")
    out += b'], "annotations": ['
    cats = np.asarray(ont.category_ids)
    for a in range(n_anns):
        im = int(image_of_ann[a])
        w, h = sizes[im]
        kind = rng.random()
        if (w, h) == (480, 480) and kind < 0.3:
            counts, box, area = crle[int(rng.integers(len(crle)))]
            seg = json.dumps({"size": [480, 480], "counts": counts.decode()}).encode()
            crowd = 0
        elif (w, h) == (480, 480) and kind < 0.4:
            counts, box, area = urle[int(rng.integers(len(urle)))]
            seg = json.dumps({"size": [480, 480], "counts": counts}).encode()
            crowd = 1
        else:
            seg, box = polys[int(rng.integers(len(polys)))]
            area = round(box[2] * box[3] * 0.6, 1)
            crowd = 0
        attrs = rng.choice(att_ids, int(rng.integers(0, 9)), replace=False).tolist()
        out += (
            b'{"id": %d, "image_id": %d, "category_id": %d, "segmentation": %s, "bbox": %s, '
            b'"area": %s, "iscrowd": %d, "attribute_ids": %s}'
            % (
                a + 1,
                im + 1,
                int(rng.choice(cats)),
                seg,
                json.dumps(box).encode(),
                repr(area).encode(),
                crowd,
                json.dumps(attrs).encode(),
            )
        )
        if a + 1 < n_anns:
            out += b", "
    out += b'], "categories": ' + json.dumps(ont.categories_json()).encode()
    out += b', "attributes": ' + json.dumps(ont.attributes_json()).encode() + b"}"
    path.write_bytes(out)


def _measure(side: str, path: str) -> None:
    """Child process: load + index once, print seconds and peak RSS as JSON."""
    import resource

    if side == "fashionkit":
        from fashionkit.data import read_annotations

        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        ann_set, report = read_annotations(path)
        seconds = time.perf_counter() - t0
        counts = (len(ann_set), ann_set.num_annotations, len(report))
        # Touch the index the way a consumer would.
        ann_set.annotations(ann_set.image_ids[len(ann_set) // 2])
    else:
        import contextlib
        import io

        from pycocotools.coco import COCO

        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(path)
        seconds = time.perf_counter() - t0
        counts = (len(coco.imgs), len(coco.anns), 0)
        coco.getAnnIds(imgIds=[next(iter(coco.imgs))])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {"seconds": seconds, "peak_rss": peak, "import_rss": base_rss * 1024, "counts": counts}
        )
    )


def _run_side(side: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", side, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the Fashionpedia scale")
    parser.add_argument("--repeat", type=int, default=None, help="runs per side (default 2/3)")
    parser.add_argument("--file", type=Path, default=None, help="use this file instead")
    parser.add_argument("--measure", nargs=2, metavar=("SIDE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(Path(args.generate[2]), int(args.generate[0]), int(args.generate[1]))
        return
    if args.measure:
        _measure(*args.measure)
        return

    scale = 10 if args.quick else 1
    n_images, n_anns = FULL_IMAGES // scale, FULL_ANNOTATIONS // scale
    path = args.file or Path(tempfile.gettempdir()) / f"fashionkit_bench_{n_images}_{n_anns}.json"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        # In a child: Linux carries a process's peak RSS across fork+exec, so the parent that
        # spawns the measured children must never have been large itself.
        subprocess.run(
            [sys.executable, __file__, "--generate", str(n_images), str(n_anns), str(tmp)],
            check=True,
        )
        tmp.replace(path)
        print(f"generated {path} in {time.perf_counter() - t0:.1f}s")
    print(f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB)")

    repeat = args.repeat or (3 if args.quick else 2)
    results: dict[str, list[dict]] = {"fashionkit": [], "pycocotools": []}
    for _ in range(repeat):
        for side in ("pycocotools", "fashionkit"):
            r = _run_side(side, path)
            results[side].append(r)
            print(
                f"{side:12s} {r['seconds']:7.2f} s  peak RSS {r['peak_rss'] / 2**20:7.0f} MiB "
                f"(after imports {r['import_rss'] / 2**20:.0f} MiB)  images/annotations "
                f"{r['counts'][0]}/{r['counts'][1]}"
            )
    best = {s: min(r["seconds"] for r in rs) for s, rs in results.items()}
    peak = {s: max(r["peak_rss"] for r in rs) for s, rs in results.items()}
    print(
        f"best time: fashionkit {best['fashionkit']:.2f} s, pycocotools {best['pycocotools']:.2f} s"
    )
    print(f"RESULT load_time_ratio_vs_pycocotools {best['fashionkit'] / best['pycocotools']:.3f}")
    print(f"RESULT load_rss_ratio_vs_pycocotools {peak['fashionkit'] / peak['pycocotools']:.3f}")


if __name__ == "__main__":
    main()
