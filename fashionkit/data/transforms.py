"""Joint image + target transforms for training Mask R-CNN on Fashionpedia.

Every transform is a callable ``(image, target, generator) -> (image, target)``:

- ``image``: ``3×H×W`` tensor, ``uint8`` (0..255) or ``float32`` (0..1), RGB. The kernels are
  torchvision's (``transforms.v2.functional``) and keep the dtype; :class:`~fashionkit.data.
  dataset.FashionDataset` runs the pipeline on ``uint8`` (cheaper to resize) and converts to
  ``float32`` at the end.
- ``target``: the dict described in :mod:`fashionkit.data.dataset` (``boxes`` ``N×4`` float32
  XYXY, ``masks`` ``N×H×W`` uint8, per-instance ``labels``/``attributes``/``iscrowd``/``area``,
  and per-image ``scale``). Transforms return a new dict; they do not modify their input.
- ``generator``: the ``torch.Generator`` all randomness is drawn from, so that a sample's
  augmentation is a function of the generator's seed only (the dataset seeds one per
  ``(seed, epoch, index)``, which also makes DataLoader workers reproducible). Deterministic
  transforms ignore it; random ones given ``None`` use torch's global generator.

Boxes are always *recomputed from the transformed masks* rather than scaled or shifted: that is
exact (the box is the mask's tight bounding box, in pixel-edge coordinates: a mask covering
columns ``a..b`` has ``x1 = a``, ``x2 = b + 1``, as pycocotools' ``toBbox``), stays exact after
crops that cut an object, and finds instances that vanish. An instance whose mask becomes empty
(a part smaller than one output pixel after downscaling, or cropped away by
:class:`ScaleJitter`) is dropped from every per-instance field, because torchvision's Mask R-CNN
rejects boxes with zero width or height and such a target cannot be learnt anyway.

Masks are resized with ``nearest-exact`` (pixel-centre sampling), which is geometrically
consistent with the image's bilinear ``align_corners=False`` resize: both map pixel centres
``(i + 0.5) / scale``. The image is resized with antialiasing, which matters when shrinking
large photos and does not move content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

__all__ = [
    "Transform",
    "Compose",
    "ResizeLongestAndPad",
    "ResizeShortestKeepRatio",
    "RandomHorizontalFlip",
    "ScaleJitter",
    "RandomCrop",
    "OfficialResize",
    "official_scaled_size",
    "resize_bilinear_tf1",
    "build_transforms",
    "masks_to_boxes",
    "mask_areas",
    "replace_masks",
    "INSTANCE_KEYS",
]

Target = dict[str, torch.Tensor]

# Target fields with one row per instance; filtering an instance out touches exactly these.
INSTANCE_KEYS: tuple[str, ...] = ("boxes", "labels", "masks", "attributes", "iscrowd", "area")


class Transform(Protocol):
    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]: ...


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``N×H×W`` masks → ``N×4`` float32 XYXY tight boxes in pixel-edge coordinates.

    Unlike ``torchvision.ops.masks_to_boxes`` (whose ``x2`` is the last column's index), ``x2``
    and ``y2`` here are exclusive, matching COCO's ``bbox`` width = number of columns. Empty
    masks give ``[0, 0, 0, 0]``.
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    # Row/column projections; torch's any() is much cheaper over uint8 than over bool.
    cols = masks.any(dim=1).bool()  # N×W
    rows = masks.any(dim=2).bool()  # N×H
    boxes = torch.cat([_extent(cols), _extent(rows)], dim=1)[:, [0, 2, 1, 3]]
    return boxes.to(torch.float32)


def _extent(on: torch.Tensor) -> torch.Tensor:
    """``N×L`` bool → ``N×2`` ``[first, last + 1]`` of the true positions (``[0, 0]`` if none)."""
    length = on.shape[1]
    index = torch.arange(length, device=on.device)
    first = torch.where(on, index, length).amin(dim=1)
    last = torch.where(on, index, -1).amax(dim=1) + 1
    empty = ~on.any(dim=1)
    return torch.stack([first.masked_fill(empty, 0), last.masked_fill(empty, 0)], dim=1)


def mask_areas(masks: torch.Tensor) -> torch.Tensor:
    """``N×H×W`` masks → ``N`` float32 pixel counts."""
    # numpy's count_nonzero is much cheaper than torch's uint8 sum on CPU.
    counts = [np.count_nonzero(m) for m in masks.cpu().numpy()]
    return torch.tensor(counts, dtype=torch.float32).reshape(masks.shape[0])


def replace_masks(target: Target, masks: torch.Tensor) -> Target:
    """A copy of ``target`` with ``masks`` (``N×H×W``, same N as before), its ``boxes`` and
    ``area`` recomputed from them, and instances whose mask is empty dropped from every
    :data:`INSTANCE_KEYS` field."""
    out = dict(target)
    out["masks"] = masks
    boxes = masks_to_boxes(masks)
    out["boxes"] = boxes
    out["area"] = mask_areas(masks)
    keep = boxes[:, 2] > boxes[:, 0]
    if not bool(keep.all()):
        for key in INSTANCE_KEYS:
            if key in out:
                out[key] = out[key][keep]
    return out


def _scaled(target: Target, factor: float) -> Target:
    out = dict(target)
    out["scale"] = target["scale"] * factor
    return out


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    u = torch.rand((), generator=generator).item()
    return low + (high - low) * u


def _resize(
    image: torch.Tensor, target: Target, height: int, width: int
) -> tuple[torch.Tensor, Target]:
    image = F.resize_image(image, [height, width], InterpolationMode.BILINEAR, antialias=True)
    masks = F.resize_mask(target["masks"], [height, width], InterpolationMode.NEAREST_EXACT)
    return image, replace_masks(target, masks)


def _owned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, copied if it is a view into a larger buffer: a crop of the 2×-upscaled image
    would otherwise keep (and send to the main process from DataLoader workers) all of it."""
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def _check_image(image: torch.Tensor, target: Target) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be 3×H×W, got shape {tuple(image.shape)}")
    masks = target["masks"]
    if masks.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"masks are {tuple(masks.shape[-2:])} but the image is {tuple(image.shape[-2:])}"
        )


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        for t in self.transforms:
            image, target = t(image, target, generator)
        return image, target

    @property
    def max_input_size(self) -> int | None:
        """The longest input side that can influence the output: the first resizing
        transform's ``max_input_size`` when only flips come before it, else ``None``
        (unknown: decode at full size). The dataset decodes large images at this size."""
        for t in self.transforms:
            if isinstance(t, RandomHorizontalFlip):
                continue
            return getattr(t, "max_input_size", None)
        return None

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class ResizeLongestAndPad:
    """The seed paper's input: resize so the longest side is ``size`` (keeping the aspect
    ratio), then zero-pad right and bottom to ``size×size``.

    Output image ``3×size×size``; masks ``N×size×size``; ``scale`` multiplied by
    ``size / max(H, W)``. Padding only at the right/bottom keeps the original image's origin,
    so predictions map back to the original by dividing by ``scale``.
    """

    def __init__(self, size: int = 1024):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size

    @property
    def max_input_size(self) -> int:
        """Longest input side the output can use: detail beyond ``size`` is resampled away."""
        return self.size

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        h, w = image.shape[-2:]
        factor = self.size / max(h, w)
        new_h = min(self.size, max(1, round(h * factor)))
        new_w = min(self.size, max(1, round(w * factor)))
        image, target = _resize(image, target, new_h, new_w)
        pad = [0, 0, self.size - new_w, self.size - new_h]  # left, top, right, bottom
        image = F.pad_image(image, pad, fill=0)
        target = dict(target)
        target["masks"] = F.pad_mask(target["masks"], pad, fill=0)
        return image, _scaled(target, factor)

    def __repr__(self) -> str:
        return f"ResizeLongestAndPad(size={self.size})"


