"""A person's own tags (season, material, brand, trend, occasion …) suggested for a newly
photographed item, learned from the items they have labelled.

:class:`TagModel` is one probe per tag type over the item embeddings
(:class:`~fashionkit.personal.embedding.ItemEmbedder`). A probe looks at one *view* of the
embedding: one of its blocks (the detector's features, the colour histogram, the texture
statistics, the weave, the colours that meet at edges;
:func:`~fashionkit.personal.embedding.embedding_blocks`) or all of them, reduced by
PCA to at most :data:`PROBE_DIMS` dimensions and standardised. Each tag has its own visual
correlate — a brand its mark and palette, a material its texture, a trend its pattern — and
with ~20 labelled items a probe over the whole embedding drowns a 30-number cue in a thousand
feature dimensions; the view that carries the cue has to be chosen per tag. Two kinds of probe
are tried on every view: a multinomial logistic regression (L2 penalty among :data:`PENALTIES`)
and a nearest-neighbour vote (each labelled item votes for its value with a weight that falls
with its distance, at the scales of :data:`NEIGHBOUR_SCALES`), the latter because two or three
examples of a value are too few for a linear boundary but enough for "looks like that item".

Given the items' categories, two more kinds of candidate: the person's own value frequencies
in the query's category (their shoes are leather, their sweaters wool; with one pseudo-item of
their overall frequencies, so a category with one labelled item is not certain), and each
visual probe combined with them as independent evidence, ``p(v | look) · p(v | category) /
p(v)``: a texture cue then only has to tell apart the materials the person's items of that
category come in.

Few-shot honesty: the (view, probe, setting) of each tag type is chosen — against "the prior",
a model that always answers the most frequent value with its frequency — by cross-validation
over ITEMS (every photo of an item is held out together, ``groups``), by held-out log-loss,
each item counting once however often it was photographed (the person labels items, not
photos); a probe is taken only when it beats the prior by more than :data:`GATE_ERRORS`
standard errors of the per-item difference. A few items make that estimate noisy, and the
best of some sixty candidates beats the prior by one standard error often by luck alone: a
probe winning by less than two loses as often on the next item. Holding out by item matters:
photos of one item share its tags, so a probe validated on other photos of the same item would
be rewarded for recognising the item, not the tag.

Beating the prior in log-loss is not enough either. The prior's frequencies, estimated from a
dozen items, are surer than a new item bears out, and a candidate that has learned nothing
beats them by being flatter (a tempered logistic probe over noise does in a third or more of
fits on a dozen items). So a candidate is taken only when its first choice is also right on
more held-out items than the person's most frequent value is on all of them: a suggestion
marked learned is right more often than "your usual" would be. A tag with no visual correlate
(one drawn independently of how an item looks) then gets the prior, as it should; a tag that
shows gets a probe.

A logistic probe fitted on a dozen items is surer than it is right, and all but certain when
it is wrong: a value with one labelled item gets almost no probability while that item is held
out. Log-loss punishes the certainty without bound, so a probe that is
right 60 % of the time could lose to the prior. Each logistic candidate is therefore also
judged, and then used, with its probabilities tempered, ``p^t`` renormalised, ``t`` among
:data:`TEMPERATURES` (1: as fitted), the one with the lowest held-out loss: the comparison is
about how well a probe ranks the values, and the confidence shown to the person is one the
held-out items bear out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fashionkit.errors import InvalidDataError, Problem
from fashionkit.personal.recognition import check_categories, check_embeddings

__all__ = ["TagSuggestion", "TagModel", "TagProbe", "PROBE_DIMS", "PENALTIES",
           "NEIGHBOUR_SCALES", "TEMPERATURES", "GATE_ERRORS", "prior_of"]

#: Most PCA dimensions a probe sees (a person labels tens of items, not thousands).
PROBE_DIMS = 32
#: L2 penalties of the logistic probe; ``None`` stands for the prior (no probe at all).
PENALTIES: tuple[float | None, ...] = (0.003, 0.03, 0.3, None)
#: Kernel widths of the neighbour vote, as multiples of the median distance between labelled
#: samples: narrow enough that a vote comes from the items that look like the query, not from
#: the whole wardrobe.
NEIGHBOUR_SCALES: tuple[float, ...] = (0.25, 0.5)
#: Tempers of a logistic probe's probabilities (``p^t`` renormalised; module docstring): 1 as
#: fitted, below 1 less sure.
TEMPERATURES: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35, 0.25)
#: Standard errors of the per-item loss difference by which a probe must beat the prior.
GATE_ERRORS = 2.0
# Pseudo-count of the prior in the neighbour vote: a query far from every labelled item gets
# the prior, not the value of whichever item happens to be least far.
_PRIOR_WEIGHT = 0.05
# Pseudo-count of the person's overall frequencies in a category's own (in items): a category
# with one labelled item is not taken to always have that item's value.
_CATEGORY_PRIOR_ITEMS = 1.0
_FOLDS = 10
_BY_CATEGORY = "+category"
_STEPS = 300
_ALL = "all"


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


def _temper(p: np.ndarray, t: float) -> np.ndarray:
    """Probabilities ``p`` (…×C) raised to ``t`` and renormalised (``t`` < 1: less sure)."""
    if t == 1.0:
        return p
    q = np.power(np.clip(p, 1e-12, 1.0), t)
    return q / q.sum(axis=-1, keepdims=True)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the classes)."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, penalties: Sequence[float],
                  weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regressions of ``x`` (N×F) → ``y`` (N class indices), one per
    row of ``weights`` (K×N sample weights; a zero leaves a sample out, which is how the
    cross-validation folds are fitted together) and per L2 ``penalties`` (P): weights
    K×P×F×C and biases K×P×C. Accelerated gradient descent on the weighted mean
    cross-entropy + penalty·|W|²/2, each problem with the step 1/L of its curvature bound.
    All K×P problems run as one batch: a person's tag model fits hundreds of them.

    The descent runs in float32: its weights agree with float64's to ~1e-6 of their size, far
    below anything the held-out comparison of candidates can tell apart, in a third of the
    time (most of a tag model's fit is here)."""
    n, f = x.shape
    lam = np.asarray(penalties, dtype=np.float64)[None, :, None, None]        # 1×P×1×1
    w_rows = weights / weights.sum(axis=1, keepdims=True)                     # K×N
    target = np.zeros((classes, n), np.float32)
    target[y, np.arange(n)] = 1.0
    spectral = np.array([np.linalg.norm(x * np.sqrt(r)[:, None], 2) ** 2 for r in w_rows])
    step = (1.0 / (0.5 * (spectral[:, None] + 1.0) + lam[..., 0, 0]))[..., None, None]  # K×P×1×1
    k, p = len(w_rows), lam.shape[1]
    m = k * p * classes
    # Classes before samples (K×P×C×N), so that the softmax reduces over a short leading axis
    # with the samples contiguous; the products as one matrix product over all K×P×C rows.
    w = np.zeros((k, p, classes, f), np.float32)
    b = np.broadcast_to(np.log(w_rows @ target.T + 1e-3)[:, None, :, None],  # float64 product
                        (k, p, classes, 1)).astype(np.float32)
    vw, vb = w.copy(), b.copy()
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    xt = np.ascontiguousarray(x32.T)
    wr = w_rows[:, None, None, :].astype(np.float32)                           # K×1×1×N
    lam32, step32 = lam.astype(np.float32), step.astype(np.float32)
    for t in range(1, _STEPS + 1):
        z = (vw.reshape(m, f) @ xt).reshape(k, p, classes, n) + vb
        z -= z.max(axis=2, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=2, keepdims=True)
        residual = (z - target) * wr
        gw = (residual.reshape(m, n) @ x32).reshape(k, p, classes, f) + lam32 * vw
        gb = residual.sum(axis=3, keepdims=True)
        w_next, b_next = vw - step32 * gw, vb - step32 * gb
        momentum = np.float32((t - 1) / (t + 2))
        vw, vb = w_next + momentum * (w_next - w), b_next + momentum * (b_next - b)
        w, b = w_next, b_next
    return np.swapaxes(w, 2, 3).astype(np.float64), b[..., 0].astype(np.float64)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``M×N`` squared Euclidean distances between the rows of ``a`` (M×F) and ``b`` (N×F)."""
    return np.maximum((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :]
                      - 2 * a @ b.T, 0.0)


def _bandwidth(x: np.ndarray) -> float:
    """The median distance between rows of ``x`` (1 when they all coincide)."""
    if len(x) < 2:
        return 1.0
    upper = np.sqrt(_squared_distances(x, x)[np.triu_indices(len(x), 1)])
    median = float(np.median(upper))
    return median if median > 0 else 1.0


def _category_prior(y: np.ndarray, cats: np.ndarray, weight: np.ndarray, query_cats: np.ndarray,
                    classes: int, overall: np.ndarray) -> np.ndarray:
    """``M×C``: for each query category, the labelled items' value frequencies in that category
    with :data:`_CATEGORY_PRIOR_ITEMS` pseudo-items of the ``overall`` frequencies."""
    out = np.zeros((len(query_cats), classes))
    for c in np.unique(query_cats):
        same = cats == c
        counts = np.bincount(y[same], weights=weight[same], minlength=classes)
        out[query_cats == c] = (counts + _CATEGORY_PRIOR_ITEMS * overall) \
            / (counts.sum() + _CATEGORY_PRIOR_ITEMS)
    return out


def _with_category(visual: np.ndarray, category_prior: np.ndarray, overall: np.ndarray
                   ) -> np.ndarray:
    """A visual probe's probabilities combined with the category's value frequencies as
    independent evidence: ``p(v | look) · p(v | category) / p(v)``, renormalised."""
    joint = visual * category_prior / np.maximum(overall, 1e-6)[None, :]
    return joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)


def _neighbour_vote(query: np.ndarray, examples: np.ndarray, labels: np.ndarray,
                    weight: np.ndarray, classes: int, width: float,
                    prior: np.ndarray) -> np.ndarray:
    """``M×C`` probabilities: each example votes for its label with its ``weight`` times a
    Gaussian kernel of its distance (``width``), plus :data:`_PRIOR_WEIGHT` of ``prior``."""
    kernel = np.exp(-_squared_distances(query, examples) / (2 * width * width)) * weight[None, :]
    votes = np.zeros((len(query), classes))
    np.add.at(votes.T, labels, kernel.T)
    votes += _PRIOR_WEIGHT * prior[None, :]
    return votes / votes.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class _View:
    """The standardised PCA (at most :data:`PROBE_DIMS` dimensions) of some columns of the
    embedding."""

    columns: slice
    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, columns: slice) -> _View:
        part = x[:, columns]
        mean = part.mean(axis=0)
        _, s, vt = np.linalg.svd(part - mean, full_matrices=False)
        keep = max(1, min(PROBE_DIMS, int((s > (s[0] if len(s) else 0) * 1e-6).sum())))
        basis = vt[:keep].T
        scale = ((part - mean) @ basis).std(axis=0)
        return cls(columns, mean, basis, np.where(scale > 0, scale, 1.0))

    def features(self, x: np.ndarray) -> np.ndarray:
        return ((x[:, self.columns] - self.mean) @ self.basis) / self.scale


@dataclass
class TagProbe:
    """The probe of one tag type: ``values`` (sorted), its ``method`` (``"prior"``,
    ``"category"``, ``"logistic"`` or ``"neighbours"``, the last two with ``"+category"`` when
    combined with the category's frequencies), the ``view`` (embedding block, or ``"all"``;
    ``None`` for the prior and the category's frequencies) it looks at, its ``setting`` (the L2
    penalty, the kernel width as a multiple of the median distance, or the category's
    pseudo-items), and what it predicts with: ``weights`` (F×C) and ``bias`` (C) of the
    logistic probe, or the labelled ``examples`` (N×F view features) with the kernel ``width``
    of the neighbour vote; the labelled samples' ``labels``, item ``example_weight`` and
    ``categories`` for the category's frequencies. ``prior`` is the most frequent value with
    its frequency; ``cv_log_loss`` the held-out loss of every candidate; ``temperature`` the
    temper of a logistic probe's probabilities (module docstring; 1 for the others)."""

    values: tuple[str, ...]
    method: str
    view: str | None
    setting: float | None
    prior: tuple[str, float]
    cv_log_loss: dict[str, float]
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    examples: np.ndarray | None = None
    labels: np.ndarray | None = None
    example_weight: np.ndarray | None = None
    width: float = 1.0
    prior_frequencies: np.ndarray | None = field(default=None, repr=False)
    categories: np.ndarray | None = field(default=None, repr=False)
    temperature: float = 1.0

    @property
    def learned(self) -> bool:
        """Whether the probe beat the prior (``False``: it answers the most frequent value)."""
        return self.method != "prior"

    @property
    def penalty(self) -> float | None:
        """The logistic probe's L2 penalty; ``None`` for the other methods."""
        return self.setting if self.method.removesuffix(_BY_CATEGORY) == "logistic" else None

    def probabilities(self, features: np.ndarray, categories: np.ndarray | None = None
                      ) -> np.ndarray:
        """``M×C`` probabilities of :attr:`values` for ``M×F`` features of :attr:`view`
        (``categories``: the M category ids, which the ``"category"`` probe answers by; without
        them it answers the person's overall frequencies)."""
        return _temper(self._untempered(features, categories), self.temperature)

    def _untempered(self, features: np.ndarray, categories: np.ndarray | None) -> np.ndarray:
        method, by_category = self.method.removesuffix(_BY_CATEGORY), \
            self.method.endswith(_BY_CATEGORY)
        if method == "category" or by_category:
            if self.labels is None or self.example_weight is None \
                    or self.prior_frequencies is None or self.categories is None:
                raise ValueError(f"a {self.method!r} probe needs its labelled categories")
            if categories is None:
                category_prior = np.tile(self.prior_frequencies, (len(features), 1))
            else:
                category_prior = _category_prior(self.labels, self.categories,
                                                 self.example_weight, np.asarray(categories),
                                                 len(self.values), self.prior_frequencies)
            if method == "category":
                return category_prior
            return _with_category(self._visual(method, features), category_prior,
                                  self.prior_frequencies)
        return self._visual(method, features)

    def _visual(self, method: str, features: np.ndarray) -> np.ndarray:
        if method == "logistic" and self.weights is not None and self.bias is not None:
            return _softmax(features @ self.weights + self.bias)
        if method == "neighbours" and self.examples is not None \
                and self.labels is not None and self.example_weight is not None \
                and self.prior_frequencies is not None:
            return _neighbour_vote(features, self.examples, self.labels, self.example_weight,
                                   len(self.values), self.width, self.prior_frequencies)
        out = np.zeros((len(features), len(self.values)))
        out[:, self.values.index(self.prior[0])] = 1.0
        return out


