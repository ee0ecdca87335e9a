"""Backgrounds: gradients, smooth noise, rooms (wall, floor, window, door, picture, plant) and
streets. None of it is annotated; props give a detector things that are not clothes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["KINDS", "background"]

KINDS = ("gradient", "noise", "room", "street")


def _rgb(rng: np.random.Generator, lo: int = 30, hi: int = 235) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


def _gradient(rng, w: int, h: int) -> tuple[np.ndarray, float | None]:
    c0 = np.array(_rgb(rng), dtype=np.float32)
    c1 = np.array(_rgb(rng), dtype=np.float32)
    a = rng.uniform(0, 2 * np.pi)
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    if rng.random() < 0.3:
        t = np.clip(np.sqrt(x * x + y * y) / 1.4, 0, 1)
    else:
        t = (x * np.cos(a) + y * np.sin(a)) * 0.5 + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return c0 * (1 - t) + c1 * t, None


def _noise(rng, w: int, h: int) -> tuple[np.ndarray, float | None]:
    cells = int(rng.integers(3, 9))
    small = rng.integers(20, 236, size=(cells, cells, 3), dtype=np.uint8)
    # Blend toward one hue so the noise reads as a textured wall, not confetti.
    base = np.array(_rgb(rng), dtype=np.float32)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) * 0.3 + base * 0.7, None


def _room(rng, w: int, h: int) -> tuple[np.ndarray, float | None]:
    wall = _rgb(rng, 120, 240)
    floor = _rgb(rng, 50, 200)
    img = Image.new("RGB", (w, h), wall)
    d = ImageDraw.Draw(img)
    horizon = int(h * rng.uniform(0.55, 0.85))
    d.rectangle([0, horizon, w, h], fill=floor)
    if rng.random() < 0.5:  # floor boards
        dark = tuple(max(0, c - 25) for c in floor)
        step = max(3, int(h * rng.uniform(0.03, 0.06)))
        for y in range(horizon + step, h, step):
            d.line([0, y, w, y], fill=dark, width=1)
    d.rectangle([0, horizon - max(2, h // 60), w, horizon], fill=tuple(min(255, c + 30) for c in wall))
    if rng.random() < 0.4:  # wallpaper stripes
        dark = tuple(max(0, c - 18) for c in wall)
        step = max(4, int(w * rng.uniform(0.04, 0.1)))
        for x in range(0, w, step * 2):
            d.rectangle([x, 0, x + step - 1, horizon - 3], fill=dark)
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.choice(["window", "door", "picture", "plant", "lamp"])
        x0 = int(rng.uniform(-0.1, 0.9) * w)
        if kind == "window":
            ww, wh = int(w * rng.uniform(0.15, 0.3)), int(h * rng.uniform(0.2, 0.35))
            y0 = int(horizon * rng.uniform(0.1, 0.4))
            d.rectangle([x0, y0, x0 + ww, y0 + wh], fill=(235, 235, 230))
            d.rectangle([x0 + 3, y0 + 3, x0 + ww - 3, y0 + wh - 3], fill=_rgb(rng, 150, 230))
            d.line([x0 + ww // 2, y0, x0 + ww // 2, y0 + wh], fill=(235, 235, 230), width=2)
            d.line([x0, y0 + wh // 2, x0 + ww, y0 + wh // 2], fill=(235, 235, 230), width=2)
        elif kind == "door":
            ww, wh = int(w * rng.uniform(0.15, 0.22)), int(horizon * rng.uniform(0.6, 0.85))
            col = _rgb(rng, 60, 200)
            d.rectangle([x0, horizon - wh, x0 + ww, horizon], fill=col, outline=tuple(c // 2 for c in col))
            d.ellipse([x0 + ww - 8, horizon - wh // 2, x0 + ww - 4, horizon - wh // 2 + 4], fill=(200, 180, 80))
        elif kind == "picture":
            ww, wh = int(w * rng.uniform(0.08, 0.2)), int(h * rng.uniform(0.08, 0.2))
            y0 = int(horizon * rng.uniform(0.1, 0.5))
            d.rectangle([x0, y0, x0 + ww, y0 + wh], fill=_rgb(rng), outline=(40, 30, 20), width=2)
        elif kind == "plant":
            pw = int(w * rng.uniform(0.05, 0.1))
            d.rectangle([x0, horizon - pw, x0 + pw, horizon + pw // 3], fill=_rgb(rng, 80, 200))
            for _ in range(5):
                cx = x0 + pw // 2 + int(rng.integers(-pw, pw + 1))
                cy = horizon - pw - int(rng.integers(0, 2 * pw + 1))
                r = max(2, pw // 2)
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(40, int(rng.integers(100, 170)), 50))
        else:
            lw = int(w * rng.uniform(0.06, 0.1))
            d.line([x0 + lw // 2, horizon - int(h * 0.4), x0 + lw // 2, horizon], fill=(60, 60, 60), width=2)
            d.polygon([(x0, horizon - int(h * 0.4)), (x0 + lw, horizon - int(h * 0.4)),
                       (x0 + lw - 3, horizon - int(h * 0.5)), (x0 + 3, horizon - int(h * 0.5))], fill=_rgb(rng, 160, 250))
    return np.asarray(img, dtype=np.float32), float(horizon)


def _street(rng, w: int, h: int) -> tuple[np.ndarray, float | None]:
    sky = np.array(_rgb(rng, 140, 240), dtype=np.float32)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in sky))
    d = ImageDraw.Draw(img)
    ground = int(h * rng.uniform(0.6, 0.85))
    x = int(-rng.uniform(0, 0.2) * w)
    while x < w:
        bw = int(w * rng.uniform(0.15, 0.35))
        top = int(ground * rng.uniform(0.05, 0.6))
        col = _rgb(rng, 60, 210)
        d.rectangle([x, top, x + bw, ground], fill=col)
        win = tuple(max(0, c - 50) for c in col)
        step = max(5, bw // 5)
        for wy in range(top + step // 2, ground - step, step):
            for wx in range(x + step // 3, x + bw - step // 2, step):
                d.rectangle([wx, wy, wx + step // 2, wy + step // 2], fill=win)
        x += bw + int(rng.integers(0, max(2, w // 20)))
    d.rectangle([0, ground, w, h], fill=_rgb(rng, 70, 160))
    d.line([0, ground, w, ground], fill=(220, 220, 210), width=max(1, h // 100))
    return np.asarray(img, dtype=np.float32), float(ground)


def background(
    rng: np.random.Generator, width: int, height: int, kind: str | None = None
) -> tuple[np.ndarray, str, float | None]:
    """A background ``(height, width, 3)`` float32 RGB 0..255, the kind drawn, and the y of
    its floor line in pixels (where people can stand; ``None`` for flat backdrops)."""
    if kind is None:
        kind = str(rng.choice(KINDS, p=[0.2, 0.2, 0.35, 0.25]))
    fn = {"gradient": _gradient, "noise": _noise, "room": _room, "street": _street}[kind]
    pixels, floor = fn(rng, width, height)
    return pixels, kind, floor