class ResizeShortestKeepRatio:
    """torchvision/detectron2-style resize: shortest side to ``min_size`` unless the longest
    side would exceed ``max_size``; no padding (the model batches by padding).

    ``min_size`` may be a sequence: with ``train`` one is drawn per sample from ``generator``
    (multi-scale training, as torchvision's ``GeneralizedRCNNTransform``); otherwise the last
    one is used.
    Output ``3×H'×W'`` with ``H' = round(H·s)``, ``W' = round(W·s)``,
    ``s = min(min_size / min(H, W), max_size / max(H, W))``.
    """

    def __init__(
        self, min_size: int | Sequence[int] = 800, max_size: int = 1333, train: bool = False
    ):
        sizes = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        if not sizes or min(sizes) < 1 or max_size < 1:
            raise ValueError(f"sizes must be positive, got min_size={min_size} max_size={max_size}")
        self.min_sizes = sizes
        self.max_size = max_size
        self.train = train

    @property
    def max_input_size(self) -> int:
        """The output's longest side is at most ``max_size``."""
        return self.max_size

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        if self.train and len(self.min_sizes) > 1:
            i = int(torch.randint(len(self.min_sizes), (), generator=generator))
            min_size = self.min_sizes[i]
        else:
            min_size = self.min_sizes[-1]
        h, w = image.shape[-2:]
        factor = min(min_size / min(h, w), self.max_size / max(h, w))
        new_h = max(1, round(h * factor))
        new_w = max(1, round(w * factor))
        image, target = _resize(image, target, new_h, new_w)
        return image, _scaled(target, factor)

    def __repr__(self) -> str:
        return (
            f"ResizeShortestKeepRatio(min_size={self.min_sizes}, max_size={self.max_size}, "
            f"train={self.train})"
        )


