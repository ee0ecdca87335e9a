"""Data loaders for training and validation from a recipe, and the validation-time evaluator
adapter (ground truth and detections in the model's input space)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from fashionkit.data.annotations import AnnotationSet
from fashionkit.data.dataset import FashionDataset, collate
from fashionkit.data.samplers import AspectRatioGroupedSampler
from fashionkit.data.transforms import build_transforms
from fashionkit.engine.recipes import Recipe

__all__ = ["FashionDataModule"]


class FashionDataModule(L.LightningDataModule):
    """Training and validation loaders from a recipe.

    Loaders are built in the ``*_dataloader`` hooks, after Lightning has set up the process
    group, so that the batch sampler shards across DDP processes by itself (Lightning's own
    sampler replacement must be off: ``use_distributed_sampler=False``). The dataset's
    augmentation epoch follows the trainer's epoch (:meth:`on_train_epoch_start` of
    :class:`~fashionkit.engine.module.DetectionModule` calls ``set_epoch``)."""

    def __init__(
        self,
        recipe: Recipe,
        train_set: AnnotationSet,
        val_set: AnnotationSet | None,
        images_dir: Path,
        val_images_dir: Path | None = None,
        max_train_images: int | None = None,
    ):
        super().__init__()
        self.recipe = recipe
        ids = train_set.image_ids
        if max_train_images is not None:
            ids = ids[:max_train_images]
        self.train_dataset = FashionDataset(train_set, images_dir, _transforms(recipe, train=True),
                                            image_ids=ids, seed=recipe.seed)
        self.val_dataset = None
        if val_set is not None:
            self.val_dataset = FashionDataset(val_set, val_images_dir or images_dir,
                                              _transforms(recipe, train=False), seed=recipe.seed)

    def train_dataloader(self) -> DataLoader:
        return _loader(self.train_dataset, self.recipe, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        return _loader(self.val_dataset, self.recipe, shuffle=False)


def _transforms(recipe: Recipe, train: bool):
    d = recipe.data
    return build_transforms(
        d.transform,
        d.image_size,
        train=train,
        flip_p=d.flip_prob,
        min_size=d.min_size,
        max_size=d.max_size,
        min_scale=d.jitter_min,
        max_scale=d.jitter_max,
    )


def _loader(dataset: FashionDataset, recipe: Recipe, shuffle: bool) -> DataLoader:
    d = recipe.data
    ratios = dataset.aspect_ratios() if d.group_by_aspect_ratio else [1.0] * len(dataset)
    sampler = AspectRatioGroupedSampler(ratios, d.batch_size, shuffle=shuffle, seed=recipe.seed)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=d.num_workers,
        persistent_workers=d.num_workers > 0,
    )
