"""Exported models: the network as an ONNX graph or an OpenVINO IR, run by ONNX Runtime or
OpenVINO, post-processed by the same Python as the eager model.

::

    export_model("runs/r1/model.pt", "model.onnx")                    # or format="openvino"
    predictor = Predictor("model.onnx", backend="openvino-bf16")       # or "onnxruntime"

**What is in the graph.** One photo's tensor after the recipe's input transform (``3×H×W``
float in [0, 1]; H, W dynamic) in; the model's RoI-level predictions out, i.e.
:class:`~fashionkit.modeling.roi_heads.RoIPredictions`: ``boxes`` N×4 XYXY float (the model
input's pixels), ``labels`` N int64 (contiguous training labels), ``scores`` N, ``mask_probs``
N×1×28×28 (the detected class's mask probabilities in its box) and ``attribute_scores`` N×A
(sigmoid); also, not read, :data:`POOLED_OUTPUTS` (the boxes each RoI head pooled and their
FPN levels, see :class:`~fashionkit.modeling.roi_align.FPNRoIAlign`). In between:
normalisation and padding, backbone and FPN, the RPN (anchors, top-k, NMS), RoIAlign, box
head, box decoding and per-class NMS (one ``NonMaxSuppression`` with the classes as its
batch, :func:`~fashionkit.modeling.nms.classwise_nms`), top ``box_detections_per_img``, the
mask head and the attribute head. Every convolution and matmul is in the graph, so the runtime
optimises all of the model's work (and runs it without torch), and the graph's outputs are
exactly the tensors that :class:`~fashionkit.inference.Predictor` turns into items for the
eager backends.

**What stays in Python**, shared with eager (``Predictor._to_prediction``): photo decoding and
the recipe's resize-and-pad (in DataLoader workers), the resize of models that resize by
themselves (``config.resize``: the same torch code as eager, so the exported graph's input
size is the model's), the score and attribute thresholds (per call, not per export), mapping
boxes back to the photo and pasting the masks at the photo's resolution (photo sizes differ
from the model's and the paste is per mask, straight into RLE), Fashionpedia ids and names,
and part links. So an exported model gives the same kind of items with the same ids as the
checkpoint.

The export carries a ``fashionkit`` metadata entry (ONNX ``metadata_props``; OpenVINO
``rt_info``): format and version, the model config, the ontology version and the training
recipe (its input transform), checked on load like a checkpoint's
(:func:`~fashionkit.modeling.checked_config`).

The runtimes (onnx, onnxruntime, openvino, nncf) are the optional ``[export]`` extra
(:data:`EXPORT_EXTRA`): each is imported where it is used, through :func:`import_runtime`, so
that importing :mod:`fashionkit.inference` and the torch backends need none of them, and a
missing one is an :class:`ExportRuntimeMissingError` saying how to install it.

Tracing uses torch's TorchScript-based ONNX exporter (``dynamo=False``), with which
torchvision exports and tests its detection models (``test/test_onnx.py``): its data-dependent
shapes (NMS, top-k) trace there. OpenVINO's IR is converted from that ONNX graph.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from fashionkit.data.input_recipe import DataConfig, data_config_of
from fashionkit.errors import FashionkitError, InvalidDataError
from fashionkit.inference.images import DEFAULT_MAX_PIXELS
from fashionkit.inference.photos_dataset import (
    SQUARE_TRANSFORMS,
    FailedPhoto,
    ImageSizeError,
    PhotoDataset,
    input_transform_for,
    recipe_at_image_size,
)
from fashionkit.modeling import model_from_checkpoint, read_checkpoint
from fashionkit.modeling.checkpoint import ModelFileFormat
from fashionkit.modeling.model import InputTransform
from fashionkit.modeling.roi_align import FPNRoIAlign
from fashionkit.modeling.roi_heads import RoIPredictions

__all__ = [
    "EXPORTED_MODEL",
    "EXPORT_FORMAT",
    "EXPORT_FORMATS",
    "EXPORT_EXTRA",
    "ExportRuntimeMissingError",
    "ExportedModel",
    "RawPredictionGraph",
    "pad_to_square",
    "export_model",
    "import_runtime",
    "read_export_metadata",
]

#: The exported model's metadata header, the checkpoint's header with its own format name.
EXPORTED_MODEL = ModelFileFormat("fashionkit-export", 1, "exported model")
EXPORT_FORMAT = EXPORTED_MODEL.name
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "openvino")
OPSET = 17  # ONNX RoiAlign with torchvision's pixel convention needs ≥ 16
OUTPUTS: tuple[str, ...] = ("boxes", "labels", "scores", "mask_probs", "attribute_scores")
# Also graph outputs, not read: the boxes each RoI head pooled and their FPN levels (R×5), which
# keeps that arithmetic in fp32 under OpenVINO's bf16 (see FPNRoIAlign).
POOLED_OUTPUTS: tuple[str, ...] = ("box_rois", "mask_rois")
_METADATA_KEY = "fashionkit"

Runtime = Literal["onnxruntime", "openvino"]

#: How a user installs the optional export runtimes (onnx, onnxruntime, openvino, nncf).
EXPORT_EXTRA = "pip install 'fashionkit[export]'"


class ExportRuntimeMissingError(FashionkitError, ImportError):
    """An export runtime (onnx, onnxruntime, openvino or nncf) is needed but not installed.
    A :class:`~fashionkit.errors.FashionkitError`, so the CLI ends with this message (exit 2)."""


def import_runtime(name: str, purpose: str) -> ModuleType:
    """Import the optional export runtime ``name`` (``"onnx"``, ``"onnxruntime"``,
    ``"openvino"``, ``"nncf"``: the ``[export]`` extra) when ``purpose`` needs it, or raise
    :class:`ExportRuntimeMissingError` saying how to install it. These are imported only where
    used, so that the eager and bf16 backends work without them."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ExportRuntimeMissingError(
            f"{purpose} needs {name}, which is not installed: install the export runtimes with "
            f"{EXPORT_EXTRA}") from err