class RandomHorizontalFlip:
    """Mirror image and masks left–right with probability ``p``.

    No label swap is needed: Fashionpedia has no left/right-specific categories or attributes
    (a sleeve is a sleeve on either side). Apply it before padding transforms, or the padding
    would move to the left edge.
    """

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        # Always draw, so the random stream (and later transforms) does not depend on p's outcome.
        u = torch.rand((), generator=generator).item()
        if u >= self.p:
            return image, target
        image = F.horizontal_flip_image(image)
        return image, replace_masks(target, F.horizontal_flip_mask(target["masks"]))

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ScaleJitter:
    """Large-scale jitter as in the official Attribute-Mask R-CNN (TPU detection) config:
    draw ``r ~ U(min_scale, max_scale)``, resize so the longest side is ``round(r·size)``,
    take a random ``size×size`` window (when the resized image is larger), zero-pad right and
    bottom to ``size×size``.

    This follows ``resize_and_crop_image`` of tensorflow/tpu's ``input_utils``: the crop offset
    is ``floor(u · max(0, resized − size))`` per axis with ``u ~ U(0, 1)``. Instances whose
    mask is cropped away are dropped; boxes of cut instances are the visible part's box.
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0, size: int = 1024):
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.size = size

    @property
    def max_input_size(self) -> int:
        """The resized (pre-crop) longest side is at most ``round(max_scale · size)``."""
        return max(1, round(self.max_scale * self.size))

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        r = _uniform(generator, self.min_scale, self.max_scale)
        u_y = torch.rand((), generator=generator).item()
        u_x = torch.rand((), generator=generator).item()
        h, w = image.shape[-2:]
        longest = max(1, round(r * self.size))
        factor = longest / max(h, w)
        new_h = max(1, round(h * factor))
        new_w = max(1, round(w * factor))
        image, target = _resize(image, target, new_h, new_w)
        top = math.floor(u_y * max(0, new_h - self.size))
        left = math.floor(u_x * max(0, new_w - self.size))
        # crop_* pads with zeros where the window runs past the right/bottom edge.
        image = _owned(F.crop_image(image, top, left, self.size, self.size))
        masks = _owned(F.crop_mask(target["masks"], top, left, self.size, self.size))
        return image, _scaled(replace_masks(target, masks), factor)

    def __repr__(self) -> str:
        return (
            f"ScaleJitter(min_scale={self.min_scale}, max_scale={self.max_scale}, size={self.size})"
        )


class RandomCrop:
    """A random ``size×size`` window of the image (a side shorter than ``size`` is kept
    whole; nothing is padded): training on crops of full-resolution images costs what small
    images cost while objects keep the pixel size they have at evaluation.

    The offset is ``floor(u · max(0, side − size))`` per axis with ``u ~ U(0, 1)``; instances
    cropped away are dropped and cut ones get the visible part's box, as in
    :class:`ScaleJitter`. ``scale`` is unchanged (a crop does not resample).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        u_y = torch.rand((), generator=generator).item()
        u_x = torch.rand((), generator=generator).item()
        h, w = image.shape[-2:]
        out_h, out_w = min(h, self.size), min(w, self.size)
        top = math.floor(u_y * (h - out_h))
        left = math.floor(u_x * (w - out_w))
        image = _owned(F.crop_image(image, top, left, out_h, out_w))
        masks = _owned(F.crop_mask(target["masks"], top, left, out_h, out_w))
        return image, replace_masks(target, masks)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


