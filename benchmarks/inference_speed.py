"""Inference speed of the Predictor's backends against eager fp32, side by side in one run.

Configurations: the paper's (R101-FPN, 1024×1024 input, 100 detections per image), and R50-FPN
at 1024 and 512 (the Fashionpedia R50 design). Weights are random (speed does not depend on
them) and the box score threshold is 0, so every image yields exactly the configured 100
detections, whose masks are pasted at the photo's size and RLE-encoded as in real use.

Per configuration and backend: the median seconds per image (``Predictor`` on one
1024×1024 photo, after a warm-up call; backends alternate call by call so that they share the
machine's noise; process CPU time too, which a busy shared machine disturbs less), GFLOP per image (``torch.utils.flop_counter`` on the
eager forward: convolutions and matmuls), the achieved GFLOP/s and its share of the machine's
bf16 matmul peak (measured here with a large bf16 matmul). Ends with ``RESULT`` lines:
``speedup_best_vs_eager_fp32_r101_1024``, ``best_backend``, ``limit_share``.

    .venv/bin/python benchmarks/inference_speed.py [--quick] [--repeats N]

``--quick``: R50-FPN at 512 only, one timed call per backend (the RESULT keys then describe
that configuration). On a GPU the same Predictor runs with ``device="cuda"`` and
``backend="bf16"``/``"fp16"``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fashionkit.inference import Predictor
from fashionkit.modeling import build_model, model_config_from_preset, save_checkpoint

BACKENDS = ("eager", "bf16")


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def checkpoint_for(preset: str, size: int, folder: Path, pixels: np.ndarray) -> Path:
    """A random-weight checkpoint whose normalisation statistics are calibrated on the photo:
    with identity statistics a random 100-layer ResNet's activations overflow and nothing is
    detected, which would time a different (cheaper) program than a trained model runs."""
    from fashionkit.inference.predictor import input_transform_for

    config = model_config_from_preset(preset, norm="bn", box_score_thresh=0.0,
                                      box_detections_per_img=100)
    torch.manual_seed(0)
    model = build_model(config)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: one batch sets the statistics
    h, w = pixels.shape[:2]
    image = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    target = {"masks": torch.zeros((0, h, w), dtype=torch.uint8), "scale": torch.tensor(1.0)}
    image, _ = input_transform_for(config, _paper(size))(image, target)
    model.train()
    with torch.no_grad():
        batch, _ = model.transform([image.float() / 255])
        features = model.backbone(batch.tensors)
        proposals = model.rpn.proposals(batch, features)
        model.roi_heads.predict(features, proposals, batch.image_sizes)
    model.eval()
    path = folder / f"{preset}-{size}.pt"
    save_checkpoint(model, path, extra={"recipe": {"data": {"transform": "paper",
                                                            "image_size": size}}})
    return path


def _paper(size: int):
    from fashionkit.engine.recipes import DataConfig

    return DataConfig(transform="paper", image_size=size)


def photo(size: int = 1024) -> np.ndarray:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    pixels[size // 4: 3 * size // 4, size // 3: 2 * size // 3] = (200, 40, 60)
    return pixels


def forward_gflop(predictor: Predictor, pixels: np.ndarray) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        predictor(pixels)
    return counter.get_total_flops() / 1e9


def time_backend(predictor: Predictor, pixels: np.ndarray) -> tuple[float, float]:
    """Wall seconds and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    predictor(pixels)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configs = [("fashionpedia-r50", 512)] if args.quick else [
        ("paper", 1024), ("fashionpedia-r50", 1024), ("fashionpedia-r50", 512)]
    repeats = 1 if args.quick else args.repeats

    peak_fp32 = matmul_peak_gflops(torch.float32)
    peak_bf16 = matmul_peak_gflops(torch.bfloat16)
    print(f"threads {torch.get_num_threads()}; matmul peak fp32 {peak_fp32:.0f} GFLOP/s, "
          f"bf16 {peak_bf16:.0f} GFLOP/s")
    pixels = photo(1024)
    headline = None
    with tempfile.TemporaryDirectory() as tmp:
        for preset, size in configs:
            path = checkpoint_for(preset, size, Path(tmp), pixels)
            gflop = forward_gflop(Predictor(path, score_threshold=0.0), pixels)
            predictors = {b: Predictor(path, backend=b, score_threshold=0.0, batch_size=1)
                          for b in BACKENDS}
            counts = {b: len(p(pixels)[0].items) for b, p in predictors.items()}  # warm-up
            walls: dict[str, list[float]] = {b: [] for b in BACKENDS}
            cpus: dict[str, list[float]] = {b: [] for b in BACKENDS}
            for _ in range(repeats):  # alternating, so that both sides share the machine's noise
                for backend, predictor in predictors.items():
                    wall, cpu = time_backend(predictor, pixels)
                    walls[backend].append(wall)
                    cpus[backend].append(cpu)
            times = {b: statistics.median(walls[b]) for b in BACKENDS}
            for backend in BACKENDS:
                seconds = times[backend]
                print(f"{preset:18s} {size:5d}  {backend:6s} {seconds:7.2f} s/image "
                      f"(CPU {statistics.median(cpus[backend]):6.2f} s)  {counts[backend]:3d} "
                      f"detections  {gflop / seconds:6.1f} GFLOP/s "
                      f"({gflop / seconds / peak_bf16:.1%} of the bf16 peak)")
            best = min(times, key=times.get)
            speedup = times["eager"] / times[best]
            cpu_speedup = statistics.median(cpus["eager"]) / statistics.median(cpus[best])
            print(f"{preset:18s} {size:5d}  {gflop:.0f} GFLOP/image; best {best}: "
                  f"{speedup:.2f}x eager fp32 (wall), {cpu_speedup:.2f}x (CPU time)")
            if headline is None:
                headline = (speedup, best, gflop / times[best] / peak_bf16)
    speedup, best, share = headline
    print(f"RESULT speedup_best_vs_eager_fp32_r101_1024 {speedup:.3f}")
    print(f"RESULT best_backend {best}")
    print(f"RESULT limit_share {share:.3f}")


if __name__ == "__main__":
    main()
