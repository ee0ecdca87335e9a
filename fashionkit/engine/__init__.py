"""Training on Lightning: recipes, the LightningModule, data module, callbacks, ``train()``."""

from fashionkit.engine.recipes import (
    RECIPES,
    DataConfig,
    OptimConfig,
    Recipe,
    apply_overrides,
    get_recipe,
    load_recipe,
    save_recipe,
)
from fashionkit.engine.train import RunFolderError, TrainResult, train

__all__ = [
    "RECIPES",
    "DataConfig",
    "OptimConfig",
    "Recipe",
    "RunFolderError",
    "TrainResult",
    "apply_overrides",
    "get_recipe",
    "load_recipe",
    "save_recipe",
    "train",
]
