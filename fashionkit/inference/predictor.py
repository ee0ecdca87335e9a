"""``Predictor``: a trained model applied to people's photos, with the model's own input
pipeline, results in the photos' own pixels and Fashionpedia names.

::

    predictor = Predictor("runs/r1/model.pt", score_threshold=0.5)
    for prediction in predictor(["me.jpg", "closet/"]):   # paths, PIL images, H×W×3 arrays
        for item in prediction.items:
            print(item.name, item.score, [a.name for a in item.attributes], item.parent)

The input transform is the one the checkpoint was trained with: the recipe a training run
stores in ``model.pt`` (``recipe.data``: the paper's resize-longest-side-and-pad to S,
keep-ratio, or the jitter recipes' evaluation resize), built with
``DataConfig.transforms(train=False)``, exactly as validation during training. Detections are
mapped back to the photo's pixels by :mod:`fashionkit.modeling.photo_pixels`, as
``AttributeMaskRCNN.predict(original_sizes=..., scales=...)`` and training-time validation map
them (boxes divided by the scale, mask probabilities pasted at the photo's resolution), one
mask at a time straight into RLE.

Backends (each tested for parity with eager fp32: detections matched, mask IoU, scores):

- ``eager``: the torch model in fp32 (CPU or GPU).
- ``bf16``: the convolution-heavy parts (backbone, FPN, RPN head, box and mask heads) under
  ``torch.autocast`` to bfloat16 with channels-last weights, the score-producing layers and
  all post-processing in fp32 (see :mod:`fashionkit.inference.backends`). CPUs with
  AVX-512-BF16 or AMX, and GPUs.
- ``fp16``: the same with float16, CUDA only.
- ``onnxruntime``, ``openvino``, ``openvino-bf16``: the model exported to a graph
  (:mod:`fashionkit.inference.export`) run by ONNX Runtime (fp32) or OpenVINO (fp32, or with
  OpenVINO's bf16 inference precision, with every layer in bf16: its scores have a wider
  parity bound than the torch ``bf16`` backend's), CPU only. They take an exported ``.onnx`` /
  ``.xml`` file (``fashionkit export``), or a checkpoint or model, which is then exported
  first. They need the optional ``[export]`` runtimes (``pip install 'fashionkit[export]'``).

On a GPU pass ``device="cuda"`` with ``backend="bf16"`` (Ampere and newer) or ``"fp16"``:
the same autocast wrapping, with CUDA's reduced-precision kernels (``eager`` runs fp32).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from fashionkit.data.input_recipe import data_config_of
from fashionkit.errors import InvalidDataError
from fashionkit.inference.backends import prepare_model
from fashionkit.inference.export import ExportedModel, export_model
from fashionkit.inference.images import DEFAULT_MAX_PIXELS, PhotoSource
from fashionkit.inference.parts import DEFAULT_PART_OVERLAP, link_parts
from fashionkit.inference.photos_dataset import (
    FailedPhoto,
    ImageSizeError,
    PhotoDataset,
    PhotoSample,
    collate_photos,
    input_transform_for,
    recipe_at_image_size,
)
from fashionkit.inference.prediction import AttributeScore, DetectedItem, Prediction
from fashionkit.modeling import ModelConfig, model_from_checkpoint, read_checkpoint
from fashionkit.modeling.photo_pixels import boxes_to_photo, paste_masks_as_rles
from fashionkit.ontology import load_ontology

__all__ = ["BACKENDS", "ImageSizeError", "Predictor"]

Backend = Literal["eager", "bf16", "fp16", "onnxruntime", "openvino", "openvino-bf16"]
# Backends that run the torch model, and those that run an exported graph (runtime, precision).
TORCH_BACKENDS: tuple[str, ...] = ("eager", "bf16", "fp16")
EXPORTED_BACKENDS: dict[str, tuple[Literal["onnxruntime", "openvino"], Literal["f32", "bf16"]]] = {
    "onnxruntime": ("onnxruntime", "f32"),
    "openvino": ("openvino", "f32"),
    "openvino-bf16": ("openvino", "bf16"),
}
BACKENDS: tuple[str, ...] = TORCH_BACKENDS + tuple(EXPORTED_BACKENDS)
_EXPORTED_SUFFIXES = (".onnx", ".xml")


class Predictor:
    """Detect Fashionpedia items in photos.

    ``checkpoint_or_model``: a fashionkit checkpoint path (``RUN/model.pt``; its stored
    recipe gives the input transform), an exported model (``.onnx`` or OpenVINO ``.xml`` from
    ``fashionkit export``; its metadata gives config and recipe) or an
    :class:`~fashionkit.modeling.AttributeMaskRCNN` (then pass ``recipe`` — a ``Recipe``, its
    ``DataConfig`` or a recipe dict — unless the default of :func:`input_transform_for` fits).
    ``backend``: one of :data:`BACKENDS` (see the module docstring); default ``eager``, or for
    an exported file ``onnxruntime`` (``.onnx``) / ``openvino`` (``.xml``). ``device``:
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` … ``score_threshold``: detections scored below it are
    dropped (the model already drops those below its ``box_score_thresh``, 0.05).
    ``attribute_threshold``: attributes listed per item (default: the model config's, 0.05).
    ``batch_size``: photos per forward pass. ``num_workers``: DataLoader processes decoding
    photos. ``max_pixels``: the decompression-bomb limit. ``part_overlap``: see
    :func:`~fashionkit.inference.parts.link_parts`. ``image_size``: run at this square input
    size instead of the recipe's (:func:`~fashionkit.inference.photos_dataset.recipe_at_image_size`
    says which models and sizes allow it; :class:`ImageSizeError` otherwise).
    """

    def __init__(self, checkpoint_or_model: str | os.PathLike | torch.nn.Module, *,
                 backend: Backend | None = None, device: str | torch.device = "cpu",
                 score_threshold: float = 0.5, attribute_threshold: float | None = None,
                 batch_size: int = 2, num_workers: int = 0,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, recipe: Any = None,
                 part_overlap: float = DEFAULT_PART_OVERLAP, image_size: int | None = None):
        exported_file = (isinstance(checkpoint_or_model, (str, os.PathLike))
                         and Path(checkpoint_or_model).suffix in _EXPORTED_SUFFIXES)
        if backend is None:
            backend = ("eager" if not exported_file else
                       "onnxruntime" if Path(checkpoint_or_model).suffix == ".onnx"  # type: ignore[arg-type]
                       else "openvino")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
        if batch_size < 1 or num_workers < 0:
            raise ValueError("batch_size must be ≥ 1 and num_workers ≥ 0")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.device = torch.device(device)
        if backend == "fp16" and self.device.type != "cuda":
            raise ValueError("backend 'fp16' needs a CUDA device (on CPU use 'bf16')")
        if backend in EXPORTED_BACKENDS and self.device.type != "cpu":
            raise ValueError(f"backend {backend!r} runs on the CPU; on {self.device} use "
                             "'bf16' or 'fp16'")
        self.backend = backend
        self.source = (str(checkpoint_or_model) if isinstance(checkpoint_or_model,
                                                                 (str, os.PathLike))
                       else type(checkpoint_or_model).__name__)
        self.model: torch.nn.Module | ExportedModel
        if exported_file:
            if backend not in EXPORTED_BACKENDS:
                raise ValueError(f"{checkpoint_or_model} is an exported model: run it with "
                                 f"backend {' or '.join(repr(b) for b in EXPORTED_BACKENDS)}")
            self.model, recipe = self._exported_file(Path(checkpoint_or_model), backend,  # type: ignore[arg-type]
                                                     recipe, image_size)
        else:
            if isinstance(checkpoint_or_model, (str, os.PathLike)):
                path = Path(checkpoint_or_model)
                data = read_checkpoint(path)
                model = model_from_checkpoint(data, path)
                recipe = data.get("recipe") if recipe is None else recipe
            else:
                model = checkpoint_or_model
            if image_size is not None:
                recipe = recipe_at_image_size(model.config, data_config_of(recipe), image_size)
            if backend in EXPORTED_BACKENDS:
                self.model = self._export(model, backend, recipe)
            else:
                self.model = prepare_model(model, backend, self.device,
                                           copy_model=model is checkpoint_or_model)
        self.config: ModelConfig = self.model.config  # type: ignore[assignment]
        self.data_config = data_config_of(recipe)
        self.image_size = image_size
        self.transform = input_transform_for(self.config, self.data_config)
        self.score_threshold = float(score_threshold)
        self.attribute_threshold = (self.config.attribute_score_threshold
                                    if attribute_threshold is None else float(attribute_threshold))
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.max_pixels = max_pixels
        self.part_overlap = float(part_overlap)
        self.ontology = load_ontology()

    def _exported_file(self, path: Path, backend: str, recipe: Any, image_size: int | None):
        """The :class:`ExportedModel` of an exported file for ``backend``, and the recipe to
        use (its own unless ``recipe`` is given; at ``image_size`` when given)."""
        runtime, precision = EXPORTED_BACKENDS[backend]
        if runtime == "onnxruntime" and path.suffix != ".onnx":
            raise ValueError(f"backend 'onnxruntime' runs .onnx files, not {path.name!r} "
                             "(an OpenVINO IR: use 'openvino' or 'openvino-bf16')")
        model = ExportedModel(path, runtime, precision)
        recipe = model.recipe if recipe is None else recipe
        if image_size is not None:
            recipe = recipe_at_image_size(model.config, data_config_of(recipe), image_size)
            model.check_input_size(image_size)
        return model, recipe

    def _export(self, model: torch.nn.Module, backend: str, recipe: Any) -> ExportedModel:
        """A model exported for ``backend`` at its recipe's input size, to a temporary
        ``.onnx`` kept while the Predictor lives."""
        runtime, precision = EXPORTED_BACKENDS[backend]
        self._export_dir = tempfile.TemporaryDirectory(prefix="fashionkit-export-")
        path = export_model(model, Path(self._export_dir.name) / "model.onnx", recipe=recipe)
        return ExportedModel(path, runtime, precision)

    def __repr__(self) -> str:
        return (f"Predictor({self.source!r}, backend={self.backend!r}, device='{self.device}', "
                f"transform={self.transform!r}, score_threshold={self.score_threshold})")

    # -- public calls ----------------------------------------------------------------------
    def __call__(self, images: PhotoSource | Sequence[PhotoSource], *,
                 on_error: Literal["raise", "skip"] = "raise") -> list[Prediction]:
        """One :class:`Prediction` per input, in input order (a single input gives a list of
        one). ``on_error="raise"``: a photo that cannot be read raises
        :class:`InvalidDataError` naming it; ``"skip"``: its prediction carries ``error``
        and no items, and the other photos are processed."""
        if isinstance(images, (str, os.PathLike, np.ndarray)) or not isinstance(images, Sequence):
            images = [images]
        return list(self.stream(images, on_error=on_error))

    def stream(self, sources: Sequence[PhotoSource], *,
               on_error: Literal["raise", "skip"] = "raise", names: Sequence[str] | None = None,
               expected_sizes: Sequence[tuple[int, int]] | None = None,
               keep_photos: bool = True) -> Iterator[Prediction]:
        """Predictions one by one, in input order, decoding ahead in ``num_workers``
        processes and running the model ``batch_size`` photos at a time.

        ``names``: the name of each photo in results and messages (default: its path).
        ``expected_sizes``: ``(H, W)`` per photo from an annotation file (see ``--dataset``
        in ``fashionkit detect``). ``keep_photos=False`` drops the decoded pixels from each
        prediction (less memory when nothing is drawn)."""
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        dataset = PhotoDataset(sources, self.transform, self.max_pixels, names, expected_sizes)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers, collate_fn=collate_photos)
        for batch in loader:
            good = [s for s in batch if isinstance(s, PhotoSample)]
            done = dict(zip((s.index for s in good), self._predict_samples(good), strict=True))
            for sample in batch:
                if isinstance(sample, FailedPhoto):
                    if on_error == "raise":
                        raise InvalidDataError([sample.error])
                    yield Prediction(sample.name, (0, 0), error=sample.error)
                    continue
                prediction = done[sample.index]
                if not keep_photos:
                    prediction.photo = None
                yield prediction

    # -- internals -------------------------------------------------------------------------
    def _predict_samples(self, samples: list[PhotoSample]) -> list[Prediction]:
        if not samples:
            return []
        # With channels-last weights the convolutions run channels-last whatever the input's
        # layout (the model batches the 3-D images itself), so inputs stay as they are.
        images = [s.image.to(self.device) for s in samples]
        if isinstance(self.model, ExportedModel):
            model_sizes, raw = self.model.raw_predictions(images)
        else:
            with torch.inference_mode():
                model_sizes, raw = self.model.raw_predictions(images)  # type: ignore[operator]
        return [self._to_prediction(s, r, size)
                for s, r, size in zip(samples, raw, model_sizes, strict=True)]

    def _to_prediction(self, sample: PhotoSample, r, model_size: tuple[int, int]) -> Prediction:
        """One image's raw RoI predictions → items in the photo's pixels, mapped by
        :mod:`fashionkit.modeling.photo_pixels` as ``AttributeMaskRCNN.predict`` maps them
        with ``original_sizes`` (and so as training-time validation does)."""
        photo = sample.photo
        h, w = photo.size
        keep = torch.where(r.scores.float() >= self.score_threshold)[0]
        scores = r.scores.float()[keep].cpu()
        labels = r.labels[keep].cpu()
        attribute_scores = r.attribute_scores.float()[keep].cpu()
        in_size = (int(sample.image.shape[-2]), int(sample.image.shape[-1]))
        boxes = boxes_to_photo(r.boxes[keep], model_size, in_size, (h, w), sample.scale)
        rles = paste_masks_as_rles(r.mask_probs[keep], boxes, (h, w), self.config.mask_threshold)
        boxes = boxes.cpu()
        category_ids = [self.ontology.label_to_category(int(k)) for k in labels.tolist()]
        parents = link_parts(category_ids, rles, self.part_overlap)
        items = []
        for i, category_id in enumerate(category_ids):
            category = self.ontology.category(category_id)
            row = attribute_scores[i]
            listed = torch.where(row >= self.attribute_threshold)[0]
            listed = listed[torch.argsort(row[listed], descending=True, stable=True)]
            attributes = tuple(
                AttributeScore(self.ontology.index_to_attribute(j),
                               self.ontology.attributes[j].name, float(row[j]))
                for j in listed.tolist())
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            items.append(DetectedItem(
                index=i,
                category_id=category_id,
                name=category.name,
                supercategory=category.supercategory,
                group=category.group,
                box=(x0, y0, x1, y1),
                score=float(scores[i]),
                mask=rles[i],
                attributes=attributes,
                parent=parents[i],
            ))
        return Prediction(photo.name, (h, w), items, photo=photo)