class TagModel:
    """Per-person tag suggestions (module docstring). Build with :meth:`fit`; :meth:`predict`
    suggests. ``probes``: tag type → :class:`TagProbe`."""

    def __init__(self, dims: int, views: dict[str, _View], probes: dict[str, TagProbe]):
        self.dims = dims
        self.views = views
        self.probes = probes

    def __repr__(self) -> str:
        chosen = {t: (p.method if not p.learned else f"{p.method}({p.view}, {p.setting:g})")
                  for t, p in self.probes.items()}
        return f"TagModel({chosen})"

    @classmethod
    def fit(cls, embeddings: np.ndarray, tags: Sequence[Mapping[str, str | None]], *,
            groups: Sequence[str] | None = None,
            penalties: Sequence[float | None] = PENALTIES,
            blocks: Mapping[str, slice] | None = None,
            categories: Sequence[int] | None = None,
            require_accuracy: bool = True) -> TagModel:
        """Probes for every tag type in ``tags`` (one mapping per row of ``embeddings``, N×D;
        a ``None`` or missing value: that sample does not say). ``groups``: the item of each
        sample (default: each sample its own item), held out together in cross-validation.
        ``penalties``: the logistic choices (module docstring); ``(None,)`` gives the prior
        alone. ``blocks``: name → columns of the embedding's blocks, each a view a probe may
        look at besides the whole (default: the whole only). ``categories``: each sample's
        category id; then "your usual value for this category" is a candidate too (module
        docstring), and :meth:`predict` takes the queries' categories. ``require_accuracy``:
        a probe's first choice must be right on more held-out items than the most frequent
        value is (module docstring); ``False`` leaves the log-loss gate alone, for comparison.

        Raises :class:`InvalidDataError` for no samples, mismatched counts, NaN values, a tag
        value that is not a string, or blocks outside the embedding."""
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
        for name, columns in dict(blocks or {}).items():
            width = len(range(x.shape[1])[columns])
            if name == _ALL or width == 0 or columns.stop is None or columns.stop > x.shape[1]:
                problems.append(Problem("blocks", name, f"columns {columns} are not a block of "
                                        f"the {x.shape[1]}-dimensional embedding"))
        cats, wrong = check_categories(categories, len(x))
        problems += wrong
        if problems:
            raise InvalidDataError(problems)
        # With blocks, the whole is one more view; without, the only one.
        views = {_ALL: _View.fit(x, slice(0, x.shape[1]))}
        for name, columns in dict(blocks or {}).items():
            views[name] = _View.fit(x, columns)
        features = {name: view.features(x) for name, view in views.items()}
        probes = {}
        tag_types = sorted({t for record in tags for t, v in record.items() if v is not None})
        for tag_type in tag_types:
            rows = [i for i, record in enumerate(tags) if record.get(tag_type) is not None]
            values = [str(tags[i][tag_type]) for i in rows]
            probes[tag_type] = _fit_probe({n: f[rows] for n, f in features.items()}, values,
                                          np.array([item_of[i] for i in rows]), penalties,
                                          cats[rows] if cats is not None else None,
                                          require_accuracy)
        return cls(int(x.shape[1]), views, probes)

    def predict(self, embeddings: np.ndarray, categories: Sequence[int] | None = None
                ) -> list[dict[str, TagSuggestion]]:
        """For each row of ``embeddings`` (M×D), tag type → the most probable value and its
        probability. ``categories``: the rows' category ids, for a model fitted with them."""
        x = check_embeddings(embeddings, dims=self.dims)
        cats, problems = check_categories(categories, len(x))
        if problems:
            raise InvalidDataError(problems)
        features = {name: view.features(x) for name, view in self.views.items()}
        out: list[dict[str, TagSuggestion]] = [{} for _ in range(len(x))]
        for tag_type, probe in self.probes.items():
            p = probe.probabilities(features[probe.view or _ALL], cats)
            best = np.argmax(p, axis=1)
            for m in range(len(x)):
                out[m][tag_type] = TagSuggestion(probe.values[best[m]], float(p[m, best[m]]))
        return out


