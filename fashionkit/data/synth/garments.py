"""Garments and their parts, shaped on a posed figure.

Each builder adds the garment's drawing steps to a :class:`~.figures.Figure` and returns the
garment :class:`~.canvas.SceneObject`. Parts (sleeves, necklines, collars, lapels, pockets, zippers,
hoods) are items whose ``parent`` is the garment; they are drawn after the garment body at the
same depth, so they lie on it and are hidden wherever the garment is. Attributes are Fashionpedia
attribute names and describe what is drawn: a "v-neck" neckline is a V, a "wrist-length" sleeve
reaches the wrist.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fashionkit.data.synth import geometry as g
from fashionkit.data.synth.canvas import SceneObject
from fashionkit.data.synth.figures import Figure, Pose, Z
from fashionkit.data.synth.textures import (
    COLORS,
    PATTERN_ATTRIBUTES,
    Finish,
    Paint,
    sample_color,
    sample_fabric,
    shade,
)

__all__ = ["GarmentBuilder", "SLEEVE_LENGTHS", "NECKLINES"]

# Category ids (Fashionpedia).
SHIRT, TOP, SWEATER, CARDIGAN, JACKET, VEST, PANTS, SHORTS, SKIRT, COAT, DRESS, JUMPSUIT = range(12)
CAPE = 12
HOOD, COLLAR, LAPEL, EPAULETTE, SLEEVE, POCKET, NECKLINE, ZIPPER, BOW = 27, 28, 29, 30, 31, 32, 33, 35, 38

# Sleeve length attribute → fraction of the arm (shoulder to wrist) the sleeve covers.
SLEEVE_LENGTHS = {
    "short (length)": 0.3,
    "elbow-length": 0.56,
    "three quarter (length)": 0.8,
    "wrist-length": 1.04,
}

# Neckline attribute → (half width of the opening, depth below the neck point).
NECKLINES = {
    "crew (neck)": (0.27, 0.2),
    "round (neck)": (0.33, 0.38),
    "scoop (neck)": (0.42, 0.7),
    "v-neck": (0.3, 0.85),
    "boat (neck)": (0.55, 0.12),
    "square (neckline)": (0.36, 0.5),
}

_METAL = Paint("stripe", ((170, 170, 176), (95, 95, 102)), scale=2.5, angle=math.pi / 2, shade=0.1,
               outline=0.7, names=("silver", "grey"))

_NECK_Y = 1.3  # where the neckline meets the shoulder line


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _neck_curve(kind: str, n: int = 9) -> np.ndarray:
    """The neckline edge from the image-left neck point to the right one, ``(n, 2)``."""
    half, depth = NECKLINES[kind]
    if kind == "v-neck":
        return np.array([(-half, _NECK_Y), (0.0, _NECK_Y + depth), (half, _NECK_Y)])
    if kind == "square (neckline)":
        y = _NECK_Y + depth
        return np.array([(-half, _NECK_Y), (-half, y), (half, y), (half, _NECK_Y)])
    t = np.linspace(math.pi, 0.0, n)
    return np.stack([half * np.cos(t), _NECK_Y + depth * np.sin(t)], axis=1)


class GarmentBuilder:
    """Builds garments on one figure. ``fig.scale`` (pixels per head unit) sets pattern sizes.

    Every random choice a garment's look needs (its kind's options, fabric, cut) is drawn from
    ``rng`` and nothing else, in an order that does not depend on the pose: the same garment
    built twice from generators in the same state looks the same on any figure (the personal
    closet builds each of its items so). ``finish`` textures and colours the garment's fabric.
    """

    def __init__(self, fig: Figure, rng: np.random.Generator, finish: Finish | None = None):
        self.fig = fig
        self.p: Pose = fig.pose
        self.rng = rng
        self.finish = finish or Finish()

    # -- shared pieces ---------------------------------------------------------------------
    def fabric(self, pattern: str | None = None) -> Paint:
        paint = sample_fabric(self.rng, self.fig.scale, pattern, palette=self.finish.palette)
        return self.finish.apply(paint, self.fig.scale)

    def garment(self, category: int, paint: Paint, attrs: list[str], **info) -> SceneObject:
        attrs = [PATTERN_ATTRIBUTES[paint.pattern], *attrs]
        return SceneObject(category, paint, tuple(attrs), info=dict(info))

    def part(self, garment: SceneObject, category: int, attrs, z: float, polys, paint: Paint | None = None):
        item = SceneObject(category, paint or garment.paint, tuple(attrs), parent=garment)
        self.fig.add(item, z, polys)
        return item

    def decor(self, item: SceneObject, z: float, polys, paint: Paint) -> None:
        self.fig.add(item, z, polys, paint, decor=True)

    def side_profile(self, side: int, y_top: float, hem: float, ease: float, flare: float = 0.0):
        """Points down one side of a torso-shaped garment from ``y_top`` to the hem."""
        p = self.p
        ys = [y for y in (p.ARMPIT_Y, p.WAIST_Y, p.HIP_Y, p.CROTCH_Y + 0.6, 5.5, 6.5, 7.5)
              if y_top < y < hem] + [hem]
        pts = []
        for y in ys:
            extra = flare * max(0.0, y - p.HIP_Y) / max(hem - p.HIP_Y, 1e-6)
            pts.append((side * (p.torso_half(y) + ease + extra), y))
        return pts

    def torso(self, neck: np.ndarray, hem: float, ease: float, flare: float = 0.0,
              shoulder: float | None = None) -> np.ndarray:
        """A pullover torso: neck edge ``neck`` (left → right), shoulders, sides, hem."""
        p = self.p
        sh = (p.shoulder_half if shoulder is None else shoulder) + ease * 0.4
        right = [(sh, p.SHOULDER_Y), *self.side_profile(1, p.SHOULDER_Y, hem, ease, flare)]
        left = [(-x, y) for x, y in reversed(right)]
        return np.array([*neck, *right, *left])

    def sleeves(self, garment: SceneObject, z: float, length: str, ease: float, kind="set-in sleeve",
                cuff: Paint | None = None) -> None:
        p = self.p
        frac = SLEEVE_LENGTHS[length]
        for side in (-1, 1):
            arm = p.arm_line(side)
            line = g.cut_polyline(arm, min(frac, 1.0), n=7)
            if frac > 1.0:  # cover the wrist bone
                line[-1] = line[-1] + (line[-1] - line[-2]) * 0.4
            t = np.linspace(0.0, min(frac, 1.0), len(line))
            radii = np.interp(t, [0.0, 0.54, 1.0], [p.ARM_R[0] + 0.05, p.ARM_R[1], p.ARM_R[2]]) + 0.5 * ease + 0.02
            if kind == "bell (sleeve)":
                radii = radii + np.linspace(0.0, 0.28, len(line)) ** 1.5 * 2.0
            elif kind == "puff (sleeve)":
                radii = radii + 0.16 * np.sin(np.linspace(0.2, math.pi - 0.2, len(line)))
            # A flattened cap rounds the shoulder without rising above the shoulder line.
            polys = [g.tube(line, radii), g.ellipse(line[0, 0], line[0, 1], radii[0], radii[0] * 0.65, n=12)]
            sleeve = self.part(garment, SLEEVE, (length, kind), z, polys)
            if cuff is not None:
                end = g.tube(line[-2:] + (line[-1] - line[-2]) * np.array([[0.6], [0.0]]), radii[-2:] + 0.01)
                self.decor(sleeve, z, end, cuff)

    def neckline(self, garment: SceneObject, z: float, kind: str, curve: np.ndarray, paint: Paint):
        if kind == "v-neck" or kind == "square (neckline)":
            pts = curve
        else:
            pts = g.polyline(curve, 9)
        # Wider than a real rib so that it stays a region, not a hairline, at 128 px.
        return self.part(garment, NECKLINE, (kind,), z, g.tube(pts, np.full(len(pts), 0.1)), paint)

    def hem_band(self, garment: SceneObject, z: float, hem: float, ease: float, paint: Paint) -> None:
        half = self.p.torso_half(hem) + ease + 0.05
        self.decor(garment, z, g.rect(-half, hem - 0.3, half, hem + 0.01), paint)

    def buttons(self, garment: SceneObject, z: float, x: float, y0: float, y1: float, n: int) -> None:
        dark = Paint("plain", (shade(garment.paint.colors[0], 0.45),), shade=0.0, outline=1.0)
        for y in np.linspace(y0, y1, n):
            self.decor(garment, z, g.ellipse(x, y, 0.055, 0.055, n=8), dark)

    def pocket(self, garment: SceneObject, z: float, cx: float, cy: float, w: float, h: float, kind: str):
        if kind == "welt (pocket)":
            h = 0.12
        poly = g.rect(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        trim = garment.paint.with_colors(*(shade(c, 0.85) for c in garment.paint.colors))
        item = self.part(garment, POCKET, (kind,), z, poly, trim if kind == "welt (pocket)" else None)
        if kind in ("flap (pocket)", "cargo (pocket)"):
            flap = g.quad((cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2),
                          (cx + w / 2, cy - h / 6), (cx, cy - h / 12), (cx - w / 2, cy - h / 6))
            self.decor(item, z, flap, trim)
        return item

    def zipper(self, garment: SceneObject, z: float, x: float, y0: float, y1: float) -> SceneObject:
        return self.part(garment, ZIPPER, (), z, g.rect(x - 0.09, y0, x + 0.09, y1), _METAL)

    def hood(self, garment: SceneObject, up: bool) -> SceneObject:
        p = self.p
        hx, hy = p.head
        rx, ry = p.head_r
        inner = garment.paint.with_colors(*(shade(c, 0.7) for c in garment.paint.colors))
        if up:
            # A ring around the face, as two C shapes (COCO polygons have no holes).
            polys = []
            for s in (-1, 1):
                t = np.linspace(-math.pi / 2, math.pi / 2, 10) if s > 0 else np.linspace(math.pi / 2, 3 * math.pi / 2, 10)
                outer = np.stack([hx + rx * 1.45 * np.cos(t), hy + 0.1 + ry * 1.3 * np.sin(t)], axis=1)
                t2 = t[::-1]
                inn = np.stack([hx + rx * 0.98 * np.cos(t2), hy + 0.08 + ry * 1.0 * np.sin(t2)], axis=1)
                polys.append(np.vstack([outer, inn]))
            polys.append(g.quad((hx - rx * 1.2, hy + 0.6), (hx + rx * 1.2, hy + 0.6),
                                (hx + 0.8, p.SHOULDER_Y + 0.1), (hx - 0.8, p.SHOULDER_Y + 0.1)))
            return self.part(garment, HOOD, (), Z.HAIR + 0.1, polys, inner)
        polys = [g.ellipse(0.0, _NECK_Y - 0.1, 0.75, 0.38, n=16)]
        return self.part(garment, HOOD, (), Z.HOOD, polys, inner)

    # -- tops ------------------------------------------------------------------------------
    def tee(self, z: float = Z.TOP) -> SceneObject:
        rng = self.rng
        paint = self.fabric()
        neck_kind = _choice(rng, ["crew (neck)", "round (neck)", "scoop (neck)", "v-neck", "boat (neck)"])
        sleeve = _choice(rng, ["short (length)", "short (length)", "elbow-length", "wrist-length", "sleeveless"])
        crop = rng.random() < 0.2
        hem = self.p.WAIST_Y - 0.1 if crop else self.p.HIP_Y + rng.uniform(0.0, 0.3)
        fit = _choice(rng, [("regular (fit)", 0.1), ("tight (fit)", 0.03), ("loose (fit)", 0.22)])
        nick = "tank (top)" if sleeve == "sleeveless" else ("crop (top)" if crop else "classic (t-shirt)")
        attrs = [nick, fit[0], "above-the-hip (length)" if crop else "hip (length)", "no opening"]
        if sleeve == "sleeveless":
            attrs.append("sleeveless")
        item = self.garment(TOP, paint, attrs, kind="t-shirt")
        curve = _neck_curve(neck_kind)
        shoulder = self.p.shoulder_half * (0.8 if sleeve == "sleeveless" else 1.0)
        self.fig.add(item, z, self.torso(curve, hem, fit[1], shoulder=shoulder))
        if sleeve != "sleeveless":
            self.sleeves(item, z, sleeve, fit[1] + 0.04)
        trim = paint.with_colors(*(shade(c, 0.75) for c in paint.colors))
        self.neckline(item, z, neck_kind, curve, trim)
        return item

    def hoodie(self, z: float = Z.TOP) -> SceneObject:
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "plain", "stripe", "check", "dot"]))
        hem = self.p.HIP_Y + 0.2
        item = self.garment(TOP, paint, ["hoodie", "loose (fit)", "hip (length)", "no opening"], kind="hoodie")
        rib = dataclasses.replace(paint, rib=True)
        self.hood(item, up=bool(rng.random() < 0.35))
        self.fig.add(item, z, self.torso(_neck_curve("crew (neck)"), hem, 0.2))
        self.sleeves(item, z, "wrist-length", 0.2, cuff=rib)
        self.hem_band(item, z, hem, 0.2, rib)
        self.part(item, POCKET, ("kangaroo (pocket)",), z,
                  g.quad((-0.5, 3.0), (0.5, 3.0), (0.68, 3.75), (-0.68, 3.75)))
        return item

    def shirt(self, z: float = Z.TOP, collar_z: float | None = None) -> SceneObject:
        """A button-down shirt or blouse. ``collar_z`` draws the collar at another depth: a
        shirt worn under a sweater shows its collar over the sweater's neckline."""
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "stripe", "check", "check", "dot", "floral"]))
        sleeve = _choice(rng, ["wrist-length", "wrist-length", "short (length)", "elbow-length", "three quarter (length)"])
        fit = _choice(rng, [("regular (fit)", 0.1), ("loose (fit)", 0.2)])
        hem = self.p.HIP_Y + 0.25
        item = self.garment(SHIRT, paint, [fit[0], "hip (length)", "single breasted"], kind="shirt")
        curve = np.array([(-0.3, _NECK_Y), (0.0, _NECK_Y + 0.35), (0.3, _NECK_Y)])
        self.fig.add(item, z, self.torso(curve, hem, fit[1]))
        cuff = paint.with_colors(*(shade(c, 0.82) for c in paint.colors)) if sleeve == "wrist-length" else None
        self.sleeves(item, z, sleeve, fit[1] + 0.05, kind=_choice(rng, ["set-in sleeve", "set-in sleeve", "puff (sleeve)"]), cuff=cuff)
        self.decor(item, z, g.rect(-0.04, _NECK_Y + 0.3, 0.04, hem), Paint("plain", (shade(paint.colors[0], 0.7),), outline=1.0))
        self.buttons(item, z, 0.0, _NECK_Y + 0.5, hem - 0.3, 5)
        if rng.random() < 0.5:
            side = _choice(rng, [-1, 1])
            self.pocket(item, z, side * 0.45, 2.2, 0.38, 0.42, _choice(rng, ["patch (pocket)", "flap (pocket)"]))
        kind = _choice(rng, ["shirt (collar)", "shirt (collar)", "peter pan (collar)", "mandarin (collar)"])
        collar_paint = paint if rng.random() < 0.75 else Paint("plain", ((240, 240, 236),), names=("white",))
        self.part(item, COLLAR, (kind,), z if collar_z is None else collar_z, self._collar(kind), collar_paint)
        return item

    def _collar(self, kind: str) -> list[np.ndarray]:
        if kind == "mandarin (collar)":
            return [g.quad((-0.27, 1.0), (0.27, 1.0), (0.3, 1.38), (-0.3, 1.38))]
        if kind == "peter pan (collar)":
            return [g.ellipse(s * 0.24, 1.42, 0.27, 0.22, n=14) for s in (-1, 1)]
        band = g.rect(-0.27, 1.08, 0.27, 1.3)
        flaps = [g.quad((s * 0.3, 1.12), (s * 0.02, 1.42), (s * 0.16, 1.9), (s * 0.55, 1.55)) for s in (-1, 1)]
        return [band, *flaps]

    def sweater(self, z: float = Z.TOP) -> SceneObject:
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "plain", "stripe", "argyle", "check"]))
        paint = dataclasses.replace(paint, rib=True)
        neck_kind = _choice(rng, ["crew (neck)", "v-neck", "turtle (neck)"])
        hem = self.p.HIP_Y + rng.uniform(0.0, 0.35)
        fit = _choice(rng, [("regular (fit)", 0.14), ("loose (fit)", 0.26), ("oversized", 0.36)])
        item = self.garment(SWEATER, paint, [fit[0], "hip (length)", "no opening"], kind="sweater")
        curve = _neck_curve("crew (neck)" if neck_kind == "turtle (neck)" else neck_kind)
        self.fig.add(item, z, self.torso(curve, hem, fit[1]))
        band = paint.with_colors(*(shade(c, 0.8) for c in paint.colors))
        self.sleeves(item, z, "wrist-length", fit[1] + 0.06, cuff=band)
        self.hem_band(item, z, hem, fit[1], band)
        if neck_kind == "turtle (neck)":
            self.part(item, NECKLINE, (neck_kind,), z, g.quad((-0.26, 0.95), (0.26, 0.95), (0.34, 1.42), (-0.34, 1.42)), band)
        else:
            self.neckline(item, z, neck_kind, curve, band)
        return item

    # -- outer layers ----------------------------------------------------------------------
    def _panels(self, hem: float, ease: float, gap: float, break_y: float, flare: float = 0.0,
                shoulder: float | None = None) -> list[np.ndarray]:
        """Left and right front panels of an opening garment; ``gap`` is half the opening
        below ``break_y`` (negative: the panels overlap, i.e. it is closed)."""
        p = self.p
        sh = (p.shoulder_half if shoulder is None else shoulder) + ease * 0.5
        out = []
        for s in (-1, 1):
            side = [(s * sh, p.SHOULDER_Y - 0.02), *self.side_profile(s, p.SHOULDER_Y, hem, ease, flare)]
            front = [(s * gap, hem), (s * gap, break_y), (s * 0.24, _NECK_Y - 0.04)]
            out.append(np.array([*side, *front]))
        return out

    def _lapels(self, kind: str, gap: float, break_y: float) -> list[np.ndarray]:
        """Both lapels: the outer edge from the neck down to the break point; the inner edge is
        the garment's opening edge (break point back up to the neck)."""
        if kind == "notched (lapel)":
            outer = [(0.24, 1.24), (0.46, 1.3), (0.52, 1.52), (0.44, 1.57), (0.68, 1.8)]
        elif kind == "peak (lapel)":
            outer = [(0.24, 1.24), (0.44, 1.3), (0.48, 1.56), (0.8, 1.4), (0.7, 1.82)]
        else:  # shawl: one smooth curve (a quadratic Bézier)
            t = np.linspace(0.0, 1.0, 9)[:-1, None]
            a, c, b = np.array([0.24, 1.24]), np.array([0.85, 1.55]), np.array([gap, break_y])
            outer = list(map(tuple, (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t * t * b))
        return [np.array([(s * x, y) for x, y in outer] + [(s * gap, break_y)]) for s in (-1, 1)]

    def cardigan(self, z: float = Z.OUTER) -> SceneObject:
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "stripe", "argyle", "dot"]))
        paint = dataclasses.replace(paint, rib=True)
        hem = self.p.HIP_Y + rng.uniform(0.1, 0.6)
        closed = rng.random() < 0.5
        break_y = 2.6 if closed else 3.3
        gap = -0.04 if closed else rng.uniform(0.18, 0.4)
        item = self.garment(CARDIGAN, paint, ["regular (fit)", "hip (length)", "single breasted"], kind="cardigan")
        self.fig.add(item, z, self._panels(hem, 0.24, gap, break_y))
        band = paint.with_colors(*(shade(c, 0.8) for c in paint.colors))
        self.sleeves(item, z, "wrist-length", 0.3, cuff=band)
        self.hem_band(item, z, hem, 0.24, band)
        v = np.array([(-0.24, _NECK_Y - 0.02), (-max(gap, 0.0), break_y), (max(gap, 0.0), break_y), (0.24, _NECK_Y - 0.02)])
        if closed:
            self.buttons(item, z, 0.0, break_y + 0.1, hem - 0.3, 4)
        if closed:
            self.neckline(item, z, "v-neck", v, band)
        else:  # both front edges of the open V, as one neckline
            edges = [g.tube(v[[0, 1]], np.full(2, 0.1)), g.tube(v[[2, 3]], np.full(2, 0.1))]
            self.part(item, NECKLINE, ("v-neck",), z, edges, band)
        if rng.random() < 0.4:
            for s in (-1, 1):
                self.pocket(item, z, s * 0.55, 3.7, 0.42, 0.42, "patch (pocket)")
        return item

    def vest(self, z: float = Z.OUTER) -> SceneObject:
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "check", "stripe"]))
        hem = self.p.HIP_Y + 0.05
        item = self.garment(VEST, paint, ["tight (fit)", "hip (length)", "single breasted"], kind="vest")
        shoulder = self.p.shoulder_half * 0.72
        panels = self._panels(hem, 0.08, -0.04, 2.5, shoulder=shoulder)
        for poly in panels:  # armholes cut deeper than a jacket's
            poly[1:3, 0] = np.sign(poly[1:3, 0]) * np.minimum(np.abs(poly[1:3, 0]), self.p.torso_half(2.3) + 0.05)
        self.fig.add(item, z, panels)
        v = np.array([(-0.24, _NECK_Y - 0.02), (0.0, 2.5), (0.24, _NECK_Y - 0.02)])
        self.neckline(item, z, "v-neck", v, paint.with_colors(*(shade(c, 0.75) for c in paint.colors)))
        self.buttons(item, z, 0.0, 2.7, hem - 0.25, 4)
        for s in (-1, 1):
            self.pocket(item, z, s * 0.48, 3.3, 0.4, 0.12, "welt (pocket)")
        return item

    # Nicknames that fit each front style: (jackets, coats).
    _OUTER_NICKNAMES = {
        "lapel": (["blazer", "tuxedo (jacket)", ""], ["trench (coat)", "pea (coat)", ""]),
        "zip": (["bomber (jacket)", "track (jacket)", ""], ["parka", "puffer (coat)", ""]),
        "collar": (["trucker (jacket)", ""], ["duffle (coat)", ""]),
    }

    def _outer(self, category: int, hem: float, length: str, z: float) -> SceneObject:
        rng = self.rng
        paint = self.fabric(_choice(rng, ["plain", "plain", "plain", "plain", "check", "check", "stripe", "leopard", "camouflage"]))
        style = _choice(rng, ["lapel", "lapel", "zip", "collar"])
        nick = _choice(rng, self._OUTER_NICKNAMES[style][0 if category == JACKET else 1])
        closed = style == "zip" and rng.random() < 0.6 or style != "zip" and rng.random() < 0.35
        double = style == "lapel" and closed and rng.random() < 0.5
        opening = "zip-up" if style == "zip" else ("double breasted" if double else "single breasted")
        flare = 0.0 if category == JACKET else rng.uniform(0.1, 0.5)
        break_y = (2.0 if style == "zip" else 2.8) if closed else 3.0
        gap = (-0.04 if not double else -0.35) if closed else rng.uniform(0.2, 0.42)
        if style == "zip" and not closed:
            break_y = _NECK_Y + 0.1
        attrs = [_choice(rng, ["regular (fit)", "loose (fit)"]), length, opening]
        if nick:
            attrs.append(nick)
        item = self.garment(category, paint, attrs, kind="coat" if category == COAT else "jacket")
        ease = 0.3 if category == COAT else 0.24
        self.fig.add(item, z, self._panels(hem, ease, gap, break_y, flare))
        self.sleeves(item, z, "wrist-length", ease + 0.08,
                     cuff=paint.with_colors(*(shade(c, 0.8) for c in paint.colors)))
        lapel_paint = paint.with_colors(*(shade(c, 0.82) for c in paint.colors))
        if style == "lapel":
            kind = _choice(rng, ["notched (lapel)", "peak (lapel)", "shawl (lapel)"])
            self.part(item, LAPEL, (kind,), z, self._lapels(kind, max(gap, 0.0), break_y), lapel_paint)
            if closed:
                xs = (-0.2, 0.2) if double else (0.0,)
                for x in xs:
                    self.buttons(item, z, x, break_y + 0.15, min(hem - 0.3, 3.9), 3)
        elif style == "collar":
            self.part(item, COLLAR, ("shirt (collar)",), z, self._collar("shirt (collar)"), lapel_paint)
            if closed:
                self.buttons(item, z, 0.0, 1.9, min(hem - 0.3, 3.9), 5)
        else:
            self.part(item, COLLAR, ("banded (collar)",), z,
                      g.quad((-0.3, 1.05), (0.3, 1.05), (0.36, 1.4), (-0.36, 1.4)), lapel_paint)
            if closed:
                self.zipper(item, z, 0.0, 1.38, hem)
        pocket_kind = _choice(rng, ["flap (pocket)", "welt (pocket)", "patch (pocket)"])
        py = min(hem - 0.45, 3.6)
        for s in (-1, 1):
            self.pocket(item, z, s * (self.p.torso_half(py) * 0.62 + 0.1), py, 0.46, 0.4, pocket_kind)
        if category == COAT and rng.random() < 0.3:
            self.hood(item, up=False)
        if style != "zip" and rng.random() < 0.25:  # military-style shoulder straps
            sh = self.p.shoulder_half + ease * 0.5
            for s in (-1, 1):
                strap = g.quad((s * 0.45, _NECK_Y + 0.02), (s * (sh - 0.02), self.p.SHOULDER_Y - 0.06),
                               (s * (sh - 0.02), self.p.SHOULDER_Y + 0.12), (s * 0.45, _NECK_Y + 0.18))
                self.part(item, EPAULETTE, (), z, strap, lapel_paint)
        return item

    def cape(self, z: float = Z.OUTER) -> SceneObject:
        """A sleeveless shell from the shoulders, flaring over the arms (hands show below)."""
        rng = self.rng
        p = self.p
        paint = self.fabric(_choice(rng, ["plain", "plain", "check", "stripe"]))
        length, hem = _choice(rng, [("hip (length)", p.HIP_Y + 0.2), ("above-the-knee (length)", 5.3)])
        item = self.garment(CAPE, paint, ["loose (fit)", length], kind="cape")
        spread = max(abs(float(w[0])) for w in p.wrists) + 0.15
        right = [(0.26, _NECK_Y - 0.05), (p.shoulder_half + 0.12, p.SHOULDER_Y + 0.05),
                 (max(spread, p.shoulder_half + 0.5), hem)]
        self.fig.add(item, z, np.array([*right, *[(-x, y) for x, y in reversed(right)]]))
        if rng.random() < 0.5:
            self.part(item, COLLAR, ("regular (collar)",), z, self._collar("shirt (collar)"),
                      paint.with_colors(*(shade(c, 0.8) for c in paint.colors)))
        return item

    def jacket(self, z: float = Z.OUTER) -> SceneObject:
        hem = self.p.HIP_Y + self.rng.uniform(0.1, 0.45)
        return self._outer(JACKET, hem, "hip (length)", z)

    def coat(self, z: float = Z.OUTER) -> SceneObject:
        length, hem = _choice(self.rng, [("above-the-knee (length)", 5.4), ("knee (length)", 5.95),
                                         ("midi", 6.6), ("maxi (length)", 7.3)])
        return self._outer(COAT, hem, length, z)

    # -- bottoms ---------------------------------------------------------------------------
    def _waist(self) -> tuple[str, float]:
        return _choice(self.rng, [("normal waist", self.p.WAIST_Y), ("normal waist", self.p.WAIST_Y),
                                  ("high waist", self.p.WAIST_Y - 0.3), ("low waist", self.p.WAIST_Y + 0.4)])

    def _legs(self, item: SceneObject, z: float, waist_y: float, frac: float, radii, ease: float) -> None:
        p = self.p
        wy = waist_y
        hw = p.torso_half(wy) + ease
        hh = p.hip_half + ease
        pelvis = np.array([(-hw, wy), (hw, wy), (hh, p.HIP_Y), (hh * 0.95, p.CROTCH_Y + 0.15),
                           (-hh * 0.95, p.CROTCH_Y + 0.15), (-hh, p.HIP_Y)])
        polys = [pelvis]
        for side in (-1, 1):
            leg = p.leg_line(side)
            leg = np.vstack([leg[0] + np.array([0.0, -0.3]), leg[1:]])
            if frac > 1.0:
                leg[-1] = leg[-1] + (leg[-1] - leg[-2]) * (frac - 1.0)
            line = g.cut_polyline(leg, min(frac, 1.0), n=7)
            t = np.linspace(0.0, min(frac, 1.0), len(line))
            r = np.interp(t, [0.0, 0.5, 1.0], radii) + ease
            polys.append(g.tube(line, r))
        self.fig.add(item, z, polys)

    def pants(self, z: float = Z.BOTTOM) -> SceneObject:
        rng = self.rng
        nick = _choice(rng, ["jeans", "jeans", "", "cargo (pants)", "leggings", "sweatpants"])
        sil = {
            "leggings": ("tight (fit)", (0.38, 0.26, 0.17)),
            "cargo (pants)": ("baggy", (0.46, 0.4, 0.36)),
            "sweatpants": ("peg", (0.46, 0.36, 0.2)),
        }.get(nick) or _choice(rng, [("straight", (0.42, 0.32, 0.3)), ("wide leg", (0.46, 0.44, 0.52)),
                                     ("bootcut", (0.42, 0.3, 0.36)), ("tight (fit)", (0.39, 0.27, 0.2))])
        pattern = "plain" if nick in ("jeans", "sweatpants") else _choice(rng, ["plain", "plain", "plain", "check", "stripe", "camouflage", "leopard"])
        paint = self.fabric(pattern)
        if nick == "jeans":
            shade_name = _choice(rng, ["denim", "navy", "sky blue", "black", "light grey"])
            paint = dataclasses.replace(paint, colors=(COLORS[shade_name],), names=(shade_name,))
        waist_name, wy = self._waist()
        attrs = [sil[0], "maxi (length)", waist_name]
        if nick:
            attrs.append(nick)
        if nick in ("jeans", "", "cargo (pants)"):
            attrs.append("fly (opening)")
        item = self.garment(PANTS, paint, attrs, kind="pants")
        self._legs(item, z, wy, 1.06, sil[1], 0.0)
        self.decor(item, z, g.rect(-self.p.torso_half(wy) - 0.1, wy, self.p.torso_half(wy) + 0.1, wy + 0.18),
                   paint.with_colors(*(shade(c, 0.8) for c in paint.colors)))
        self._bottom_parts(item, z, wy, nick)
        return item

    def _bottom_parts(self, item: SceneObject, z: float, wy: float, nick: str) -> None:
        p = self.p
        rng = self.rng
        if nick in ("jeans", "cargo (pants)", "") and rng.random() < 0.7:
            for s in (-1, 1):
                hw = p.torso_half(wy + 0.2)
                poly = np.array([(s * (hw - 0.42), wy + 0.18), (s * hw, wy + 0.18), (s * (hw + 0.04), wy + 0.75),
                                 (s * (hw - 0.15), wy + 0.6), (s * (hw - 0.3), wy + 0.4)])
                self.part(item, POCKET, ("curved (pocket)",), z, poly,
                          item.paint.with_colors(*(shade(c, 0.88) for c in item.paint.colors)))
        if nick in ("jeans", "") and rng.random() < 0.5:
            self.zipper(item, z, 0.0, wy + 0.2, p.CROTCH_Y - 0.1)
        if nick == "cargo (pants)":
            for i, s in enumerate((-1, 1)):
                c = (p.hips[i] + p.knees[i]) / 2 + np.array([s * 0.2, 0.2])
                self.pocket(item, z, float(c[0]), float(c[1]), 0.4, 0.55, "cargo (pocket)")

    def shorts(self, z: float = Z.BOTTOM) -> SceneObject:
        rng = self.rng
        length, frac = _choice(rng, [("mini (length)", 0.25), ("above-the-knee (length)", 0.38), ("knee (length)", 0.5)])
        nick = "bermuda (shorts)" if length == "knee (length)" else _choice(rng, ["short (shorts)", ""])
        paint = self.fabric(_choice(rng, ["plain", "plain", "check", "stripe", "floral", "dot"]))
        waist_name, wy = self._waist()
        attrs = [length, waist_name, _choice(rng, ["regular (fit)", "loose (fit)"])]
        if nick:
            attrs.append(nick)
        item = self.garment(SHORTS, paint, attrs, kind="shorts")
        self._legs(item, z, wy, frac, (0.46, 0.42, 0.38), 0.04)
        self.decor(item, z, g.rect(-self.p.torso_half(wy) - 0.12, wy, self.p.torso_half(wy) + 0.12, wy + 0.16),
                   paint.with_colors(*(shade(c, 0.8) for c in paint.colors)))
        self._bottom_parts(item, z, wy, "" if rng.random() < 0.5 else "jeans")
        return item

    def _skirt_poly(self, top_y: float, hem: float, silhouette: str, ease: float) -> np.ndarray:
        p = self.p
        hw = p.torso_half(top_y) + ease
        hh = p.hip_half + ease + 0.05
        drop = hem - p.HIP_Y
        spread = {"pencil": -0.1, "straight": 0.05, "a-line": 0.32, "flare": 0.6, "fit and flare": 0.6}[silhouette]
        bottom = hh + spread * max(drop, 0.0) / 2.0 + (0.0 if silhouette == "pencil" else 0.05)
        right = [(hw, top_y), (hh, max(p.HIP_Y, top_y + 0.3))]
        if silhouette in ("flare", "fit and flare"):
            xs = np.linspace(bottom, -bottom, 9)
            hem_pts = [(x, hem + 0.12 * math.sin(i * math.pi / 2)) for i, x in enumerate(xs)]
        else:
            hem_pts = [(bottom, hem), (-bottom, hem)]
        left = [(-x, y) for x, y in reversed(right)]
        return np.array([*right, *hem_pts, *left])

    _LENGTHS = [("mini (length)", 4.9), ("above-the-knee (length)", 5.5), ("knee (length)", 5.95),
                ("midi", 6.6), ("maxi (length)", 7.55)]

    def skirt(self, z: float = Z.BOTTOM) -> SceneObject:
        rng = self.rng
        length, hem = _choice(rng, self._LENGTHS)
        sil = _choice(rng, ["pencil", "a-line", "a-line", "flare"])
        paint = self.fabric()
        waist_name, wy = self._waist()
        nick = {"pencil": "sheath (skirt)", "flare": "skater (skirt)"}.get(sil, "")
        attrs = [sil, length, waist_name] + ([nick] if nick else [])
        pleated = sil in ("a-line", "flare") and rng.random() < 0.35
        if pleated:
            attrs.append("pleat")
        item = self.garment(SKIRT, paint, attrs, kind="skirt")
        poly = self._skirt_poly(wy, hem, sil, 0.04)
        self.fig.add(item, z, poly)
        if pleated:
            self._pleats(item, z, poly, wy, hem)
        self.decor(item, z, g.rect(-self.p.torso_half(wy) - 0.08, wy, self.p.torso_half(wy) + 0.08, wy + 0.16),
                   paint.with_colors(*(shade(c, 0.8) for c in paint.colors)))
        if rng.random() < 0.3:
            self.zipper(item, z, 0.0, wy + 0.15, wy + 0.95)
        return item

    def _pleats(self, item: SceneObject, z: float, poly: np.ndarray, top_y: float, hem: float) -> None:
        """Fold lines fanning from the waist to the hem."""
        top_half = self.p.torso_half(top_y)
        hem_half = float(np.abs(poly[:, 0]).max())
        fold = item.paint.with_colors(*(shade(c, 0.62) for c in item.paint.colors))
        for t in np.linspace(-0.8, 0.8, 7):
            self.decor(item, z, g.segment((t * top_half, top_y + 0.15), (t * hem_half, hem + 0.1), 0.05), fold)

    # -- one-piece -------------------------------------------------------------------------
    def _bodice(self, item: SceneObject, z: float, waist_y: float, sleeve: str, neck_kind: str) -> None:
        shoulder = self.p.shoulder_half * (0.78 if sleeve == "sleeveless" else 1.0)
        curve = _neck_curve(neck_kind)
        self.fig.add(item, z, self.torso(curve, waist_y + 0.3, 0.05, shoulder=shoulder))
        if sleeve != "sleeveless":
            kind = _choice(self.rng, ["set-in sleeve", "set-in sleeve", "puff (sleeve)", "bell (sleeve)"])
            if sleeve == "wrist-length" and kind == "puff (sleeve)":
                kind = "set-in sleeve"
            self.sleeves(item, z, sleeve, 0.08, kind=kind)
        trim = item.paint.with_colors(*(shade(c, 0.78) for c in item.paint.colors))
        self.neckline(item, z, neck_kind, curve, trim)

    def dress(self, z: float = Z.TOP) -> SceneObject:
        rng = self.rng
        length, hem = _choice(rng, self._LENGTHS)
        sil = _choice(rng, ["a-line", "fit and flare", "pencil", "straight"])
        sleeve = _choice(rng, ["sleeveless", "sleeveless", "short (length)", "elbow-length", "wrist-length"])
        neck_kind = _choice(rng, list(NECKLINES))
        waist_name, wy = _choice(rng, [("normal waist", self.p.WAIST_Y), ("empire waistline", 2.45)])
        nick = {"pencil": "sheath (dress)", "straight": "shift (dress)", "fit and flare": "skater (dress)"}.get(sil, "")
        attrs = [sil, length, waist_name] + ([nick] if nick else []) + (["sleeveless"] if sleeve == "sleeveless" else [])
        paint = self.fabric()
        item = self.garment(DRESS, paint, attrs, kind="dress")
        # The skirt first, so that the bodice's parts lie on top of it.
        self.fig.add(item, z, self._skirt_poly(wy, hem, sil, 0.06))
        self._bodice(item, z, wy, sleeve, neck_kind)
        if rng.random() < 0.2:  # a bow at the waist, in a contrasting ribbon
            _, ribbon = sample_color(rng, avoid=paint.colors[0])
            bow_paint = Paint("plain", (ribbon,), shade=0.15, outline=0.6)
            x = _choice(rng, [0.0, -0.35, 0.35])
            loops = [g.quad((x, wy), (x - 0.32, wy - 0.2), (x - 0.32, wy + 0.2)),
                     g.quad((x, wy), (x + 0.32, wy - 0.2), (x + 0.32, wy + 0.2)),
                     g.quad((x - 0.04, wy), (x + 0.04, wy), (x + 0.16, wy + 0.5), (x - 0.16, wy + 0.5))]
            self.part(item, BOW, (), z, loops, bow_paint)
        return item

    def jumpsuit(self, z: float = Z.TOP) -> SceneObject:
        rng = self.rng
        sleeve = _choice(rng, ["sleeveless", "short (length)", "wrist-length"])
        neck_kind = _choice(rng, ["v-neck", "round (neck)", "square (neckline)", "crew (neck)"])
        sil, radii = _choice(rng, [("wide leg", (0.46, 0.44, 0.5)), ("straight", (0.44, 0.34, 0.32))])
        paint = self.fabric(_choice(rng, ["plain", "plain", "floral", "stripe", "dot", "check"]))
        attrs = [sil, "maxi (length)", "normal waist"] + (["sleeveless"] if sleeve == "sleeveless" else [])
        item = self.garment(JUMPSUIT, paint, attrs, kind="jumpsuit")
        self._legs(item, z, self.p.WAIST_Y - 0.2, 1.06, radii, 0.04)
        self._bodice(item, z, self.p.WAIST_Y, sleeve, neck_kind)
        return item
