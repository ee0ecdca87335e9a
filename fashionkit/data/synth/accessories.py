"""Accessories on a posed figure: shoes, socks, tights, belt (with buckle), tie, scarf, bag,
hat, glasses and watch. Each builder adds drawing steps to the figure and returns its item(s).

Fashionpedia annotates each shoe and each sock on its own, tights as one piece, a bag with its
strap, and a buckle as a part of its belt.
"""

from __future__ import annotations

import math

import numpy as np

from fashionkit.data.synth import geometry as g
from fashionkit.data.synth.canvas import SceneObject
from fashionkit.data.synth.figures import Figure, Z
from fashionkit.data.synth.textures import COLORS, Finish, Paint, sample_fabric, shade

__all__ = ["AccessoryBuilder"]

GLASSES, HAT, HEADBAND, TIE, GLOVE, WATCH, BELT, TIGHTS, SOCK, SHOE, BAG, SCARF, UMBRELLA, BUCKLE, BOW = (
    13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 34, 38)


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _solid(name: str, shade_: float = 0.2, outline: float = 0.6) -> Paint:
    return Paint("plain", (COLORS[name],), shade=shade_, outline=outline, names=(name,))


_LEATHER = ["black", "black", "brown", "camel", "white", "burgundy", "navy", "red", "beige"]


