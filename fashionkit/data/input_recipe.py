"""The input recipe: how photos become model inputs (:class:`DataConfig`), shared by training
(``fashionkit.engine`` recipes hold one), validation and inference, which read it from a
checkpoint or an exported model without needing the engine."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from fashionkit.data.transforms import Compose, build_transforms

__all__ = ["DataConfig", "data_config_of"]


@dataclass(frozen=True)
class DataConfig:
    """Input pipeline. ``transform``: ``paper`` (resize longest side + pad to ``image_size``²),
    ``keep-ratio`` (shorter side ``min_size``, longer ≤ ``max_size``), ``jitter`` (scale jitter
    in ``[jitter_min, jitter_max]`` then crop/pad to ``image_size``²) or ``official`` (the
    published Fashionpedia models' input: longest side to ``image_size`` with TF1's bilinear
    resize, no padding; :class:`~fashionkit.data.transforms.OfficialResize`). ``crop_size`` > 0 trains on
    random ``crop_size``² windows of the transformed images (evaluation uses whole images).
    ``repeat_threshold`` > 0 turns on repeat-factor sampling of training images (LVIS; see
    :func:`fashionkit.data.samplers.repeat_factors`): images with categories in fewer than that
    share of the images are seen more than once per epoch."""

    transform: Literal["paper", "keep-ratio", "jitter", "official"] = "paper"
    image_size: int = 1024
    min_size: int = 800
    max_size: int = 1333
    jitter_min: float = 0.5
    jitter_max: float = 2.0
    crop_size: int = 0
    repeat_threshold: float = 0.0
    flip_prob: float = 0.5
    batch_size: int = 2
    num_workers: int = 2
    group_by_aspect_ratio: bool = True

    def transforms(self, train: bool) -> Compose:
        """The input transform of this recipe: training's (flip, crop) or evaluation's, which
        validation during training and the Predictor both use."""
        return build_transforms(self.transform, self.image_size, train=train,
                                flip_p=self.flip_prob, min_size=self.min_size,
                                max_size=self.max_size, min_scale=self.jitter_min,
                                max_scale=self.jitter_max, crop_size=self.crop_size)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """From a stored recipe's ``data`` entry; keys this version does not know are ignored
        (a model's input pipeline is all a reader of an older or newer file needs)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def data_config_of(recipe: Any) -> DataConfig | None:
    """The input pipeline of a recipe: ``None``, a :class:`DataConfig`, any object with a
    ``data`` :class:`DataConfig` (an engine ``Recipe``) or a stored recipe dict (as a
    checkpoint or an exported model carries it, ``{"data": {...}, ...}``)."""
    if recipe is None or isinstance(recipe, DataConfig):
        return recipe
    if isinstance(getattr(recipe, "data", None), DataConfig):
        return recipe.data
    if isinstance(recipe, dict) and isinstance(recipe.get("data"), dict):
        return DataConfig.from_dict(recipe["data"])
    raise TypeError(f"recipe must be a Recipe, a DataConfig or a recipe dict, not "
                    f"{type(recipe).__name__}")
