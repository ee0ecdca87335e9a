"""What an item's cloth shows once its print is told apart from its ground: the weave of the
ground colour, and the shapes the print's other colours make.

Both descriptors start from one split of the item's pixels (:func:`ground_colour`): the ground is
the item's most common colour and everything near it, the print is the rest. A weave is a faint
modulation of the ground's lightness that a print's sharp edges drown out when the two are
measured together; a print is a set of shapes (dots, flowers, stripes, a grid of checks, blobs of
camouflage) that reads the same in any colours. So the weave is measured on the ground alone, and
the print by the geometry of the rest, not its colours (the colour and edges blocks hold those).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from fashionkit.personal._inputs import check_photo_and_mask
from fashionkit.wardrobe.colors import srgb_to_oklab

__all__ = ["PRINT_DIMS", "WEAVE_DIMS", "ground_colour", "print_descriptor", "weave_descriptor"]

# OkLab lightness counts half in the colour distances of the split: shading across a piece and
# a weave's ribs change lightness by up to a fifth, a print's second colour is another colour.
_LIGHTNESS_WEIGHT = 0.5
# Pixels within this (weighted OkLab) distance of a colour are that colour; named fabric colours
# lie further apart than this, one colour's shading and weave within it.
_SAME_COLOUR = 0.09
# The mode of the colours is found on a grid of this step, then refined by a mean shift.
_MODE_BIN = 0.045
_MODE_STEPS = 3
# The print's colours: at most this many after the ground, each at least this share of the item.
_MAX_COLOURS = 3
_MIN_COLOUR_SHARE = 0.03
# The split is made on colours smoothed by this Gaussian (pixels): a weave's period is 3 pixels
# or more and fades; a print's motif is larger and stays.
_SPLIT_SIGMA = 1.0
# Fewest pixels a statistic is taken over (else a less eroded region).
_MIN_PIXELS = 30
# Print shapes smaller than this many pixels are a weave's or the sensor's speckle.
_MIN_SHAPE = 4
# The weave: pixel lags of the autocorrelation (rows, columns); a denim's ribs run along one
# diagonal, a linen's streaks along the rows, a wool's speckle is short in both.
_LAGS = ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0), (2, 2), (2, -2), (0, 4), (4, 0))
# ... around a local mean of this Gaussian (pixels), so that shading is no weave;
_HIGHPASS_SIGMA = 2.5
# ... the light's broad bands (a leather's highlight, a silk's waves) at this one;
_BAND_SIGMA = 6.0
# ... lightness quantiles of the ground, and oriented derivatives at these scales.
_QUANTILES = (0.02, 0.1, 0.25, 0.75, 0.9, 0.98)
_DERIVATIVE_SIGMAS = (0.7, 1.5)

WEAVE_DIMS = len(_QUANTILES) + 2 + 1 + len(_LAGS) + 4 * len(_DERIVATIVE_SIGMAS)
PRINT_DIMS = 15
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _interior(region: np.ndarray, iterations: int) -> np.ndarray:
    inner = ndimage.binary_erosion(region, iterations=iterations)
    return inner if int(inner.sum()) >= _MIN_PIXELS else region


def ground_colour(colours: np.ndarray) -> np.ndarray:
    """Split ``colours`` (N×3 OkLab, lightness already weighted) by colour: ``N`` ints, 0 for
    the ground (the most common colour and those within :data:`_SAME_COLOUR` of it), 1, 2, … for
    the print's next most common colours, −1 for pixels of none (edges between colours, colours
    under :data:`_MIN_COLOUR_SHARE` of the item).

    Each colour is the densest cell of a grid over what is left, refined by a few mean-shift
    steps: a mode, so that a large ground shaded across its width stays one colour and a small
    print's colour is not averaged into it, as a k-means split would."""
    n = len(colours)
    group = np.full(n, -1, np.int64)
    left = np.ones(n, bool)
    for g in range(1 + _MAX_COLOURS):
        rest = colours[left]
        if len(rest) < max(_MIN_SHAPE, _MIN_COLOUR_SHARE * n):
            break
        cells = np.floor(rest / _MODE_BIN).astype(np.int64)
        _, which, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        centre = rest[which.ravel() == counts.argmax()].mean(axis=0)
        for _ in range(_MODE_STEPS):
            near = np.linalg.norm(rest - centre, axis=1) < _SAME_COLOUR
            if not near.any():
                break
            centre = rest[near].mean(axis=0)
        take = left & (np.linalg.norm(colours - centre, axis=1) < _SAME_COLOUR)
        if g > 0 and int(take.sum()) < _MIN_COLOUR_SHARE * n:
            break
        group[take] = g
        left &= ~take
    return group