class AccessoryBuilder:
    """Builds accessories on one figure; ``rng`` and ``finish`` as for
    :class:`~.garments.GarmentBuilder` (a bag's strap follows a raised arm, its look does not)."""

    def __init__(self, fig: Figure, rng: np.random.Generator, finish: Finish | None = None):
        self.fig = fig
        self.p = fig.pose
        self.rng = rng
        self.finish = finish or Finish()

    def _leather(self) -> Paint:
        palette = self.finish.palette
        names = ([n for n in _LEATHER if n in palette] or list(palette)) if palette else _LEATHER
        return self.finish.apply(_solid(_choice(self.rng, names)), self.fig.scale)

    def _fabric(self, pattern: str, unit: float | None = None) -> Paint:
        unit = self.fig.scale if unit is None else unit
        paint = sample_fabric(self.rng, unit, pattern, palette=self.finish.palette)
        return self.finish.apply(paint, self.fig.scale)

    def shoes(self) -> list[SceneObject]:
        rng = self.rng
        p = self.p
        paint = self._leather()
        kind = _choice(rng, ["sneaker", "boot", "pump", "loafer"])
        sole = Paint("plain", ((235, 235, 230),) if kind == "sneaker" else ((40, 36, 34),), shade=0.0, outline=1.0)
        items = []
        for i, s in enumerate((-1, 1)):
            item = SceneObject(SHOE, paint, (), info={"kind": kind})
            a, t = p.ankles[i], p.toes[i]
            top = a[1] - (0.9 if kind == "boot" else 0.12)
            polys = [
                g.quad((a[0] - 0.17, top), (a[0] + 0.17, top), (a[0] + s * 0.05 + 0.19, a[1] + 0.22),
                       (a[0] - 0.19 + s * 0.05, a[1] + 0.22)),
                g.ellipse(t[0], t[1] - 0.02, 0.25, 0.16, n=14),
                g.quad((a[0] - 0.18, a[1] + 0.1), (t[0], a[1] + 0.08), (t[0], a[1] + 0.4), (a[0] - 0.18, a[1] + 0.36)),
            ]
            if kind == "pump":
                polys[0] = g.quad((a[0] - 0.15, a[1] + 0.05), (a[0] + 0.15, a[1] + 0.05),
                                  (a[0] + 0.18, a[1] + 0.3), (a[0] - 0.18, a[1] + 0.3))
            self.fig.add(item, Z.SHOES, polys)
            self.fig.add(item, Z.SHOES, g.rect(min(a[0], t[0]) - 0.22, a[1] + 0.32, max(a[0], t[0]) + 0.24, a[1] + 0.42), sole, decor=True)
            items.append(item)
        return items

    def socks(self) -> list[SceneObject]:
        p = self.p
        paint = self._fabric(_choice(self.rng, ["plain", "plain", "stripe", "dot"]))
        height = self.rng.uniform(0.4, 1.1)
        items = []
        for i in range(2):
            item = SceneObject(SOCK, paint, ())
            leg = p.leg_line(-1 if i == 0 else 1)
            d = leg[2] - leg[1]
            d = d / np.hypot(*d)
            top = leg[2] - d * height
            self.fig.add(item, Z.SOCKS, g.tube(np.array([top, leg[2] + d * 0.15]), np.array([0.19, 0.18])))
            items.append(item)
        return items

    def tights(self) -> SceneObject:
        p = self.p
        name = _choice(self.rng, ["black", "charcoal", "beige", "navy", "burgundy"])
        paint = Paint("plain", (COLORS[name],), shade=0.35, outline=0.7, names=(name,))
        item = SceneObject(TIGHTS, paint, ())
        polys = [np.array([(-p.torso_half(3.2), 3.2), (p.torso_half(3.2), 3.2), (p.hip_half, p.HIP_Y),
                           (0.0, p.CROTCH_Y + 0.1), (-p.hip_half, p.HIP_Y)])]
        for side in (-1, 1):
            leg = p.leg_line(side)
            polys += g.capsule(leg[0], leg[1], p.LEG_R[0] + 0.02, p.LEG_R[1] + 0.02)
            polys += g.capsule(leg[1], leg[2], p.LEG_R[1] + 0.02, p.LEG_R[2] + 0.02)
        self.fig.add(item, Z.TIGHTS, polys)
        return item

    def belt(self, y: float, ease: float) -> SceneObject:
        p = self.p
        paint = self._leather()
        item = SceneObject(BELT, paint, ())
        half = p.torso_half(y) + ease + 0.04
        self.fig.add(item, Z.BELT, g.rect(-half, y - 0.1, half, y + 0.1))
        metal = _solid(_choice(self.rng, ["mustard", "light grey"]), 0.1, 0.5)
        buckle = SceneObject(BUCKLE, metal, (), parent=item)
        self.fig.add(buckle, Z.BELT, g.rect(-0.14, y - 0.15, 0.14, y + 0.15))
        self.fig.add(buckle, Z.BELT, g.rect(-0.07, y - 0.08, 0.07, y + 0.08), paint, decor=True)
        return item

    def tie(self) -> SceneObject:
        paint = self._fabric(_choice(self.rng, ["plain", "stripe", "dot", "plain"]), self.fig.scale * 0.6)
        item = SceneObject(TIE, paint, ())
        length = self.rng.uniform(2.9, 3.4)
        poly = g.quad((-0.07, 1.36), (0.07, 1.36), (0.1, 1.55), (0.16, length - 0.15), (0.0, length),
                      (-0.16, length - 0.15), (-0.1, 1.55))
        knot = g.quad((-0.1, 1.28), (0.1, 1.28), (0.07, 1.5), (-0.07, 1.5))
        self.fig.add(item, Z.TIE, [poly, knot])
        return item

    def scarf(self) -> SceneObject:
        rng = self.rng
        paint = self._fabric(_choice(rng, ["plain", "check", "stripe", "plain", "leopard"]))
        item = SceneObject(SCARF, paint, ())
        wrap = g.quad((-0.42, 1.05), (0.42, 1.05), (0.5, 1.6), (-0.5, 1.6))
        s = _choice(rng, [-1, 1])
        length = rng.uniform(2.6, 3.8)
        tail = g.quad((s * 0.05, 1.4), (s * 0.42, 1.4), (s * 0.48, length), (s * 0.12, length))
        polys = [wrap, tail]
        if rng.random() < 0.5:
            polys.append(g.quad((-s * 0.02, 1.45), (-s * 0.34, 1.45), (-s * 0.3, length - 0.5), (-s * 0.02, length - 0.5)))
        self.fig.add(item, Z.SCARF, polys)
        return item

    def bag(self) -> SceneObject:
        rng = self.rng
        p = self.p
        paint = self._leather() if rng.random() < 0.6 else self._fabric(_choice(rng, ["check", "stripe", "leopard", "dot"]))
        item = SceneObject(BAG, paint, (), info={"kind": ""})
        i = int(rng.integers(2))
        side = -1 if i == 0 else 1
        style = "crossbody" if p.raised[i] else _choice(rng, ["handbag", "handbag", "crossbody", "tote"])
        item.info["kind"] = style
        if style == "crossbody":
            bx, by = side * (p.hip_half + 0.35), p.HIP_Y - 0.1
            body = g.rect(bx - 0.45, by - 0.35, bx + 0.45, by + 0.35)
            strap = g.segment((-side * (p.shoulder_half - 0.35), p.SHOULDER_Y - 0.02), (bx - side * 0.3, by - 0.3), 0.11)
            self.fig.add(item, Z.BAG, [strap, body])
        else:
            hx, hy = p.hands[i]
            w, h = (0.5, 0.55) if style == "handbag" else (0.65, 0.75)
            top = hy + 0.3
            body = g.quad((hx - w * 0.8, top), (hx + w * 0.8, top), (hx + w, top + h * 1.4), (hx - w, top + h * 1.4))
            t = np.linspace(math.pi, 2 * math.pi, 9)
            outer = np.stack([hx + 0.36 * np.cos(t), top + 0.55 * np.sin(t)], axis=1)
            inner = np.stack([hx + 0.26 * np.cos(t[::-1]), top + 0.45 * np.sin(t[::-1])], axis=1)
            self.fig.add(item, Z.BAG, [np.vstack([outer, inner]), body])
        return item

    def hat(self) -> SceneObject:
        rng = self.rng
        p = self.p
        hx, hy = p.head
        rx, ry = p.head_r
        kind = _choice(rng, ["brim", "beanie", "cap"])
        paint = self._fabric("plain") if kind != "beanie" else self._fabric(_choice(rng, ["plain", "stripe"]))
        item = SceneObject(HAT, paint, (), info={"kind": kind})
        if kind == "brim":
            w = rng.uniform(1.0, 1.6)
            polys = [g.ellipse(hx, hy - 0.25, rx * w * 1.3, 0.14, n=20),
                     g.quad((hx - rx * 0.95, hy - 0.2), (hx + rx * 0.95, hy - 0.2), (hx + rx * 0.8, hy - 0.85), (hx - rx * 0.8, hy - 0.85))]
        elif kind == "beanie":
            polys = [g.ellipse(hx, hy - 0.2, rx * 1.08, ry * 0.75, n=20, a0=math.pi, a1=2 * math.pi),
                     g.rect(hx - rx * 1.08, hy - 0.28, hx + rx * 1.08, hy - 0.05)]
        else:
            s = _choice(rng, [-1, 1])
            polys = [g.ellipse(hx, hy - 0.18, rx * 1.05, ry * 0.68, n=20, a0=math.pi, a1=2 * math.pi),
                     g.quad((hx - rx * 0.6 * s, hy - 0.24), (hx + rx * 1.7 * s, hy - 0.2), (hx + rx * 1.6 * s, hy - 0.1), (hx - rx * 0.6 * s, hy - 0.1))]
        self.fig.add(item, Z.HAT, polys)
        return item

    def glasses(self) -> SceneObject:
        hx, hy = self.p.head
        name = _choice(self.rng, ["black", "brown", "charcoal", "burgundy"])
        paint = Paint("plain", (shade(COLORS[name], 0.8),), shade=0.0, outline=0.5, names=(name,))
        item = SceneObject(GLASSES, paint, ())
        polys = [g.ellipse(hx + s * 0.19, hy + 0.02, 0.16, 0.11, n=12) for s in (-1, 1)]
        polys.append(g.rect(hx - 0.06, hy - 0.02, hx + 0.06, hy + 0.02))
        polys += [g.rect(hx + s * 0.34 - 0.06 * (s > 0), hy - 0.03, hx + s * 0.34 + 0.06 * (s < 0), hy + 0.0) for s in (-1, 1)]
        self.fig.add(item, Z.GLASSES, polys)
        return item

    def watch(self) -> SceneObject:
        p = self.p
        i = int(self.rng.integers(2))
        e, w = p.elbows[i], p.wrists[i]
        d = (w - e) / np.hypot(*(w - e))
        c = w - d * 0.1
        paint = _solid(_choice(self.rng, ["black", "light grey", "mustard", "brown"]), 0.1, 0.5)
        item = SceneObject(WATCH, paint, ())
        # Larger than life, so that it survives at 128 px.
        band = g.tube(np.array([c - d * 0.14, c + d * 0.14]), np.array([p.ARM_R[2] + 0.06] * 2))
        face = g.ellipse(c[0], c[1], 0.16, 0.16, n=10)
        self.fig.add(item, Z.WATCH, [band, face])
        return item

    def gloves(self) -> list[SceneObject]:
        """A pair, annotated one by one, covering the hands and the wrists."""
        p = self.p
        paint = self._leather() if self.rng.random() < 0.6 else self._fabric("plain")
        items = []
        for i in range(2):
            item = SceneObject(GLOVE, paint, ())
            d = p.hands[i] - p.wrists[i]
            rot = math.atan2(d[1], d[0]) - math.pi / 2
            cuff = g.tube(np.array([p.wrists[i] - d * 0.5, p.wrists[i] + d * 0.3]), np.array([0.17, 0.17]))
            self.fig.add(item, Z.HANDS + 0.1, [cuff, g.ellipse(p.hands[i][0], p.hands[i][1], 0.2, 0.27, n=12, rot=rot)])
            items.append(item)
        return items

    def headband(self) -> SceneObject:
        hx, hy = self.p.head
        rx, ry = self.p.head_r
        paint = self._fabric(_choice(self.rng, ["plain", "plain", "dot", "stripe"]), self.fig.scale * 0.5)
        item = SceneObject(HEADBAND, paint, ())
        t = np.linspace(math.pi * 1.05, math.pi * 1.95, 12)
        outer = np.stack([hx + rx * 1.1 * np.cos(t), hy - 0.1 + ry * 0.98 * np.sin(t)], axis=1)
        inner = np.stack([hx + rx * 0.98 * np.cos(t[::-1]), hy - 0.1 + ry * 0.8 * np.sin(t[::-1])], axis=1)
        polys = [np.vstack([outer, inner])]
        if self.rng.random() < 0.5:  # with a bow on the side, as part of the headband
            s = _choice(self.rng, [-1, 1])
            cx, cy = hx + s * rx * 0.75, hy - ry * 0.75
            polys += [g.quad((cx, cy), (cx - 0.22, cy - 0.14), (cx - 0.22, cy + 0.14)),
                      g.quad((cx, cy), (cx + 0.22, cy - 0.14), (cx + 0.22, cy + 0.14))]
        self.fig.add(item, Z.HAT, polys)
        return item

    def umbrella(self) -> SceneObject:
        """Open above the head in a raised hand, else closed and hanging from a hand."""
        rng = self.rng
        p = self.p
        paint = self._fabric(_choice(rng, ["plain", "plain", "stripe", "dot", "check"]))
        item = SceneObject(UMBRELLA, paint, ())
        raised = [i for i in range(2) if p.raised[i]]
        i = raised[0] if raised else int(rng.integers(2))
        hx, hy = p.hands[i]
        if raised:
            top = (float(p.head[0]) * 0.5 + hx * 0.5, min(hy - 0.9, -0.4))
            canopy = g.ellipse(top[0], top[1] + 0.1, 1.7, 0.9, n=20, a0=math.pi, a1=2 * math.pi)
            stick = g.segment((top[0], top[1]), (hx, hy), 0.08)
            self.fig.add(item, Z.HAT + 0.5, [canopy, stick])
        else:
            side = -1 if i == 0 else 1
            tip = (hx + side * 0.3, hy + 2.4)
            body = g.quad((hx - 0.05, hy + 0.2), (hx + 0.05, hy + 0.2), (tip[0] + 0.18, tip[1] - 0.5), (tip[0], tip[1]), (tip[0] - 0.18, tip[1] - 0.5))
            handle = g.ellipse(hx, hy - 0.05, 0.12, 0.12, n=8)
            self.fig.add(item, Z.BAG, [body, handle])
        return item
