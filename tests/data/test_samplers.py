"""The aspect-ratio grouped batch sampler: pure groups, exact coverage, seeded, DDP shards."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fashionkit.data.samplers import (
    AspectRatioGroupedSampler,
    aspect_ratio_groups,
    repeat_factors,
)

RATIOS = [1.5, 0.75, 1.0, 0.5, 2.0, 0.8, 1.33, 0.66, 0.7, 1.2, 0.9, 1.01, 0.6]


def _flat(batches):
    return sorted(itertools.chain.from_iterable(batches))


def test_groups_landscape_square_portrait():
    assert aspect_ratio_groups([1.5, 1.0, 0.99, 0.5]) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="index 1"):
        aspect_ratio_groups([1.0, 0.0])


@settings(max_examples=40, deadline=None)
@given(
    ratios=st.lists(st.floats(0.2, 5.0), min_size=0, max_size=40),
    batch_size=st.integers(1, 6),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 5),
)
def test_every_index_once_and_batches_pure(ratios, batch_size, seed, epoch):
    sampler = AspectRatioGroupedSampler(ratios, batch_size, seed=seed)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert _flat(batches) == list(range(len(ratios)))
    assert len(batches) == len(sampler)
    groups = aspect_ratio_groups(ratios)
    partial = 0
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        assert len({groups[i] for i in batch}) == 1, "a batch mixes landscape and portrait"
        partial += len(batch) < batch_size
    assert partial <= 2  # at most one leftover per group


def test_drop_last_yields_only_full_batches():
    sampler = AspectRatioGroupedSampler(RATIOS, 3, drop_last=True)
    batches = list(sampler)
    assert batches and all(len(b) == 3 for b in batches)
    assert len(batches) == len(sampler)
    # 6 landscape/square and 7 portrait images: 2 + 2 full batches, 1 portrait image dropped.
    assert len(batches) == 4


def test_seeded_and_epoch_dependent():
    a = AspectRatioGroupedSampler(RATIOS, 2, seed=5)
    b = AspectRatioGroupedSampler(RATIOS, 2, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(AspectRatioGroupedSampler(RATIOS, 2, seed=6)) != first


def test_without_shuffle_keeps_order_within_groups():
    batches = list(AspectRatioGroupedSampler(RATIOS, 2, shuffle=False))
    groups = aspect_ratio_groups(RATIOS)
    for group in (0, 1):
        in_group = [i for b in batches for i in b if groups[i] == group]
        assert in_group == [i for i in range(len(RATIOS)) if groups[i] == group]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("replicas", [2, 3])
def test_distributed_shards_have_equal_length_and_cover_the_set(replicas, drop_last):
    samplers = [
        AspectRatioGroupedSampler(
            RATIOS, 2, seed=1, drop_last=drop_last, num_replicas=replicas, rank=r
        )
        for r in range(replicas)
    ]
    shards = [list(s) for s in samplers]
    lengths = {len(shard) for shard in shards}
    assert len(lengths) == 1, "every rank must run the same number of steps"
    assert lengths == {len(samplers[0])}
    single = list(AspectRatioGroupedSampler(RATIOS, 2, seed=1, drop_last=drop_last))
    seen = set(_flat(itertools.chain.from_iterable(shards)))
    if drop_last:
        assert seen <= set(range(len(RATIOS)))
        assert len(seen) == sum(len(b) for b in single[: len(single) - len(single) % replicas])
    else:
        assert seen == set(range(len(RATIOS)))
    # Shards are disjoint unless batches had to be repeated to even the ranks out.
    if len(single) % replicas == 0:
        flat = list(itertools.chain.from_iterable(itertools.chain.from_iterable(shards)))
        assert len(flat) == len(set(flat))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        AspectRatioGroupedSampler(RATIOS, 0)
    with pytest.raises(ValueError, match="rank"):
        AspectRatioGroupedSampler(RATIOS, 2, num_replicas=2, rank=2)


def test_process_group_is_read_when_iterating_not_when_constructing(monkeypatch):
    sampler = AspectRatioGroupedSampler(RATIOS, 2, seed=4)  # built before "DDP" starts
    assert len(list(sampler)) == len(sampler) == 7
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    explicit = AspectRatioGroupedSampler(RATIOS, 2, seed=4, num_replicas=2, rank=1)
    assert list(sampler) == list(explicit)
    assert len(sampler) == len(explicit) == 4


def test_repeat_factors_follow_the_lvis_definition():
    # 10 images: category 1 in all, 2 in 5, 3 in 1 (image 0), image 9 has none.
    cats = [[1, 2, 3], [1, 2], [1, 2], [1, 2], [1, 2, 2], [1], [1], [1], [1], []]
    r = repeat_factors(cats, threshold=0.4)
    # f1 = 0.9, f2 = 0.5 → r = 1; f3 = 0.1 → sqrt(0.4 / 0.1) = 2; an image takes its max.
    assert r == pytest.approx([2.0] + [1.0] * 9)
    r = repeat_factors(cats, threshold=0.9)
    assert r[0] == pytest.approx(3.0) and r[1] == pytest.approx((0.9 / 0.5) ** 0.5)
    assert r[5] == pytest.approx(1.0) and r[9] == 1.0
    with pytest.raises(ValueError, match="positive"):
        repeat_factors(cats, 0.0)


def test_repeat_factor_sampling_repeats_by_the_factors():
    factors = [1.0, 2.0, 1.5, 1.25, 3.7, 1.0]
    sampler = AspectRatioGroupedSampler([1.0] * 6, 2, seed=3, repeat_factors=factors)
    seen = [0.0] * 6
    epochs = 400
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = _flat(batches)
        # sum(floor(r)) = 9, plus 1 or 2 of the fractions .5 + .25 + .7 = 1.45
        assert len(flat) in (10, 11)
        for i, r in enumerate(factors):
            assert int(r) <= flat.count(i) <= int(r) + (r > int(r))
            seen[i] += flat.count(i)
    for i, r in enumerate(factors):
        assert seen[i] / epochs == pytest.approx(r, abs=0.06), i
    again = AspectRatioGroupedSampler([1.0] * 6, 2, seed=3, repeat_factors=factors)
    again.set_epoch(7)
    sampler.set_epoch(7)
    assert list(again) == list(sampler)
    with pytest.raises(ValueError, match="one value"):
        AspectRatioGroupedSampler([1.0] * 6, 2, repeat_factors=[1.0] * 5)
    with pytest.raises(ValueError, match="one value"):
        AspectRatioGroupedSampler([1.0] * 6, 2, repeat_factors=[0.5] * 6)


def test_repeat_factor_sampling_shards_across_processes():
    factors = [1.0, 2.0, 1.5, 1.25, 3.7, 1.0, 1.0]
    shards = [list(AspectRatioGroupedSampler([1.0] * 7, 2, seed=1, num_replicas=2, rank=k,
                                             repeat_factors=factors)) for k in (0, 1)]
    whole = list(AspectRatioGroupedSampler([1.0] * 7, 2, seed=1, repeat_factors=factors))
    # Every process draws the same epoch (same repeats), then takes every other batch.
    assert len(shards[0]) == len(shards[1])
    assert shards[0] == whole[0::2] + whole[:0]
    assert shards[1] == whole[1::2] + ([whole[0]] if len(whole) % 2 else [])
