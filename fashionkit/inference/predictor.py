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
:func:`~fashionkit.data.transforms.build_transforms` ``(train=False)``, exactly as validation
during training. Detections are mapped back to the photo's pixels as
``AttributeMaskRCNN.predict(original_sizes=..., scales=...)`` does (boxes divided by the
scale, mask probabilities pasted at the photo's resolution), a few masks at a time.

Backends (each tested for parity with eager fp32: detections matched, mask IoU, scores):

- ``eager``: the torch model in fp32 (CPU or GPU).
- ``bf16``: the convolution-heavy parts (backbone, FPN, RPN head, box and mask heads) under
  ``torch.autocast`` to bfloat16 with channels-last weights, the score-producing layers and
  all post-processing in fp32 (see :mod:`fashionkit.inference.backends`). CPUs with
  AVX-512-BF16 or AMX, and GPUs.
- ``fp16``: the same with float16, CUDA only.
- ``onnxruntime``, ``openvino``, ``openvino-bf16``: the model exported to a graph
  (:mod:`fashionkit.inference.export`) run by ONNX Runtime (fp32) or OpenVINO (fp32, or with
  OpenVINO's bf16 inference precision, the fastest on CPU but with every layer in bf16: its
  scores miss the parity bound of 0.02, by up to ~0.01), CPU only. They take an exported ``.onnx`` / ``.xml``
  file (``fashionkit export``), or a checkpoint or model, which is then exported first (a few
  seconds to a minute).

On a GPU pass ``device="cuda"`` with ``backend="bf16"`` (Ampere and newer) or ``"fp16"``:
the same autocast wrapping, with CUDA's reduced-precision kernels (``eager`` runs fp32).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fashionkit.errors import InvalidDataError, Problem
from fashionkit.inference.export import ExportedModel, export_model
from fashionkit.inference.images import DEFAULT_MAX_PIXELS, Photo, PhotoSource, load_photo
from fashionkit.inference.parts import DEFAULT_PART_OVERLAP, link_parts
from fashionkit.inference.prediction import AttributeScore, DetectedItem, Prediction
from fashionkit.modeling import ModelConfig, model_from_checkpoint, read_checkpoint

__all__ = ["BACKENDS", "Predictor", "input_transform_for", "paste_masks_as_rles"]

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


def input_transform_for(config, data_config=None):
    """The evaluation-time input transform for a model config and, when known, the recipe's
    :class:`~fashionkit.engine.recipes.DataConfig` it was trained with.

    Without a recipe: a model that resizes by itself (``config.resize``) gets no transform;
    otherwise the paper's :class:`~fashionkit.data.transforms.ResizeLongestAndPad` to
    ``config.max_size`` (the size every preset without model-side resizing is built for)."""
    from fashionkit.data.transforms import Compose, ResizeLongestAndPad, build_transforms

    if data_config is not None:
        d = data_config
        return build_transforms(d.transform, d.image_size, train=False, flip_p=0.0,
                                min_size=d.min_size, max_size=d.max_size,
                                min_scale=d.jitter_min, max_scale=d.jitter_max)
    if config.resize:
        return None
    return Compose([ResizeLongestAndPad(config.max_size)])


def _data_config(recipe: Any):
    """A recipe's ``DataConfig`` from a ``Recipe``, a ``DataConfig`` or a checkpoint's recipe
    dict (keys this version does not know are ignored: the input pipeline is all we need)."""
    from fashionkit.engine.recipes import DataConfig, Recipe

    if recipe is None or isinstance(recipe, DataConfig):
        return recipe
    if isinstance(recipe, Recipe):
        return recipe.data
    if isinstance(recipe, dict) and isinstance(recipe.get("data"), dict):
        known = {f.name for f in fields(DataConfig)}
        return DataConfig(**{k: v for k, v in recipe["data"].items() if k in known})
    raise TypeError(f"recipe must be a Recipe, a DataConfig or a recipe dict, not "
                    f"{type(recipe).__name__}")


@dataclass
class _Sample:
    """One photo ready for the model: ``image`` float ``3×H'×W'`` in [0, 1] after the input
    transform, ``scale`` its pixels per photo pixel."""

    index: int
    name: str
    photo: Photo
    image: torch.Tensor
    scale: float = 1.0


@dataclass
class _Failed:
    """A photo that could not be loaded: ``error`` says why."""

    index: int
    name: str
    error: Problem


class _PhotoDataset(Dataset):
    """Decodes and transforms photos (in DataLoader workers when there are any).

    ``expected_sizes``: per source, the ``(H, W)`` an annotation file states; a photo that
    decodes to another size is re-read without EXIF rotation when that matches (annotations
    drawn on the stored pixels), else reported as a problem."""

    def __init__(self, sources: Sequence[PhotoSource], transform, max_pixels: int | None,
                 names: Sequence[str] | None = None,
                 expected_sizes: Sequence[tuple[int, int]] | None = None):
        self.sources = list(sources)
        self.transform = transform
        self.max_pixels = max_pixels
        self.names = list(names) if names is not None else None
        self.expected_sizes = list(expected_sizes) if expected_sizes is not None else None

    def __len__(self) -> int:
        return len(self.sources)

    def _name(self, index: int) -> str | None:
        if self.names is not None:
            return self.names[index]
        source = self.sources[index]
        return None if isinstance(source, (str, os.PathLike)) else f"<image {index}>"

    def __getitem__(self, index: int) -> _Sample | _Failed:
        source = self.sources[index]
        name = self._name(index)
        try:
            photo = load_photo(source, name=name, max_pixels=self.max_pixels)
            if self.expected_sizes is not None:
                photo = self._reconcile(photo, source, name, self.expected_sizes[index])
        except InvalidDataError as err:
            problem = err.problems[0]
            return _Failed(index, problem.source, problem)
        image, scale = self._transform(photo)
        return _Sample(index, photo.name, photo, image, scale)

    def _reconcile(self, photo: Photo, source, name, expected: tuple[int, int]) -> Photo:
        if photo.size == tuple(expected):
            return photo
        stored = load_photo(source, name=name, max_pixels=self.max_pixels, exif=False)
        if stored.size == tuple(expected):
            return stored
        (h, w), (eh, ew) = photo.size, expected
        raise InvalidDataError([Problem(photo.name, "image", f"decodes to {w}×{h} (W×H) but "
                                        f"the annotation file says {ew}×{eh}")])

    def _transform(self, photo: Photo) -> tuple[torch.Tensor, float]:
        image = torch.from_numpy(photo.pixels).permute(2, 0, 1)  # uint8 3×H×W, a view
        if self.transform is None:
            return image.float().div_(255.0), 1.0
        h, w = photo.size
        target = {"masks": torch.zeros((0, h, w), dtype=torch.uint8),
                  "scale": torch.tensor(1.0, dtype=torch.float64)}
        image, target = self.transform(image, target, None)
        image = image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()
        return image, float(target["scale"])


def _collate(batch: list[_Sample | _Failed]) -> list[_Sample | _Failed]:
    return batch


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
    :func:`~fashionkit.inference.parts.link_parts`.
    """

    def __init__(self, checkpoint_or_model: str | os.PathLike | torch.nn.Module, *,
                 backend: Backend | None = None, device: str | torch.device = "cpu",
                 score_threshold: float = 0.5, attribute_threshold: float | None = None,
                 batch_size: int = 2, num_workers: int = 0,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, recipe: Any = None,
                 part_overlap: float = DEFAULT_PART_OVERLAP):
        from fashionkit.ontology import load_ontology

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
        if backend in EXPORTED_BACKENDS:
            self.model, recipe = self._exported(checkpoint_or_model, backend, exported_file,
                                                recipe)
        elif exported_file:
            raise ValueError(f"{checkpoint_or_model} is an exported model: run it with backend "
                             f"{' or '.join(repr(b) for b in EXPORTED_BACKENDS)}")
        else:
            from fashionkit.inference.backends import prepare_model

            if isinstance(checkpoint_or_model, (str, os.PathLike)):
                path = Path(checkpoint_or_model)
                data = read_checkpoint(path)
                model = model_from_checkpoint(data, path)
                recipe = data.get("recipe") if recipe is None else recipe
            else:
                model = checkpoint_or_model
            self.model = prepare_model(model, backend, self.device,
                                       copy_model=model is checkpoint_or_model)
        self.config: ModelConfig = self.model.config  # type: ignore[assignment]
        self.data_config = _data_config(recipe)
        self.transform = input_transform_for(self.config, self.data_config)
        self.score_threshold = float(score_threshold)
        self.attribute_threshold = (self.config.attribute_score_threshold
                                    if attribute_threshold is None else float(attribute_threshold))
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.max_pixels = max_pixels
        self.part_overlap = float(part_overlap)
        self.ontology = load_ontology()

    def _exported(self, source, backend: str, exported_file: bool, recipe: Any):
        """The :class:`ExportedModel` for ``backend`` and the recipe to use. A checkpoint or
        model is exported first, to a temporary ``.onnx`` kept while the Predictor lives."""
        runtime, precision = EXPORTED_BACKENDS[backend]
        if exported_file:
            path = Path(source)
            if runtime == "onnxruntime" and path.suffix != ".onnx":
                raise ValueError(f"backend 'onnxruntime' runs .onnx files, not {path.name!r} "
                                 "(an OpenVINO IR: use 'openvino' or 'openvino-bf16')")
        else:
            self._export_dir = tempfile.TemporaryDirectory(prefix="fashionkit-export-")
            path = export_model(source, Path(self._export_dir.name) / "model.onnx",
                                recipe=recipe)
        model = ExportedModel(path, runtime, precision)
        return model, model.recipe if recipe is None else recipe

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
        dataset = _PhotoDataset(sources, self.transform, self.max_pixels, names, expected_sizes)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers, collate_fn=_collate)
        for batch in loader:
            good = [s for s in batch if isinstance(s, _Sample)]
            done = dict(zip((s.index for s in good), self._predict_samples(good), strict=True))
            for sample in batch:
                if isinstance(sample, _Failed):
                    if on_error == "raise":
                        raise InvalidDataError([sample.error])
                    yield Prediction(sample.name, (0, 0), error=sample.error)
                    continue
                prediction = done[sample.index]
                if not keep_photos:
                    prediction.photo = None
                yield prediction

    # -- internals -------------------------------------------------------------------------
    def _predict_samples(self, samples: list[_Sample]) -> list[Prediction]:
        if not samples:
            return []
        # With channels-last weights the convolutions run channels-last whatever the input's
        # layout (the model batches the 3-D images itself), so inputs stay as they are.
        images = [s.image.to(self.device) for s in samples]
        if isinstance(self.model, ExportedModel):
            model_sizes, raw = self.model.raw_predictions(images)
        else:
            with torch.inference_mode():
                model_sizes, raw = _raw_predictions(self.model, images)
        return [self._to_prediction(s, r, size)
                for s, r, size in zip(samples, raw, model_sizes, strict=True)]

    def _to_prediction(self, sample: _Sample, r, model_size: tuple[int, int]) -> Prediction:
        """One image's raw RoI predictions → items in the photo's pixels.

        Boxes are scaled as :meth:`AttributeMaskRCNN.predict` does with ``original_sizes``, and
        the 28×28 mask probabilities are pasted directly at the photo's resolution (then cut at
        ``mask_threshold``, :func:`paste_masks_as_rles`): sharper than upscaling masks
        thresholded at the model's input size when photos are larger than the input."""
        photo = sample.photo
        h, w = photo.size
        keep = torch.where(r.scores.float() >= self.score_threshold)[0]
        scores = r.scores.float()[keep].cpu()
        labels = r.labels[keep].cpu()
        attribute_scores = r.attribute_scores.float()[keep].cpu()
        probs = r.mask_probs[keep].float()
        in_h, in_w = sample.image.shape[-2:]
        fx = in_w / model_size[1] / sample.scale
        fy = in_h / model_size[0] / sample.scale
        boxes = r.boxes.float()[keep] * torch.tensor([fx, fy, fx, fy], device=r.boxes.device)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        rles = paste_masks_as_rles(probs, boxes, (h, w), self.config.mask_threshold)
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


