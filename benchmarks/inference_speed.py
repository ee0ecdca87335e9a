"""Inference speed of the Predictor's backends against eager fp32, side by side in one run.

Configurations: the official Fashionpedia R101-FPN (``official-r101``, the architecture of the
published checkpoints that ``fashionkit convert-weights`` converts, at its 1024² input; the
model users will run), the paper's (R101-FPN, 1024×1024 input, 100 detections per image), and
R50-FPN at 1024 and 512 (the Fashionpedia R50 design). Weights are random (speed does not depend on
them) and the box score threshold is 0, so every image yields exactly the configured 100
detections, whose masks are pasted at the photo's size and RLE-encoded as in real use.

Backends: ``eager`` (fp32), ``bf16`` (torch autocast), the exported graph (exported once
per configuration, timed apart) run by ``onnxruntime`` (fp32), ``openvino`` (fp32) and
``openvino-bf16`` (OpenVINO's bf16 inference precision), and ``openvino-int8``: the OpenVINO IR
quantised to INT8 by NNCF (calibrated on the benchmark photo; its speed does not depend on
the calibration), the rest of it fp32. INT8 trades accuracy (see the parity table in docs/inference.md),
so the best floating-point backend is reported apart as well.

Per configuration and backend: the median seconds per image and, in brackets, the fastest
and slowest call (``Predictor`` on one 1024×1024 photo, after a warm-up call; backends
alternate call by call so that they share the machine's noise; process CPU time too, which a
busy shared machine disturbs less), GFLOP per image (``torch.utils.flop_counter`` on the eager
forward: convolutions and matmuls, 2 FLOP per multiply-add), the achieved GFLOP/s and its
share of the machine's measured peak for the backend's precision: the fastest of the kernels
the backends run, measured in that precision in the same run (torch's 4096² matmul, torch's
and OpenVINO's 3×3 convolution with 256 channels on 128²; for INT8, a chain of four OpenVINO
INT8 convolutions; each the best of a few runs). The CPU model, thread count and the ISA oneDNN can use (AVX-512-BF16, AMX) are
printed with the peaks: a bf16 peak far above ~64 FLOP per cycle and core means AMX. Ends with ``RESULT`` lines:
``speedup_best_vs_eager_fp32_r101_1024``, ``best_backend``, ``limit_share`` (the best
backend's share of its precision's peak, at R101-FPN 1024),
``speedup_best_float_vs_eager_fp32_r101_1024`` and ``best_float_backend`` (the same without
INT8), for the paper's R101; and the same five for the official R101 at 1024, prefixed
``official_`` (``official_speedup_best_vs_eager_fp32_r101_1024`` …), with
``official_gflop_r101_1024``. A backend that fails on a configuration (e.g. an export the
runtime cannot run) is printed as failed with its reason and left out of that
configuration's comparison.

    .venv/bin/python benchmarks/inference_speed.py [--quick] [--repeats N] [--backends a,b]

``--quick``: R50-FPN and the official R50 at 512 only, one timed call per backend (the RESULT
keys then describe those configurations: the plain keys R50-FPN, the ``official_`` keys the
official R50). On a GPU the same Predictor runs with ``device="cuda"`` and
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

BACKENDS = ("eager", "bf16", "onnxruntime", "openvino", "openvino-bf16", "openvino-int8")
EXPORTED = ("onnxruntime", "openvino", "openvino-bf16")
INT8 = "int8"
PRECISION = {"eager": torch.float32, "onnxruntime": torch.float32, "openvino": torch.float32,
             "bf16": torch.bfloat16, "openvino-bf16": torch.bfloat16, "openvino-int8": INT8}
# Backends whose accuracy is within the parity tests' bounds or close to them (see README):
# the INT8 graph trades accuracy for speed and is reported apart as well.
FLOAT_BACKENDS = ("eager", "bf16", "onnxruntime", "openvino", "openvino-bf16")


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks and caches its kernel
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


CONV_GFLOP = 2 * 256 * 256 * 9 * 128 * 128 / 1e9  # 3×3, 256 → 256 channels, 128×128


def peak_gflops(dtype: torch.dtype, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s in ``dtype`` of the kernels the backends use, each the best of ``repeats``
    runs: torch's 4096² matmul (137 GFLOP), torch's and OpenVINO's 3×3 256→256 convolution
    on 128² (19 GFLOP; channels-last in torch)."""
    n = 4096
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    out = {"torch matmul": 2 * n**3 / _best_seconds(lambda: a @ b, repeats) / 1e9}
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dtype).to(
        memory_format=torch.channels_last)
    x = torch.randn(1, 256, 128, 128, dtype=dtype).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        out["torch conv"] = CONV_GFLOP / _best_seconds(lambda: conv(x), repeats)
    out["openvino conv"] = CONV_GFLOP / _openvino_conv_seconds(dtype, repeats)
    return out


INT8_CHAIN = 4