def _split(photo: np.ndarray, mask: np.ndarray, margin: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The item's box (``margin`` pixels around it): its RGB crop, its mask, its interior (eroded
    2 px, off the cut) and the colour group (:func:`ground_colour`) of each interior pixel
    (−2 outside it)."""
    ys, xs = np.nonzero(mask)
    y0, x0 = max(int(ys.min()) - margin, 0), max(int(xs.min()) - margin, 0)
    y1, x1 = int(ys.max()) + margin + 1, int(xs.max()) + margin + 1
    crop, region = photo[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    lab = srgb_to_oklab(crop.reshape(-1, 3)).reshape(crop.shape).astype(np.float32)
    lab = ndimage.gaussian_filter(lab, (_SPLIT_SIGMA, _SPLIT_SIGMA, 0))
    lab[..., 0] *= _LIGHTNESS_WEIGHT
    inner = _interior(region, 2)
    groups = np.full(region.shape, -2, np.int64)
    groups[inner] = ground_colour(lab[inner])
    return crop, region, inner, groups


def weave_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The weave of the item's ground colour (:func:`ground_colour`) under ``mask`` (H×W bool,
    non-empty) in ``photo`` (H×W×3 uint8 RGB): :data:`WEAVE_DIMS` floats of its log luminance
    over the ground's interior, all differences, so that a dark and a light cloth of one weave
    agree:

    - quantiles of the lightness around its median (a linen's bright streaks are a long upper
      tail, a denim's ribs two even halves);
    - the 5th and 95th percentiles of the broad light (a leather's highlight band, brighter than
      anything a plain cotton's shading makes);
    - the log spread of the fine residual (the lightness less its local mean), and its
      autocorrelation at :data:`_LAGS` (which way the grain runs and how long it is);
    - the log median magnitude of derivatives along rows, columns and both diagonals at two
      scales.

    The ground alone, because a print's edges are few and strong and would stand for a weave.

    Raises :class:`~fashionkit.errors.InvalidDataError` for a photo that is not H×W×3 uint8 or
    a mask that is empty or of another size."""
    check_photo_and_mask(photo, mask)
    crop, region, inner, groups = _split(photo, mask, int(math.ceil(_BAND_SIGMA)) + 2)
    ground = _interior(groups == 0, 1)
    if int(ground.sum()) < _MIN_PIXELS:
        ground = inner
    rgb = crop.astype(np.float32) / np.float32(255.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    image = np.log(linear @ np.array([0.2126, 0.7152, 0.0722], np.float32) + np.float32(0.01))
    values = image[ground]
    quantiles = np.quantile(values - np.median(values), _QUANTILES)
    # Means over the ground only (normalised convolution): the background and the print stay out.
    weight = ndimage.gaussian_filter(ground.astype(np.float32), _BAND_SIGMA)
    broad = ndimage.gaussian_filter(np.where(ground, image, 0), _BAND_SIGMA) \
        / np.maximum(weight, 1e-3)
    bands = np.quantile(broad[ground] - np.median(broad[ground]), (0.05, 0.95))
    filled = np.where(ground, image, broad)
    residual = image - ndimage.gaussian_filter(filled, _HIGHPASS_SIGMA)
    variance = float(residual[ground].var()) + 1e-6
    h, w = residual.shape
    correlations = []
    for dy, dx in _LAGS:
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        both = ground[a] & ground[b]
        correlations.append(float((residual[a][both] * residual[b][both]).mean() / variance)
                            if int(both.sum()) >= _MIN_PIXELS else 0.0)
    derivatives = []
    for sigma in _DERIVATIVE_SIGMAS:
        gx = ndimage.gaussian_filter(image, sigma, order=(0, 1)) * sigma
        gy = ndimage.gaussian_filter(image, sigma, order=(1, 0)) * sigma
        for response in (gx, gy, (gx + gy) / math.sqrt(2), (gx - gy) / math.sqrt(2)):
            derivatives.append(math.log(float(np.median(np.abs(response[ground]))) + 1e-4))
    return np.asarray([*quantiles, *bands, 0.5 * math.log(variance), *correlations,
                       *derivatives], np.float32)


def print_descriptor(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The shapes of the item's print (the pixels not of its ground colour,
    :func:`ground_colour`) under ``mask`` (H×W bool, non-empty) in ``photo`` (H×W×3 uint8 RGB),
    :data:`PRINT_DIMS` floats, none of them a colour:

    - the log share of the item the print covers; the entropy and the count of its colours
      (the ground's included: camouflage has four, a dot print two);
    - the print's outline: its length per item pixel and its shares along rows, columns and
      both diagonals (a stripe's one direction, a check's two);
    - its shapes (4-connected, :data:`_MIN_SHAPE` pixels or more): their number per thousand
      item pixels, the largest one's share of the print (a check's grid is one shape, dots are
      many), the spread of their log sizes (dots are alike, camouflage is not), and, weighted by
      size, their elongation and solidity (from each shape's second moments: a stripe is long, a
      dot a solid disc, a flower's petals fill less of their ellipse), how much their long axes
      agree, and the share of holes inside them (a leopard's rosettes).

    A plain item with a mark has a print of one small shape.

    Raises :class:`~fashionkit.errors.InvalidDataError` as :func:`weave_descriptor` does."""
    check_photo_and_mask(photo, mask)
    _, _, inner, groups = _split(photo, mask, 1)
    n = int(inner.sum())
    kept = groups[inner]
    shares = np.bincount(kept[kept >= 0]) / n
    shares = shares[shares >= _MIN_COLOUR_SHARE]
    p = shares / shares.sum() if shares.size else np.ones(1)
    entropy = float(-(p * np.log(p)).sum())
    printed = inner & (groups != 0)
    outline = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        h, w = printed.shape
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        outline.append(float(((printed[a] != printed[b]) & inner[a] & inner[b]).sum()))
    total = sum(outline)
    directions = [o / total for o in outline] if total else [0.25] * 4
    shapes = [0.0] * 7
    labels, count = ndimage.label(printed, structure=_FOUR_CONNECTED)
    if count:
        index = np.arange(1, count + 1)
        size = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.float64)
        keep = size >= _MIN_SHAPE
        if keep.any():
            yy, xx = np.indices(labels.shape, dtype=np.float64)
            my, mx = ndimage.mean(yy, labels, index), ndimage.mean(xx, labels, index)
            # A pixel is a unit square: its own second moment is 1/12.
            syy = ndimage.mean(yy * yy, labels, index) - my * my + 1 / 12
            sxx = ndimage.mean(xx * xx, labels, index) - mx * mx + 1 / 12
            sxy = ndimage.mean(xx * yy, labels, index) - mx * my
            half_trace = (sxx + syy) / 2
            spread = np.sqrt(np.maximum(half_trace ** 2 - (sxx * syy - sxy ** 2), 0.0))
            major, minor = half_trace + spread, np.maximum(half_trace - spread, 1e-6)
            elongation = 0.5 * np.log(major / minor)
            # A solid ellipse of these moments has the area 4π√(major·minor).
            solidity = np.minimum(size / (4 * math.pi * np.sqrt(major * minor)), 2.0)
            axis = np.exp(1j * np.arctan2(2 * sxy, sxx - syy))  # doubled angle: a line has no sign
            s = size[keep]
            weight = s / s.sum()
            agreement = float(abs((weight * axis[keep] * np.tanh(elongation[keep])).sum()))
            holes = float(ndimage.binary_fill_holes(printed).sum() - printed.sum()) \
                / max(float(printed.sum()), 1.0)
            shapes = [math.log1p(int(keep.sum()) / n * 1000), float(s.max() / s.sum()),
                      float(np.std(np.log(s))), float((weight * elongation[keep]).sum()),
                      float((weight * solidity[keep]).sum()), agreement, holes]
    return np.asarray([math.log(float(printed.sum()) / n + 1e-3), entropy, float(len(shares)),
                       total / n, *directions, *shapes], np.float32)