def official_scaled_size(height: int, width: int, size: int) -> tuple[tuple[int, int], float]:
    """``((H', W'), scale)`` of the official ``resize_and_crop_image`` (no jitter): ``scale =
    min(size / H, size / W)`` and ``H' = round(H · scale)``, ``W' = round(W · scale)``, in
    float32 and with round-half-to-even, as TensorFlow computes them."""
    s = np.float32(size)
    scale = min(s / np.float32(height), s / np.float32(width))
    new_h = int(np.round(np.float32(height) * scale))
    new_w = int(np.round(np.float32(width) * scale))
    return (max(1, new_h), max(1, new_w)), float(scale)


def _legacy_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (or columns) and weights of TF1's bilinear resize along one axis: output
    ``i`` samples input ``i · in/out`` (float32), between ``floor`` and ``min(floor + 1,
    in − 1)``."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    low = np.floor(src)
    lerp = (src - low).astype(np.float32)
    low_i = np.minimum(low.astype(np.int64), in_size - 1)
    high_i = np.minimum(low_i + 1, in_size - 1)
    return low_i, high_i, lerp


def resize_bilinear_tf1(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1's ``tf.image.resize_images(..., BILINEAR)`` (``resize_bilinear`` with
    ``align_corners=False, half_pixel_centers=False``) of a float ``C×H×W`` image.

    Output pixel ``(i, j)`` interpolates input ``(i · H/height, j · W/width)``: no half-pixel
    shift, no antialiasing, the last row/column repeated at the border. PyTorch has no such
    mode (``align_corners=False`` there means half-pixel centres), and the official models
    were trained and evaluated on it, so it is computed here: the horizontal interpolation
    first, then the vertical one, in float32, in the order TF's kernel does."""
    if not image.is_floating_point():
        raise ValueError("resize_bilinear_tf1 needs a float image")
    y0, y1, fy = _legacy_axis(image.shape[-2], height)
    x0, x1, fx = _legacy_axis(image.shape[-1], width)
    img = image.to(torch.float32)
    y0_t, y1_t = torch.from_numpy(y0), torch.from_numpy(y1)
    x0_t, x1_t = torch.from_numpy(x0), torch.from_numpy(x1)
    fx_t = torch.from_numpy(fx)
    fy_t = torch.from_numpy(fy)[:, None]
    top, bottom = img[:, y0_t], img[:, y1_t]
    top = top[..., x0_t] + (top[..., x1_t] - top[..., x0_t]) * fx_t
    bottom = bottom[..., x0_t] + (bottom[..., x1_t] - bottom[..., x0_t]) * fx_t
    return top + (bottom - top) * fy_t