def int8_peak_gops(repeats: int = 3) -> dict[str, float]:
    """GOP/s of OpenVINO's INT8 3×3 256→256 convolution on 128² (the kernel the INT8 IR's
    convolutions run: FakeQuantize on activations and weights, as NNCF writes them). Four
    convolutions in a chain, activations staying INT8 between them as in a network, so that
    quantising the fp32 input and writing the fp32 output (a larger share of one INT8
    convolution's time than of a bf16 one's) does not pass for the kernel's rate."""
    return {"openvino int8 conv": INT8_CHAIN * CONV_GFLOP
            / _openvino_conv_seconds(INT8, repeats)}


def _openvino_conv_seconds(dtype, repeats: int) -> float:
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, 256, 128, 128], np.float32)
    rng = np.random.default_rng(0)
    x = image.output(0)

    def fake_quantize(value, low, high, levels):
        lo, hi = ops.constant(np.float32(low)), ops.constant(np.float32(high))
        return ops.fake_quantize(value, lo, hi, lo, hi, levels).output(0)

    for _ in range(INT8_CHAIN if dtype == INT8 else 1):
        w = ops.constant(rng.standard_normal((256, 256, 3, 3)).astype(np.float32) / 48).output(0)
        if dtype == INT8:
            x, w = fake_quantize(x, 0.0, 4.0, 256), fake_quantize(w, -0.1, 0.1, 255)
        x = ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]).output(0)
        if dtype == INT8:
            x = ops.relu(x).output(0)
    model = ov.Model([x], [image])
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if dtype == torch.bfloat16 else "f32",
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()})
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((1, 256, 128, 128)).astype(np.float32)
    return _best_seconds(lambda: request.infer([x]), repeats)


