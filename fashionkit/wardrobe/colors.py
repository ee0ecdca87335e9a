"""Item colours: dominant colours of an item's own pixels, named from the CSS colour list.

Colours are handled in OkLab / OkLCh (Björn Ottosson's perceptual space, the one CSS Color 4
uses): Euclidean distance in OkLab approximates perceived difference, and OkLCh's hue angle is
what the outfit harmony rules in :mod:`fashionkit.outfits` compare.

* :func:`srgb_to_oklab` / :func:`oklab_to_srgb` convert N×3 arrays with numpy (a photo has too
  many pixels for per-colour objects); the tests check them against coloraide.
* :func:`dominant_colors` clusters the pixels under an item's mask (k-means in OkLab) and returns
  the main colours with their pixel shares, main colour first.
* :func:`describe_color` names a colour: the nearest entry (OkLab distance) of
  ``resources/css_color_names.csv`` (CSS Color 4 named colours; see ``COLOR_NAMES_NOTICE.md``)
  with its family (``"blue"``, ``"beige"`` …) and neutral flag.

Hex strings are ``"#rrggbb"``, lower case.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = [
    "NamedColor",
    "ColorInfo",
    "DominantColor",
    "named_colors",
    "describe_color",
    "normalize_hex",
    "hex_to_rgb",
    "rgb_to_hex",
    "srgb_to_oklab",
    "oklab_to_srgb",
    "oklab_to_oklch",
    "dominant_colors",
    "hue_distance",
    "COLOR_FAMILIES",
]

COLOR_FAMILIES: tuple[str, ...] = (
    "black", "white", "gray", "beige", "brown", "red", "orange", "yellow", "green", "blue",
    "purple", "pink",
)  # fmt: skip

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")

# sRGB (linear) -> LMS -> OkLab, from https://bottosson.github.io/posts/oklab/ (public domain).
_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_M1_INV = np.linalg.inv(_M1)
_M2_INV = np.linalg.inv(_M2)


def normalize_hex(value: str) -> str:
    """``"#ABC"``, ``"aabbcc"`` → ``"#aabbcc"``; ValueError for anything else."""
    match = _HEX.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return "#" + digits


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    digits = normalize_hex(value)[1:]
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def rgb_to_hex(rgb) -> str:
    r, g, b = (int(np.clip(round(float(v)), 0, 255)) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """N×3 sRGB (uint8 0..255, or float 0..1) → N×3 OkLab (L in 0..1, a and b about ±0.4)."""
    rgb = np.asarray(rgb)
    x = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    lms = linear @ _M1.T
    return np.cbrt(lms) @ _M2.T


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """N×3 OkLab → N×3 sRGB floats in 0..1 (clipped into the gamut)."""
    lms = (np.asarray(lab, dtype=np.float64) @ _M2_INV.T) ** 3
    linear = np.clip(lms @ _M1_INV.T, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def oklab_to_oklch(lab: np.ndarray) -> np.ndarray:
    """N×3 OkLab → N×3 OkLCh (L 0..1, chroma ≥ 0, hue in degrees 0..360)."""
    lab = np.asarray(lab, dtype=np.float64)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0
    return np.stack([lab[..., 0], chroma, hue], axis=-1)


@dataclass(frozen=True)
class NamedColor:
    name: str
    hex: str
    family: str
    neutral: bool


@dataclass(frozen=True)
class ColorInfo:
    """A colour with its nearest name; ``lightness``/``chroma``/``hue`` are OkLCh (hue in
    degrees, meaningless when chroma is near 0)."""

    hex: str
    name: str
    family: str
    neutral: bool
    lightness: float
    chroma: float
    hue: float


@dataclass(frozen=True)
class DominantColor:
    hex: str
    share: float  # fraction of the item's pixels in this cluster, 0..1


@functools.cache
def named_colors() -> tuple[NamedColor, ...]:
    """The shipped colour-name list (139 CSS Color 4 names with family and neutral flag)."""
    text = (
        resources.files("fashionkit.wardrobe.resources")
        .joinpath("css_color_names.csv")
        .read_text("utf-8")
    )
    rows = csv.DictReader(text.splitlines())
    return tuple(
        NamedColor(r["name"], normalize_hex(r["hex"]), r["family"], r["neutral"] == "1")
        for r in rows
    )


# A colour this close to gray (OkLCh chroma) is named only from the grays, black and white:
# the CSS list has no dark grays between black and dim gray, and a charcoal fabric should not
# be called "midnight blue" for the sake of lightness.
_ACHROMATIC = 0.02


@functools.cache
def _named_achromatic() -> np.ndarray:
    lab = _named_lab()
    return np.hypot(lab[:, 1], lab[:, 2]) < _ACHROMATIC


@functools.cache
def _named_lab() -> np.ndarray:
    return srgb_to_oklab(np.array([hex_to_rgb(c.hex) for c in named_colors()], dtype=np.uint8))


@functools.lru_cache(maxsize=65536)
def describe_color(value: str) -> ColorInfo:
    """Name, family and neutral flag of the nearest named colour (OkLab distance; near-gray
    colours are named among the grays only)."""
    hex_ = normalize_hex(value)
    lab = srgb_to_oklab(np.array([hex_to_rgb(hex_)], dtype=np.uint8))
    distance = ((_named_lab() - lab) ** 2).sum(axis=1)
    if np.hypot(lab[0, 1], lab[0, 2]) < _ACHROMATIC:
        distance = np.where(_named_achromatic(), distance, np.inf)
    nearest = int(np.argmin(distance))
    named = named_colors()[nearest]
    lightness, chroma, hue = oklab_to_oklch(lab)[0]
    return ColorInfo(
        hex=hex_,
        name=named.name,
        family=named.family,
        neutral=named.neutral,
        lightness=float(lightness),
        chroma=float(chroma),
        hue=float(hue),
    )


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20):
    """Plain Lloyd k-means with k-means++ seeding; returns (centres k×3, labels N)."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        if total <= 0:  # fewer distinct colours than k
            break
        centres.append(points[rng.choice(len(points), p=d2 / total)])
    centres_arr = np.array(centres)
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centres_arr[None]) ** 2).sum(-1)
        new_labels = d2.argmin(axis=1)
        if _ > 0 and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(len(centres_arr)):
            members = points[labels == j]
            if len(members):
                centres_arr[j] = members.mean(axis=0)
    return centres_arr, labels


