"""Batch sampling that keeps landscape and portrait images in separate batches.

A batch of images with similar aspect ratios wastes less padding when the model pads them to a
common size (the ``"keep-ratio"`` pipeline); with square ``"paper"``/``"jitter"`` inputs it
is harmless. Like the ``GroupedBatchSampler`` of torchvision's detection references, but seeded
(the order is a function of ``(seed, epoch)``), with ``set_epoch``, and covering every index
exactly once per epoch on one process: the at most one partial batch per group is yielded as is
(or dropped with ``drop_last``) instead of being topped up with repeated samples.

For long-tailed data (Fashionpedia's rarest categories have a few dozen instances), the sampler
can repeat images that hold rare categories: LVIS's repeat-factor sampling
(:func:`repeat_factors`), with the repeats drawn per epoch from the same seeded generator.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["AspectRatioGroupedSampler", "aspect_ratio_groups", "repeat_factors"]


def aspect_ratio_groups(aspect_ratios: Sequence[float]) -> list[int]:
    """Group id per image: ``0`` landscape or square (width ≥ height), ``1`` portrait."""
    groups = []
    for i, ratio in enumerate(aspect_ratios):
        if not ratio > 0:
            raise ValueError(f"aspect ratio of image index {i} must be positive, got {ratio}")
        groups.append(0 if ratio >= 1.0 else 1)
    return groups


def repeat_factors(categories_per_image: Sequence[Iterable[int]], threshold: float) -> list[float]:
    """Repeat factor per image for LVIS's repeat-factor sampling (Gupta et al., 2019):
    ``f_c`` is the share of images that contain category ``c``, ``r_c = max(1, sqrt(t / f_c))``
    and an image's factor is the largest ``r_c`` of its categories (1 for an image without
    annotations). Categories in fewer than a share ``t`` (``threshold``) of the images are
    over-sampled; the rest are seen once per epoch."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    sets = [set(cats) for cats in categories_per_image]
    n = len(sets)
    images_with = Counter(c for cats in sets for c in cats)
    per_category = {c: max(1.0, math.sqrt(threshold * n / k)) for c, k in images_with.items()}
    return [max((per_category[c] for c in cats), default=1.0) for cats in sets]


def _dist_value(getter: str, default: int) -> int:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(getattr(dist, getter)())
    return default