def machine() -> str:
    """CPU model, threads and the reduced-precision ISA flags the kernel reports."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return (f"{model}; {torch.get_num_threads()} threads; torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}; flags {' '.join(isa) or 'none'}")


def checkpoint_for(preset: str, size: int, folder: Path, pixels: np.ndarray) -> Path:
    """A random-weight checkpoint whose normalisation statistics are calibrated on the photo:
    with identity statistics a random 100-layer ResNet's activations overflow and nothing is
    detected, which would time a different (cheaper) program than a trained model runs."""
    from fashionkit.inference import input_transform_for

    official = preset.startswith("official-")
    overrides = {} if official else {"norm": "bn"}  # the official model has BatchNorm already
    config = model_config_from_preset(preset, box_score_thresh=0.0, box_detections_per_img=100,
                                      **overrides)
    torch.manual_seed(0)
    model = build_model(config)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: one batch sets the statistics
    h, w = pixels.shape[:2]
    image = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    target = {"masks": torch.zeros((0, h, w), dtype=torch.uint8), "scale": torch.tensor(1.0)}
    recipe = _recipe(size, official)
    image, _ = input_transform_for(config, recipe)(image, target)
    image = image.float() / 255 if image.dtype == torch.uint8 else image
    model.train()
    with torch.no_grad():
        if official:  # inference code in training mode: BatchNorm takes the batch's statistics
            model.raw_predictions([image])
        else:
            batch, _ = model.transform([image])
            features = model.backbone(batch.tensors)
            proposals = model.rpn.proposals(batch, features)
            model.roi_heads.predict(features, proposals, batch.image_sizes)
    model.eval()
    path = folder / f"{preset}-{size}.pt"
    save_checkpoint(model, path, extra={"recipe": {"data": recipe.to_dict()}})
    return path


def _recipe(size: int, official: bool = False):
    from fashionkit.data.input_recipe import DataConfig

    return DataConfig(transform="official" if official else "paper", image_size=size)


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


def make_predictors(backends, path: Path, folder: Path,
                    pixels: np.ndarray) -> tuple[dict, dict[str, float], dict[str, str]]:
    """Predictors per backend; the exported ones share one ONNX export, ``openvino-int8``
    runs an IR quantised by NNCF calibrated on the photo (each export timed). Also the
    backends that could not be prepared, with the reason."""
    from fashionkit.inference.export import export_model

    seconds: dict[str, float] = {}
    sources = {}
    failed: dict[str, str] = {}
    if any(b in EXPORTED for b in backends):
        start = time.perf_counter()
        try:
            onnx_path = export_model(path, folder / f"{path.stem}.onnx")
            seconds["ONNX export"] = time.perf_counter() - start
            sources.update({b: (onnx_path, b) for b in EXPORTED})
        except Exception as err:  # reported per backend, the others still run
            failed.update({b: _reason(err) for b in EXPORTED if b in backends})
    if "openvino-int8" in backends:
        start = time.perf_counter()
        try:
            int8_path = export_model(path, folder / f"{path.stem}-int8.xml", "openvino",
                                     int8_calibration=[pixels])
            seconds["INT8 export"] = time.perf_counter() - start
            sources["openvino-int8"] = (int8_path, "openvino")  # INT8 convolutions, fp32 rest
        except Exception as err:
            failed["openvino-int8"] = _reason(err)
    predictors = {}
    for b in backends:
        if b in failed:
            continue
        source, backend = sources.get(b, (path, b))
        try:
            predictors[b] = Predictor(source, backend=backend, score_threshold=0.0, batch_size=1)
        except Exception as err:
            failed[b] = _reason(err)
    return predictors, seconds, failed


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1][:200] if text else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated, eager first (the reference)")
    parser.add_argument("--configs", default=None,
                        help="comma-separated PRESET:SIZE (default: every configuration, or "
                             "with --quick fashionpedia-r50:512,official-r50:512)")
    args = parser.parse_args()
    backends = tuple(args.backends.split(","))
    if backends[0] != "eager" or not set(backends) <= set(BACKENDS):
        parser.error(f"--backends: eager first, then any of {BACKENDS}")
    configs = ([("fashionpedia-r50", 512), ("official-r50", 512)] if args.quick else [
        ("official-r101", 1024), ("paper", 1024), ("fashionpedia-r50", 1024),
        ("fashionpedia-r50", 512)])
    if args.configs:
        configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    repeats = 1 if args.quick else args.repeats

    print(machine())
    peaks: dict = {}
    for dtype in (torch.float32, torch.bfloat16, INT8):
        kernels = int8_peak_gops() if dtype == INT8 else peak_gflops(dtype)
        peaks[dtype] = max(kernels.values())
        print(f"peak {_name(dtype):8s} {peaks[dtype]:6.0f} GFLOP/s, the best "
              f"of: " + ", ".join(f"{k} {v:.0f}" for k, v in kernels.items()))
    pixels = photo(1024)
    headlines: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset, size in configs:
            path = checkpoint_for(preset, size, Path(tmp), pixels)
            gflop = forward_gflop(Predictor(path, score_threshold=0.0), pixels)
            predictors, export_seconds, failed = make_predictors(backends, path, Path(tmp),
                                                                 pixels)
            for what, secs in export_seconds.items():
                print(f"{preset:18s} {size:5d}  {what} {secs:.0f} s")
            counts = {}
            for b, p in list(predictors.items()):  # warm-up
                try:
                    counts[b] = len(p(pixels)[0].items)
                except Exception as err:
                    failed[b] = _reason(err)
                    del predictors[b]
            for backend, reason in failed.items():
                print(f"{preset:18s} {size:5d}  {backend:13s} failed: {reason}")
            ran = [b for b in backends if b in predictors]
            if "eager" not in ran:
                continue
            walls: dict[str, list[float]] = {b: [] for b in ran}
            cpus: dict[str, list[float]] = {b: [] for b in ran}
            for _ in range(repeats):  # alternating, so that all share the machine's noise
                for backend in ran:
                    wall, cpu = time_backend(predictors[backend], pixels)
                    walls[backend].append(wall)
                    cpus[backend].append(cpu)
            times = {b: statistics.median(walls[b]) for b in ran}
            for backend in ran:
                seconds = times[backend]
                print(f"{preset:18s} {size:5d}  {backend:13s} {seconds:7.2f} s/image "
                      f"[{min(walls[backend]):.2f}–{max(walls[backend]):.2f}] "
                      f"(CPU {statistics.median(cpus[backend]):6.2f} s)  {counts[backend]:3d} "
                      f"detections  {gflop / seconds:6.1f} GFLOP/s ({gflop / seconds / peaks[PRECISION[backend]]:.1%} "
                      f"of the {_name(PRECISION[backend])} peak)  "
                      f"{times['eager'] / seconds:.2f}x eager")
            best = min(times, key=lambda b: times[b])
            best_float = min((b for b in times if b in FLOAT_BACKENDS), key=lambda b: times[b])
            for label, b in (("best", best), ("best floating-point", best_float)):
                print(f"{preset:18s} {size:5d}  {gflop:.0f} GFLOP/image; {label} {b}: "
                      f"{times['eager'] / times[b]:.2f}x eager fp32 (wall), "
                      f"{statistics.median(cpus['eager']) / statistics.median(cpus[b]):.2f}x "
                      f"(CPU time)")
            kind = "official" if preset.startswith("official-") else "torchvision"
            if kind not in headlines:
                headlines[kind] = (times["eager"] / times[best], best,
                                   gflop / times[best] / peaks[PRECISION[best]],
                                   times["eager"] / times[best_float], best_float, gflop)
    for kind, prefix in (("torchvision", ""), ("official", "official_")):
        if kind not in headlines:
            continue
        speedup, best, share, float_speedup, best_float, gflop = headlines[kind]
        print(f"RESULT {prefix}speedup_best_vs_eager_fp32_r101_1024 {speedup:.3f}")
        print(f"RESULT {prefix}best_backend {best}")
        print(f"RESULT {prefix}limit_share {share:.3f}")
        print(f"RESULT {prefix}speedup_best_float_vs_eager_fp32_r101_1024 {float_speedup:.3f}")
        print(f"RESULT {prefix}best_float_backend {best_float}")
        if prefix:
            print(f"RESULT {prefix}gflop_r101_1024 {gflop:.1f}")


def _name(precision) -> str:
    return precision if isinstance(precision, str) else str(precision).removeprefix("torch.")


if __name__ == "__main__":
    main()
