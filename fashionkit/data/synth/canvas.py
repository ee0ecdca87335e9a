"""Back-to-front compositing with exact occlusion, and annotations read off the result.

Shapes are rasterised by pycocotools' own polygon rasteriser, so a shape that nothing covers
can be written back as the very polygons it was drawn from and decodes to the same pixels.

Two label maps record, per pixel, the last thing drawn there: ``label`` holds the top-level item
(garment, accessory, or an unannotated body piece), ``part`` the garment part (0 = none). Every
drawing writes both, so a part is visible exactly where it was drawn last, and a garment's mask
includes its visible parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from fashionkit.data.synth.geometry import Polygon
from fashionkit.data.synth.textures import Paint, hex_color, render

__all__ = ["SceneObject", "Op", "Canvas", "snap"]


@dataclass(eq=False)
class SceneObject:
    """One thing in the picture.

    ``category_id`` is a Fashionpedia category id, or ``None`` for things that are drawn but
    not annotated (skin, hair, faces). ``parent`` is the garment a part belongs to.
    ``attributes`` are Fashionpedia attribute names (resolved to ids when annotations are made).
    ``info`` is extra ground truth copied into the annotation's ``"synth"`` record.
    """

    category_id: int | None
    paint: Paint
    attributes: tuple[str, ...] = ()
    parent: SceneObject | None = None
    info: dict = field(default_factory=dict)
    slot: int = 0
    polygons: list[Polygon] = field(default_factory=list)


@dataclass(eq=False)
class Op:
    """One drawing step: the union of ``polygons`` (image pixels) filled with ``paint`` (the
    item's by default). ``decor`` steps (buttons, seams, cuffs) only recolour pixels the item
    already shows (for a garment: outside its parts) and change no label."""

    item: SceneObject
    z: float
    polygons: list[Polygon]
    paint: Paint | None = None
    decor: bool = False


def snap(points: np.ndarray) -> np.ndarray:
    """Coordinates rounded to multiples of 1/8 pixel."""
    return np.round(np.asarray(points, dtype=np.float64) * 8.0) / 8.0


def _edges(m: np.ndarray) -> np.ndarray:
    """Pixels of ``m`` with a 4-neighbour outside it (the crop's border counts as inside)."""
    p = np.pad(m, 1, mode="edge")
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


class Canvas:
    """An RGB image being painted back to front, with its label maps.

    ``rgb`` is ``(H, W, 3)`` float32 0..255; ``label`` and ``part`` are ``(H, W)`` int32 slot
    numbers (0 = background / no part).
    """

    def __init__(self, background: np.ndarray):
        self.height, self.width = background.shape[:2]
        self.rgb = background.astype(np.float32, copy=True)
        self.label = np.zeros((self.height, self.width), dtype=np.int32)
        self.part = np.zeros((self.height, self.width), dtype=np.int32)
        # Which paint (its number in ``self.paints``, 0 = none) and which of its colours each
        # pixel shows: the ground truth for an item's colour shares.
        self.paint_no = np.zeros((self.height, self.width), dtype=np.int32)
        self.color_no = np.zeros((self.height, self.width), dtype=np.int8)
        self.paints: dict[int, int] = {}
        self._paint_refs: list[Paint] = []
        self.items: list[SceneObject] = []

    def _register(self, item: SceneObject) -> None:
        if item.slot == 0:
            if item.parent is not None:
                self._register(item.parent)
            self.items.append(item)
            item.slot = len(self.items)

    def draw(self, op: Op) -> None:
        item = op.item
        self._register(item)
        # Coordinates are snapped once, here, to 1/8 pixel: what is rasterised is what may be
        # written out, and binary fractions keep pycocotools' ×5 upsampling exact, so that a
        # polygon rasterised in a crop gives the same pixels as in the whole image.
        polys = [snap(p) for p in op.polygons if len(p) >= 3]
        if not polys:
            return
        allp = np.concatenate(polys)
        x0 = max(int(np.floor(allp[:, 0].min())) - 1, 0)
        y0 = max(int(np.floor(allp[:, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(allp[:, 0].max())) + 1, self.width)
        y1 = min(int(np.ceil(allp[:, 1].max())) + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            if not op.decor:
                item.polygons.extend(polys)
            return
        w, h = x1 - x0, y1 - y0
        shift = np.array([x0, y0], dtype=np.float64)
        rles = mask_utils.frPyObjects([(p - shift).ravel().tolist() for p in polys], h, w)
        m = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        lab = self.label[y0:y1, x0:x1]
        prt = self.part[y0:y1, x0:x1]
        if op.decor:
            # A garment's decor stays off its parts (a hem band does not run over a sleeve).
            m &= (prt == item.slot) if item.parent is not None else ((lab == item.slot) & (prt == 0))
        else:
            item.polygons.extend(polys)
            if item.parent is not None:
                np.copyto(lab, item.parent.slot, where=m)
                np.copyto(prt, item.slot, where=m)
            else:
                np.copyto(lab, item.slot, where=m)
                np.copyto(prt, 0, where=m)
        if not m.any():
            return
        paint = op.paint or item.paint
        tex, color_no = render(paint, x0, y0, w, h)
        if paint.outline < 1.0 and not op.decor:
            edges = _edges(m)
            np.multiply(tex, np.float32(paint.outline), out=tex, where=edges[..., None])
        np.copyto(self.rgb[y0:y1, x0:x1], tex, where=m[..., None])
        if id(paint) not in self.paints:
            self.paints[id(paint)] = len(self.paints) + 1
            self._paint_refs.append(paint)  # keeps ids unique while the canvas lives
        paint_no = self.paints[id(paint)]
        np.copyto(self.paint_no[y0:y1, x0:x1], paint_no, where=m)
        np.copyto(self.color_no[y0:y1, x0:x1], color_no, where=m)

    def color_shares(self, item: SceneObject, mask: np.ndarray) -> list[float]:
        """Share of each of ``item.paint.colors`` among the item's visible pixels painted with
        its own paint (parts in another fabric, buttons and the like are left out)."""
        n = len(item.paint.colors)
        own = mask & (self.paint_no == self.paints.get(id(item.paint), -1))
        counts = np.bincount(self.color_no[own], minlength=n)[:n]
        total = counts.sum()
        return [round(float(c) / total, 3) if total else 0.0 for c in counts]

    # -- reading the result ----------------------------------------------------------------
    def visible(self, item: SceneObject) -> np.ndarray:
        """The item's visible pixels, ``(H, W)`` bool (a garment's include its parts)."""
        if item.parent is not None:
            return self.part == item.slot
        return self.label == item.slot

    def segmentation(self, item: SceneObject, mask: np.ndarray) -> list | dict:
        """Polygons when the item's drawn polygons decode to exactly ``mask`` (nothing covers
        it and it lies inside the image), else compressed RLE with ``counts`` as str."""
        polys = item.polygons
        if polys:
            allp = np.concatenate(polys)
            inside = (
                allp[:, 0].min() >= 0
                and allp[:, 1].min() >= 0
                and allp[:, 0].max() <= self.width
                and allp[:, 1].max() <= self.height
            )
            if inside:
                flat = [p.ravel().tolist() for p in polys]
                rle = mask_utils.merge(mask_utils.frPyObjects(flat, self.height, self.width))
                if np.array_equal(mask_utils.decode(rle).astype(bool), mask):
                    return flat
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}

    def annotations(self, attribute_id, min_area: int) -> list[dict]:
        """Annotations (local ids 1..n, in drawing order of first appearance) of every
        annotated item whose visible area is at least ``min_area`` pixels.

        ``attribute_id`` maps an attribute name to its Fashionpedia id. A part whose garment
        was dropped is dropped too. ``synth.part_of`` is the garment's local id.
        """
        out: list[dict] = []
        ids: dict[int, int] = {}
        for item in self.items:
            if item.category_id is None:
                continue
            if item.parent is not None and item.parent.slot not in ids:
                continue
            mask = self.visible(item)
            area = int(mask.sum())
            if area < min_area:
                continue
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            x, y = int(cols[0]), int(rows[0])
            bw, bh = int(cols[-1]) - x + 1, int(rows[-1]) - y + 1
            ann_id = len(out) + 1
            ids[item.slot] = ann_id
            paint = item.paint
            shares = self.color_shares(item, mask)
            main = int(np.argmax(shares))
            synth = {
                "color": hex_color(paint.colors[main]),
                "color_name": paint.names[main] if main < len(paint.names) else None,
                "colors": [hex_color(c) for c in paint.colors],
                "color_shares": shares,
                "pattern": paint.pattern,
                "part_of": ids[item.parent.slot] if item.parent is not None else None,
            }
            synth.update(item.info)
            out.append(
                {
                    "id": ann_id,
                    "category_id": int(item.category_id),
                    "segmentation": self.segmentation(item, mask),
                    "bbox": [float(x), float(y), float(bw), float(bh)],
                    "area": float(area),
                    "iscrowd": 0,
                    "attribute_ids": sorted({attribute_id(a) for a in item.attributes}),
                    "synth": synth,
                }
            )
        return out

    def image(self, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        """The picture, ``(H, W, 3)`` uint8, with optional sensor noise (std in levels)."""
        rgb = self.rgb + np.float32(0.5)
        if rng is not None and noise > 0:
            # Luminance noise only: a third of the cost of per-channel noise, looks the same.
            grain = rng.standard_normal((self.height, self.width, 1), dtype=np.float32)
            rgb += grain * np.float32(noise)
        np.clip(rgb, 0, 255, out=rgb)
        return rgb.astype(np.uint8)
