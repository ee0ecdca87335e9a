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
  ``scale``                 ``float32`` scalar: output pixels per original pixel
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

Augmentation is reproducible: sample ``i`` in epoch ``e`` draws all its randomness from a
``torch.Generator`` seeded from ``(seed, e, i)``, so results do not depend on the number of
DataLoader workers, on which worker loads which sample, or on the order of loading. Call
:meth:`FashionDataset.set_epoch` before each epoch's iterator is created; the epoch is kept in
shared memory so that persistent workers see it too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fashionkit.data.annotations import Annotation, AnnotationSet, ImageInfo
from fashionkit.data.errors import InvalidDataError, Problem
from fashionkit.data.transforms import Target, Transform, replace_masks

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
    ):
        self.annotations = annotations
        self.ontology = annotations.ontology
        self.images_dir = Path(images_dir)
        self.transforms = transforms
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        self.seed = int(seed)
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
        image = self._read_image(info)
        target = self._read_target(info)
        if self.transforms is not None:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
            image, target = self.transforms(image, target, generator)
        if image.dtype == torch.uint8:
            return image.to(torch.float32).div_(255.0), target
        return image.to(torch.float32), target  # a transform already made it float in [0, 1]

    def _where(self, info: ImageInfo) -> tuple[str, str]:
        return str(self.images_dir / info.file_name), f"image id {info.id}"

    def _read_image(self, info: ImageInfo) -> torch.Tensor:
        """The image as ``uint8 3×H×W`` at the JSON's ``height×width``."""
        from PIL import Image, ImageOps, UnidentifiedImageError
        from torchvision.transforms.v2.functional import pil_to_tensor

        path, where = self._where(info)
        expected = (info.width, info.height)
        try:
            with Image.open(path) as raw:
                rotated = ImageOps.exif_transpose(raw)
                if rotated.size == expected:
                    picture = rotated.convert("RGB")
                elif raw.size == expected:
                    self._warn_size(
                        path,
                        info,
                        rotated.size,
                        "EXIF rotation skipped: the annotations match the un-rotated pixels",
                    )
                    picture = raw.convert("RGB")
                else:
                    self._warn_size(
                        path, info, rotated.size, "image resized to the annotation size"
                    )
                    picture = rotated.convert("RGB").resize(expected, Image.Resampling.BILINEAR)
        except FileNotFoundError:
            raise InvalidDataError([Problem(path, where, "image file not found")]) from None
        except (UnidentifiedImageError, OSError) as err:
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

    def _read_target(self, info: ImageInfo) -> Target:
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
        masks = self._decode_masks(info, anns)
        target: Target = {
            "labels": labels,
            "masks": masks,
            "attributes": attributes,
            "iscrowd": iscrowd,
            "image_id": torch.tensor(info.id, dtype=torch.int64),
            "orig_size": torch.tensor([h, w], dtype=torch.int64),
            "scale": torch.tensor(1.0, dtype=torch.float32),
        }
        target = replace_masks(target, masks)  # boxes from masks, empty masks dropped
        if len(target["labels"]) < n:
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

    def _decode_masks(self, info: ImageInfo, anns: list[Annotation]) -> torch.Tensor:
        """``uint8 N×H×W`` masks in the JSON's image size."""
        from pycocotools import mask as mask_utils

        h, w = info.height, info.width
        if not anns:
            return torch.zeros((0, h, w), dtype=torch.uint8)
        rles = []
        for ann in anns:
            try:
                rle = self.annotations.rle(ann)
            except Exception as err:  # pycocotools raises bare Exception/TypeError/ValueError
                raise self._problem(ann, f"invalid segmentation: {err}") from None
            size = [int(v) for v in rle["size"]]
            if size != [h, w]:
                raise self._problem(
                    ann,
                    f"mask size {size[0]}×{size[1]} (H×W) differs from image id "
                    f"{info.id}'s {h}×{w}",
                )
            rles.append(rle)
        # decode returns H×W×N in Fortran order; one copy to N×H×W C order.
        decoded = mask_utils.decode(rles)
        return torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1)))
