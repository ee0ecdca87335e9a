"""A person's own tags (season, material, brand, trend, occasion …) suggested for a newly
photographed item, learned from the items they have labelled.

:class:`TagModel` is one probe per tag type over the item embeddings
(:class:`~fashionkit.personal.embedding.ItemEmbedder`): the embeddings are reduced by PCA to at
most :data:`PROBE_DIMS` dimensions and standardised, then a multinomial logistic regression
predicts the tag's value with a probability, its confidence.

Few-shot honesty: the L2 penalty of each probe is chosen among :data:`PENALTIES` — and among
them "the prior", a model that always answers the most frequent value with its frequency — by
cross-validation over ITEMS (every photo of an item is held out together, ``groups``), by
held-out log-loss, each item counting once however often it was photographed (the person
labels items, not photos); a probe is taken only when it beats the prior by more than one
standard error of the per-item difference (a few items make that estimate noisy, and a probe
winning by less loses as often on the next item). Holding out by item matters: photos of one
item share its tags, so a probe validated on other photos of the same item would be rewarded
for recognising the item, not the tag. A tag with no visual correlate (one drawn independently of how an item looks) then gets
the prior, as it should; a tag that shows (a material's texture, a brand's palette) gets a probe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fashionkit.errors import InvalidDataError, Problem
from fashionkit.personal.recognition import check_embeddings

__all__ = ["TagSuggestion", "TagModel", "TagProbe", "PROBE_DIMS", "PENALTIES", "prior_of"]

#: Most PCA dimensions a probe sees (a person labels tens of items, not thousands).
PROBE_DIMS = 32
#: L2 penalties tried per tag type; ``None`` is the prior (no probe at all).
PENALTIES: tuple[float | None, ...] = (0.003, 0.03, 0.3, None)
_FOLDS = 10
_STEPS = 300


@dataclass(frozen=True)
class TagSuggestion:
    """A suggested ``value`` for one tag type and the model's ``confidence`` in it (0..1)."""

    value: str
    confidence: float


def prior_of(values: Sequence[str], weights: np.ndarray | None = None) -> tuple[str, float]:
    """The most frequent value (ties: the first in sorted order) and its frequency, each value
    counted with its ``weights`` (default 1)."""
    if not values:
        raise ValueError("prior_of needs at least one value")
    names, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=len(names))
    k = int(np.argmax(counts))
    return str(names[k]), float(counts[k] / counts.sum())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, penalty: float,
                  weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (weights F×C, bias C) by accelerated gradient descent
    on the ``weight``-ed mean cross-entropy + ``penalty``·|W|²/2; the step is 1/L of the
    loss's curvature bound."""
    n, f = x.shape
    weight = weight / weight.sum()
    target = np.zeros((n, classes))
    target[np.arange(n), y] = 1.0
    lipschitz = 0.5 * (np.linalg.norm(x * np.sqrt(weight)[:, None], 2) ** 2 + 1.0) + penalty
    step = 1.0 / lipschitz
    w = np.zeros((f, classes))
    b = np.log(weight @ target + 1e-3)
    vw, vb = w.copy(), b.copy()
    for t in range(1, _STEPS + 1):
        p = _softmax(x @ vw + vb)
        residual = (p - target) * weight[:, None]
        gw = x.T @ residual + penalty * vw
        gb = residual.sum(axis=0)
        w_next, b_next = vw - step * gw, vb - step * gb
        momentum = (t - 1) / (t + 2)
        vw, vb = w_next + momentum * (w_next - w), b_next + momentum * (b_next - b)
        w, b = w_next, b_next
    return w, b