def _is_official(model_or_config) -> bool:
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "architecture", "torchvision") == "official"


class RawPredictionGraph(nn.Module):
    """The traced function: ``image`` ``3×H×W`` float in [0, 1] (already resized when the
    model resizes by itself) → the five :data:`OUTPUTS` of that image (see the module
    docstring), and for torchvision-based models the :data:`POOLED_OUTPUTS`. The model's own
    resize is switched off in here: it runs before the graph.

    The official architecture (:class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN`)
    is traced on its padded square input (see :func:`pad_to_square`): its padding, anchors
    and proposal counts follow Python-side sizes, which a trace freezes, so its graph runs at
    the size it was traced at only (``fixed_size`` in the metadata)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.official = _is_official(model)
        if not self.official:
            model.transform.resize_images = False  # type: ignore[union-attr]

    @property
    def output_names(self) -> list[str]:
        return [*OUTPUTS] if self.official else [*OUTPUTS, *POOLED_OUTPUTS]

    def forward(self, image: torch.Tensor):
        _, [r] = self.model.raw_predictions([image])  # type: ignore[operator]
        outputs = (r.boxes, r.labels, r.scores, r.mask_probs, r.attribute_scores)
        if self.official:
            return outputs
        pooled = [self.model.get_submodule(f"roi_heads.{name}")
                  for name in ("box_roi_pool", "mask_roi_pool")]
        assert all(isinstance(p, FPNRoIAlign) for p in pooled)
        return (*outputs, *(p.pooled for p in pooled))  # type: ignore[union-attr]


def pad_to_square(image: torch.Tensor, size: tuple[int, int], config) -> torch.Tensor:
    """An official-architecture input (``3×h×w`` in [0, 1], h, w ≤ the traced size) padded
    bottom/right to ``size`` with the normalisation mean: the model normalises, then pads
    with zeros, and the mean is what normalises to exactly zero, so the graph sees the input
    the eager model builds (for the recipe's S: the model pads to S×S too)."""
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if h > size[0] or w > size[1]:
        raise ImageSizeError(f"an input of {h}×{w} does not fit the exported graph's "
                             f"{size[0]}×{size[1]}")
    mean = torch.tensor(config.image_mean, dtype=image.dtype).view(3, 1, 1)
    out = mean.expand(3, *size).clone()
    out[:, :h, :w] = image
    return out


def _source_model(source, recipe: Any):
    """``(model, recipe dict or None, source name)`` from a checkpoint path or a model. A
    model passed in is deep-copied (its transform is changed for tracing)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = read_checkpoint(path)
        model = model_from_checkpoint(data, path)
        return model, data.get("recipe") if recipe is None else recipe, path.name
    return copy.deepcopy(source).eval(), recipe, type(source).__name__


def _recipe_dict(recipe: Any) -> dict | None:
    """A recipe as builtins: a checkpoint's recipe dict as it is, a ``Recipe`` or a
    ``DataConfig`` through ``to_dict`` / its fields (only the input pipeline matters here)."""
    if recipe is None or isinstance(recipe, dict):
        return recipe
    if isinstance(recipe, DataConfig):
        return {"data": recipe.to_dict()}
    return recipe.to_dict()


def _example_size(model, recipe: dict | None) -> tuple[int, int]:
    data = (recipe or {}).get("data") or {}
    if data.get("transform", "paper") in SQUARE_TRANSFORMS and "image_size" in data:
        return int(data["image_size"]), int(data["image_size"])
    return int(model.config.max_size), int(model.config.max_size)


def _fixed_input_size(model) -> bool:
    """Whether the traced graph of ``model`` runs only at the input size it was traced at.
    torchvision's detection models trace with dynamic sizes (its transform pads with tensor
    arithmetic, anchors follow the feature maps' shapes: the parity tests run other sizes);
    the official architecture does not (:class:`RawPredictionGraph`)."""
    return _is_official(model)


def export_model(source: str | os.PathLike | nn.Module, out: str | os.PathLike,
                 format: str = "onnx", *, recipe: Any = None,
                 int8_calibration: Sequence[Any] | None = None,
                 image_size: int | None = None) -> Path:
    """Export a checkpoint (or an :class:`~fashionkit.modeling.AttributeMaskRCNN`, with its
    ``recipe`` if the default input transform does not fit) to ``out``: ``format="onnx"``
    writes one ``.onnx`` file; ``"openvino"`` an IR, ``out`` ``.xml`` and its ``.bin`` beside
    it. Returns ``out``.

    ``int8_calibration`` (``"openvino"`` only): photos (paths, PIL images or arrays, as the
    :class:`~fashionkit.inference.Predictor` takes) on which NNCF's post-training
    quantisation measures activation ranges; the IR then runs its convolutions and
    fully-connected layers in INT8 (VNNI/AMX), the rest in the session's precision. The
    photos should look like the ones the model will see (a few hundred from the validation
    set); a photo that cannot be read is an error naming it.

    ``image_size``: export for this square input size instead of the recipe's (see
    :func:`~fashionkit.inference.photos_dataset.recipe_at_image_size`); the graph is traced
    at it and its recipe says it. The metadata's ``input`` entry records the size traced at
    and whether the graph runs at that size only (``fixed_size``, see
    :func:`_fixed_input_size`)."""
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {list(EXPORT_FORMATS)}")
    out = Path(out)
    suffix = {"onnx": ".onnx", "openvino": ".xml"}[format]
    if out.suffix != suffix:
        raise ValueError(f"--format {format} writes a {suffix} file, not {out.name!r}")
    if int8_calibration is not None and format != "openvino":
        raise ValueError("INT8 quantisation writes an OpenVINO IR: use --format openvino")
    if int8_calibration is not None and not len(int8_calibration):
        raise ValueError("INT8 quantisation needs at least one calibration photo")

    import_runtime("onnx", "fashionkit export")  # checked before the trace, which takes a while
    ov = import_runtime("openvino", "--format openvino") if format == "openvino" else None
    if int8_calibration is not None:
        import_runtime("nncf", "INT8 quantisation")
    model, recipe_dict, name = _source_model(source, recipe)
    recipe_dict = _recipe_dict(recipe_dict)
    if image_size is not None:
        recipe_dict = {**(recipe_dict or {}), "data": recipe_at_image_size(
            model.config, data_config_of(recipe_dict), image_size).to_dict()}
    traced = _example_size(model, recipe_dict)
    metadata = {
        **EXPORTED_MODEL.header(model.config),
        "recipe": recipe_dict,
        "source": name,
        "outputs": list(OUTPUTS),
        "input": {"traced_size": list(traced), "fixed_size": _fixed_input_size(model)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if ov is None:
        _export_onnx(model, recipe_dict, out, metadata)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        _export_onnx(model, recipe_dict, onnx_path, metadata)
        ov_model = ov.convert_model(onnx_path)
    if int8_calibration is not None:
        ov_model = _quantize_int8(ov_model, model.config, recipe_dict, int8_calibration,
                                  traced if _fixed_input_size(model) else None)
        metadata["quantization"] = {"method": "nncf post-training int8",
                                    "calibration_images": len(int8_calibration)}
    ov_model.set_rt_info(json.dumps(metadata), _METADATA_KEY)
    # fp32 weights: a bf16 or fp16 inference precision is the runtime's choice, per session.
    ov.save_model(ov_model, out, compress_to_fp16=False)
    return out


class CalibrationInputs:
    """The graph's inputs for calibration ``photos``, decoded and transformed as the
    Predictor does (the recipe's input transform, then the model's own resize), as NNCF's
    dataset items (``{"image": 3×H×W float32}``). Decoded again on each pass: NNCF passes
    more than once, and a few hundred 1024² inputs held at once would take gigabytes.
    Construction decodes each photo once, so that every photo that cannot be read is
    reported up front (:class:`InvalidDataError` naming each)."""

    def __init__(self, config, recipe: dict | None, photos: Sequence[Any],
                 pad_to: tuple[int, int] | None = None):
        self._config = config
        self._pad_to = pad_to  # a fixed-size graph's input size (see pad_to_square)
        self._resize = InputTransform(config) if config.resize else None
        self._dataset = PhotoDataset(photos, input_transform_for(config, data_config_of(recipe)),
                                     max_pixels=DEFAULT_MAX_PIXELS)
        problems = [sample.error for sample in map(self._dataset.__getitem__,
                                                   range(len(self._dataset)))
                    if isinstance(sample, FailedPhoto)]
        if problems:
            raise InvalidDataError(problems)

    def __len__(self) -> int:
        return len(self._dataset)

    def __iter__(self):
        for k in range(len(self._dataset)):
            image = self._dataset[k].image  # type: ignore[union-attr]  # checked on construction
            if self._resize is not None:
                image, _ = self._resize.resize(image)
            if self._pad_to is not None:
                image = pad_to_square(image, self._pad_to, self._config)
            yield {"image": np.ascontiguousarray(image.numpy())}


def _quantize_int8(ov_model, config, recipe: dict | None, photos: Sequence[Any],
                   pad_to: tuple[int, int] | None = None):
    """NNCF's post-training INT8 quantisation of ``ov_model`` calibrated on ``photos``."""
    nncf = import_runtime("nncf", "INT8 quantisation")
    inputs = CalibrationInputs(config, recipe, photos, pad_to)
    return nncf.quantize(ov_model, nncf.Dataset(inputs), subset_size=len(inputs))


