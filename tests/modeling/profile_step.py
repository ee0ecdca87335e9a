"""Times one training step (losses + backward + AdamW step) of candidate cpu-tiny designs on
this CPU, on a batch of synthetic-world images. Not a test; run it by hand::

    .venv/bin/python tests/modeling/profile_step.py [--size 160] [--batch 8] [--repeats 5]

Prints wall ms per step as the minimum over repeats (other processes share the CPU; the minimum
is the least disturbed measurement) and the median, and the process CPU ms of the fastest step.
With ``--threads 1`` the CPU time is the work itself, robust to other load (with more threads
than free cores, OpenMP threads spin-wait and inflate both figures).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext

import torch

from fashionkit.data import read_annotations
from fashionkit.data.dataset import FashionDataset, collate
from fashionkit.data.synth import generate_world
from fashionkit.modeling import build_model, model_config_from_preset

TORCHVISION_DEFAULTS = dict(  # the probe of the task: torchvision's default sizes, R50 v1
    backbone="resnet50", norm="bn", trainable_backbone_layers=5, fpn_levels=[2, 3, 4, 5],
    fpn_channels=256, representation_size=1024, mask_head_convs=4, mask_head_channels=256,
    anchor_sizes=[32, 64, 128, 256, 512], rpn_pre_nms_top_n_train=2000,
    rpn_post_nms_top_n_train=2000, rpn_batch_size_per_image=256, box_batch_size_per_image=512,
)

CANDIDATES: dict[str, dict] = {
    "torchvision-defaults-r50": TORCHVISION_DEFAULTS,
    "r18-defaults-heads": {**TORCHVISION_DEFAULTS, "backbone": "resnet18"},
    "cpu-tiny": {},
    "cpu-tiny-fpn128-mask128": {"fpn_channels": 128, "mask_head_channels": 128},
    "cpu-tiny-fpn128-mask64": {"fpn_channels": 128},
    "cpu-tiny-rpn100": {"rpn_post_nms_top_n_train": 100, "box_batch_size_per_image": 48},
    "cpu-tiny-P3-P6": {"fpn_levels": [3, 4, 5], "anchor_sizes": [16, 32, 64, 128]},
    "cpu-tiny-rois64": {"box_batch_size_per_image": 64},
    "cpu-tiny-4maskconvs": {"mask_head_convs": 4},
    "cpu-tiny-r34": {"backbone": "resnet34"},
    "cpu-tiny-r50": {"backbone": "resnet50"},
    "cpu-tiny-gn": {"norm": "gn"},
    "cpu-tiny-v2": {"heads": "v2"},
}


def batch(size: int, n: int):
    tmp = tempfile.mkdtemp(prefix="fk-profile-")
    generate_world(tmp, images=max(n * 2, 8), size=size, seed=0, val_fraction=0.0)
    anns = read_annotations(f"{tmp}/train.json")[0]
    ds = FashionDataset(anns, f"{tmp}/images")
    return collate([ds[i] for i in range(n)])


def time_step(overrides: dict, images, targets, repeats: int, autocast: bool,
              channels_last: bool) -> tuple[float, float, float]:
    torch.manual_seed(0)
    model = build_model(model_config_from_preset("cpu-tiny", **overrides)).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, cpu = [], []
    for i in range(repeats + 1):
        t = time.perf_counter()
        c = time.process_time()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext()
        with ctx:
            losses = model.losses(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        if i:  # the first step pays one-off initialisation
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return min(times) * 1e3, statistics.median(times) * 1e3, min(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    parser.add_argument("--channels-last", action="store_true", help="also time channels_last")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, targets = batch(args.size, args.batch)
    objects = sum(len(t["labels"]) for t in targets)
    print(f"batch {args.batch} × {args.size}px, {objects} objects, threads "
          f"{torch.get_num_threads()}")
    for name, overrides in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        variants = [("fp32", False, False)]
        if args.bf16:
            variants.append(("bf16-autocast", True, False))
        if args.channels_last:
            variants.append(("channels_last", False, True))
        for label, ac, cl in variants:
            best, median, cpu = time_step(overrides, images, targets, args.repeats, ac, cl)
            print(f"{name:26s} {label:14s} wall min {best:7.0f} ms  median {median:7.0f} ms  "
                  f"cpu {cpu:7.0f} ms", flush=True)


if __name__ == "__main__":
    main()