def dominant_colors(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    k: int = 4,
    min_share: float = 0.08,
    merge_distance: float = 0.08,
    max_pixels: int = 20000,
    seed: int = 0,
) -> list[DominantColor]:
    """The main colours of the pixels of ``image`` (H×W×3 uint8 RGB) under ``mask`` (H×W bool,
    ``None`` = all pixels), largest share first.

    Pixels are clustered with k-means in OkLab (at most ``max_pixels`` of them, sampled with a
    fixed ``seed`` so the answer is deterministic). Clusters closer than ``merge_distance``
    (OkLab ΔE; ~0.02 is a just-noticeable difference) are merged, since they are shading of one
    colour rather than two colours, and clusters under ``min_share`` of the pixels are dropped
    (trims, shadows, stray background). Each colour is its cluster's mean, as sRGB hex.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {image.shape}")
    pixels = image[..., :3].reshape(-1, 3)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
        pixels = pixels[mask.reshape(-1)]
    if len(pixels) == 0:
        return []
    rng = np.random.default_rng(seed)
    if len(pixels) > max_pixels:
        pixels = pixels[np.sort(rng.choice(len(pixels), max_pixels, replace=False))]
    lab = srgb_to_oklab(pixels.astype(np.uint8))
    centres, labels = _kmeans(lab, min(k, len(lab)), rng)
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)

    # Merge near-identical clusters, largest first, weighting centres by pixel count.
    order = np.argsort(-counts, kind="stable")
    merged: list[tuple[np.ndarray, float]] = []
    for j in order:
        if counts[j] == 0:
            continue
        for m, (centre, count) in enumerate(merged):
            if np.linalg.norm(centre - centres[j]) < merge_distance:
                total = count + counts[j]
                merged[m] = ((centre * count + centres[j] * counts[j]) / total, total)
                break
        else:
            merged.append((centres[j], counts[j]))
    n = counts.sum()
    merged.sort(key=lambda cc: -cc[1])
    out: list[DominantColor] = []
    for centre, count in merged:
        share = float(count / n)
        if share < min_share and out:
            continue
        rgb = oklab_to_srgb(centre[None])[0] * 255.0
        out.append(DominantColor(hex=rgb_to_hex(rgb), share=share))
    return out


def hue_distance(h1: float, h2: float) -> float:
    """Smallest angle between two hues in degrees (0..180)."""
    d = abs(h1 - h2) % 360.0
    return min(d, 360.0 - d)
