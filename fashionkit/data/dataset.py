"""The torch ``Dataset`` of training samples, over any reader's :class:`AnnotationSet`.

``dataset[i] -> (image, target)``:

- ``image``: ``float32`` tensor ``3×H×W``, RGB in ``[0, 1]``, not normalised (torchvision's
  ``GeneralizedRCNNTransform`` normalises). ``H×W`` is ``S×S`` for the ``"paper"`` and
  ``"jitter"`` pipelines, the resized size for ``"keep-ratio"``, the image's own without
  transforms.
- ``target``:

  ========================  =====================================================================
  ``boxes``                 ``float32 N×4`` XYXY in output pixels, the tight box of ``masks``
  ``labels``                ``int64 N`` contiguous 1..46 (``ontology.category_to_label``)
  ``masks``                 ``uint8 N×H×W`` (0/1), same ``H×W`` as ``image``
  ``attributes``            ``float32 N×294`` multi-hot over ``ontology.attribute_to_index``
  ``iscrowd``               ``int64 N`` (crowd annotations are kept, flagged 1)
  ``area``                  ``float32 N`` mask pixels after the transform
  ``image_id``              ``int64`` scalar, the Fashionpedia image id
  ``orig_size``             ``int64 (2,)``: ``(h, w)`` of the original image (the JSON's size)
  ``scale``                 ``float32`` scalar: output pixels per original (JSON) pixel
  ========================  =====================================================================

  An image without annotations gives ``boxes 0×4``, ``masks 0×H×W``, ``attributes 0×294``.

Boxes come from the decoded masks, not from the annotations' ``bbox`` (the two can disagree by
a pixel where a polygon is rasterised), and are recomputed after every transform (see
:mod:`fashionkit.data.transforms`). An annotation whose mask is empty (a degenerate polygon)
is left out with an :class:`EmptyMaskWarning`.

Images are read with PIL, EXIF orientation applied, converted to RGB. Masks live in the size
the annotation file states, so an image whose decoded size disagrees with the JSON is
reconciled: if the *un-rotated* pixels match the JSON (annotations were drawn before EXIF
rotation), the EXIF rotation is skipped; otherwise the image is resized to the JSON size. Both
cases emit a :class:`ImageSizeMismatchWarning` naming the file, and are counted in
:attr:`FashionDataset.size_mismatches` (per process: DataLoader workers keep their own count).

Large photos are decoded only as large as the pipeline can use (``decode_size``, by default the
pipeline's ``max_input_size``): JPEGs are decoded in the DCT domain at a reduced scale, polygons
are rasterised at the reduced size, RLE masks are decoded and resized: decoding full-size
pixels only to shrink them would dominate the cost of a sample. Images at or below the size are
decoded as they are.

Augmentation is reproducible: sample ``i`` in epoch ``e`` draws all its randomness from a
``torch.Generator`` seeded from ``(seed, e, i)``, so results do not depend on the number of
DataLoader workers, on which worker loads which sample, or on the order of loading. Call
:meth:`FashionDataset.set_epoch` before each epoch's iterator is created; the epoch is kept in
shared memory so that persistent workers see it too.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from fashionkit.data.annotations import Annotation, AnnotationSet, ImageInfo
from fashionkit.data.masks import segmentation_to_rle
from fashionkit.data.transforms import Target, Transform, replace_masks
from fashionkit.errors import InvalidDataError, Problem

__all__ = [
    "FashionDataset",
    "ImageSizeMismatchWarning",
    "EmptyMaskWarning",
    "collate",
    "sample_seed",
]


class ImageSizeMismatchWarning(UserWarning):
    """An image file's decoded size differs from the size its annotation file states."""


