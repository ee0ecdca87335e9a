"""Detections mapped back to the photo's own pixels: the one rule every caller uses.

The model predicts in the frame it ran at (after the input recipe's resize-and-pad and the
model's own resize). :func:`boxes_to_photo` takes boxes from that frame to the photo;
:func:`paste_masks` / :func:`paste_masks_as_rles` paste the ``M×M`` mask probabilities into
the photo's pixels at those boxes and threshold once, with torchvision's
``paste_masks_in_image`` semantics (one-pixel padding of the mask, the box expanded to match,
bilinear resize to the box, clipped to the image). Pasting probabilities at the photo's
resolution, rather than resizing masks thresholded at the model's input size, keeps the
edges the mask head predicted when photos are larger than the input.

Training-time validation (``AttributeMaskRCNN.predict(original_sizes=..., scales=...)``), the
:class:`~fashionkit.inference.Predictor` and the exported backends all go through these
functions, so the AP logged during training and the AP of ``detect`` + ``evaluate`` come from
the same masks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torch import Tensor
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

__all__ = ["boxes_to_photo", "paste_masks", "paste_masks_as_rles"]


def boxes_to_photo(boxes: Tensor, model_size: tuple[int, int], input_size: tuple[int, int],
                   photo_size: tuple[int, int], scale: float = 1.0) -> Tensor:
    """``N×4`` XYXY boxes in the pixels the model ran at → the photo's pixels, clipped to it.

    ``model_size``: ``(H, W)`` the model ran at (after its own resize, before batch padding);
    ``input_size``: ``(H, W)`` of the image given to the model (after the input recipe);
    ``scale``: input pixels per photo pixel (the recipe's resize; padding is right/bottom, so
    it needs no offset); ``photo_size``: ``(H, W)`` of the photo. Returns float32."""
    fx = input_size[1] / model_size[1] / float(scale)
    fy = input_size[0] / model_size[0] / float(scale)
    out = boxes.float() * torch.tensor([fx, fy, fx, fy], device=boxes.device)
    out[:, 0::2] = out[:, 0::2].clamp(0, photo_size[1])
    out[:, 1::2] = out[:, 1::2].clamp(0, photo_size[0])
    return out


def _pasted(probs: Tensor, boxes: Tensor, image_size: tuple[int, int], threshold: float
            ) -> Iterator[tuple[tuple[int, int, int, int], Tensor]]:
    """Per mask: the ``(x0, y0, x1, y1)`` window of the image it covers (end exclusive) and
    its bool pixels there. Each mask is resized only to its own box, so memory stays that of
    one box, not ``N`` full-size float images."""
    if threshold <= 0:
        raise ValueError("threshold must be > 0 (pixels outside every box are 0)")
    if probs.ndim != 4 or probs.shape[1] != 1 or boxes.shape != (probs.shape[0], 4):
        raise ValueError(f"expected N×1×M×M probabilities and N×4 boxes, got "
                         f"{tuple(probs.shape)} and {tuple(boxes.shape)}")
    if probs.shape[0] == 0:
        return
    h, w = image_size
    padded, scale = expand_masks(probs.float(), padding=1)
    int_boxes = expand_boxes(boxes.float(), scale).to(torch.int64).tolist()
    for mask, (x0, y0, x1, y1) in zip(padded, int_boxes, strict=True):
        bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = F.interpolate(mask[None], size=(bh, bw), mode="bilinear",
                                align_corners=False)[0, 0]
        cx0, cx1 = max(x0, 0), min(x1 + 1, w)
        cy0, cy1 = max(y0, 0), min(y1 + 1, h)
        if cx1 > cx0 and cy1 > cy0:
            region = resized[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] >= threshold
        else:
            region = torch.zeros((0, 0), dtype=torch.bool)
        yield (cx0, cy0, cx1, cy1), region


def paste_masks(probs: Tensor, boxes: Tensor, image_size: tuple[int, int],
                threshold: float = 0.5) -> Tensor:
    """``N×1×M×M`` mask probabilities in their ``N×4`` XYXY boxes (image pixels) → bool
    ``N×H×W`` masks of ``image_size`` ``(H, W)``, cut at ``threshold`` (> 0): the pixels of
    torchvision's ``paste_masks_in_image(probs, boxes, image_size)[:, 0] >= threshold``."""
    h, w = image_size
    out = torch.zeros((probs.shape[0], h, w), dtype=torch.bool, device=probs.device)
    for k, ((x0, y0, x1, y1), region) in enumerate(_pasted(probs, boxes, image_size, threshold)):
        if region.numel():
            out[k, y0:y1, x0:x1] = region
    return out


def paste_masks_as_rles(probs: Tensor, boxes: Tensor, image_size: tuple[int, int],
                        threshold: float = 0.5) -> list[dict]:
    """The masks of :func:`paste_masks` as ``N`` compressed RLEs (``{"size": [H, W],
    "counts": str}``), written one at a time into a one-byte Fortran-order canvas that
    pycocotools encodes in place (no ``N×H×W`` array)."""
    h, w = image_size
    canvas = np.zeros((h, w), dtype=np.uint8, order="F")
    out = []
    for (x0, y0, x1, y1), region in _pasted(probs, boxes, image_size, threshold):
        canvas.fill(0)
        if region.numel():
            canvas[y0:y1, x0:x1] = region.cpu().numpy()
        rle = mask_utils.encode(canvas)
        out.append({"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")})
    return out
