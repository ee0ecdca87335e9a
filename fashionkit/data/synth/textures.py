"""Fabric colours and textile patterns, painted with numpy in image coordinates.

A :class:`Paint` is evaluated on any pixel window, so the pieces of one garment (body, sleeves,
pocket) show one continuous fabric. Each pattern maps to a real Fashionpedia attribute name
(:data:`PATTERN_ATTRIBUTES`). The first colour of a paint is the one covering the largest share of
a patterned area (for plain fabric, all of it): the wardrobe's dominant-colour ground truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLORS",
    "Finish",
    "PATTERN_ATTRIBUTES",
    "Paint",
    "TEXTURES",
    "render",
    "hex_color",
    "sample_fabric",
    "shade",
]

RGB = tuple[int, int, int]

# Fashion colour names with sRGB values; garments draw from all of them, whatever the category,
# so that no category can be told by its colour.
COLORS: dict[str, RGB] = {
    "black": (24, 24, 28),
    "charcoal": (64, 66, 72),
    "grey": (128, 128, 132),
    "light grey": (196, 196, 200),
    "white": (240, 240, 236),
    "cream": (238, 228, 200),
    "beige": (214, 196, 160),
    "camel": (190, 145, 90),
    "khaki": (160, 150, 100),
    "brown": (110, 72, 44),
    "navy": (30, 40, 90),
    "denim": (70, 100, 150),
    "royal blue": (40, 80, 200),
    "sky blue": (130, 185, 230),
    "teal": (20, 120, 125),
    "turquoise": (60, 200, 190),
    "mint": (160, 225, 190),
    "green": (40, 140, 60),
    "olive": (110, 115, 50),
    "mustard": (215, 170, 40),
    "yellow": (245, 220, 60),
    "orange": (240, 130, 40),
    "coral": (245, 120, 100),
    "red": (200, 30, 40),
    "burgundy": (120, 20, 45),
    "pink": (240, 160, 190),
    "magenta": (200, 40, 140),
    "lavender": (185, 160, 220),
    "purple": (100, 50, 140),
}

PATTERN_ATTRIBUTES: dict[str, str] = {
    "plain": "plain (pattern)",
    "stripe": "stripe",
    "dot": "dot",
    "check": "check",
    "floral": "floral",
    "chevron": "chevron",
    "argyle": "argyle",
    "camouflage": "camouflage",
    "zebra": "zebra",
    "leopard": "leopard",
}

# How often each pattern is drawn; plain dominates as in real wardrobes.
_PATTERN_WEIGHTS = {
    "plain": 0.38,
    "stripe": 0.14,
    "dot": 0.09,
    "check": 0.11,
    "floral": 0.09,
    "chevron": 0.04,
    "argyle": 0.04,
    "camouflage": 0.04,
    "zebra": 0.035,
    "leopard": 0.035,
}


@dataclass(frozen=True)
class Paint:
    """How to colour a region.

    ``colors[0]`` is the dominant colour; ``scale`` the pattern period in pixels; ``angle`` the
    stripe direction in radians; ``shade`` the darkening at the horizontal edges of each drawn
    piece (0 = flat); ``outline`` the brightness factor of the piece's edge pixels (1 = none);
    ``rib`` adds knit ribs (sweater bodies, cuffs, hem bands). ``texture`` is a surface
    texture of :data:`TEXTURES` (``""``: none) with its period ``texture_scale`` in pixels.
    """

    pattern: str
    colors: tuple[RGB, ...]
    scale: float = 8.0
    angle: float = 0.0
    phase: float = 0.0
    shade: float = 0.18
    outline: float = 0.6
    rib: bool = False
    names: tuple[str, ...] = ()
    texture: str = ""
    texture_scale: float = 3.0

    def with_colors(self, *colors: RGB) -> Paint:
        return dataclasses.replace(self, colors=tuple(colors))


# Surface textures, each a luminance modulation that a fabric's colours and pattern leave
# visible: the weave or finish a material shows. Periods are a tenth of a head unit (at least
# 3 pixels), so that they survive images where a figure is a few hundred pixels tall.
TEXTURES: dict[str, str] = {
    "": "flat",
    "twill": "diagonal ribs (a denim weave)",
    "heather": "coarse speckle of lighter and darker fibres (wool)",
    "sheen": "a bright highlight band on each piece and a fine grain (leather)",
    "satin": "soft wavy light bands (silk)",
    "slub": "short irregular horizontal streaks (linen)",
}


@dataclass(frozen=True)
class Finish:
    """What makes the fabrics of one individual item its own beyond a builder's random draws:
    a surface ``texture`` (a :data:`TEXTURES` key) and a ``palette`` of :data:`COLORS` names its
    main colour is drawn from (empty: any). ``Finish()`` changes nothing."""

    texture: str = ""
    palette: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; known: {sorted(TEXTURES)}")
        unknown = [n for n in self.palette if n not in COLORS]
        if unknown:
            raise ValueError(f"unknown colour names in palette: {unknown}")

    def apply(self, paint: Paint, unit: float) -> Paint:
        """``paint`` with this texture, sized for a figure whose head unit is ``unit`` pixels."""
        if not self.texture:
            return paint
        return dataclasses.replace(paint, texture=self.texture, texture_scale=max(3.0, 0.1 * unit))


def hex_color(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def shade(rgb: RGB, factor: float) -> RGB:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in rgb)  # type: ignore[return-value]


def _luma(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def sample_color(
    rng: np.random.Generator, avoid: RGB | None = None, palette: tuple[str, ...] = ()
) -> tuple[str, RGB]:
    """A named colour (of ``palette`` when given), with enough luminance contrast to ``avoid``
    for a pattern to show."""
    names = list(palette) if palette else list(COLORS)
    for _ in range(20):
        name = names[int(rng.integers(len(names)))]
        rgb = COLORS[name]
        if avoid is None or abs(_luma(rgb) - _luma(avoid)) > 55:
            return name, rgb
    assert avoid is not None  # without one, the first draw is returned
    return ("white", COLORS["white"]) if _luma(avoid) < 128 else ("black", COLORS["black"])


def sample_fabric(
    rng: np.random.Generator, unit: float, pattern: str | None = None, palette: tuple[str, ...] = ()
) -> Paint:
    """A random fabric for a garment on a figure whose head unit is ``unit`` pixels; its main
    colour is of ``palette`` when one is given (the animal and camouflage patterns keep theirs)."""
    if pattern is None:
        keys = list(_PATTERN_WEIGHTS)
        w = np.array([_PATTERN_WEIGHTS[k] for k in keys])
        pattern = keys[int(rng.choice(len(keys), p=w / w.sum()))]
    names: tuple[str, ...]
    if pattern == "zebra":
        names = ("white", "black")
    elif pattern == "leopard":
        names = ("camel", "black", "brown")
    elif pattern == "camouflage":
        names = ("olive", "khaki", "black")
    else:
        n1, c1 = sample_color(rng, palette=palette)
        n2, c2 = sample_color(rng, avoid=c1)
        names = (n1, n2)
    colors = tuple(COLORS[n] for n in names)
    if pattern == "check":
        colors = (*colors, shade(colors[1], 0.7))
    elif pattern == "argyle":  # thin over-check lines
        colors = (*colors, shade(colors[0], 0.55))
    # Periods big enough to survive 128-px images, but varied so size is no category cue.
    scale = float(unit * rng.uniform(0.35, 0.75))
    if pattern in ("floral", "leopard", "camouflage", "argyle"):
        scale *= 1.6
    angle = 0.0
    if pattern == "stripe":
        angle = float(rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4]))
    return Paint(
        pattern=pattern,
        colors=colors,
        scale=max(scale, 3.0),
        angle=angle,
        phase=float(rng.uniform(0, 1)),
        shade=float(rng.uniform(0.1, 0.3)),
        outline=float(rng.uniform(0.45, 0.7)),
        names=names,
    )


def _hash01(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ (salt * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 8) & 0xFFFF).astype(np.float32) / 65535.0


def _index(p: Paint, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Colour index per pixel (0 = dominant colour); ``X`` ``(1, w)``, ``Y`` ``(h, 1)``."""
    s = p.scale
    kind = p.pattern
    if kind == "plain":
        return np.zeros(np.broadcast_shapes(X.shape, Y.shape), dtype=np.int8)
    if kind == "stripe":
        u = (X * np.cos(p.angle) + Y * np.sin(p.angle)) / s + p.phase
        return ((u % 1.0) < 0.33).astype(np.int8)
    if kind == "check":
        a = ((X / s + p.phase) % 1.0) < 0.27
        b = ((Y / s + p.phase) % 1.0) < 0.27
        return (a.astype(np.int8) + b.astype(np.int8)).astype(np.int8)
    if kind == "dot":
        row = np.floor(Y / s)
        gx = (X / s + 0.5 * (row % 2) + p.phase) % 1.0 - 0.5
        gy = (Y / s) % 1.0 - 0.5
        return ((gx * gx + gy * gy) < 0.24**2).astype(np.int8)
    if kind in ("floral", "leopard"):
        ci = np.floor(X / s)
        cj = np.floor(Y / s)
        jx = _hash01(ci, cj, 1) * 0.4 + 0.3
        jy = _hash01(ci, cj, 2) * 0.4 + 0.3
        dx = X / s - ci - jx
        dy = Y / s - cj - jy
        r = np.sqrt(dx * dx + dy * dy)
        if kind == "floral":
            theta = np.arctan2(dy, dx) + _hash01(ci, cj, 3) * 6.3
            petal = r < 0.3 * (0.6 + 0.4 * np.cos(5 * theta))
            out = petal.astype(np.int8)
            out[r < 0.08] = 2 if len(p.colors) > 2 else 0
            return out
        ring = (r > 0.14) & (r < 0.24) & (np.sin(np.arctan2(dy, dx) * 3 + ci) > -0.5)
        out = ring.astype(np.int8)
        out[r <= 0.14] = 2
        return out
    if kind == "chevron":
        v = Y / s + 0.8 * np.abs((X / s + p.phase) % 1.0 - 0.5)
        return ((v % 1.0) < 0.35).astype(np.int8)
    if kind == "argyle":
        u = np.abs((X / s + p.phase) % 1.0 - 0.5) + np.abs((Y / (1.4 * s)) % 1.0 - 0.5)
        diamond = u < 0.5
        cell = (np.floor(X / s + p.phase) + np.floor(Y / (1.4 * s))) % 2 == 0
        out = (diamond & cell).astype(np.int8)
        lines = np.abs(u - 0.5) < 0.03
        out[lines] = 2 if len(p.colors) > 2 else 1
        return out
    if kind == "zebra":
        f = 2 * np.pi / (1.6 * s)
        w = np.sin(X * f + 2.2 * np.sin(Y * f * 0.35 + p.phase * 6.0) + 1.3 * np.sin(X * f * 0.2))
        return (w > 0.3).astype(np.int8)
    if kind == "camouflage":
        f = 2 * np.pi / (2.5 * s)
        ph = p.phase * 6.28
        n = (
            np.sin(X * f + ph)
            + np.sin(Y * f * 1.3 + 2 * ph)
            + np.sin((X + Y) * f * 0.7 + 3 * ph)
            + np.sin((X - Y) * f * 1.1 + np.sin(Y * f * 0.5) * 2)
        )
        out = (n > 0.8).astype(np.int8)
        out[n > 1.7] = 2
        return out
    raise ValueError(f"unknown pattern {kind!r}")


