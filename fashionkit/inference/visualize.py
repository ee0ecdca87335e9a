"""Pictures of predictions, after the Fashionpedia paper's figures.

- :func:`draw_overlay` (Fig. 8): each item's mask in its own colour, its box, a tag with the
  category name and score, and its top attributes.
- :func:`draw_supercategories` (Fig. 9): masks coloured by super category (upperbody,
  lowerbody, wholebody, …), with a legend of the super categories present.
- :func:`cutouts` (Fig. 7): one transparent RGBA image per item, cropped to its mask.
- :func:`save_visuals`: all three for one photo, as PNG files.

Inputs are a :class:`~fashionkit.inference.prediction.Prediction` and the photo's ``H×W×3
uint8`` RGB pixels (by default the photo the prediction kept). Outputs are PIL images of the
photo's size, except that a photo whose shorter side is under ``min_side`` (default
:data:`MIN_SIDE`, 512 px) is drawn enlarged by the smallest whole factor that reaches it
(photo bicubic, masks and boxes by the same factor): fonts and lines are sized to the figure,
so on a 160-px photo the tags would otherwise cover most of it. Cut-outs carry no text and
keep the photo's pixels (the mask's bounding box). Drawing uses PIL only.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fashionkit.inference.prediction import DetectedItem, Prediction

__all__ = [
    "MIN_SIDE",
    "SUPERCATEGORY_COLORS",
    "cutouts",
    "draw_overlay",
    "draw_supercategories",
    "item_color",
    "save_visuals",
]

# One fixed colour per Fashionpedia super category, so figures compare across photos.
SUPERCATEGORY_COLORS: dict[str, tuple[int, int, int]] = {
    "upperbody": (230, 25, 75),
    "lowerbody": (0, 130, 200),
    "wholebody": (245, 130, 48),
    "legs and feet": (60, 180, 75),
    "head": (145, 30, 180),
    "neck": (70, 240, 240),
    "arms and hands": (240, 50, 230),
    "waist": (210, 245, 60),
    "others": (128, 128, 0),
    "garment parts": (255, 225, 25),
    "closures": (0, 128, 128),
    "decorations": (170, 110, 40),
}
_FALLBACK_COLOR = (128, 128, 128)
# Figures of smaller photos are drawn enlarged to this shorter side (see the module docstring).
MIN_SIDE = 512
_MASK_ALPHA = 0.45
_TAG_PAD = 3


def item_color(index: int) -> tuple[int, int, int]:
    """A distinct saturated colour for item ``index`` (golden-ratio hue steps)."""
    hue = (0.13 + index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _pixels(prediction: Prediction, pixels: np.ndarray | None) -> np.ndarray:
    if pixels is None:
        if prediction.photo is None:
            raise ValueError(f"{prediction.name}: the prediction holds no photo; pass pixels")
        pixels = prediction.photo.pixels
    if pixels.shape[:2] != tuple(prediction.image_size):
        raise ValueError(f"{prediction.name}: pixels are {pixels.shape[:2]} but the prediction "
                         f"is for {prediction.image_size}")
    return pixels


def _enlargement(size: tuple[int, int], min_side: int) -> int:
    """The whole factor that brings the shorter side of ``(H, W)`` to at least ``min_side``."""
    return max(1, math.ceil(min_side / max(1, min(size))))


def _enlarge(pixels: np.ndarray, factor: int) -> np.ndarray:
    """``pixels`` ``H×W×3`` resized to ``factor`` times its size (bicubic)."""
    if factor == 1:
        return pixels
    h, w = pixels.shape[:2]
    return np.asarray(Image.fromarray(pixels).resize((w * factor, h * factor),
                                                     Image.Resampling.BICUBIC))


def _edges(mask: np.ndarray, width: int) -> np.ndarray:
    """The mask's boundary band, ``width`` pixels wide inside the mask."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def _paint(canvas: np.ndarray, mask: np.ndarray, color: tuple[int, int, int],
           line: int) -> None:
    """Blend ``color`` into ``canvas`` (float ``H×W×3``) over the mask, solid at its edge."""
    rgb = np.asarray(color, np.float32)
    canvas[mask] = canvas[mask] * (1 - _MASK_ALPHA) + rgb * _MASK_ALPHA
    canvas[_edges(mask, line)] = rgb


