"""Data loaders for training and validation from a recipe, and the validation-time evaluator
adapter (ground truth and detections in the model's input space)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from fashionkit.data.annotations import AnnotationSet
from fashionkit.data.dataset import FashionDataset, collate
from fashionkit.data.samplers import AspectRatioGroupedSampler, repeat_factors
from fashionkit.engine.recipes import Recipe

__all__ = ["FashionDataModule", "set_loader_epoch"]


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Select epoch ``epoch``'s batch order and augmentation draws.

    Lightning's own ``set_epoch`` call reaches only ``loader.sampler`` (not a custom batch
    sampler) and comes after the first iterator of a fit — or of a resumed fit — exists, so the
    engine sets the epoch itself: when the loader is built and at each epoch start."""
    for obj in (loader.batch_sampler, loader.dataset):
        set_epoch = getattr(obj, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)


class FashionDataModule(L.LightningDataModule):
    """Training and validation loaders from a recipe.

    Loaders are built in the ``*_dataloader`` hooks, after Lightning has set up the process
    group, so that the batch sampler shards across DDP processes by itself (Lightning's own
    sampler replacement must be off: ``use_distributed_sampler=False``). Batch order and
    augmentation follow the trainer's epoch (:func:`set_loader_epoch`, also called by
    :meth:`~fashionkit.engine.module.DetectionModule.on_train_epoch_start`)."""

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
        self.train_dataset = FashionDataset(train_set, images_dir, recipe.data.transforms(train=True),
                                            image_ids=ids, seed=recipe.seed)
        self.val_dataset = None
        if val_set is not None:
            # Validation decodes every photo at full size and lets the transform resize it, as
            # the Predictor does: the AP logged here is then the AP of detect + evaluate.
            self.val_dataset = FashionDataset(val_set, val_images_dir or images_dir,
                                              recipe.data.transforms(train=False),
                                              seed=recipe.seed, decode_size=None)

    def steps_per_epoch(self, world_size: int) -> int:
        """Batches each process draws per epoch (DDP shards batches evenly)."""
        return len(_batch_sampler(self.train_dataset, self.recipe, shuffle=True,
                                  num_replicas=world_size, rank=0))

    def train_dataloader(self) -> DataLoader:
        loader = _loader(self.train_dataset, self.recipe, shuffle=True)
        # Built inside the fit (after a resumed checkpoint is restored) and iterated before
        # any epoch hook runs: this is the one chance to give the first iterator its epoch.
        # (``current_epoch`` is not yet restored at this point of a resumed fit; the loop's
        # processed-epoch count, which Lightning itself gives samplers, is.)
        epoch = 0 if self.trainer is None else self.trainer.fit_loop.epoch_progress.current.processed  # type: ignore[attr-defined]
        set_loader_epoch(loader, epoch)
        return loader

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        return _loader(self.val_dataset, self.recipe, shuffle=False)


def _batch_sampler(dataset: FashionDataset, recipe: Recipe, shuffle: bool,
                   num_replicas: int | None = None, rank: int | None = None,
                   ) -> AspectRatioGroupedSampler:
    d = recipe.data
    ratios = dataset.aspect_ratios() if d.group_by_aspect_ratio else [1.0] * len(dataset)
    factors = None
    if shuffle and d.repeat_threshold > 0:
        annotations = dataset.annotations
        categories = annotations.columns.category_ids
        factors = repeat_factors([categories[annotations.rows(i)] for i in dataset.image_ids],
                                 d.repeat_threshold)
    return AspectRatioGroupedSampler(ratios, d.batch_size, shuffle=shuffle, seed=recipe.seed,
                                     num_replicas=num_replicas, rank=rank,
                                     repeat_factors=factors)


def _loader(dataset: FashionDataset, recipe: Recipe, shuffle: bool) -> DataLoader:
    d = recipe.data
    sampler = _batch_sampler(dataset, recipe, shuffle)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=d.num_workers,
        persistent_workers=d.num_workers > 0,
    )