def render(p: Paint, x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The paint on the window ``[x0, x0+w) × [y0, y0+h)``: ``(h, w, 3)`` float32 RGB 0..255,
    with shading across the window's width (a cylinder lit from the front), and the ``(h, w)``
    int8 index of the colour each pixel was painted with (into ``p.colors``)."""
    X = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5)[None, :]
    Y = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5)[:, None]
    palette = np.asarray(p.colors, dtype=np.float32)
    if p.pattern == "plain":
        idx = np.zeros((h, w), dtype=np.int8)
        out = np.empty((h, w, 3), dtype=np.float32)
        out[...] = palette[0]
    else:
        idx = np.broadcast_to(np.minimum(_index(p, X, Y), len(palette) - 1), (h, w))
        out = palette[idx]
    if p.shade:
        t = (np.arange(w, dtype=np.float32) + 0.5) / max(w, 1) * 2.0 - 1.0
        out *= (1.04 - p.shade * t * t).astype(np.float32)[None, :, None]
    if p.rib:
        rib = np.where((np.arange(x0, x0 + w) // 2) % 2 == 0, 1.0, 0.86).astype(np.float32)
        out *= rib[None, :, None]
    if p.texture:
        out *= _texture(p, X, Y, w)[..., None]
    return out, idx


def _texture(p: Paint, X: np.ndarray, Y: np.ndarray, w: int) -> np.ndarray:
    """The ``(h, w)`` brightness factor of ``p.texture``; ``X`` ``(1, w)``, ``Y`` ``(h, 1)``
    pixel centres. Amplitudes are large enough to stand out of sensor noise and shading."""
    s = p.texture_scale
    shape = np.broadcast_shapes(X.shape, Y.shape)
    if p.texture == "twill":
        u = ((X + Y) / s) % 1.0
        return np.where(u < 0.5, np.float32(1.1), np.float32(0.88)) * np.ones(shape, np.float32)
    if p.texture == "heather":
        cell = max(1.0, s / 2.0)
        return np.float32(1.0) + np.float32(0.3) * (_hash01(np.floor(X / cell), np.floor(Y / cell), 7) - 0.5)
    if p.texture == "sheen":
        t = (X - X[0, 0] + 0.5) / max(w, 1) * 2.0 - 1.0
        band = np.exp(-(((t + 0.35) / 0.16) ** 2)).astype(np.float32)
        grain = _hash01(np.floor(X), np.floor(Y), 11) - 0.5
        return np.float32(1.0) + np.float32(0.45) * band + np.float32(0.08) * grain
    if p.texture == "satin":
        wave = np.sin(2 * np.pi * X / (6 * s) + 1.5 * np.sin(2 * np.pi * Y / (9 * s)))
        return (np.float32(1.0) + np.float32(0.16) * wave).astype(np.float32) * np.ones(shape, np.float32)
    if p.texture == "slub":
        streak = _hash01(np.floor(X / (4 * s)) + np.floor(Y / s) * 7, np.floor(Y / (0.6 * s)), 13)
        return np.where(streak > 0.72, np.float32(1.2), np.float32(0.97)) * np.ones(shape, np.float32)
    raise ValueError(f"unknown texture {p.texture!r}")
