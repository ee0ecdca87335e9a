"""Synthetic world speed on one core: images rendered and written per second at 256² (the
goal is at least 20), with 128² alongside.

The rate is images per CPU second of this single-worker process (rendering, JPEG and JSON
writing included), which is what one core delivers even when other jobs share the machine;
the wall-clock rate is printed beside it.

    .venv/bin/python benchmarks/synth_speed.py [--quick]

Ends with ``RESULT synth_images_per_s X`` (256², one worker, JPEG files and JSON included).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

# One core: keep any threaded math library to a single thread.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from fashionkit.data.synth import generate_world  # noqa: E402


def run(images: int, size: int) -> tuple[float, float]:
    """(images per CPU second, images per wall second)."""
    with tempfile.TemporaryDirectory() as tmp:
        generate_world(tmp, images=min(images, 5), size=size, seed=99)  # warm-up: imports, caches
        cpu = time.process_time()
        s = generate_world(tmp, images=images, size=size, seed=1, workers=1)
        cpu = time.process_time() - cpu
        anns = s.train_annotations + s.val_annotations
        print(f"{size}²: {images} images, {anns} annotations ({s.polygon_annotations} polygons, "
              f"{s.rle_annotations} RLE): {cpu:.2f} CPU s → {images / cpu:.1f} images/s; "
              f"wall {s.seconds:.2f} s → {s.images_per_second:.1f} images/s")
        return images / cpu, s.images_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer images")
    args = ap.parse_args()
    n = 40 if args.quick else 200
    small, _ = run(n, 128)
    big, big_wall = run(n, 256)
    print(f"target at 256²: 20 images/s on one core; measured {big:.1f} ({big / 20:.2f}× the target)")
    print(f"RESULT synth_images_per_s_128 {small:.2f}")
    print(f"RESULT synth_images_per_s_wall {big_wall:.2f}")
    print(f"RESULT synth_images_per_s {big:.2f}")


if __name__ == "__main__":
    main()