def _export_onnx(model, recipe: dict | None, out: Path, metadata: dict) -> None:
    onnx = import_runtime("onnx", "fashionkit export")

    graph = RawPredictionGraph(model).eval()
    example = torch.rand(3, *_example_size(model, recipe), generator=torch.Generator().manual_seed(0))
    dynamic = {**({} if graph.official else {"image": {1: "height", 2: "width"}}),
               **{k: {0: "detections"} for k in OUTPUTS},
               **({} if graph.official else {"box_rois": {0: "proposals"},
                                             "mask_rois": {0: "detections"}})}
    with warnings.catch_warnings():
        # The tracer's notes on Python values frozen into the graph (image sizes in asserts,
        # per-level anchor counts) and the TorchScript exporter's deprecation notice: the
        # graph is checked against eager by the parity tests, at other image sizes too.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), str(out), dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=graph.output_names,
                          dynamic_axes=dynamic, do_constant_folding=True)
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = _METADATA_KEY, json.dumps(metadata)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out)


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``fashionkit`` metadata of an exported ``.onnx`` or OpenVINO ``.xml`` file, checked
    for format, config and ontology version (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataError.in_file(path, "exported model not found")
    try:
        if path.suffix == ".onnx":
            onnx = import_runtime("onnx", f"reading {path.name}")
            proto = onnx.load(str(path), load_external_data=False)
            raw = {p.key: p.value for p in proto.metadata_props}.get(_METADATA_KEY)
        elif path.suffix == ".xml":
            ov = import_runtime("openvino", f"reading {path.name}")
            ov_model = ov.Core().read_model(path)
            raw = (ov_model.get_rt_info(_METADATA_KEY).astype(str)
                   if ov_model.has_rt_info(_METADATA_KEY) else None)
        else:
            raise InvalidDataError.in_file(path, "not an exported model (expected .onnx or OpenVINO .xml)")
    except (InvalidDataError, ExportRuntimeMissingError):
        raise
    except Exception as err:  # the runtimes' parsers raise their own types
        raise InvalidDataError.in_file(path, f"not a readable exported model ({type(err).__name__}: "
                           f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"
                     ) from None
    if raw is None:
        raise InvalidDataError.in_file(path, "no fashionkit metadata: export it with `fashionkit export`")
    metadata = json.loads(raw)
    EXPORTED_MODEL.check(metadata, path)
    return metadata


class ExportedModel:
    """An exported model loaded into a runtime, called like the eager model's RoI stage.

    ``runtime``: ``"onnxruntime"`` (fp32) or ``"openvino"`` (reads ``.onnx`` or ``.xml``);
    ``precision``: ``"f32"``, or ``"bf16"`` (OpenVINO's inference precision hint: convolutions
    and matmuls in bfloat16 on CPUs with AVX-512-BF16 or AMX). OpenVINO's bf16 covers more of the
    model than the torch ``bf16`` backend (every fully-connected layer, the class-score layer
    too, and its outputs rounded to bf16), so its scores get a wider parity bound than the
    torch backend's, most of all for low-confidence detections. The RoI coordinates stay fp32 (see
    :class:`~fashionkit.modeling.roi_align.FPNRoIAlign`). ``threads``: intra-op threads
    (default: torch's). Attributes: ``config`` (``ModelConfig``), ``recipe`` (dict or None),
    ``metadata``."""

    def __init__(self, path: str | os.PathLike, runtime: Runtime = "onnxruntime",
                 precision: Literal["f32", "bf16"] = "f32", threads: int | None = None):
        self.path = Path(path)
        self.metadata = read_export_metadata(self.path)
        self.config = EXPORTED_MODEL.check(self.metadata, self.path)
        self.recipe = self.metadata.get("recipe")
        self.runtime = runtime
        self.precision = precision
        threads = int(threads or torch.get_num_threads())
        # The model's own resize (config.resize) runs here, in torch, as in eager.
        self._resize = InputTransform(self.config) if self.config.resize else None
        entry = self.metadata.get("input") or {}
        # A fixed-size graph (the official architecture) gets its input padded to that size.
        self._pad_to: tuple[int, int] | None = (
            (int(entry["traced_size"][0]), int(entry["traced_size"][1]))
            if entry.get("fixed_size") else None)
        if runtime == "onnxruntime":
            if precision != "f32":
                raise ValueError("the onnxruntime backend runs fp32 only; for bf16 use openvino")
            self._run = self._onnxruntime(threads)
        elif runtime == "openvino":
            self._run = self._openvino(threads, precision)
        else:
            raise ValueError(f"unknown runtime {runtime!r}; choose 'onnxruntime' or 'openvino'")

    def check_input_size(self, image_size: int) -> None:
        """Raise :class:`ImageSizeError` when this graph cannot run at the square input size
        ``image_size``: a graph traced for one fixed size runs only at it."""
        entry = self.metadata.get("input") or {}
        traced = entry.get("traced_size")
        if entry.get("fixed_size") and traced and list(traced) != [image_size, image_size]:
            raise ImageSizeError(
                f"{self.path.name} was exported for {traced[0]}×{traced[1]} inputs only: export "
                f"the checkpoint again at that size (`fashionkit export --image-size "
                f"{image_size}`), or run the checkpoint itself at it")

    def __repr__(self) -> str:
        return (f"ExportedModel({str(self.path)!r}, runtime={self.runtime!r}, "
                f"precision={self.precision!r})")

    def _onnxruntime(self, threads: int):
        ort = import_runtime("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(self.path), options,
                                       providers=["CPUExecutionProvider"])
        return lambda image: session.run(list(OUTPUTS), {"image": image})

    def _openvino(self, threads: int, precision: str):
        ov = import_runtime("openvino", "the openvino backends")
        core = ov.Core()
        if precision == "bf16" and "BF16" not in core.get_property(
                "CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ValueError("this CPU has no bfloat16 support (AVX-512-BF16 or AMX); use the "
                             "openvino backend (fp32)")
        compiled = core.compile_model(core.read_model(self.path), "CPU", {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
        })
        request = compiled.create_infer_request()
        outputs = [compiled.output(name) for name in OUTPUTS]

        def run(image):
            result = request.infer({"image": image})
            return [np.array(result[o]) for o in outputs]  # copies: the request reuses buffers
        return run

    def raw_predictions(self, images: list[torch.Tensor]):
        """``(sizes the model ran at, [RoIPredictions per image])`` for ``3×H×W`` float images
        in [0, 1], as :meth:`AttributeMaskRCNN.raw_predictions` gives for the
        eager model (one image per graph run)."""
        sizes, out = [], []
        for image in images:
            if self._resize is not None:
                image, _ = self._resize.resize(image)
            sizes.append((int(image.shape[-2]), int(image.shape[-1])))
            if self._pad_to is not None:
                image = pad_to_square(image.float().cpu(), self._pad_to, self.config)
            arrays = self._run(np.ascontiguousarray(image.float().cpu().numpy()))
            boxes, labels, scores, mask_probs, attributes = (torch.from_numpy(a) for a in arrays)
            # Where an image has no detection OpenVINO returns one row of zeros (label 0,
            # score 0) instead of none; label 0 is the background, which the model never
            # detects (its post-processing drops that column), so such rows are dropped.
            keep = labels > 0
            out.append(RoIPredictions(boxes=boxes[keep], labels=labels[keep],
                                      scores=scores[keep], mask_probs=mask_probs[keep],
                                      attribute_scores=attributes[keep]))
        return sizes, out