def _scale(size: tuple[int, int]) -> tuple[int, int]:
    """Font size and line width that read well on a photo of ``(H, W)``."""
    short = min(size)
    return max(11, round(short / 38)), max(1, round(short / 300))


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luminance > 150 else (255, 255, 255)


def _tag_size(draw: ImageDraw.ImageDraw, lines: Sequence[tuple[str, Font]]
              ) -> tuple[float, float, list[tuple[float, float]]]:
    """Width and height of a label box of ``(text, font)`` lines, and per line its height
    and the text's top offset."""
    rows = []
    width = 0.0
    for text, font in lines:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        width = max(width, right - min(0, left))
        rows.append((bottom - top, top))
    return width + 2 * _TAG_PAD, sum(h for h, _ in rows) + _TAG_PAD * (len(lines) + 1), rows


def _place(anchor: tuple[float, float], size: tuple[float, float], bounds: tuple[int, int],
           taken: list[tuple[float, float, float, float]]) -> tuple[float, float]:
    """Top-left of a label of ``size`` for a box whose top-left corner is ``anchor``: just
    above the corner (inside the box when there is no room above), moved down past labels
    already placed that it would cover."""
    width, height = size
    h, w = bounds
    x = min(max(0.0, anchor[0]), max(0.0, w - width))
    y = anchor[1] - height if anchor[1] - height >= 0 else anchor[1]
    for _ in range(len(taken)):
        hit = next((t for t in taken if x < t[2] and t[0] < x + width and y < t[3]
                    and t[1] < y + height), None)
        if hit is None:
            break
        y = hit[3]
    return x, min(y, max(0.0, h - height))


def _by_area(items: list[DetectedItem], factor: int = 1) -> list[tuple[DetectedItem, np.ndarray]]:
    """Items with their decoded masks (each pixel repeated ``factor`` × ``factor`` times),
    largest first, so small parts are painted on top."""
    decoded = [(item, item.mask_array()) for item in items]
    if factor > 1:
        decoded = [(item, mask.repeat(factor, axis=0).repeat(factor, axis=1))
                   for item, mask in decoded]
    return sorted(decoded, key=lambda pair: -int(pair[1].sum()))


def draw_overlay(prediction: Prediction, pixels: np.ndarray | None = None, *,
                 max_attributes: int = 2, min_side: int = MIN_SIDE) -> Image.Image:
    """Fig. 8: masks (one colour per item), boxes, ``"name score"`` tags and up to
    ``max_attributes`` top attributes per item, on the photo (RGB, the photo's size, or
    enlarged to ``min_side``: see the module docstring)."""
    pixels = _pixels(prediction, pixels)
    factor = _enlargement(prediction.image_size, min_side)
    pixels = _enlarge(pixels, factor)
    size = (pixels.shape[0], pixels.shape[1])
    font_size, line = _scale(size)
    canvas = pixels.astype(np.float32)
    decoded = _by_area(prediction.items, factor)
    for item, mask in decoded:
        _paint(canvas, mask, item_color(item.index), line)
    image = Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = _font(font_size)
    small = _font(max(9, round(font_size * 0.75)))
    boxes = {item.index: (item.box[0] * factor, item.box[1] * factor, item.box[2] * factor,
                          item.box[3] * factor) for item in prediction.items}
    for item, _ in decoded:
        draw.rectangle(boxes[item.index], outline=item_color(item.index), width=line)
    # Best-scored labels are placed first (others make way for them) and drawn last.
    taken: list[tuple[float, float, float, float]] = []
    tags = []
    for item in sorted(prediction.items, key=lambda it: -it.score):
        lines = [(f"{item.short_name} {item.score:.2f}", font)]
        names = [a.name for a in item.attributes[:max_attributes]]
        if names:
            lines.append((", ".join(names), small))
        width, height, rows = _tag_size(draw, lines)
        x0, y0 = boxes[item.index][:2]
        x, y = _place((x0, y0), (width, height), size, taken)
        taken.append((x, y, x + width, y + height))
        tags.append((item, lines, rows, (x, y, x + width, y + height)))
    for item, lines, rows, rect in reversed(tags):
        color = item_color(item.index)
        draw.rectangle(rect, fill=color)
        ty = rect[1] + _TAG_PAD
        for (text, f), (th, top) in zip(lines, rows, strict=True):
            draw.text((rect[0] + _TAG_PAD, ty - top), text, fill=_text_color(color), font=f)
            ty += th + _TAG_PAD
    return image