class EmptyMaskWarning(UserWarning):
    """An annotation's segmentation rasterises to no pixel (a degenerate polygon)."""


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample's augmentation (numpy's SeedSequence hash, so
    nearby ``(seed, epoch, index)`` triples give unrelated streams)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def collate(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[list[torch.Tensor], list[Target]]:
    """``[(image, target), ...]`` → ``([image, ...], [target, ...])`` (torchvision detection
    style: images of different sizes are not stacked; the model pads them)."""
    images = [image for image, _ in batch]
    targets = [target for _, target in batch]
    return images, targets


class FashionDataset(Dataset):
    """Training samples from an :class:`AnnotationSet` and its images folder.

    ``annotations``: any reader's output. ``images_dir``: the folder ``ImageInfo.file_name``
    is relative to. ``transforms``: a joint transform (see :mod:`fashionkit.data.transforms`,
    usually :func:`~fashionkit.data.transforms.build_transforms`), run on the ``uint8`` image;
    ``None`` returns the image at its JSON size. ``image_ids``: a subset (and order) of the
    set's images; all of them by default. ``seed``: the augmentation seed.

    ``decode_size``: images whose longest side exceeds it are decoded smaller, at that longest
    side (JPEGs in the DCT domain, polygons rasterised at that size), so that pixels the
    pipeline's resize would throw away are never decoded; ``scale`` accounts for it. The
    default ``"auto"`` takes the pipeline's ``max_input_size`` (``S`` for ``"paper"``,
    ``ceil(max_scale·S)`` for ``"jitter"``, ``max_size`` for ``"keep-ratio"``; see
    :func:`~fashionkit.data.transforms.build_transforms`); ``None`` always decodes at full
    size. For ``"paper"`` this makes the pipeline's own resize a no-op.

    Invalid data (missing/undecodable image file, unknown category or attribute id, a mask
    whose size disagrees with its image) raises :class:`InvalidDataError` naming the file and
    the image or annotation id, when the sample is loaded.
    """

    def __init__(
        self,
        annotations: AnnotationSet,
        images_dir: str | os.PathLike,
        transforms: Transform | None = None,
        *,
        image_ids: Sequence[int] | None = None,
        seed: int = 0,
        decode_size: int | Literal["auto"] | None = "auto",
    ):
        self.annotations = annotations
        self.ontology = annotations.ontology
        self.images_dir = Path(images_dir)
        self.transforms = transforms
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        self.seed = int(seed)
        if decode_size == "auto":
            decode_size = getattr(transforms, "max_input_size", None)
        if decode_size is not None and (isinstance(decode_size, str) or decode_size < 1):
            raise ValueError(f"decode_size must be a positive int, 'auto' or None: {decode_size!r}")
        self.decode_size: int | None = decode_size
        if image_ids is None:
            self._images: list[ImageInfo] = list(annotations.images)
        else:
            self._images = [annotations.image(int(i)) for i in image_ids]
        # Shared memory: set_epoch in the main process reaches persistent DataLoader workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.size_mismatches = 0

    # -- sizes and grouping ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._images)

    @property
    def image_ids(self) -> list[int]:
        return [im.id for im in self._images]

    def image_info(self, index: int) -> ImageInfo:
        return self._images[index]

    def aspect_ratios(self) -> list[float]:
        """Width / height of each image from the annotation file (no image is decoded)."""
        return [im.width / im.height for im in self._images]

    # -- epochs ----------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream for an epoch; call before creating its iterator."""
        if epoch < 0:
            raise ValueError(f"epoch must be ≥ 0, got {epoch}")
        self._epoch.fill_(int(epoch))

    # -- loading ---------------------------------------------------------------------------
    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = index % len(self)
        info = self._images[index]
        size = self._decoded_size(info)
        image = self._read_image(info, size)
        target = self._read_target(info, size)
        if self.transforms is not None:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
            image, target = self.transforms(image, target, generator)
        if image.dtype == torch.uint8:
            return image.to(torch.float32).div_(255.0), target
        return image.to(torch.float32), target  # a transform already made it float in [0, 1]

    def _where(self, info: ImageInfo) -> tuple[str, str]:
        return str(self.images_dir / info.file_name), f"image id {info.id}"

    def _decoded_size(self, info: ImageInfo) -> tuple[int, int]:
        """``(H', W')`` the image and masks are decoded at: the JSON size, shrunk so the longest
        side is at most ``decode_size``."""
        h, w = info.height, info.width
        if self.decode_size is None or max(h, w) <= self.decode_size:
            return h, w
        factor = self.decode_size / max(h, w)
        return max(1, round(h * factor)), max(1, round(w * factor))

    def _read_image(self, info: ImageInfo, size: tuple[int, int]) -> torch.Tensor:
        """The image as ``uint8 3×H'×W'`` for ``size = (H', W')``, in the JSON's frame."""
        from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
        from torchvision.transforms.v2.functional import pil_to_tensor

        path, where = self._where(info)
        expected = (info.width, info.height)
        final = (size[1], size[0])
        try:
            with Image.open(path) as raw:
                stored = raw.size
                if final != expected and raw.format == "JPEG":
                    # Decode in the DCT domain at 1/2, 1/4 or 1/8 scale (never below the
                    # request): much cheaper than decoding every pixel and shrinking.
                    factor = max(final[0] / expected[0], final[1] / expected[1])
                    raw.draft("RGB", (math.ceil(stored[0] * factor), math.ceil(stored[1] * factor)))
                rotated = ImageOps.exif_transpose(raw)
                orientation = raw.getexif().get(ExifTags.Base.Orientation, 1)
                # Sizes are compared as stored in the file: draft() has changed raw.size.
                shown = (stored[1], stored[0]) if orientation in (5, 6, 7, 8) else stored
                if shown == expected:
                    picture = rotated
                elif stored == expected:
                    self._warn_size(
                        path,
                        info,
                        shown,
                        "EXIF rotation skipped: the annotations match the un-rotated pixels",
                    )
                    picture = raw
                else:
                    self._warn_size(path, info, shown, "image resized to the annotation size")
                    picture = rotated
                picture = picture.convert("RGB")
                if picture.size != final:
                    picture = picture.resize(final, Image.Resampling.BILINEAR)
        except FileNotFoundError:
            raise InvalidDataError([Problem(path, where, "image file not found")]) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
                Image.DecompressionBombError) as err:
            raise InvalidDataError([Problem(path, where, f"cannot decode image: {err}")]) from None
        return pil_to_tensor(picture)

    def _warn_size(self, path: str, info: ImageInfo, size: tuple[int, int], action: str) -> None:
        self.size_mismatches += 1
        warnings.warn(
            f"{path}: image id {info.id} decodes to {size[0]}×{size[1]} (W×H) but the "
            f"annotations say {info.width}×{info.height}; {action}",
            ImageSizeMismatchWarning,
            stacklevel=3,
        )

    def _read_target(self, info: ImageInfo, size: tuple[int, int]) -> Target:
        anns = self.annotations.annotations(info.id)
        n = len(anns)
        h, w = info.height, info.width
        labels = torch.zeros(n, dtype=torch.int64)
        attributes = torch.zeros((n, self.ontology.num_attributes), dtype=torch.float32)
        iscrowd = torch.zeros(n, dtype=torch.int64)
        for row, ann in enumerate(anns):
            labels[row] = self._label(ann)
            for attribute_id in ann.attribute_ids:
                attributes[row, self._attribute_index(ann, attribute_id)] = 1.0
            iscrowd[row] = int(ann.iscrowd)
        masks = self._decode_masks(info, anns, size)
        target: Target = {
            "labels": labels,
            "masks": masks,
            "attributes": attributes,
            "iscrowd": iscrowd,
            "image_id": torch.tensor(info.id, dtype=torch.int64),
            "orig_size": torch.tensor([h, w], dtype=torch.int64),
            "scale": torch.tensor(max(size) / max(h, w), dtype=torch.float32),
        }
        target = replace_masks(target, masks)  # boxes from masks, empty masks dropped
        # At a reduced decode size small parts may vanish like in any downscale; only a mask
        # empty at full resolution is a data problem worth a warning.
        if len(target["labels"]) < n and size == (h, w):
            nonempty = masks.flatten(1).any(dim=1).bool().tolist()
            empty = [ann.id for ann, ok in zip(anns, nonempty, strict=True) if not ok]
            _, where = self._where(info)
            warnings.warn(
                f"{self.annotations.source or 'annotations'}: {where}: annotation id(s) "
                f"{empty} have an empty mask and are left out of the training target",
                EmptyMaskWarning,
                stacklevel=3,
            )
        return target

    def _problem(self, ann: Annotation, message: str) -> InvalidDataError:
        source = self.annotations.source or "annotations"
        return InvalidDataError([Problem(source, f"annotation id {ann.id}", message)])

    def _label(self, ann: Annotation) -> int:
        try:
            return self.ontology.category_to_label(ann.category_id)
        except KeyError:
            raise self._problem(ann, f"unknown category id {ann.category_id!r}") from None

    def _attribute_index(self, ann: Annotation, attribute_id: int) -> int:
        try:
            return self.ontology.attribute_to_index(attribute_id)
        except KeyError:
            raise self._problem(ann, f"unknown attribute id {attribute_id!r}") from None

    def _decode_masks(
        self, info: ImageInfo, anns: list[Annotation], size: tuple[int, int]
    ) -> torch.Tensor:
        """``uint8 N×H'×W'`` masks for ``size = (H', W')``: polygons are rasterised at that size
        directly (exact, and no full-size raster is made); RLE is decoded at the JSON size and
        resized with nearest-exact sampling, like the transforms resize masks."""
        from pycocotools import mask as mask_utils
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2.functional import resize_mask

        h, w = info.height, info.width
        if not anns:
            return torch.zeros((0, *size), dtype=torch.uint8)
        sx, sy = size[1] / w, size[0] / h
        direct, full = [], []  # (row, rle) at the decoded size / at the JSON size
        for row, ann in enumerate(anns):
            try:
                if size != (h, w) and isinstance(ann.segmentation, list):
                    polygons = [
                        [float(v) * (sx if i % 2 == 0 else sy) for i, v in enumerate(polygon)]
                        for polygon in ann.segmentation
                    ]
                    direct.append((row, segmentation_to_rle(polygons, size[0], size[1])))
                    continue
                rle = self.annotations.rle(ann)
            except Exception as err:  # pycocotools raises bare Exception/TypeError/ValueError
                raise self._problem(ann, f"invalid segmentation: {err}") from None
            rle_size = [int(v) for v in rle["size"]]
            if rle_size != [h, w]:
                raise self._problem(
                    ann,
                    f"mask size {rle_size[0]}×{rle_size[1]} (H×W) differs from image id "
                    f"{info.id}'s {h}×{w}",
                )
            full.append((row, rle))
        masks = torch.empty((len(anns), *size), dtype=torch.uint8)
        for group, at_size in ((direct, size), (full, (h, w))):
            if not group:
                continue
            rows = [row for row, _ in group]
            # decode gives H×W×N in Fortran order, i.e. N×W×H in C order: one transposing copy.
            decoded = mask_utils.decode([rle for _, rle in group])
            stack = torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1)))
            if at_size != size:
                stack = resize_mask(stack, list(size), InterpolationMode.NEAREST_EXACT)
            masks[rows] = stack
        return masks