class AspectRatioGroupedSampler(Sampler[list[int]]):
    """Yields batches (lists of dataset indices) whose images share an aspect-ratio group.

    ``aspect_ratios``: width / height per dataset index (``FashionDataset.aspect_ratios()``).
    Each epoch the indices are permuted with a generator seeded by ``(seed, epoch)`` (or kept in
    order with ``shuffle=False``) and streamed into per-group buffers; a buffer that reaches
    ``batch_size`` becomes a batch. Leftovers become final partial batches unless
    ``drop_last``.

    Distributed training: with ``num_replicas > 1`` every process builds the same global batch
    list and takes every ``num_replicas``-th batch starting at ``rank``. To give every process
    the same number of steps (DDP needs that), the list is first topped up by repeating its
    first batches, unless ``drop_last``, which trims it instead; so exactly-once coverage holds
    across processes only when the batch count divides evenly. ``num_replicas``/``rank``
    default to the ``torch.distributed`` process group running when the sampler is iterated,
    else 1 and 0. (With Lightning, pass ``use_distributed_sampler=False`` to the Trainer: this
    sampler shards itself, and Lightning cannot re-instantiate it around a DistributedSampler.)

    Call :meth:`set_epoch` at each epoch start (Lightning does this for batch samplers).

    ``repeat_factors`` (one float ≥ 1 per index, e.g. from :func:`repeat_factors`): index ``i``
    appears ``floor(r_i)`` times in an epoch, plus once more with probability ``r_i -
    floor(r_i)`` (systematic sampling, so ``r_i`` times on average and the epoch's length is
    ``sum(r)`` rounded down or up); :meth:`__len__` gives the current epoch's count.
    """

    def __init__(
        self,
        aspect_ratios: Sequence[float],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        repeat_factors: Sequence[float] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if num_replicas is not None and num_replicas < 1:
            raise ValueError(f"num_replicas must be positive, got {num_replicas}")
        if num_replicas is not None and rank is not None and not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, {num_replicas=}")
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        self.group_ids = aspect_ratio_groups(aspect_ratios)
        self.repeat_factors: np.ndarray | None = None
        if repeat_factors is not None:
            factors = np.asarray(repeat_factors, dtype=np.float64)
            if factors.shape != (len(self.group_ids),) or not bool(np.all(factors >= 1.0)):
                raise ValueError(f"repeat_factors must hold one value ≥ 1 per index "
                                 f"({len(self.group_ids)}), got shape {factors.shape}")
            self.repeat_factors = factors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self._num_replicas = num_replicas
        self._rank = rank
        self.epoch = 0

    # Resolved when iterating, not at construction: a sampler built before the process group
    # starts (e.g. before Lightning launches DDP) still shards once it is running.
    @property
    def num_replicas(self) -> int:
        if self._num_replicas is not None:
            return self._num_replicas
        return _dist_value("get_world_size", 1)

    @property
    def rank(self) -> int:
        rank = self._rank if self._rank is not None else _dist_value("get_rank", 0)
        if not 0 <= rank < self.num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got {rank=}, {self.num_replicas=}")
        return rank

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch must be ≥ 0, got {epoch}")
        self.epoch = int(epoch)

    def _epoch_indices(self, generator: torch.Generator) -> list[int]:
        """The epoch's indices before shuffling: each once, or repeated by the factors."""
        n = len(self.group_ids)
        if self.repeat_factors is None:
            return list(range(n))
        whole = np.floor(self.repeat_factors)
        counts = whole.astype(np.int64)
        # Systematic sampling of the extra copies: in a random order, index i takes one when
        # a point of u + ℤ (u ~ U(0, 1)) falls in its stretch of the cumulative fractions.
        # Each index gets it with probability exactly its fractional part, and the number of
        # extra copies is the sum of the fractions rounded up or down.
        order = torch.randperm(n, generator=generator).numpy()
        ends = np.cumsum((self.repeat_factors - whole)[order])
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        starts = np.concatenate([[0.0], ends[:-1]])
        counts[order] += (np.floor(ends - u) > np.floor(starts - u)).astype(np.int64)
        return np.repeat(np.arange(n), counts).tolist()

    def _global_batches(self) -> list[list[int]]:
        # SeedSequence mixes (seed, epoch) so consecutive epochs get unrelated orders.
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)
        generator = torch.Generator().manual_seed(int(state[0]) & ((1 << 63) - 1))
        indices = self._epoch_indices(generator)
        if self.shuffle:
            order = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
        else:
            order = indices
        buffers: dict[int, list[int]] = {}
        batches: list[list[int]] = []
        for index in order:
            buffer = buffers.setdefault(self.group_ids[index], [])
            buffer.append(index)
            if len(buffer) == self.batch_size:
                batches.append(buffer.copy())
                buffer.clear()
        if not self.drop_last:
            batches.extend(buffer for _, buffer in sorted(buffers.items()) if buffer)
        return batches

    def _global_count(self) -> int:
        if self.repeat_factors is not None:  # which indices repeat depends on the epoch
            return len(self._global_batches())
        counts: dict[int, int] = {}
        for g in self.group_ids:
            counts[g] = counts.get(g, 0) + 1
        full = sum(c // self.batch_size for c in counts.values())
        partial = 0 if self.drop_last else sum(1 for c in counts.values() if c % self.batch_size)
        return full + partial

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        replicas, rank = self.num_replicas, self.rank
        if replicas > 1:
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % replicas]
            elif batches:
                short = -len(batches) % replicas
                batches = batches + [batches[i % len(batches)] for i in range(short)]
            batches = batches[rank::replicas]
        return iter(batches)

    def __len__(self) -> int:
        total = self._global_count()
        replicas = self.num_replicas
        if replicas == 1:
            return total
        if self.drop_last:
            return total // replicas
        return -(-total // replicas)
