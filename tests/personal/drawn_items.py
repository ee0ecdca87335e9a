"""Tiny drawn "closets" for the personalisation tests: items are fixed (colour, pattern,
shape) individuals drawn at random places, sizes and lighting on noisy backgrounds."""

from __future__ import annotations

import numpy as np

SIZE = 128


def draw_item(rng: np.random.Generator, colour: np.ndarray, second: np.ndarray, pattern: int,
              size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo (size×size×3 uint8) with one item, its mask (size×size bool) and box (XYXY)."""
    photo = rng.integers(60, 200, (size, size, 3)).astype(np.float64)
    photo[:] = photo.mean(axis=(0, 1)) * 0.5 + rng.normal(0, 12, photo.shape)  # plain noisy bg
    h = int(rng.integers(size // 3, size - 10))
    w = int(rng.integers(size // 3, size - 10))
    y0, x0 = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
    yy, xx = np.mgrid[0:h, 0:w]
    if pattern == 0:
        on = np.zeros((h, w), bool)
    elif pattern == 1:
        on = (yy // 6) % 2 == 0
    elif pattern == 2:
        on = ((yy // 8) + (xx // 8)) % 2 == 0
    else:
        on = ((yy % 10 - 5) ** 2 + (xx % 10 - 5) ** 2) < 8
    texture = np.where(on[..., None], second, colour)
    light = rng.uniform(0.75, 1.2)
    mask = np.zeros((size, size), bool)
    shape = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 < 1.3
    region = photo[y0:y0 + h, x0:x0 + w]
    region[shape] = texture[shape] * light + rng.normal(0, 4, (int(shape.sum()), 3))
    mask[y0:y0 + h, x0:x0 + w] = shape
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    return np.clip(photo, 0, 255).astype(np.uint8), mask, box


def drawn_closet(seed: int, items: int, photos_per_item: int):
    """``(photos, masks, boxes, item_ids, tags)``: photos_per_item photos of each item; tags
    per item: ``pattern`` (visible), ``lucky`` (drawn independently of how it looks)."""
    rng = np.random.default_rng(seed)
    kinds = []
    for k in range(items):
        colour = rng.uniform(20, 235, 3)
        second = rng.uniform(20, 235, 3)
        kinds.append((colour, second, k % 4, str(rng.choice(["yes", "no", "maybe"]))))
    photos, masks, boxes, ids, tags = [], [], [], [], []
    for k, (colour, second, pattern, lucky) in enumerate(kinds):
        for _ in range(photos_per_item):
            photo, mask, box = draw_item(rng, colour, second, pattern)
            photos.append(photo)
            masks.append(mask)
            boxes.append(box)
            ids.append(f"item-{k:02d}")
            tags.append({"pattern": ["plain", "stripe", "check", "dot"][pattern], "lucky": lucky})
    return photos, masks, boxes, ids, tags


# A brand's mark: its colour on a backing of another, as a logo is printed on a garment.
MARKS = {"sunny": ((240, 205, 20), (15, 15, 15)), "ember": ((205, 25, 30), (245, 245, 245)),
         "frost": ((245, 245, 245), (20, 30, 120))}


def place_mark(rng: np.random.Generator, photo: np.ndarray, mask: np.ndarray, mark: np.ndarray,
               backing: np.ndarray, brightness: tuple[float, float] | None = None) -> np.ndarray:
    """``photo`` with a 5-pixel square of ``mark`` on a 9-pixel square of ``backing`` at a random
    place inside ``mask`` (the mark's colour scaled by a factor drawn from ``brightness``)."""
    # Centres whose four corners 6 pixels out are in the item: the mark fits inside.
    padded = np.pad(mask, 6)
    inside = np.argwhere(padded[:-12, :-12] & padded[12:, 12:]
                         & padded[:-12, 12:] & padded[12:, :-12])
    cy, cx = inside[int(rng.integers(len(inside)))]
    out = photo.astype(np.float64)
    out[cy - 4:cy + 5, cx - 4:cx + 5] = backing
    out[cy - 2:cy + 3, cx - 2:cx + 3] = mark * (rng.uniform(*brightness) if brightness else 1.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def marked_closet(seed: int, items: int, photos_per_item: int, size: int = 2 * SIZE):
    """``(photos, masks, boxes, item_ids, tags)`` like :func:`drawn_closet` (photos of
    ``size``² pixels), each item of a random colour, second colour and pattern, with its
    ``brand``'s mark (:data:`MARKS`: a 5-pixel square on a 9-pixel backing) somewhere inside it
    in every photo: a few tenths of a percent of a garment's pixels or less."""
    rng = np.random.default_rng(seed)
    brands = list(MARKS)
    photos, masks, boxes, ids, tags = [], [], [], [], []
    for k in range(items):
        colour, second = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        pattern, brand = int(rng.integers(0, 4)), brands[k % len(brands)]
        mark, backing = (np.array(c, np.float64) for c in MARKS[brand])
        for _ in range(photos_per_item):
            photo, mask, box = draw_item(rng, colour, second, pattern, size)
            photos.append(place_mark(rng, photo, mask, mark, backing, brightness=(0.85, 1.1)))
            masks.append(mask)
            boxes.append(box)
            ids.append(f"item-{k:02d}")
            tags.append({"brand": brand})
    return photos, masks, boxes, ids, tags


def woven_cloth(colour, weave: str, size: int = 120, seed: int = 0, dots=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A photo of one piece of cloth (a disc) of ``colour`` woven as ``weave`` on grey, with
    sensor noise: ``"twill"`` diagonal ribs, ``"twill-mirrored"`` the other diagonal,
    ``"slub"`` short horizontal streaks, ``"plain"`` none; ``"plain-print"`` is plain cloth
    with three thin printed lines. ``dots``: a colour printed as 8-pixel dots 18 pixels apart
    on the woven cloth (the weave shows on them too)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    factor = np.ones((size, size))
    if weave == "twill":
        factor = np.where(((x + y) / 5.0) % 1.0 < 0.5, 1.12, 0.88)
    elif weave == "twill-mirrored":
        factor = np.where(((x - y) / 5.0) % 1.0 < 0.5, 1.12, 0.88)
    elif weave == "slub":
        streak = rng.random((size // 3 + 1, size // 16 + 1)) > 0.72
        factor = np.where(streak[(y // 3).astype(int), (x // 16).astype(int)], 1.2, 0.97)
    elif weave == "plain-print":
        factor = np.where(np.isin(x.astype(int) % 40, (0, 1)), 0.3, 1.0)
    mask = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size * 0.42) ** 2
    photo = np.full((size, size, 3), 128.0)
    cloth = np.broadcast_to(np.asarray(colour, float), (size, size, 3)).copy()
    if dots is not None:
        cloth[(x % 18 - 9) ** 2 + (y % 18 - 9) ** 2 < 16] = dots
    photo[mask] = cloth[mask] * factor[mask][:, None]
    photo += rng.normal(0, 2.0, size=(size, size, 1))
    return np.clip(photo, 0, 255).astype(np.uint8), mask
