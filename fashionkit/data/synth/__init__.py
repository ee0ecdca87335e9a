"""The synthetic fashion world: dressed figures on varied backgrounds, annotated exactly in the
Fashionpedia format, so that every stage can be tested and demonstrated without downloads.

- :func:`render_image` — one image and its annotations (pure function of seed, index, size).
- :func:`generate_world` — ``OUT/images/``, ``OUT/train.json``, ``OUT/val.json``.
"""

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
    "PATTERN_ATTRIBUTES",
    "SCENES",
    "SceneConfig",
    "SynthImage",
    "WorldSummary",
    "default_min_area",
    "generate_world",
    "render_image",
    "split_indices",
]
