"""``fashionkit detect``: run a trained model on photos (or on the images an annotation file
lists) and write results and pictures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

if TYPE_CHECKING:
    from fashionkit.inference.predictor import Backend

_HELP_OUT = ("Output folder: results.json (Fashionpedia result format), images.json (ids, "
             "file names and sizes, as an annotation file without annotations), "
             "predictions.json (items with names, attributes, part links), failures.json, and "
             "with --visuals visuals/NAME_overlay.png (Fig. 8), NAME_supercategories.png "
             "(Fig. 9), NAME_items/*.png (Fig. 7 cut-outs).")


def register(app: typer.Typer) -> None:
    @app.command()
    def detect(
        paths: list[str] = typer.Argument(None, help="Image files, folders, glob patterns."),
        weights: Path = typer.Option(
            ..., "--weights",
            help="Checkpoint (a run's model.pt) or exported model (.onnx, OpenVINO .xml)."),
        out: Path = typer.Option(..., "--out", help=_HELP_OUT),
        dataset: Path | None = typer.Option(
            None, "--dataset", help="Annotation file whose images to run on (with --images)."),
        images: Path | None = typer.Option(
            None, "--images", help="Folder the --dataset file names are relative to."),
        backend: str | None = typer.Option(
            None, help="eager (fp32), bf16, fp16 (CUDA only), onnxruntime, openvino or "
                       "openvino-bf16 (exported graph; a checkpoint is exported first; an "
                       "INT8 IR from `fashionkit export --int8` runs with either openvino "
                       "backend). Default: eager, or for an exported file onnxruntime "
                       "(.onnx) / openvino (.xml)."),
        device: str = typer.Option("cpu", help="cpu, cuda, cuda:1 …"),
        score_threshold: float | None = typer.Option(
            None, "--score-threshold",
            help="Keep detections scored at least this. Default 0.5 for photos; for --dataset "
                 "every detection the model returns (AP needs the low-scored ones too)."),
        batch_size: int = typer.Option(2, "--batch-size", min=1, help="Images per forward pass."),
        workers: int = typer.Option(2, "--workers", min=0,
                                    help="DataLoader processes decoding images."),
        max_pixels: int = typer.Option(
            100_000_000, "--max-pixels", min=1,
            help="Refuse larger images (decompression-bomb guard)."),
        visuals: bool | None = typer.Option(
            None, "--visuals/--no-visuals",
            help="Draw the Fig. 7/8/9 pictures. Default: on for photos, off with --dataset."),
        max_attributes: int = typer.Option(2, "--max-attributes", min=0,
                                           help="Attributes named per item in the overlay."),
        image_size: int | None = typer.Option(
            None, "--image-size", metavar="S",
            help="Run at S×S inputs instead of the size the checkpoint's recipe says (e.g. 640 "
                 "for a 1024² model, as the official Fashionpedia inference does): a multiple "
                 "of the model's size divisor (32; 128 for the official architecture)."),
        shard: str | None = typer.Option(
            None, "--shard", metavar="K/N",
            help="Run shard K of N (0-based) into OUT/shards/; merge with `fashionkit "
                 "detect-merge --out OUT`. Under torchrun, RANK/WORLD_SIZE set it."),
    ) -> None:
        """Detect fashion items in photos with a trained model.

        PATHS are image files, folders (searched recursively) and glob patterns
        ("photos/**/*.jpg"); the images get ids 1, 2, … in that order. With --dataset ANN.json
        --images DIR, the images ANN.json lists are used, with its image ids, so that
        results.json evaluates directly with `fashionkit evaluate --gt ANN.json`.

        Photos that cannot be read (corrupted, not an image, too large) are listed and
        skipped, and the exit code is 1.

        Many processes, GPUs or nodes: run shards (--shard K/N, or under torchrun, e.g.
        `torchrun --nproc-per-node 8 -m fashionkit.cli detect --device cuda ...`), then
        `fashionkit detect-merge --out OUT`.
        """
        from rich.console import Console
        from rich.markup import escape

        from fashionkit.errors import EXIT_PARTIAL_FAILURE, format_problems
        from fashionkit.inference.detect_job import DetectJob, run_detect
        from fashionkit.inference.photos_dataset import ImageSizeError

        console = Console(stderr=True)
        if dataset is not None and images is None:
            raise typer.BadParameter("--dataset needs --images DIR", param_hint="--images")
        if dataset is None and images is not None:
            raise typer.BadParameter("--images goes with --dataset", param_hint="--dataset")
        if dataset is not None and paths:
            raise typer.BadParameter("give PATHS or --dataset, not both", param_hint="PATHS")
        if dataset is None and not paths:
            raise typer.BadParameter("give image PATHS, or --dataset ANN.json --images DIR",
                                     param_hint="PATHS")
        shard_of = _shard(shard)
        if shard_of is not None and device == "cuda" and "LOCAL_RANK" in os.environ:
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # one GPU per torchrun process
        job = DetectJob(
            weights=weights, out_dir=out, paths=list(paths or []), dataset=dataset,
            images_dir=images, backend=_backend(backend), device=device,
            score_threshold=(score_threshold if score_threshold is not None
                             else (0.0 if dataset is not None else 0.5)),
            batch_size=batch_size, num_workers=workers, max_pixels=max_pixels,
            visuals=visuals if visuals is not None else dataset is None,
            max_attributes=max_attributes, shard=shard_of, image_size=image_size,
        )
        try:
            summary = run_detect(job, progress=True, console=console)
        except ImageSizeError as err:
            raise typer.BadParameter(str(err), param_hint="--image-size") from None
        console.print(f"{summary.images_done} image(s), {summary.detections} detection(s) → "
                      f"{escape(str(summary.results_path))}")
        if summary.failures:
            console.print(f"[bold red]{len(summary.failures)} image(s) could not be read[/] "
                          f"(listed in {escape(str(out / 'failures.json'))}):")
            for line in format_problems(summary.failures):
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_PARTIAL_FAILURE)

    @app.command("detect-merge")
    def detect_merge(
        out: Path = typer.Option(..., "--out", help="The OUT of the sharded detect runs."),
    ) -> None:
        """Merge the shards of a sharded `fashionkit detect` into OUT/results.json,
        images.json, predictions.json and failures.json (sorted by image id)."""
        from rich.console import Console
        from rich.markup import escape

        from fashionkit.inference.detect_job import merge_shards

        summary = merge_shards(out)
        Console(stderr=True).print(
            f"merged: {summary.images_done} image(s), {summary.detections} detection(s), "
            f"{len(summary.failures)} failure(s) → {escape(str(summary.results_path))}")


def _backend(text: str | None) -> Backend | None:
    from fashionkit.inference.predictor import BACKENDS

    if text is None:
        return None
    if text not in BACKENDS:
        raise typer.BadParameter(f"choose one of {', '.join(BACKENDS)}", param_hint="--backend")
    return cast("Backend", text)


def _shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` → ``(K, N)``; without it, torchrun's ``RANK``/``WORLD_SIZE`` when N > 1."""
    if text is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and "RANK" in os.environ:
            return int(os.environ["RANK"]), world
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise typer.BadParameter("use K/N, e.g. 0/4", param_hint="--shard") from None
    if not 0 <= k < n:
        raise typer.BadParameter(f"need 0 <= K < N, got {text}", param_hint="--shard")
    return k, n