# A candidate probe: (method, view, setting); the prior is ("prior", None, None).
_Candidate = tuple[str, str | None, float | None]


def _name(candidate: _Candidate) -> str:
    method, view, setting = candidate
    return "prior" if method == "prior" else f"{method}/{view}/{setting:g}"


def _fit_probe(features: Mapping[str, np.ndarray], values: list[str], groups: np.ndarray,
               penalties: Sequence[float | None], cats: np.ndarray | None,
               require_accuracy: bool) -> TagProbe:
    names = tuple(sorted(set(values)))
    y = np.array([names.index(v) for v in values])
    # Each item counts once, however often it was photographed: the person labels items.
    _, inverse, per_item = np.unique(groups, return_inverse=True, return_counts=True)
    weight = 1.0 / per_item[inverse]
    prior = prior_of(values, weight)
    prior_probe = TagProbe(names, "prior", None, None, prior, {})
    if len(names) == 1 or len(set(groups)) < 3:
        return prior_probe
    # The logistic penalties also switch the neighbour vote on: ``(None,)`` is the prior alone.
    logistic = [float(q) for q in penalties if q is not None]
    if not logistic:
        return prior_probe
    candidates: list[_Candidate] = [("prior", None, None)] if None in penalties else []
    visual: list[_Candidate] = []
    for view_name in features:
        visual += [("logistic", view_name, q) for q in logistic]
        visual += [("neighbours", view_name, s) for s in NEIGHBOUR_SCALES]
    candidates += visual
    if cats is not None:
        candidates.append(("category", None, _CATEGORY_PRIOR_ITEMS))
        candidates += [(method + _BY_CATEGORY, view, setting) for method, view, setting in visual]
    unique = np.unique(groups)
    rng = np.random.default_rng(0)
    fold_of_group = dict(zip(rng.permutation(unique), np.arange(len(unique)) % _FOLDS,
                             strict=True))
    folds = np.array([fold_of_group[g] for g in groups])
    held_out: dict[_Candidate, np.ndarray] = {c: np.zeros((len(y), len(names)))
                                              for c in candidates}
    fold_ids = np.unique(folds)
    in_fold = folds[None, :] == fold_ids[:, None]                              # K×N
    # Every fold's and penalty's logistic probe of a view in one batch (test rows weigh 0).
    logistic_p = {view_name: _softmax(f @ w + b[:, :, None, :])
                  for view_name, f in features.items()
                  for w, b in [_fit_logistic(f, y, len(names), logistic,
                                             np.where(in_fold, 0.0, weight[None, :]))]}
    for k, fold in enumerate(fold_ids):
        test = folds == fold
        train = ~test
        counts = np.bincount(y[train], weights=weight[train], minlength=len(names))
        smoothed = (counts + 0.5) / (counts.sum() + 0.5 * len(names))
        widths = {name: _bandwidth(f[train]) for name, f in features.items()}
        category_prior = (_category_prior(y[train], cats[train], weight[train], cats[test],
                                          len(names), smoothed) if cats is not None else None)
        fold_p: dict[_Candidate, np.ndarray] = {}
        for candidate in candidates:
            method, view, setting = candidate
            if method.endswith(_BY_CATEGORY):
                assert category_prior is not None
                base = (method.removesuffix(_BY_CATEGORY), view, setting)
                p = _with_category(fold_p[base], category_prior, smoothed)
            elif method == "prior":
                p = np.tile(smoothed, (int(test.sum()), 1))
            elif method == "category":
                assert category_prior is not None
                p = category_prior
            elif method == "logistic":
                assert view is not None and setting is not None
                p = logistic_p[view][k, logistic.index(setting)][test]
            else:
                assert view is not None and setting is not None
                f = features[view]
                p = _neighbour_vote(f[test], f[train], y[train], weight[train], len(names),
                                    setting * widths[view], smoothed)
            fold_p[candidate] = p
            held_out[candidate][test] = p
    per_sample: dict[_Candidate, np.ndarray] = {}
    temperature: dict[_Candidate, float] = {}
    for candidate in candidates:
        # A logistic probe at the temper that its held-out items bear out (module docstring).
        tempers = TEMPERATURES if candidate[0].startswith("logistic") else (1.0,)
        losses_at = [-np.log(np.clip(_temper(held_out[candidate], t)[np.arange(len(y)), y],
                                     1e-6, 1.0)) for t in tempers]
        k = int(np.argmin([float((loss * weight).sum()) for loss in losses_at]))
        per_sample[candidate], temperature[candidate] = losses_at[k], tempers[k]
    losses = {_name(c): float((per_sample[c] * weight).sum() / weight.sum()) for c in candidates}
    by_category: _Candidate = ("category", None, _CATEGORY_PRIOR_ITEMS)
    eligible = list(candidates)
    if ("prior", None, None) in candidates and require_accuracy:
        # The rule of "right more often than your usual" (module docstring): the usual's
        # share is counted on all the items, not held out, because held out it is lower
        # than it will be on a new item (each held-out item takes one from its value's count).
        eligible = [c for c in candidates if c[0] == "prior" or float(
            ((held_out[c].argmax(axis=1) == y) * weight).sum() / weight.sum()) > prior[1]]
    best = _gated_choice(eligible, per_sample, weight, inverse)
    if best is not None and best[0].endswith(_BY_CATEGORY) and by_category in eligible:
        mean, error = _difference(per_sample[by_category], per_sample[best], weight, inverse)
        if mean - error <= 0:  # the look adds nothing the category does not say: the simpler
            best = by_category
    if best is None:
        return TagProbe(names, "prior", None, None, prior, losses)
    method, view, setting = best
    frequencies = np.bincount(y, weights=weight, minlength=len(names))
    frequencies = frequencies / frequencies.sum()
    if method == "category":
        return TagProbe(names, method, None, setting, prior, losses, labels=y,
                        example_weight=weight, prior_frequencies=frequencies, categories=cats)
    tempered = temperature[best]
    assert view is not None and setting is not None
    f = features[view]
    if method.removesuffix(_BY_CATEGORY) == "logistic":
        w, b = _fit_logistic(f, y, len(names), [setting], weight[None, :])
        return TagProbe(names, method, view, setting, prior, losses, weights=w[0, 0],
                        bias=b[0, 0], labels=y, example_weight=weight,
                        prior_frequencies=frequencies, categories=cats, temperature=tempered)
    return TagProbe(names, method, view, setting, prior, losses, examples=f.copy(), labels=y,
                    example_weight=weight, width=setting * _bandwidth(f),
                    prior_frequencies=frequencies, categories=cats)