def _raw_predictions(model, images: list[torch.Tensor]):
    """The model's RoI-level predictions before any pasting: ``(sizes the model ran at,
    [RoIPredictions per image])``. The first half of ``AttributeMaskRCNN.predict``, which
    pastes every mask of an image at once; the Predictor pastes a few at a time instead."""
    batch, _ = model.transform(list(images))
    features = model.backbone(batch.tensors)
    proposals = model.rpn.proposals(batch, features)
    raw = model.roi_heads.predict(features, proposals, batch.image_sizes)
    return [tuple(int(v) for v in size) for size in batch.image_sizes], raw


def paste_masks_as_rles(probs: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int],
                        threshold: float) -> list[dict]:
    """Mask R-CNN's ``N×1×M×M`` mask probabilities in their ``N×4`` XYXY boxes (image pixels)
    → ``N`` compressed RLEs (``counts`` str) of ``image_size`` ``(H, W)``, cut at
    ``threshold`` (> 0).

    The same pixels as torchvision's ``paste_masks_in_image(probs, boxes, image_size) >=
    threshold`` (one-pixel padding, box expansion, bilinear resize to the box), but each mask
    is resized only to its box and written into a one-byte Fortran-order canvas that
    pycocotools encodes in place, instead of stacking ``N`` full-size float images: for 100
    detections on a 1024² photo that is 1 MB per mask instead of 800 MB per image."""
    import torch.nn.functional as F
    from pycocotools import mask as mask_utils
    from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

    if threshold <= 0:
        raise ValueError("threshold must be > 0 (pixels outside every box are 0)")
    h, w = image_size
    if probs.shape[0] == 0:
        return []
    padded, scale = expand_masks(probs.float(), padding=1)
    int_boxes = expand_boxes(boxes.float(), scale).to(torch.int64).tolist()
    canvas = np.zeros((h, w), dtype=np.uint8, order="F")
    out = []
    for mask, (x0, y0, x1, y1) in zip(padded, int_boxes, strict=True):
        bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = F.interpolate(mask[None], size=(bh, bw), mode="bilinear",
                                align_corners=False)[0, 0]
        cx0, cx1 = max(x0, 0), min(x1 + 1, w)
        cy0, cy1 = max(y0, 0), min(y1 + 1, h)
        canvas.fill(0)
        if cx1 > cx0 and cy1 > cy0:
            region = resized[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] >= threshold
            canvas[cy0:cy1, cx0:cx1] = region.cpu().numpy()
        rle = mask_utils.encode(canvas)
        out.append({"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")})
    return out
