"""Polygon builders for the synthetic world.

Every shape is a list of polygons, each a ``(K, 2)`` float array of ``(x, y)`` pixel
coordinates (x right, y down, pixel corners at integers, as in COCO). A shape is the union of
its polygons, exactly as COCO's ``segmentation`` list is read.
"""

from __future__ import annotations

import math

import numpy as np

Polygon = np.ndarray  # (K, 2) float64

__all__ = [
    "Polygon",
    "ellipse",
    "rect",
    "quad",
    "segment",
    "tube",
    "capsule",
    "polyline",
    "cut_polyline",
    "transform",
]


def ellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    n: int = 20,
    a0: float = 0.0,
    a1: float = 2 * math.pi,
    rot: float = 0.0,
) -> Polygon:
    """An ellipse (or, with ``a0``/``a1`` in radians, an arc closed by its chord), ``(n, 2)``."""
    full = abs(a1 - a0 - 2 * math.pi) < 1e-9
    t = np.linspace(a0, a1, n, endpoint=not full)
    x = rx * np.cos(t)
    y = ry * np.sin(t)
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        x, y = c * x - s * y, s * x + c * y
    return np.stack([cx + x, cy + y], axis=1)


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def quad(*points) -> Polygon:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def segment(p0, p1, width: float) -> Polygon:
    """A straight band of ``width`` from ``p0`` to ``p1`` (flat ends)."""
    return tube(np.array([p0, p1], dtype=np.float64), np.array([width / 2, width / 2]))


def _normals(points: np.ndarray) -> np.ndarray:
    d = np.zeros_like(points)
    d[1:-1] = points[2:] - points[:-2]
    d[0] = points[1] - points[0]
    d[-1] = points[-1] - points[-2]
    length = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)
    d /= length[:, None]
    return np.stack([-d[:, 1], d[:, 0]], axis=1)


def tube(points: np.ndarray, radii: np.ndarray) -> Polygon:
    """A band along the polyline ``points`` ``(K, 2)`` with half-width ``radii`` ``(K,)``; flat
    ends perpendicular to the line."""
    points = np.asarray(points, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    n = _normals(points)
    left = points + n * radii[:, None]
    right = points - n * radii[:, None]
    return np.concatenate([left, right[::-1]], axis=0)


def capsule(p0, p1, r0: float, r1: float | None = None, n: int = 8) -> list[Polygon]:
    """A limb: a tapered band with round ends (three polygons)."""
    r1 = r0 if r1 is None else r1
    return [
        tube(np.array([p0, p1], dtype=np.float64), np.array([r0, r1])),
        ellipse(p0[0], p0[1], r0, r0, n=n),
        ellipse(p1[0], p1[1], r1, r1, n=n),
    ]


def polyline(points, n: int) -> np.ndarray:
    """``n`` points evenly spaced (by arc length) along the polyline ``points``."""
    points = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(points, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, cum[-1], n)
    return np.stack([np.interp(t, cum, points[:, 0]), np.interp(t, cum, points[:, 1])], axis=1)


def cut_polyline(points, fraction: float, n: int = 6) -> np.ndarray:
    """The first ``fraction`` (by arc length, 0..1) of a polyline, resampled to ``n`` points."""
    points = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(points, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, cum[-1] * fraction, n)
    return np.stack([np.interp(t, cum, points[:, 0]), np.interp(t, cum, points[:, 1])], axis=1)


def transform(points: np.ndarray, scale: float, angle: float, offset) -> np.ndarray:
    """Figure space → image: scale, rotate about the origin (the figure's feet), translate."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    p = np.asarray(points, dtype=np.float64)
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1) + offset
