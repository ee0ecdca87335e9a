"""An appearance embedding of one item in one photo, from a detector's own features.

:class:`ItemEmbedder` runs a detector's backbone + FPN once per photo, with the input recipe the
detector was trained with, and describes each item (its mask and box in the photo's pixels) by
eight blocks, each L2-normalised before they are weighted and concatenated:

- **features**: the FPN features under the item's mask, pooled (mask-weighted mean and standard
  deviation per channel) at the pyramid level the item's size maps to — the same
  ``floor(4 + log2(sqrt(w·h) / canonical))`` rule the RoI heads use, so an item is described at
  the resolution the detector itself looks at it — and at the next finer level, for detail.
  Pooling over the mask instead of the box keeps the background and the garments around it out;
  mean and spread survive pose changes that a spatial RoI grid does not. Signed square root
  first, as for pooled CNN descriptors, so a few large channels do not dominate.
- **colour**: :func:`colour_descriptor` (the OkLab histogram that the wardrobe's duplicate check
  uses), square-rooted: the Hellinger map, under which a dot product is the Bhattacharyya
  coefficient of the two histograms.
- **texture**: magnitude-weighted histograms of OkLab lightness gradient orientations at two
  scales, the mean gradient energy at each, and the mean OkLab colour of the top, middle and
  bottom thirds of the item (where a stripe or a print sits).
- **fabric**: :func:`fabric_descriptor`, the weave's grain: how strongly the cloth's log
  luminance responds to small oriented filters, typically over the item (a denim's diagonal
  ribs, a wool's speckle, a linen's streaks), where the texture block sees the print's edges.
- **edges**: :func:`edge_colour_descriptor`, which colours meet at the item's sharp colour
  edges: a logo or a badge (its colour on its backing), a trim, a print's pairs of colours.
  A brand's mark is a few dozen pixels of a large garment, lost in a colour histogram of the
  whole; as a pair of colours that meet it keeps its own bins.
- **mark**: :func:`mark_descriptor`, the item's most prominent badge — a small patch of one
  colour that appears nowhere else on the item and stands out from what surrounds it — by its
  colour, proportions and how fully it fills its box. The edges block says which colours
  meet, but on a printed garment a mark's few pairs are a handful of dimensions among
  hundreds; a per-person tag probe with a dozen examples finds a brand's mark only when it
  has a view of its own.
- **weave** and **print**: :func:`~fashionkit.personal.surface.weave_descriptor` and
  :func:`~fashionkit.personal.surface.print_descriptor`, from one split of the item's pixels
  into its ground colour and its print. The fabric block measures the grain over the whole
  item, where a print's edges outweigh it; the weave block measures it on the ground alone. The
  print block is the geometry of the rest (how many shapes, how long, how solid, which way),
  so that a dot print in any two colours reads alike, where the edges and colour blocks see
  only its colours.

Both model architectures are supported: :class:`~fashionkit.modeling.AttributeMaskRCNN`
(torchvision FPN, levels ``config.fpn_levels``) and
:class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN` (official FPN, levels 3–5).
The raw embedding is generic; :class:`~fashionkit.personal.recognition.Gallery` adapts it to one
person's items.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from fashionkit.data.input_recipe import data_config_of
from fashionkit.errors import InvalidDataError, Problem
from fashionkit.inference.photos_dataset import input_transform_for
from fashionkit.modeling import model_from_checkpoint, read_checkpoint
from fashionkit.personal._inputs import check_photo_and_mask, check_photo_and_masks
from fashionkit.personal.surface import PRINT_DIMS, WEAVE_DIMS, print_descriptor, weave_descriptor
from fashionkit.wardrobe.colors import srgb_to_oklab
from fashionkit.wardrobe.ingest import appearance_descriptor

__all__ = ["EMBEDDING_VERSION", "ItemEmbedder", "colour_descriptor", "edge_colour_descriptor",
           "embedding_blocks", "embedding_dims", "fabric_descriptor", "mark_descriptor", "texture_descriptor"]

#: Names this module's recipe for embeddings; part of :attr:`ItemEmbedder.key`, so vectors
#: computed by another recipe are never compared with these.
EMBEDDING_VERSION = "fk-item-v5"

# Relative weights of the blocks in the concatenation (each block has unit norm first): the
# detector's features and the colour histogram are the two strong cues, texture a helper; the
# mark is six numbers that a hidden mark (an arm across it) sets to zero, so it weighs least,
# as do the weave and the print, which a tag probe reads on their own and which add little to
# telling one's items apart beyond the colour histogram and the detector's features.
_WEIGHTS = {"features": 1.0, "colour": 1.0, "texture": 0.7, "fabric": 0.5, "edges": 0.5,
            "mark": 0.25, "weave": 0.25, "print": 0.25}
_ORIENTATIONS = 8
_TEXTURE_DIMS = 2 * _ORIENTATIONS + 2 + 9
_COLOUR_DIMS = 6**3
# Scales (pixels) of the fabric filters: a weave's period is a few pixels in a phone photo of
# a person, a print's motif tens.
_FABRIC_SIGMAS = (1.0, 2.0, 4.0)
# Per scale: 4 oriented derivatives and a difference of Gaussians, two statistics each.
_FABRIC_DIMS = len(_FABRIC_SIGMAS) * 5 * 2
# Fewest interior pixels a scale's statistics are taken over (else a less eroded region).
_FABRIC_MIN_PIXELS = 20
# The edges block's colour bins: achromatic pixels (OkLab chroma below _EDGE_GREY_CHROMA) by
# lightness in _EDGE_GREYS levels, the others by hue in _EDGE_HUES sectors times
# _EDGE_LIGHTNESS levels; a pair of different bins is one of the block's dimensions.
_EDGE_GREYS, _EDGE_HUES, _EDGE_LIGHTNESS = 4, 8, 3
_EDGE_GREY_CHROMA = 0.05
_EDGE_BINS = _EDGE_GREYS + _EDGE_HUES * _EDGE_LIGHTNESS
_EDGE_DIMS = _EDGE_BINS * (_EDGE_BINS - 1) // 2
# Two pixels this far apart (along rows, columns and both diagonals) are compared...
_EDGE_STEP = 2
# ... and count as an edge when their OkLab colours differ by more than this: a seam, a print's
# outline or a logo, not a weave's shading or the sensor's noise.
_EDGE_CONTRAST = 0.15
_EDGE_PAIR_INDEX = np.full((_EDGE_BINS, _EDGE_BINS), -1, np.int64)
_rows, _cols = np.triu_indices(_EDGE_BINS, 1)
_EDGE_PAIR_INDEX[_rows, _cols] = _EDGE_PAIR_INDEX[_cols, _rows] = np.arange(_EDGE_DIMS)
del _rows, _cols
# The mark block: found (1 or 0), the mark's mean OkLab L, a, b, log of its box's long side over
# its short side, and the share of its box it fills.
_MARK_DIMS = 6
# A mark is at least this many pixels, and at most this share of the item (a shoe's badge is a
# fifth of it; a patch larger than that is a panel, not a mark).
_MARK_MIN_PIXELS = 3
_MARK_MAX_SHARE = 0.3
# Of all the item's pixels of its colour (within _MARK_ALIKE in OkLab), the mark holds at least
# this share: a print's dots or flowers repeat, a mark does not.
_MARK_UNIQUE = 0.5
_MARK_ALIKE = 0.1
# The median OkLab distance of the pixels around it (within 2 px) from its colour: a mark is
# meant to be seen.
_MARK_CONTRAST = 0.2
# At least this share of those surrounding pixels lie on the item (a patch cut by the item's
# outline is a gap between garments as often as a mark).
_MARK_INSIDE = 0.5
_MARK_RING = 2
# ... and fills at least this share of its box: a logo is a solid shape (a triangle or a cross
# fills half of it), a thread of pixels along a print's edge is not.
_MARK_MIN_FILL = 0.3
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
# The blocks after the detector's features, in their order in the embedding, and their sizes.
_BLOCK_DIMS = {"colour": _COLOUR_DIMS, "texture": _TEXTURE_DIMS, "fabric": _FABRIC_DIMS,
               "edges": _EDGE_DIMS, "mark": _MARK_DIMS, "weave": WEAVE_DIMS, "print": PRINT_DIMS}


def embedding_blocks(dims: int) -> dict[str, slice]:
    """The columns of each block (``"features"``, ``"colour"``, ``"texture"``, ``"fabric"``,
    ``"edges"``, ``"mark"``, ``"weave"``, ``"print"``, in this order) of an embedding of
    ``dims`` dimensions made by :class:`ItemEmbedder`: the other blocks have fixed sizes, the
    features block is the rest (4 × the detector's FPN channels).
    The tag probes look at one block at a time (:class:`~fashionkit.personal.tags.TagModel`).

    Raises :class:`~fashionkit.errors.InvalidDataError` for a length no embedder makes."""
    features = dims - sum(_BLOCK_DIMS.values())
    if features <= 0 or features % 4:
        raise InvalidDataError([Problem("embeddings", "array", f"{dims} dimensions is not an "
                                        "item embedding's length (4 × FPN channels + "
                                        + " + ".join(map(str, _BLOCK_DIMS.values())) + ")")])
    blocks = {"features": slice(0, features)}
    start = features
    for name, size in _BLOCK_DIMS.items():
        blocks[name] = slice(start, start + size)
        start += size
    return blocks


def embedding_dims(fpn_channels: int) -> int:
    """The length of the embeddings :class:`ItemEmbedder` makes with a detector of
    ``fpn_channels`` FPN channels: the features block (4 × channels) and the fixed-size rest."""
    return 4 * int(fpn_channels) + sum(_BLOCK_DIMS.values())


def colour_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The wardrobe's duplicate-check descriptor of one item: the normalised OkLab colour
    histogram (216 bins, sums to 1) of the photo's pixels under ``mask`` (H×W bool), i.e.
    :func:`~fashionkit.wardrobe.ingest.appearance_descriptor` of the item's cut-out.
    ``photo``: H×W×3 uint8 RGB."""
    check_photo_and_mask(photo, mask)
    rgba = np.concatenate([photo, (mask.astype(np.uint8) * 255)[..., None]], axis=2)
    return appearance_descriptor(rgba).astype(np.float32)


def _gradient_histogram(lightness: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    if min(lightness.shape) < 2:  # one row or column of pixels: no gradient to describe
        return np.zeros(_ORIENTATIONS), 0.0
    gy, gx = np.gradient(lightness)
    magnitude = np.hypot(gx, gy)[mask]
    angle = np.mod(np.arctan2(gy, gx), np.pi)[mask]  # orientation, not direction
    bins = np.minimum((angle / np.pi * _ORIENTATIONS).astype(int), _ORIENTATIONS - 1)
    hist = np.bincount(bins, weights=magnitude, minlength=_ORIENTATIONS)
    total = float(magnitude.sum())
    return (hist / total if total > 0 else hist), float(magnitude.mean()) if len(magnitude) else 0.0


def texture_descriptor(photo: np.ndarray, mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A small texture and layout descriptor (27 floats) of the item under ``mask`` (H×W
    bool) in ``box`` (XYXY photo pixels): lightness-gradient orientation histograms at full
    and half resolution (8 + 8), the mean gradient magnitude at each (2), and the mean OkLab
    colour of the top, middle and bottom thirds of the masked box (9)."""
    h, w = mask.shape
    x0, y0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x1, y1 = min(max(int(math.ceil(box[2])), x0 + 1), w), min(max(int(math.ceil(box[3])), y0 + 1), h)
    crop_mask = mask[y0:y1, x0:x1]
    if not crop_mask.any():  # a box that misses its mask: describe the whole mask
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop_mask = mask[y0:y1, x0:x1]
    crop = photo[y0:y1, x0:x1]
    lab = srgb_to_oklab(crop.reshape(-1, 3)).reshape(crop.shape).astype(np.float64)
    fine, fine_energy = _gradient_histogram(lab[..., 0], crop_mask)
    hh, ww = (crop.shape[0] // 2) * 2, (crop.shape[1] // 2) * 2
    if hh >= 4 and ww >= 4:
        half = lab[:hh, :ww, 0].reshape(hh // 2, 2, ww // 2, 2).mean(axis=(1, 3))
        half_mask = np.asarray(crop_mask[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2).all(axis=(1, 3)))
        coarse, coarse_energy = (_gradient_histogram(half, half_mask) if half_mask.any()
                                 else (np.zeros(_ORIENTATIONS), 0.0))
    else:
        coarse, coarse_energy = np.zeros(_ORIENTATIONS), 0.0
    thirds = []
    rows = np.array_split(np.arange(crop.shape[0]), 3)
    for r in rows:
        band = crop_mask[r] if len(r) else np.zeros((0, crop.shape[1]), bool)
        pixels = lab[r][band] if len(r) else np.zeros((0, 3))
        thirds.append(pixels.mean(axis=0) if len(pixels) else lab[crop_mask].mean(axis=0))
    return np.concatenate([fine, coarse, [fine_energy * 10, coarse_energy * 10],
                           np.concatenate(thirds)]).astype(np.float32)


def fabric_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The weave of the item under ``mask`` (H×W bool) in ``photo`` (H×W×3 uint8 RGB), 30
    floats: at each scale of 1, 2 and 4 pixels, Gaussian derivatives of the log luminance along
    x, y and both diagonals, and a difference of Gaussians (σ, 2σ); for each, the log of the
    median and of the 80th percentile of its magnitude over the mask's interior (eroded by
    2 + 2σ pixels, so the item's outline stays out).

    Log luminance, because a weave modulates the light the cloth reflects: its ribs read much
    the same on a dark and a light fabric (on a very dark one the sensor's noise is as strong),
    and a gentle shading across the item is no texture.
    The median and a high percentile rather than the mean, because a print's sharp edges are
    few and strong while a weave's grain is everywhere and faint."""
    check_photo_and_mask(photo, mask)
    ys, xs = np.nonzero(mask)
    margin = int(math.ceil(8 * _FABRIC_SIGMAS[-1]))  # the widest filter's reach, off the cut
    y0, x0 = max(int(ys.min()) - margin, 0), max(int(xs.min()) - margin, 0)
    y1, x1 = int(ys.max()) + margin + 1, int(xs.max()) + margin + 1
    rgb = photo[y0:y1, x0:x1].astype(np.float32) / np.float32(255.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    image = np.log(linear @ np.array([0.2126, 0.7152, 0.0722], np.float32) + np.float32(0.01))
    region = mask[y0:y1, x0:x1]
    out = []
    for sigma in _FABRIC_SIGMAS:
        inner = region
        for erosion in (int(2 + 2 * sigma), 2):
            eroded = ndimage.binary_erosion(region, iterations=erosion)
            if int(eroded.sum()) >= _FABRIC_MIN_PIXELS:
                inner = eroded
                break
        gx = ndimage.gaussian_filter(image, sigma, order=(0, 1))
        gy = ndimage.gaussian_filter(image, sigma, order=(1, 0))
        dog = ndimage.gaussian_filter(image, sigma) - ndimage.gaussian_filter(image, 2 * sigma)
        # Derivatives scaled by σ: a response that does not grow or shrink with the scale.
        for response in (gx * sigma, gy * sigma, (gx + gy) * sigma / math.sqrt(2),
                         (gx - gy) * sigma / math.sqrt(2), dog):
            median, high = np.quantile(np.abs(response[inner]), (0.5, 0.8))
            out += [math.log(float(median) + 1e-4), math.log(float(high) + 1e-4)]
    return np.asarray(out, np.float32)


def _edge_bins(lab: np.ndarray) -> np.ndarray:
    """The edges block's colour bin (0 … ``_EDGE_BINS`` − 1) of each OkLab pixel (…×3)."""
    lightness = np.clip(lab[..., 0], 0.0, 1.0 - 1e-9)
    hue = (np.arctan2(lab[..., 2], lab[..., 1]) + np.pi) / (2 * np.pi)
    grey = (lightness * _EDGE_GREYS).astype(np.int64)
    colour = _EDGE_GREYS + np.minimum((hue * _EDGE_HUES).astype(np.int64), _EDGE_HUES - 1) \
        * _EDGE_LIGHTNESS + (lightness * _EDGE_LIGHTNESS).astype(np.int64)
    return np.where(np.hypot(lab[..., 1], lab[..., 2]) < _EDGE_GREY_CHROMA, grey, colour)


def edge_colour_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which colours meet at the sharp colour edges inside the item under ``mask`` (H×W bool)
    of ``photo`` (H×W×3 uint8 RGB): a colour-edge co-occurrence histogram, ``log(1 + count)``
    of each unordered pair of two different colour bins (28 bins: four greys by lightness,
    eight hues at three lightness levels; 378 pairs) over the pixel pairs
    ``_EDGE_STEP`` pixels apart along rows, columns and both diagonals, both inside the mask
    eroded by one pixel, whose OkLab colours (lightly smoothed, σ 0.7 pixels) differ by more
    than ``_EDGE_CONTRAST``.

    Counts rather than shares: a logo is the same few dozen pixel pairs on a small item and a
    large one, and a share of a large garment's edges would shrink it to nothing. The log,
    because a print's pairs run to thousands where a logo's are tens. The outline stays out
    (the erosion): what meets the item's edge is the background or the next garment."""
    check_photo_and_mask(photo, mask)
    ys, xs = np.nonzero(mask)
    y0, x0, y1, x1 = int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1
    region = mask[y0:y1, x0:x1]
    inner = ndimage.binary_erosion(region, iterations=1)
    if not inner.any():  # a sliver of an item: its pixels, outline and all
        inner = region
    crop = photo[y0:y1, x0:x1]
    lab = srgb_to_oklab(crop.reshape(-1, 3)).reshape(crop.shape)
    lab = ndimage.gaussian_filter(lab, (0.7, 0.7, 0.0))
    bins = _edge_bins(lab)
    h, w = inner.shape
    counts = np.zeros(_EDGE_DIMS)
    step = _EDGE_STEP
    for dy, dx in ((0, step), (step, 0), (step, step), (step, -step)):
        if dy >= h or abs(dx) >= w:
            continue
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        edge = inner[a] & inner[b] & (bins[a] != bins[b]) \
            & (np.linalg.norm(lab[a] - lab[b], axis=-1) > _EDGE_CONTRAST)
        pairs = _EDGE_PAIR_INDEX[bins[a][edge], bins[b][edge]]
        counts += np.bincount(pairs, minlength=_EDGE_DIMS)
    return np.log1p(counts).astype(np.float32)


def mark_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The item's most prominent mark under ``mask`` (H×W bool) of ``photo`` (H×W×3 uint8 RGB),
    as 6 float32 numbers: 1 (found), its mean OkLab L, a, b, ``log(long side / short side)`` of
    its box and the share of its box it fills; all zero when the item shows none.

    A mark is a 4-connected patch of one colour bin (the edges block's 28) of
    ``_MARK_MIN_PIXELS`` … ``_MARK_MAX_SHARE`` of the item's pixels that holds at least
    ``_MARK_UNIQUE`` of the item's pixels of its colour (within ``_MARK_ALIKE``; a print
    repeats, a logo does not), whose
    surrounding pixels (within ``_MARK_RING``) mostly lie on the item and differ from its colour
    by a median OkLab distance of at least ``_MARK_CONTRAST``, and that encloses nothing (a
    patch around another is the mark's backing, the frame of a badge). Of several, the one with the
    highest contrast times fill: a badge is a solid shape, a gap between two stripes is not.
    The colour is the measured one, not the bin, so a mark's identity survives a bin border.
    """
    check_photo_and_mask(photo, mask)
    ys, xs = np.nonzero(mask)
    pad = _MARK_RING + 2
    y0, x0 = max(0, int(ys.min()) - pad), max(0, int(xs.min()) - pad)
    y1 = min(mask.shape[0], int(ys.max()) + 1 + pad)
    x1 = min(mask.shape[1], int(xs.max()) + 1 + pad)
    region = mask[y0:y1, x0:x1]
    crop = photo[y0:y1, x0:x1]
    lab = srgb_to_oklab(crop.reshape(-1, 3)).reshape(crop.shape)
    bins = _edge_bins(lab)
    on_item_lab = lab[region]
    largest = max(_MARK_MIN_PIXELS, int(_MARK_MAX_SHARE * len(on_item_lab)))
    best, best_score = np.zeros(_MARK_DIMS, np.float32), 0.0
    for b in np.unique(bins[region]):
        labels, _ = ndimage.label((bins == b) & region, structure=_FOUR_CONNECTED)
        sizes = np.bincount(labels.ravel())[1:]
        boxes = ndimage.find_objects(labels)
        spans = np.array([(r.stop - r.start) * (c.stop - c.start) for r, c in boxes])
        for k in np.flatnonzero((sizes >= _MARK_MIN_PIXELS) & (sizes <= largest)
                                & (sizes >= _MARK_MIN_FILL * spans)):
            rows, cols = boxes[k]
            near = (slice(max(0, rows.start - _MARK_RING - 1), rows.stop + _MARK_RING + 1),
                    slice(max(0, cols.start - _MARK_RING - 1), cols.stop + _MARK_RING + 1))
            patch = labels[near] == k + 1
            if ndimage.binary_fill_holes(patch).sum() - sizes[k] >= _MARK_MIN_PIXELS:
                continue  # a frame around something: a mark's backing, not the mark
            ring = ndimage.binary_dilation(patch, _FOUR_CONNECTED, _MARK_RING) & ~patch
            on_item = region[near][ring]
            if on_item.mean() < _MARK_INSIDE:
                continue
            colour = lab[near][patch].mean(axis=0)
            contrast = float(np.median(np.linalg.norm(lab[near][ring][on_item] - colour,
                                                      axis=1)))
            h, w = rows.stop - rows.start, cols.stop - cols.start
            fill = float(sizes[k]) / spans[k]
            if contrast < _MARK_CONTRAST or contrast * fill <= best_score:
                continue
            alike = int((np.linalg.norm(on_item_lab - colour, axis=1) < _MARK_ALIKE).sum())
            if sizes[k] < _MARK_UNIQUE * alike:
                continue  # its colour recurs on the item: a print, not a mark
            best_score = contrast * fill
            best = np.array([1.0, *colour, math.log(max(h, w) / min(h, w)), fill], np.float32)
    return best


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class ItemEmbedder:
    """Embeds items of a photo with a detector's features (module docstring).

    ``model``: an :class:`~fashionkit.modeling.AttributeMaskRCNN` or
    :class:`~fashionkit.modeling.official.OfficialAttributeMaskRCNN` (put in eval mode);
    ``recipe``: its input recipe (a ``Recipe``, ``DataConfig`` or stored recipe dict; ``None``:
    the default of :func:`~fashionkit.inference.photos_dataset.input_transform_for`).

    :attr:`dims` is the embedding's length; :attr:`key` names the model (a digest of its
    weights) and :data:`EMBEDDING_VERSION`: store it beside vectors, and compare only vectors
    of one key.
    """

    def __init__(self, model: torch.nn.Module, recipe: Any = None, *,
                 device: str | torch.device = "cpu"):
        config = getattr(model, "config", None)
        if config is None or not hasattr(model, "backbone"):
            raise TypeError(f"model must be an AttributeMaskRCNN or OfficialAttributeMaskRCNN, "
                            f"not {type(model).__name__}")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.config = config
        self.official = config.architecture == "official"
        self.transform = input_transform_for(config, data_config_of(recipe))
        self.levels = tuple(int(k) for k in config.fpn_levels)
        self.canonical = float(config.roi_canonical_scale)
        self.dims = embedding_dims(config.fpn_channels)
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        self.key = f"{EMBEDDING_VERSION}:{config.architecture}-{config.backbone}:" \
                   f"{digest.hexdigest()[:16]}"

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu"
                        ) -> ItemEmbedder:
        """The embedder of a fashionkit checkpoint (its weights and stored recipe)."""
        data = read_checkpoint(path)
        return cls(model_from_checkpoint(data, path), data.get("recipe"), device=device)

    def __repr__(self) -> str:
        return f"ItemEmbedder(key={self.key!r}, dims={self.dims})"

    # -- the detector's features --------------------------------------------------------------
    def _features(self, photo: np.ndarray) -> tuple[dict[int, torch.Tensor], float,
                                                     tuple[int, int]]:
        """FPN features by level (``C×h×w`` each), photo→model-input pixel factor, and the
        padded model-input canvas ``(H, W)``."""
        image = torch.from_numpy(np.array(photo, copy=True)).permute(2, 0, 1)  # owned, writable
        scale = 1.0
        if self.transform is not None:
            target = {"masks": torch.zeros((0, *photo.shape[:2]), dtype=torch.uint8),
                      "scale": torch.tensor(1.0, dtype=torch.float32)}
            image, target = self.transform(image, target, None)
            scale = float(target["scale"])
        x = (image.float().div_(255.0) if image.dtype == torch.uint8 else image.float())
        x = x.to(self.device)
        model: Any = self.model  # either architecture: their stages differ (module docstring)
        with torch.inference_mode():
            if self.official:
                pre = model.preprocess([x])
                raw = model.backbone(pre.images)
                features = {lv: raw[lv][0] for lv in self.levels}
                canvas = tuple(pre.images.shape[-2:])
            else:
                batch, _ = model.transform([x])
                raw = model.backbone(batch.tensors)
                h_in = batch.image_sizes[0][0]
                scale *= h_in / x.shape[-2]  # the model's own resize, when it has one
                features = {lv: raw[str(i)][0] for i, lv in enumerate(self.levels)}
                canvas = tuple(batch.tensors.shape[-2:])
        return features, scale, (int(canvas[0]), int(canvas[1]))

    def _pooled(self, features: dict[int, torch.Tensor], scale: float, canvas: tuple[int, int],
                masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        n, h, w = masks.shape
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        soft = torch.from_numpy(masks).float()[None]
        soft = F.interpolate(soft, size=size, mode="area")[0] if size != (h, w) else soft[0]
        soft = F.pad(soft, (0, max(0, canvas[1] - size[1]), 0, max(0, canvas[0] - size[0])))
        soft = soft[:, :canvas[0], :canvas[1]].to(self.device)
        lo, hi = self.levels[0], self.levels[-1]
        sides = np.sqrt(np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
                        * np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)) * scale
        out = np.zeros((n, 4 * int(self.config.fpn_channels)), np.float32)
        weights_at: dict[int, torch.Tensor] = {}
        for i in range(n):
            level = int(np.clip(math.floor(4 + math.log2(sides[i] / self.canonical + 1e-8)),
                                lo, hi))
            pair = (level - 1, level) if level > lo else (level, min(level + 1, hi))
            parts = []
            for lv in pair:
                fmap = features[lv]
                if lv not in weights_at:
                    weights_at[lv] = F.interpolate(soft[None], size=tuple(fmap.shape[-2:]),
                                                   mode="area")[0]
                wgt = weights_at[lv][i]
                total = wgt.sum()
                if float(total) <= 0:  # a mask smaller than the padding cut: use its box
                    wgt = torch.ones_like(wgt)
                    total = wgt.sum()
                wgt = wgt / total
                mean = (fmap * wgt).sum(dim=(1, 2))
                var = (((fmap - mean[:, None, None]) ** 2) * wgt).sum(dim=(1, 2))
                parts += [mean, var.clamp_min(0).sqrt()]
            vec = torch.cat(parts).float().cpu().numpy()
            out[i] = np.sign(vec) * np.sqrt(np.abs(vec))
        return out

    # -- public ---------------------------------------------------------------------------------
    def embed(self, photo: np.ndarray, masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``N×D`` float32 L2-normalised embeddings (``D`` = :attr:`dims`) of the ``N`` items
        of ``photo`` (H×W×3 uint8 RGB) with ``masks`` (N×H×W bool, the photo's pixels) and
        ``boxes`` (N×4 XYXY photo pixels). One backbone pass for all of them.

        Raises :class:`~fashionkit.errors.InvalidDataError` for a photo that is not H×W×3
        uint8, masks of another size or count than the boxes, an empty mask or NaN boxes."""
        masks = masks.astype(bool, copy=False) if isinstance(masks, np.ndarray) else masks
        boxes = np.asarray(boxes, np.float64) if boxes is not None else boxes
        check_photo_and_masks(photo, masks, boxes)
        if masks.shape[0] == 0:
            return np.zeros((0, self.dims), np.float32)
        features, scale, canvas = self._features(photo)
        pooled = self._pooled(features, scale, canvas, masks, boxes)
        out = np.zeros((masks.shape[0], self.dims), np.float32)
        for i in range(masks.shape[0]):
            colour = np.sqrt(colour_descriptor(photo, masks[i]))
            texture = texture_descriptor(photo, masks[i], boxes[i])
            fabric = fabric_descriptor(photo, masks[i])
            edges = edge_colour_descriptor(photo, masks[i])
            mark = mark_descriptor(photo, masks[i])
            weave = weave_descriptor(photo, masks[i])
            printed = print_descriptor(photo, masks[i])
            out[i] = _unit(np.concatenate([
                _WEIGHTS["features"] * _unit(pooled[i]),
                _WEIGHTS["colour"] * _unit(colour),
                _WEIGHTS["texture"] * _unit(texture),
                _WEIGHTS["fabric"] * _unit(fabric),
                _WEIGHTS["edges"] * _unit(edges),
                _WEIGHTS["mark"] * _unit(mark),
                _WEIGHTS["weave"] * _unit(weave),
                _WEIGHTS["print"] * _unit(printed),
            ]))
        return out
