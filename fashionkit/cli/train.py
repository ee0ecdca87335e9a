"""``fashionkit train``: run a recipe on Fashionpedia-format data."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from fashionkit.errors import EXIT_INVALID_INPUT


def parse_devices(text: str) -> int | str:
    """``--devices`` as Lightning takes it: a count (``-1``: all), ``auto``, or a list of
    device indices (``0,1``)."""
    value = text.strip()
    if value == "auto" or re.fullmatch(r"[0-9]+(,[0-9]+)+", value):
        return value
    if re.fullmatch(r"-1|[0-9]+", value):
        return int(value)
    raise typer.BadParameter(
        f"{text!r}: give a device count (2; -1 for all), 'auto', or device indices (0,1)",
        param_hint="--devices",
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        train_json: Path = typer.Option(..., "--train", help="Training annotations (Fashionpedia JSON)."),
        images: Path = typer.Option(..., "--images", help="Folder the training images' file_name is relative to."),
        out: Path = typer.Option(..., "--out", help="Run folder (metrics.csv, loss_curves.png, checkpoints)."),
        val_json: Path | None = typer.Option(None, "--val", help="Validation annotations."),
        val_images: Path | None = typer.Option(None, "--val-images", help="Validation images folder (default: --images)."),
        recipe: str = typer.Option("cpu-tiny", "--recipe", "-r",
                                   help="paper | fashionpedia-r50-3x | fashionpedia-r101-3x | finetune | cpu-tiny, or a recipe YAML file."),
        epochs: int | None = typer.Option(None, "--epochs", help="Override the recipe's epoch count."),
        max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop after this wall time (a checkpoint is written)."),
        weights: Path | None = typer.Option(None, "--weights", help="Start from local weights: our checkpoint (a trained or converted model; the finetune recipe takes its architecture and input transform), a torchvision COCO Mask R-CNN or ImageNet backbone file."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
        devices: str = typer.Option("1", "--devices", help="Devices per node: a number (-1: all), 'auto', or indices like 0,1."),
        num_nodes: int = typer.Option(1, "--num-nodes", help="Nodes for multi-node DDP."),
        accelerator: str = typer.Option("auto", "--accelerator", help="cpu | gpu | auto."),
        strategy: str = typer.Option("auto", "--strategy", help="Lightning strategy (auto picks DDP for >1 device)."),
        no_eval: bool = typer.Option(False, "--no-eval", help="Skip AP evaluation at validation (losses only)."),
        set_: list[str] = typer.Option([], "--set", help="Recipe override KEY=VALUE, e.g. --set optim.lr=0.01 --set data.image_size=512."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    ) -> None:
        """Train an Attribute-Mask R-CNN; writes metrics.csv (Table 4), loss_curves.png (Fig. 10),
        config.yaml, checkpoints and model.pt into --out."""
        from fashionkit.engine import RunFolderError, apply_overrides, get_recipe, load_recipe
        from fashionkit.engine import train as run_training

        try:
            base = load_recipe(recipe) if recipe.endswith((".yaml", ".yml")) else get_recipe(recipe)
            chosen = apply_overrides(base, set_) if set_ else base
        except (KeyError, ValueError) as err:
            raise typer.BadParameter(str(err).strip("'\""), param_hint="--recipe/--set") from None
        if chosen.model_from_weights and weights is None and not resume:
            raise typer.BadParameter(
                f"recipe {chosen.name!r} continues a checkpoint: give it with --weights "
                "MODEL.pt", param_hint="--weights")
        n_devices = parse_devices(devices)
        try:
            result = run_training(
                chosen,
                train_json,
                val_json,
                images,
                out,
                val_images_dir=val_images,
                epochs=epochs,
                max_minutes=max_minutes,
                weights=weights,
                resume=resume,
                devices=n_devices,
                num_nodes=num_nodes,
                accelerator=accelerator,
                strategy=strategy,
                evaluate=not no_eval,
                progress=progress,
            )
        except RunFolderError as err:
            typer.secho(f"error: {err}", fg="red", err=True)
            raise typer.Exit(EXIT_INVALID_INPUT) from None
        typer.echo(f"run folder: {result.run_dir}  model: {result.model_path}  "
                   f"epochs: {result.epochs_completed}  time: {result.seconds:.0f} s")