class OfficialResize:
    """The official Fashionpedia input (tensorflow/tpu ``resize_and_crop_image`` without
    jitter): the longest side to ``size`` by :func:`official_scaled_size`, with TF1's bilinear
    resize (:func:`resize_bilinear_tf1`) of the float image; no padding (the official model
    pads to a multiple of 128 itself).

    Returns ``float32`` in [0, 1] (a ``uint8`` image is first multiplied by 1/255 as TF's
    ``convert_image_dtype`` does); masks are resized by TF1's nearest neighbour (source
    ``floor(i · in/out)``, which is PyTorch's ``nearest``); ``scale`` is multiplied by the
    official ``scale``. No ``max_input_size``: the photo must be decoded at full size, since
    a resize without antialiasing of a pre-shrunk photo gives other pixels."""

    def __init__(self, size: int = 1024):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = size

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        _check_image(image, target)
        h, w = image.shape[-2:]
        (new_h, new_w), factor = official_scaled_size(int(h), int(w), self.size)
        if image.dtype == torch.uint8:
            image = image.to(torch.float32) * float(np.float32(1.0 / 255.0))
        image = resize_bilinear_tf1(image, new_h, new_w)
        masks = F.resize_mask(target["masks"], [new_h, new_w], InterpolationMode.NEAREST)
        return image, _scaled(replace_masks(target, masks), factor)

    def __repr__(self) -> str:
        return f"OfficialResize(size={self.size})"


TransformKind = Literal["paper", "keep-ratio", "jitter", "official"]


def build_transforms(
    kind: TransformKind = "paper",
    size: int = 1024,
    train: bool = True,
    *,
    flip_p: float = 0.5,
    min_size: int | Sequence[int] = 800,
    max_size: int = 1333,
    min_scale: float = 0.5,
    max_scale: float = 2.0,
    crop_size: int = 0,
) -> Compose:
    """The pipeline for one input recipe.

    - ``"paper"``: :class:`ResizeLongestAndPad` to ``size`` (the seed paper, S=1024);
      training adds a horizontal flip first.
    - ``"keep-ratio"``: :class:`ResizeShortestKeepRatio` (``min_size``, ``max_size``; ``size``
      is unused); training adds the flip and, if ``min_size`` is a sequence, multi-scale.
    - ``"jitter"``: training is flip + :class:`ScaleJitter` (``min_scale``..``max_scale``, crop
      to ``size×size``); evaluation is :class:`ResizeLongestAndPad` to ``size`` (the jitter
      with scale 1 and no crop).

    - ``"official"``: :class:`OfficialResize` to ``size`` (the published Fashionpedia models'
      input, for ``architecture="official"`` models); training adds the flip first.

    ``crop_size`` > 0 adds a :class:`RandomCrop` of that size after the resize in training
    (evaluation sees whole images).
    """
    flip: list[Transform] = [RandomHorizontalFlip(flip_p)] if train and flip_p > 0 else []
    crop: list[Transform] = [RandomCrop(crop_size)] if train and crop_size > 0 else []
    if kind == "paper":
        return Compose([*flip, ResizeLongestAndPad(size), *crop])
    if kind == "keep-ratio":
        return Compose([*flip, ResizeShortestKeepRatio(min_size, max_size, train=train), *crop])
    if kind == "jitter":
        if train:
            return Compose([*flip, ScaleJitter(min_scale, max_scale, size), *crop])
        return Compose([ResizeLongestAndPad(size)])
    if kind == "official":
        return Compose([*flip, OfficialResize(size), *crop])
    raise ValueError(f"unknown transform kind {kind!r} (choose 'paper', 'keep-ratio', 'jitter' "
                     "or 'official')")