@dataclass
class TagProbe:
    """The probe of one tag type: ``values`` (sorted), the chosen ``penalty`` (``None``: the
    prior), ``weights`` (F×C) and ``bias`` (C), or the prior's ``value``/``frequency``."""

    values: tuple[str, ...]
    penalty: float | None
    weights: np.ndarray | None
    bias: np.ndarray | None
    prior: tuple[str, float]
    cv_log_loss: dict[str, float]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``M×C`` probabilities of :attr:`values` for ``M×F`` probe features."""
        if self.weights is None or self.bias is None:
            out = np.zeros((len(features), len(self.values)))
            out[:, self.values.index(self.prior[0])] = 1.0
            return out
        return _softmax(features @ self.weights + self.bias)


class TagModel:
    """Per-person tag suggestions (module docstring). Build with :meth:`fit`; :meth:`predict`
    suggests. ``probes``: tag type → :class:`TagProbe`."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray, scale: np.ndarray,
                 probes: dict[str, TagProbe]):
        self.mean, self.basis, self.scale = mean, basis, scale
        self.probes = probes
        self.dims = int(mean.shape[0])

    def __repr__(self) -> str:
        chosen = {t: ("prior" if p.penalty is None else p.penalty) for t, p in self.probes.items()}
        return f"TagModel({chosen})"

    def _features(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) @ self.basis) / self.scale

    @classmethod
    def fit(cls, embeddings: np.ndarray, tags: Sequence[Mapping[str, str | None]], *,
            groups: Sequence[str] | None = None,
            penalties: Sequence[float | None] = PENALTIES) -> TagModel:
        """Probes for every tag type in ``tags`` (one mapping per row of ``embeddings``, N×D;
        a ``None`` or missing value: that sample does not say). ``groups``: the item of each
        sample (default: each sample its own item), held out together in cross-validation.
        ``penalties``: the choices (module docstring); ``(None,)`` gives the prior alone.

        Raises :class:`InvalidDataError` for no samples, mismatched counts, NaN values, or a
        tag value that is not a string."""
        x = check_embeddings(embeddings)
        problems = []
        if len(x) == 0:
            problems.append(Problem("embeddings", "array", "tags need at least one labelled "
                                    "item embedding"))
        if len(tags) != len(x):
            problems.append(Problem("tags", "list", f"{len(tags)} tag records for {len(x)} "
                                    "embeddings"))
        item_of = [str(g) for g in groups] if groups is not None else [str(i) for i in range(len(x))]
        if len(item_of) != len(x):
            problems.append(Problem("groups", "list", f"{len(item_of)} groups for {len(x)} "
                                    "embeddings"))
        for i, record in enumerate(tags):
            for tag_type, value in dict(record).items():
                if value is not None and not isinstance(value, str):
                    problems.append(Problem("tags", f"record {i}", f"{tag_type!r} is "
                                            f"{type(value).__name__}, expected a string"))
        if problems:
            raise InvalidDataError(problems)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        keep = max(1, min(PROBE_DIMS, int((s > (s[0] if len(s) else 0) * 1e-6).sum())))
        basis = vt[:keep].T
        projected = (x - mean) @ basis
        scale = projected.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        features = projected / scale
        probes = {}
        tag_types = sorted({t for record in tags for t, v in record.items() if v is not None})
        for tag_type in tag_types:
            rows = [i for i, record in enumerate(tags) if record.get(tag_type) is not None]
            values = [str(tags[i][tag_type]) for i in rows]
            probes[tag_type] = _fit_probe(features[rows], values,
                                          np.array([item_of[i] for i in rows]), penalties)
        return cls(mean, basis, scale, probes)

    def predict(self, embeddings: np.ndarray) -> list[dict[str, TagSuggestion]]:
        """For each row of ``embeddings`` (M×D), tag type → the most probable value and its
        probability."""
        features = self._features(check_embeddings(embeddings, dims=self.dims))
        out: list[dict[str, TagSuggestion]] = [{} for _ in range(len(features))]
        for tag_type, probe in self.probes.items():
            p = probe.probabilities(features)
            best = np.argmax(p, axis=1)
            for m in range(len(features)):
                out[m][tag_type] = TagSuggestion(probe.values[best[m]], float(p[m, best[m]]))
        return out


def _fit_probe(features: np.ndarray, values: list[str], groups: np.ndarray,
               penalties: Sequence[float | None]) -> TagProbe:
    names = tuple(sorted(set(values)))
    y = np.array([names.index(v) for v in values])
    # Each item counts once, however often it was photographed: the person labels items.
    _, inverse, per_item = np.unique(groups, return_inverse=True, return_counts=True)
    weight = 1.0 / per_item[inverse]
    prior = prior_of(values, weight)
    if len(names) == 1 or len(set(groups)) < 3:
        return TagProbe(names, None, None, None, prior, {})
    unique = np.unique(groups)
    rng = np.random.default_rng(0)
    fold_of_group = dict(zip(rng.permutation(unique), np.arange(len(unique)) % _FOLDS,
                             strict=True))
    folds = np.array([fold_of_group[g] for g in groups])
    losses: dict[str, float] = {}
    per_sample: dict[float | None, np.ndarray] = {}
    for penalty in penalties:
        total = 0.0
        sample_loss = np.zeros(len(y))
        for fold in np.unique(folds):
            test = folds == fold
            train = ~test
            train_names = sorted(set(y[train].tolist()))
            if penalty is None:
                counts = np.bincount(y[train], weights=weight[train], minlength=len(names))
                p = np.tile((counts + 0.5) / (counts.sum() + 0.5 * len(names)), (test.sum(), 1))
            else:
                index = {c: k for k, c in enumerate(train_names)}
                w, b = _fit_logistic(features[train], np.array([index[c] for c in y[train]]),
                                     len(train_names), penalty, weight[train])
                p_train = _softmax(features[test] @ w + b)
                p = np.full((int(test.sum()), len(names)), 1e-3)
                p[:, train_names] = p_train * (1 - 1e-3 * (len(names) - len(train_names)))
            hit = np.clip(p[np.arange(int(test.sum())), y[test]], 1e-6, 1)
            sample_loss[test] = -np.log(hit)
            total += float((sample_loss[test] * weight[test]).sum())
        losses["prior" if penalty is None else f"{penalty:g}"] = total / float(weight.sum())
        per_sample[penalty] = sample_loss
    best = _one_standard_error_choice(penalties, per_sample, weight, inverse)
    if best is None:
        return TagProbe(names, None, None, None, prior, losses)
    w, b = _fit_logistic(features, y, len(names), best, weight)
    return TagProbe(names, best, w, b, prior, losses)


def _one_standard_error_choice(penalties: Sequence[float | None],
                               per_sample: dict[float | None, np.ndarray], weight: np.ndarray,
                               item_of: np.ndarray) -> float | None:
    """The penalty with the lowest held-out loss among those that beat the prior by more than
    one standard error of the per-item loss difference, else ``None`` (the prior): with a
    handful of items, a probe that wins by less is as likely to lose on the next item."""
    if None not in per_sample:
        return min((q for q in penalties if q is not None),
                   key=lambda q: float((per_sample[q] * weight).sum()))
    items = int(item_of.max()) + 1
    best, best_gain = None, 0.0
    for penalty in penalties:
        if penalty is None:
            continue
        diff = np.bincount(item_of, weights=(per_sample[penalty] - per_sample[None]) * weight,
                           minlength=items)
        mean = float(diff.mean())
        error = float(diff.std(ddof=1) / np.sqrt(items)) if items > 1 else float("inf")
        if mean + error < 0 and -mean > best_gain:
            best, best_gain = penalty, -mean
    return best
