"""``fashionkit export``: a checkpoint as an ONNX graph or an OpenVINO IR."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        weights: Path = typer.Option(..., "--weights", help="Checkpoint (a run's model.pt)."),
        format: str = typer.Option("onnx", "--format", help="onnx (a .onnx file) or openvino "
                                                            "(an IR: .xml and .bin)."),
        out: Path = typer.Option(..., "--out", help="The .onnx or .xml file to write."),
        int8: list[str] = typer.Option(
            [], "--int8", help="Quantise the OpenVINO IR to INT8 (NNCF post-training "
                               "quantisation), calibrated on these photos: files, folders or "
                               "globs, repeatable; a few hundred like the ones to detect on. "
                               "Faster, less exact: see the README's parity table."),
        image_size: int | None = typer.Option(
            None, "--image-size", metavar="S",
            help="Export for S×S inputs instead of the checkpoint recipe's size (see "
                 "`fashionkit detect --image-size`)."),
    ) -> None:
        """Export a trained model for ONNX Runtime or OpenVINO.

        The graph runs from the transformed photo to each detection's box, class, score,
        28×28 mask probabilities and attribute scores; it carries the model config, the
        ontology version and the input recipe, so that `fashionkit detect --weights OUT
        --backend onnxruntime|openvino|openvino-bf16` gives the same items as the
        checkpoint.
        """
        from rich.console import Console
        from rich.markup import escape

        from fashionkit.inference.export import EXPORT_FORMATS, export_model

        if format not in EXPORT_FORMATS:
            raise typer.BadParameter(f"choose one of {', '.join(EXPORT_FORMATS)}",
                                     param_hint="--format")
        calibration = None
        if int8:
            from fashionkit.errors import InvalidDataError
            from fashionkit.inference.images import expand_sources

            if format != "openvino":
                raise typer.BadParameter("INT8 quantisation writes an OpenVINO IR: use "
                                         "--format openvino", param_hint="--int8")
            calibration, problems = expand_sources(int8)
            if problems:
                raise InvalidDataError(problems)
            if not calibration:
                raise typer.BadParameter("no photos found", param_hint="--int8")
        from fashionkit.inference.photos_dataset import ImageSizeError

        try:
            path = export_model(weights, out, format, int8_calibration=calibration,
                                image_size=image_size)
        except ImageSizeError as err:
            raise typer.BadParameter(str(err), param_hint="--image-size") from None
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--out") from None
        written = [path] + ([path.with_suffix(".bin")] if format == "openvino" else [])
        Console(stderr=True).print("wrote " + ", ".join(
            f"{escape(str(p))} ({p.stat().st_size / 1e6:.1f} MB)" for p in written))