def _difference(loss: np.ndarray, than: np.ndarray, weight: np.ndarray, item_of: np.ndarray
                ) -> tuple[float, float]:
    """The mean per-item difference of the per-sample held-out ``loss`` from ``than``, and its
    standard error (infinite with one item)."""
    items = int(item_of.max()) + 1
    diff = np.bincount(item_of, weights=(loss - than) * weight, minlength=items)
    error = float(diff.std(ddof=1) / np.sqrt(items)) if items > 1 else float("inf")
    return float(diff.mean()), error


def _gated_choice(candidates: Sequence[_Candidate], per_sample: dict[_Candidate, np.ndarray],
                  weight: np.ndarray, item_of: np.ndarray) -> _Candidate | None:
    """The candidate with the lowest held-out loss among those that beat the prior by more
    than :data:`GATE_ERRORS` standard errors of the per-item loss difference, else ``None``
    (the prior; module docstring). Without the prior among the candidates, simply the lowest
    held-out loss."""
    prior: _Candidate = ("prior", None, None)
    probes = [c for c in candidates if c[0] != "prior"]
    if prior not in per_sample:
        return min(probes, key=lambda c: float((per_sample[c] * weight).sum())) if probes else None
    best, best_gain = None, 0.0
    for candidate in probes:
        mean, error = _difference(per_sample[candidate], per_sample[prior], weight, item_of)
        if mean + GATE_ERRORS * error < 0 and -mean > best_gain:
            best, best_gain = candidate, -mean
    return best