def draw_supercategories(prediction: Prediction, pixels: np.ndarray | None = None, *,
                         min_side: int = MIN_SIDE) -> Image.Image:
    """Fig. 9: masks coloured by super category (:data:`SUPERCATEGORY_COLORS`) on the photo,
    and to its right a legend of the super categories present (RGB, the photo's height, or
    enlarged to ``min_side`` as in :func:`draw_overlay`; the width grows by the legend's)."""
    pixels = _pixels(prediction, pixels)
    factor = _enlargement(prediction.image_size, min_side)
    pixels = _enlarge(pixels, factor)
    font_size, line = _scale((pixels.shape[0], pixels.shape[1]))
    canvas = pixels.astype(np.float32)
    present: dict[str, tuple[int, int, int]] = {}
    for item, mask in _by_area(prediction.items, factor):
        color = SUPERCATEGORY_COLORS.get(item.supercategory, _FALLBACK_COLOR)
        present.setdefault(item.supercategory, color)
        _paint(canvas, mask, color, line)
    photo = Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))
    font = _font(font_size)
    measure = ImageDraw.Draw(photo)
    order = [s for s in SUPERCATEGORY_COLORS if s in present] + sorted(
        s for s in present if s not in SUPERCATEGORY_COLORS)
    labels = order or ["no items"]
    top = measure.textbbox((0, 0), "Ag", font=font)
    text_h = round(top[3] - top[1])
    pad = max(4, font_size // 2)
    width = int(max(measure.textlength(s, font=font) for s in labels)) + text_h + 3 * pad
    height = max(photo.height, len(labels) * (text_h + pad) + pad)
    image = Image.new("RGB", (photo.width + width, height), (255, 255, 255))
    image.paste(photo, (0, 0))
    draw = ImageDraw.Draw(image)
    x, y = photo.width + pad, pad
    for name in labels:
        if name in present:
            draw.rectangle((x, y, x + text_h, y + text_h), fill=present[name], outline=(0, 0, 0))
        draw.text((x + text_h + pad, y - top[1]), name, fill=(0, 0, 0), font=font)
        y += text_h + pad
    return image


def cutouts(prediction: Prediction, pixels: np.ndarray | None = None
            ) -> list[tuple[DetectedItem, Image.Image]]:
    """Fig. 7: per item, an RGBA image cropped to its mask's bounding box, transparent
    outside the mask. Items with an empty mask are left out."""
    pixels = _pixels(prediction, pixels)
    out = []
    for item in prediction.items:
        mask = item.mask_array()
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        rgba = np.dstack([pixels[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(np.uint8) * 255])
        out.append((item, Image.fromarray(rgba, "RGBA")))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def save_visuals(prediction: Prediction, out_dir: str | Path, stem: str,
                 pixels: np.ndarray | None = None, *, max_attributes: int = 2,
                 min_side: int = MIN_SIDE) -> list[Path]:
    """Write ``{stem}_overlay.png`` (Fig. 8), ``{stem}_supercategories.png`` (Fig. 9) and
    ``{stem}_items/{index:03d}_{name}.png`` (Fig. 7) under ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / f"{stem}_overlay.png"
    draw_overlay(prediction, pixels, max_attributes=max_attributes, min_side=min_side).save(path)
    written.append(path)
    path = out / f"{stem}_supercategories.png"
    draw_supercategories(prediction, pixels, min_side=min_side).save(path)
    written.append(path)
    items = cutouts(prediction, pixels)
    if items:
        folder = out / f"{stem}_items"
        folder.mkdir(exist_ok=True)
        for item, image in items:
            path = folder / f"{item.index:03d}_{_slug(item.short_name)}.png"
            image.save(path)
            written.append(path)
    return written
