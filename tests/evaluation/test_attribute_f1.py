"""The attribute F1 is sklearn's binary "macro" F1 over 294-long multi-hot vectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fashionkit.evaluation.attribute_sets import pack_attributes
from fashionkit.evaluation.matching import attribute_f1

N = 294


def packed(rows: list[list[int]]) -> np.ndarray:
    counts = np.array([len(r) for r in rows])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    flat = np.array([v for r in rows for v in r], dtype=np.int64)
    return pack_attributes(offsets, flat, len(rows), N)


def test_empty_prediction_against_three_true_attributes():
    f1 = attribute_f1(packed([[]]), packed([[3, 70, 200]]), N)
    assert f1[0] == pytest.approx((582 / 585) / 2)
    assert f1[0] == pytest.approx(0.497, abs=1e-3)


def test_both_empty_is_perfect_and_all_set_is_perfect():
    assert attribute_f1(packed([[]]), packed([[]]), N)[0] == 1.0
    everything = list(range(N))
    assert attribute_f1(packed([everything]), packed([everything]), N)[0] == 1.0


def test_random_sets_match_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    preds, trues = [], []
    for _ in range(300):
        k1, k2 = rng.integers(0, 8, 2)
        pool = rng.integers(10, N)
        preds.append(sorted(set(rng.integers(0, pool, k1).tolist())))
        trues.append(sorted(set(rng.integers(0, pool, k2).tolist())))
    preds.append(list(range(N)))
    trues.append(list(range(N - 1)))
    ours = attribute_f1(packed(preds), packed(trues), N)
    for p, t, f in zip(preds, trues, ours, strict=True):
        yp = np.zeros(N, int)
        yt = np.zeros(N, int)
        yp[p] = 1
        yt[t] = 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert f == pytest.approx(f1_score(yt, yp, average="macro"), abs=1e-12)


def test_pack_collapses_duplicates_and_crosses_words():
    bits = packed([[0, 63, 64, 64, 293]])
    assert bits.shape == (1, 5)
    assert attribute_f1(bits, packed([[0, 63, 64, 293]]), N)[0] == 1.0
