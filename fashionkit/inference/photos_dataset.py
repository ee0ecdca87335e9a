"""Photos decoded and put through a model's input transform, for the Predictor and for INT8
calibration of an exported model: :class:`PhotoDataset` yields a :class:`PhotoSample` per
readable photo and a :class:`FailedPhoto` (with the :class:`~fashionkit.errors.Problem`) per
unreadable one, so that a DataLoader's workers never raise on a bad file."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from fashionkit.data.input_recipe import DataConfig
from fashionkit.data.transforms import Compose, ResizeLongestAndPad
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.inference.images import Photo, PhotoSource, load_photo
from fashionkit.modeling.config import ModelConfig

__all__ = ["FailedPhoto", "ImageSizeError", "PhotoDataset", "PhotoSample", "SQUARE_TRANSFORMS",
           "collate_photos", "input_transform_for", "recipe_at_image_size"]

#: The recipes whose evaluation transform brings every photo to one square size S
#: (``DataConfig.image_size``): the paper's resize-and-pad, the jitter recipes' evaluation
#: resize, and the official Fashionpedia recipe (long side S; the model pads to S×S).
SQUARE_TRANSFORMS: tuple[str, ...] = ("paper", "jitter", "official")


class ImageSizeError(ValueError):
    """An input size a model cannot run at (``image_size`` of the
    :class:`~fashionkit.inference.Predictor`, ``--image-size`` of ``fashionkit detect``)."""


def size_divisor(config: ModelConfig) -> int:
    """What every side of a model input must be a multiple of, so that the padded batch the
    model builds is the photo's square itself: ``config.size_divisible``; for the official
    architecture at least 128 (its coarsest level, P7, is 2⁷ times smaller than the input)."""
    divisor = int(config.size_divisible)
    if getattr(config, "architecture", "torchvision") == "official":
        divisor = max(divisor, 128)
    return divisor


def recipe_at_image_size(config: ModelConfig, data_config: DataConfig | None,
                         image_size: int) -> DataConfig:
    """The evaluation recipe ``data_config`` (``None``: the default of
    :func:`input_transform_for`) run at the square input size ``image_size`` instead of its
    own ``DataConfig.image_size``, as the official Fashionpedia inference runs its 1024²
    checkpoints at 640² by default.

    Raises :class:`ImageSizeError` when ``image_size`` is not positive, not a multiple of the
    model's size divisor (:func:`size_divisor`: otherwise the model pads the square further,
    and the run is not at that size), or when the recipe has no square size to replace: a
    ``keep-ratio`` recipe (``min_size``/``max_size``) or a model that resizes its inputs
    itself (``config.resize``)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ImageSizeError(f"image_size must be a positive integer, got {image_size!r}")
    divisor = size_divisor(config)
    if image_size % divisor:
        lower = max(divisor, image_size // divisor * divisor)
        raise ImageSizeError(
            f"image_size {image_size} is not a multiple of {divisor}, which this model's "
            f"inputs are padded to (e.g. {lower} or {lower + divisor})")
    if config.resize:
        raise ImageSizeError(
            "this model resizes its inputs itself (min_size "
            f"{config.min_size}, max_size {config.max_size}): image_size does not apply")
    if data_config is None:
        return DataConfig(transform="paper", image_size=image_size)
    if data_config.transform not in SQUARE_TRANSFORMS:
        raise ImageSizeError(
            f"the checkpoint's recipe resizes with {data_config.transform!r} (shorter side "
            f"{data_config.min_size}, longer at most {data_config.max_size}), not to a square: "
            "image_size does not apply")
    return dataclasses.replace(data_config, image_size=image_size)


def input_transform_for(config: ModelConfig, data_config: DataConfig | None = None
                        ) -> Compose | None:
    """The evaluation-time input transform for a model config and, when known, the recipe's
    :class:`~fashionkit.data.input_recipe.DataConfig` it was trained with.

    Without a recipe: a model that resizes by itself (``config.resize``) gets no transform;
    otherwise the paper's :class:`~fashionkit.data.transforms.ResizeLongestAndPad` to
    ``config.max_size`` (the size every preset without model-side resizing is built for)."""
    if data_config is not None:
        return data_config.transforms(train=False)
    if config.resize:
        return None
    return Compose([ResizeLongestAndPad(config.max_size)])


@dataclass
class PhotoSample:
    """One photo ready for the model: ``image`` float ``3×H'×W'`` in [0, 1] after the input
    transform, ``scale`` its pixels per photo pixel."""

    index: int
    name: str
    photo: Photo
    image: torch.Tensor
    scale: float = 1.0


@dataclass
class FailedPhoto:
    """A photo that could not be loaded: ``error`` says why."""

    index: int
    name: str
    error: Problem


class PhotoDataset(Dataset):
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

    def __getitem__(self, index: int) -> PhotoSample | FailedPhoto:
        source = self.sources[index]
        name = self._name(index)
        try:
            photo = load_photo(source, name=name, max_pixels=self.max_pixels)
            if self.expected_sizes is not None:
                photo = self._reconcile(photo, source, name, self.expected_sizes[index])
        except InvalidDataError as err:
            problem = err.problems[0]
            return FailedPhoto(index, problem.source, problem)
        image, scale = self._transform(photo)
        return PhotoSample(index, photo.name, photo, image, scale)

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
                  "scale": torch.tensor(1.0, dtype=torch.float32)}
        image, target = self.transform(image, target, None)
        image = image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()
        return image, float(target["scale"])


def collate_photos(batch: list[PhotoSample | FailedPhoto]) -> list[PhotoSample | FailedPhoto]:
    """A DataLoader batch as the list of samples it is (images differ in size)."""
    return batch
