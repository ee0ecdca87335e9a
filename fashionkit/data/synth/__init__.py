"""The synthetic fashion world: dressed figures on varied backgrounds, annotated exactly in the
Fashionpedia format, so that every stage can be tested and demonstrated without downloads.

- :func:`render_image` — one image and its annotations (a pure function of seed, index, size).
- :func:`generate_world` — ``OUT/images/``, ``OUT/train.json``, ``OUT/val.json``
  (``fashionkit synth world OUT --images N --size S --seed K``).
- :func:`~.closet.generate_closet` / :func:`~.closet.load_closet` — one person's items with their
  own tags and photos of them worn (``fashionkit synth closet OUT``), see :mod:`.closet`.

What is drawn (Fashionpedia category ids):

- garments 0–11: shirt/blouse, top/t-shirt (tee, tank, crop top, hoodie), sweater, cardigan,
  jacket, vest, pants, shorts, skirt, coat, dress, jumpsuit — layered (a jacket over a top over
  tucked or untucked bottoms, a shirt collar over a sweater);
- parts: hood 27, collar 28, lapel 29, sleeve 31, pocket 32, neckline 33, buckle 34 (of a
  belt), zipper 35 — each lies on its garment and its mask is inside the garment's;
- accessories: glasses 13, hat 14, tie 16, watch 18, belt 19, tights 21, sock 22, shoe 23,
  bag 24, scarf 25.

Attributes (real ids, only on categories 0–12, 28, 29, 31, 32, 33): the textile pattern painted
(plain, stripe, dot, check, floral, chevron, argyle, camouflage; animal: zebra, leopard), garment
nickname, silhouette, length, waistline and opening type; sleeve length and sleeve type on
sleeves; neckline type; collar, lapel and pocket types. Each describes what is drawn.

Every mask is the item's visible pixels after occlusion; ``area`` is its pixel count and
``bbox`` its extent. Each annotation's ``"synth"`` record holds per-item ground truth (colour,
colour shares, pattern, ``part_of``); see :class:`SynthImage`.
"""

from fashionkit.data.synth.closet import Closet, ClosetSummary, generate_closet, load_closet
from fashionkit.data.synth.scene import (
    SCENES,
    SceneConfig,
    SynthImage,
    default_min_area,
    render_image,
)
from fashionkit.data.synth.textures import COLORS, PATTERN_ATTRIBUTES
from fashionkit.data.synth.world import WorldSummary, generate_world, split_indices

__all__ = [
    "COLORS",
    "Closet",
    "ClosetSummary",
    "PATTERN_ATTRIBUTES",
    "SCENES",
    "SceneConfig",
    "SynthImage",
    "WorldSummary",
    "default_min_area",
    "generate_closet",
    "generate_world",
    "load_closet",
    "render_image",
    "split_indices",
]
