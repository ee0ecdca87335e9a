"""Which of my items is this, or is it new? A :class:`Gallery` of one person's item embeddings.

**Adaptation to the person's items.** :meth:`Gallery.fit` learns, from the person's labelled
embeddings, a projection under which photos of one item are close and different items far
apart: within-class covariance normalisation (WCCN). The embeddings are centred, reduced by PCA
to at most :data:`MAX_DIMS` dimensions (there are far fewer samples than dimensions), and
whitened by the shrunk within-item covariance ``(1 − α)·S_w + α·(tr S_w / r)·I``: directions in
which one item varies from photo to photo (light, pose, folds) are damped, the rest kept.
Unlike LDA it keeps every direction, not only the ``items − 1`` that separate the known items,
so an item never seen before is not squeezed onto the known ones — which the "new item"
decision needs. ``α`` is chosen by leave-one-photo-out top-1 accuracy on the labelled photos
among :data:`SHRINKAGE_GRID` (``α = 1``: no whitening, plain PCA + cosine).

**How much the detector's features count.** A detector that has seen few garments like the
person's (a small base model, or clothes unlike its training data) describes them by features
that vary more with pose and light than with the garment, and they drown the colour,
texture and fabric that tell two of the person's items apart; a well-trained one is the best cue of all.
Given the embedding's blocks, :meth:`Gallery.fit` weighs the features block by each of
:data:`FEATURE_WEIGHTS` and keeps the weighting whose known and new scores (below) separate
best — balanced accuracy at the threshold — with ties going to the most weight on the
features. The weighting is folded into the projection, so matching takes raw embeddings.

**Matching.** Cosine similarity in the projected space to each sample of the gallery; an item's
similarity is that of its closest sample (photos of one item differ more than a mean of them
says). Given categories, a query is matched only with items of its own category: an item's
categories are those its samples were seen under and the one the person gives it, so an item
whose category the person corrected is still found where the detector sees it as before.

**The "new item" threshold** is calibrated on the labelled photos, not set by hand: for each
labelled sample, refit without its photo and take its best similarity (what a known item
scores: the *known* scores); refit without its whole item and take its best similarity among
the items of its category (what an item never seen scores: the *new* scores; an item alone in
its category is new by that alone and gives none). The threshold is the one with the fewest
expected errors when :data:`NEW_ITEM_SHARE` of the garments in a photo are new (the middle of
the best range): a person photographs mostly clothes they own, so a known item taken for new is
the common mistake, and the costly one — at one new garment in ten, calling 5 % of the known ones
new offers as many false new items as true ones. Balanced accuracy, which weighs both mistakes
alike, would trade many false offers for the last few new items. The features weighting above
is still judged by balanced accuracy: it asks how well the two sets of scores separate as a
whole, which the few new scores near a low threshold would make noisy. With no item seen in
two photos there are no known scores, and :attr:`Gallery.calibrated` is False. An item seen
twice in one photo (the two shoes of a pair) then stands in for them: each one held out, its
best similarity is what the item seen again scores, if under the same light. Without those
either, the threshold keeps :data:`FALLBACK_NEW_QUANTILE` of the new scores below it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fashionkit.errors import InvalidDataError, Problem

__all__ = [
    "Match",
    "Gallery",
    "Projection",
    "MAX_DIMS",
    "SHRINKAGE_GRID",
    "FEATURE_WEIGHTS",
    "FALLBACK_NEW_QUANTILE",
    "NEW_ITEM_SHARE",
    "best_threshold",
]

#: Most dimensions the projection keeps (PCA): more than the person's samples cannot be
#: estimated.
MAX_DIMS = 96
#: Shrinkage values of the within-item covariance tried by :meth:`Gallery.fit`.
SHRINKAGE_GRID: tuple[float, ...] = (0.1, 0.3, 1.0)
#: Weights of the embedding's "features" block (the detector's own features) tried by
#: :meth:`Gallery.fit` given the blocks, relative to the other blocks (colour, texture,
#: fabric; 1: the embedder's weighting; 0: the other blocks alone).
FEATURE_WEIGHTS: tuple[float, ...] = (1.0, 0.5, 0.25, 0.0)
#: The share of never-seen items among the garments of a person's photo that
#: :meth:`Gallery.fit` sets its "new item" threshold for (module docstring): a wardrobe that
#: is set up, where most of what a person wears is already in it.
NEW_ITEM_SHARE = 0.1
#: Without known scores, the share of new scores put below the threshold.
FALLBACK_NEW_QUANTILE = 0.9
_FORMAT = "fashionkit-gallery"
_FORMAT_VERSION = 2  # 2: an item has a list of categories (1: one)


def check_embeddings(embeddings: np.ndarray, what: str = "embeddings",
                     dims: int | None = None) -> np.ndarray:
    """``embeddings`` as an N×D float64 array, or :class:`InvalidDataError` naming ``what``
    (not 2-D, another D than ``dims``, NaN or infinite values)."""
    array = np.asarray(embeddings)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise InvalidDataError([Problem(what, "array", f"expected an N×D numeric array, got "
                                        f"{array.dtype} with shape {array.shape}")])
    if dims is not None and array.shape[1] != dims:
        raise InvalidDataError([Problem(what, "array", f"has {array.shape[1]} dimensions, the "
                                        f"gallery {dims}: embeddings of another embedder")])
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InvalidDataError([Problem(what, f"row {int(np.argmax(bad))}",
                                        f"contains NaN or infinite values ({int(bad.sum())} "
                                        "row(s))")])
    return array.astype(np.float64)


def check_categories(categories: Sequence[int] | None, rows: int
                     ) -> tuple[np.ndarray | None, list[Problem]]:
    """``categories`` (one category id per embedding) as an int array (``None`` stays
    ``None``), and the problem when there are not ``rows`` of them."""
    if categories is None:
        return None, []
    cats = np.array([int(c) for c in categories], dtype=int)
    if len(cats) != rows:
        return cats, [Problem("categories", "list", f"{len(cats)} categories for {rows} "
                              "embeddings")]
    return cats, []


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


@dataclass
class Projection:
    """``z = normalise((x − mean) @ matrix)``: the learned map of raw embeddings (N×D) to the
    adapted space (N×r)."""

    mean: np.ndarray  # D
    matrix: np.ndarray  # D×r

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _unit_rows((x - self.mean) @ self.matrix)

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, shrinkage: float,
            principal: tuple[np.ndarray, np.ndarray] | None = None) -> Projection:
        """WCCN (module docstring) of ``x`` (N×D) with class ``labels`` (N ints).
        ``principal``: ``_principal(x)``, when the caller fits several shrinkages of one
        ``x`` (the PCA does not depend on it)."""
        mean, pca = principal if principal is not None else _principal(x)
        if shrinkage >= 1.0:
            return cls(mean, pca)
        keep = pca.shape[1]
        y = (x - mean) @ pca
        within = np.zeros((keep, keep))
        count = 0
        for label in np.unique(labels):
            rows = y[labels == label]
            if len(rows) < 2:
                continue
            d = rows - rows.mean(axis=0)
            within += d.T @ d
            count += len(rows) - 1
        if count == 0:
            return cls(mean, pca)
        within /= count
        scale = np.trace(within) / keep
        if scale <= 0:
            return cls(mean, pca)
        shrunk = (1 - shrinkage) * within + shrinkage * scale * np.eye(keep)
        values, vectors = np.linalg.eigh(shrunk)
        whiten = vectors @ np.diag(1.0 / np.sqrt(np.maximum(values, scale * 1e-6))) @ vectors.T
        return cls(mean, pca @ whiten)

    def scaled(self, columns: np.ndarray, original_mean: np.ndarray) -> Projection:
        """This projection, fitted on ``x * columns`` (per-column weights), as a map of the
        unweighted ``x``: the weights move into the matrix, and a column weighted 0 (which
        the projection never saw) keeps ``original_mean``."""
        seen = columns > 0
        mean = np.where(seen, self.mean / np.where(seen, columns, 1.0), original_mean)
        return Projection(mean, columns[:, None] * self.matrix)


def _principal(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (D) and the principal directions (D×r, r ≤ :data:`MAX_DIMS`, N − 1 and D,
    numerically zero ones left out) of ``x`` (N×D). With fewer samples than dimensions (a
    person's gallery) from the N×N Gram matrix, a fraction of the cost of an SVD of ``x``."""
    mean = x.mean(axis=0)
    centred = x - mean
    rank = max(1, min(MAX_DIMS, x.shape[0] - 1, x.shape[1]))
    if x.shape[0] < x.shape[1]:
        values, vectors = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(values)[::-1][:rank]
        s = np.sqrt(np.maximum(values[order], 0.0))
        if s[0] > 0:  # else all samples are one point: the SVD below still gives a direction
            keep = int((s > s[0] * 1e-6).sum())
            return mean, centred.T @ vectors[:, order[:keep]] / s[:keep]
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    keep = max(1, min(rank, int((s > s[0] * 1e-6).sum()) if len(s) else 1))
    return mean, vt[:keep].T


@dataclass(frozen=True)
class Match:
    """The gallery's answer for one embedding: ``item_id`` of the best match (``None`` when
    ``is_new``), its cosine ``similarity`` in the adapted space, ``is_new`` (similarity below
    the gallery's threshold) and the ``candidates`` ``(item_id, similarity)``, best first."""

    item_id: str | None
    similarity: float
    is_new: bool
    candidates: list[tuple[str, float]] = field(default_factory=list)


def best_threshold(known: np.ndarray, new: np.ndarray, new_share: float = 0.5) -> float:
    """The similarity threshold that best separates ``known`` scores (should be ≥ it) from
    ``new`` scores (should be below): the fewest expected errors when a share ``new_share`` of
    the queries are new items — ``new_share`` × (new scores at or above it) + (1 − ``new_share``)
    × (known scores below it) — the middle of the widest gap among equally good cuts.
    ``new_share`` 0.5 is the highest balanced accuracy."""
    known, new = np.sort(np.asarray(known, float)), np.sort(np.asarray(new, float))
    if len(known) == 0 or len(new) == 0:
        raise ValueError("best_threshold needs both known and new scores")
    if not 0.0 < new_share < 1.0:
        raise ValueError(f"new_share must be within (0, 1), not {new_share}")
    cuts = np.unique(np.concatenate([known, new]))
    candidates = np.concatenate([[cuts[0] - 1e-6], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1e-6]])
    score = -_expected_errors(known, new, candidates, new_share)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    # Ties form runs of cuts; take the middle of the widest run's span.
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    run = max(runs, key=lambda r: candidates[r[-1]] - candidates[r[0]])
    return float((candidates[run[0]] + candidates[run[-1]]) / 2)


def _expected_errors(known: np.ndarray, new: np.ndarray, thresholds: np.ndarray,
                     new_share: float) -> np.ndarray:
    """Expected error rate at each of ``thresholds`` (sorted ``known`` and ``new`` scores):
    ``new_share`` × new accepted + (1 − ``new_share``) × known rejected."""
    rejected_known = np.searchsorted(known, thresholds, side="left") / len(known)
    accepted_new = 1 - np.searchsorted(new, thresholds, side="left") / len(new)
    return new_share * accepted_new + (1 - new_share) * rejected_known


class Gallery:
    """One person's items as embeddings, adapted and calibrated (module docstring).

    Build with :meth:`fit`; :meth:`match` answers for new embeddings; :meth:`to_bytes` /
    :meth:`from_bytes` store it (no pickle). Attributes: ``item_ids`` (the known items, sorted),
    ``threshold``, ``shrinkage``, ``feature_weight``, ``calibrated``, ``dims`` (D of the raw
    embeddings) and
    ``calibration``: the known and new scores the threshold was chosen from.
    """

    def __init__(self, projection: Projection, samples: np.ndarray, sample_items: Sequence[str],
                 *, threshold: float, shrinkage: float, calibrated: bool,
                 known_scores: np.ndarray | None = None, new_scores: np.ndarray | None = None,
                 item_categories: Mapping[str, Iterable[int]] | None = None,
                 feature_weight: float = 1.0):
        self.projection = projection
        self.samples = samples  # N×r, adapted and unit
        self.sample_items = list(sample_items)
        self.item_ids = sorted(set(self.sample_items))
        self.threshold = float(threshold)
        self.shrinkage = float(shrinkage)
        self.calibrated = bool(calibrated)
        self.dims = int(projection.mean.shape[0])
        self.item_categories = (
            {item: sorted({int(c) for c in cats}) for item, cats in item_categories.items()}
            if item_categories is not None
            else None
        )
        self.feature_weight = float(feature_weight)
        self.calibration = {
            "known": np.asarray(known_scores if known_scores is not None else [], float),
            "new": np.asarray(new_scores if new_scores is not None else [], float),
        }

    def __repr__(self) -> str:
        return (f"Gallery({len(self.item_ids)} items, {len(self.sample_items)} samples, "
                f"threshold {self.threshold:.3f}, shrinkage {self.shrinkage}, "
                f"feature weight {self.feature_weight})")

    # -- building --------------------------------------------------------------------------
    @classmethod
    def fit(cls, embeddings: np.ndarray, item_ids: Sequence[str], *,
            groups: Sequence[str] | None = None, categories: Sequence[int] | None = None,
            item_categories: Mapping[str, int] | None = None,
            shrinkage: float | None = None, threshold: float | None = None,
            blocks: Mapping[str, slice] | None = None,
            new_share: float = NEW_ITEM_SHARE) -> Gallery:
        """A gallery of ``embeddings`` (N×D, from one :class:`ItemEmbedder`) of the items
        ``item_ids`` (N strings). ``groups``: the photo of each sample (N strings; default:
        every sample its own photo), for leave-one-photo-out choices. ``categories``: each
        sample's category id (N ints), the one it was seen under: then an embedding is matched
        only with items of its own category (:meth:`match` takes the query's), as a shirt is
        never your trousers, and the calibration compares like with like. An item may be
        matched under each of its samples' categories and, given ``item_categories`` (item id
        → category), its own: the person's correction of what the detector called it.
        ``shrinkage`` and ``threshold`` fix what
        is otherwise chosen on the data (module docstring). ``blocks``: the embedding's
        blocks (:func:`~fashionkit.personal.embedding.embedding_blocks`); then the weight of
        its ``"features"`` block is chosen among :data:`FEATURE_WEIGHTS` as well (module
        docstring). ``new_share``: the share of never-seen items expected among the queries,
        for the threshold (default :data:`NEW_ITEM_SHARE`; 0.5 weighs both mistakes alike).

        Raises :class:`InvalidDataError` for no samples, counts that differ, NaN values, a
        ``new_share`` outside (0, 1)."""
        x = check_embeddings(embeddings)
        ids = [str(i) for i in item_ids]
        cats, problems = check_categories(categories, len(x))
        if item_categories is not None and cats is None:
            problems.append(Problem("item_categories", "mapping", "needs the samples' "
                                    "categories too"))
        if len(x) == 0:
            problems.append(Problem("embeddings", "array", "the gallery needs at least one "
                                    "labelled item embedding"))
        if len(ids) != len(x):
            problems.append(Problem("item_ids", "list", f"{len(ids)} item ids for {len(x)} "
                                    "embeddings"))
        photos = [str(g) for g in groups] if groups is not None else [f"#{i}" for i in range(len(x))]
        if len(photos) != len(x):
            problems.append(Problem("groups", "list", f"{len(photos)} groups for {len(x)} "
                                    "embeddings"))
        if isinstance(new_share, bool) or not isinstance(new_share, (int, float)) \
                or not 0.0 < new_share < 1.0:
            problems.append(Problem("new_share", "float", f"must be within (0, 1), not "
                                    f"{new_share!r}"))
        if problems:
            raise InvalidDataError(problems)
        names = sorted(set(ids))
        labels = np.array([names.index(i) for i in ids])
        item_category: dict[str, set[int]] | None = None
        kinds: _Kinds | None = None
        if cats is not None:
            item_category = {item: set() for item in names}
            for item, c in zip(ids, cats.tolist(), strict=True):
                item_category[item].add(c)
            for item, c in (item_categories or {}).items():
                if item in item_category:
                    item_category[item].add(int(c))
            kinds = _Kinds.of(cats, [item_category[i] for i in ids])
        photo_of = np.array(photos)
        grid = (shrinkage,) if shrinkage is not None else SHRINKAGE_GRID
        columns_of = {}
        for weight in FEATURE_WEIGHTS if blocks is not None else (1.0,):
            columns_of[weight] = np.ones(x.shape[1])
            if blocks is not None:
                columns_of[weight][blocks["features"]] = weight
        fits = {w: _calibration(x * columns, labels, photo_of, grid, kinds)
                for w, columns in columns_of.items()}
        # The best separated weighting; ties (and no known scores to judge by): the most
        # weight on the detector's features, the embedder's own weighting first.
        weight = max(fits, key=lambda w: (_separation(*fits[w][1:]), w))
        alpha, known, new = fits[weight]
        calibrated = len(known) > 0 and len(new) > 0
        if threshold is None:
            if calibrated:
                threshold = best_threshold(known, new, new_share)
            elif len(new):
                twins = _twin_scores(x * columns_of[weight], labels, photo_of, alpha, kinds)
                threshold = (best_threshold(twins, new, new_share) if len(twins)
                             else float(np.quantile(new, FALLBACK_NEW_QUANTILE)))
            else:  # one item only: nothing says what "new" looks like
                threshold = -1.0
        columns = columns_of[weight]
        projection = Projection.fit(x * columns, labels, alpha).scaled(columns, x.mean(axis=0))
        return cls(projection, projection(x), ids, threshold=threshold, shrinkage=alpha,
                   calibrated=calibrated, known_scores=known, new_scores=new,
                   item_categories=item_category, feature_weight=weight)

    # -- matching --------------------------------------------------------------------------
    def similarities(self, embeddings: np.ndarray, categories: Sequence[int] | None = None
                     ) -> np.ndarray:
        """``M×K`` cosine similarities (adapted space) of ``embeddings`` (M×D) to each of
        :attr:`item_ids` (K): that of the item's closest sample. With ``categories`` (M ints)
        and a gallery fitted with categories, items not of the row's category get −1 (the
        lowest cosine; :meth:`match` never takes them, whatever the threshold)."""
        return self._similarities(embeddings, categories)[0]

    def _similarities(self, embeddings: np.ndarray, categories: Sequence[int] | None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`similarities`, and the M×K mask of the items of each row's category."""
        z = self.projection(check_embeddings(embeddings, dims=self.dims))
        per_sample = z @ self.samples.T
        out = np.full((len(z), len(self.item_ids)), -np.inf)
        index = {item: k for k, item in enumerate(self.item_ids)}
        for j, item in enumerate(self.sample_items):
            k = index[item]
            out[:, k] = np.maximum(out[:, k], per_sample[:, j])
        allowed = np.ones(out.shape, bool)
        if categories is not None and self.item_categories is not None:
            cats, problems = check_categories(categories, len(z))
            if problems:
                raise InvalidDataError(problems)
            assert cats is not None  # categories were given
            of_item = [set(self.item_categories[i]) for i in self.item_ids]
            allowed = np.array([[c in item for item in of_item] for c in cats.tolist()],
                               bool).reshape(out.shape)  # fmt: skip
            out[~allowed] = -1.0
        return out, allowed

    def match(self, embeddings: np.ndarray, *, categories: Sequence[int] | None = None,
              top: int = 5, exclusive: bool = False, paired: Collection[int] = ()
              ) -> list[Match]:
        """One :class:`Match` per row of ``embeddings`` (M×D), with up to ``top`` candidates;
        ``categories``: the rows' category ids, to match within a category (:meth:`fit`).

        ``exclusive``: the rows are the items of ONE photo, so no two can be the same item:
        pairs are taken most similar first (greedy; a photo holds a handful of items), and a
        row whose best item went to a closer row gets its best remaining one. A row with no
        item of its category left is new, whatever the threshold (with every item the only
        one of its kind the calibration has no new scores to set it by). ``paired``: category
        ids worn in pairs (shoes, gloves): an item may be two rows of those categories, the
        two of the pair."""
        sims, allowed = self._similarities(embeddings, categories)
        open_to = np.where(allowed, sims, -np.inf)  # the items each row may be
        chosen = np.where(allowed.any(axis=1), np.argmax(open_to, axis=1), -1)
        if exclusive and len(sims) > 1:
            chosen = np.full(len(sims), -1)
            free = open_to.copy()
            two = set(paired)
            row_pairs = (np.array([int(c) in two for c in categories], bool)
                         if categories is not None and two else np.zeros(len(sims), bool))
            taken = np.zeros(len(self.item_ids), int)
            for _ in range(len(sims)):
                row, col = np.unravel_index(int(np.argmax(free)), free.shape)
                if free[row, col] == -np.inf:
                    break  # no row has an item of its category left
                chosen[row] = col
                taken[col] += 1
                free[row, :] = -np.inf
                # The item is taken, but for the other one of a pair.
                free[~row_pairs if taken[col] == 1 and row_pairs[row] else slice(None), col] = \
                    -np.inf
        out = []
        for m in range(len(sims)):
            order = np.argsort(-sims[m], kind="stable")[:top]
            candidates = [(self.item_ids[k], float(sims[m, k])) for k in order]
            k = int(chosen[m])
            if k < 0:  # no item of its category, or more rows than items: left without one
                out.append(Match(None, float(sims[m].max()), True, candidates))
                continue
            similarity = float(sims[m, k])
            is_new = similarity < self.threshold
            out.append(Match(None if is_new else self.item_ids[k], similarity, is_new,
                             candidates))
        return out

    # -- storage ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The gallery as bytes (a numpy ``.npz`` with a JSON header; no pickle)."""
        header = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                  "sample_items": self.sample_items, "threshold": self.threshold,
                  "shrinkage": self.shrinkage, "calibrated": self.calibrated,
                  "item_categories": self.item_categories,
                  "feature_weight": self.feature_weight}
        buffer = io.BytesIO()
        np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                 mean=self.projection.mean, matrix=self.projection.matrix, samples=self.samples,
                 known=self.calibration["known"], new=self.calibration["new"])
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Gallery:
        """The gallery :meth:`to_bytes` wrote; :class:`InvalidDataError` for other bytes."""
        def bad(message: str) -> InvalidDataError:
            return InvalidDataError([Problem("gallery", "bytes", message)])

        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            header = json.loads(arrays["header"].tobytes().decode())
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as err:
            raise bad(f"not a stored gallery ({type(err).__name__})") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise bad("not a stored gallery (no gallery header)")
        if header.get("format_version", 0) > _FORMAT_VERSION:
            raise bad(f"gallery format version {header['format_version']} is newer than this "
                      f"fashionkit reads ({_FORMAT_VERSION})")
        try:
            projection = Projection(arrays["mean"], arrays["matrix"])
            samples = arrays["samples"]
            if samples.shape[0] != len(header["sample_items"]) \
                    or projection.matrix.shape != (projection.mean.shape[0], samples.shape[1]):
                raise bad("stored arrays do not fit together")
            item_categories = header.get("item_categories")
            if item_categories is not None and header.get("format_version", 0) < 2:
                item_categories = {item: [c] for item, c in item_categories.items()}
            return cls(projection, samples, header["sample_items"],
                       threshold=header["threshold"], shrinkage=header["shrinkage"],
                       calibrated=header["calibrated"], known_scores=arrays["known"],
                       new_scores=arrays["new"],
                       item_categories=item_categories,
                       feature_weight=header.get("feature_weight", 1.0))
        except (KeyError, TypeError, IndexError) as err:
            raise bad(f"incomplete stored gallery ({type(err).__name__}: {err})") from None


def _calibration(x: np.ndarray, labels: np.ndarray, photos: np.ndarray,
                 alphas: Sequence[float], cats: _Kinds | None
                 ) -> tuple[float, np.ndarray, np.ndarray]:
    """The shrinkage of ``alphas`` with the best leave-one-photo-out top-1 (ties: the least
    whitening, the simpler map generalises better), its known scores and its new scores."""
    by_alpha = _leave_one_photo_out(x, labels, photos, alphas, cats)
    alpha = max(alphas, key=lambda a: (by_alpha[a][1], a))
    return alpha, by_alpha[alpha][0], _leave_one_item_out(x, labels, alpha, cats)


def _separation(known: np.ndarray, new: np.ndarray) -> float:
    """Balanced accuracy of known vs new scores at :func:`best_threshold`; −1 without both."""
    if len(known) == 0 or len(new) == 0:
        return -1.0
    known, new = np.sort(known), np.sort(new)
    threshold = best_threshold(known, new)
    return float(1.0 - _expected_errors(known, new, np.array([threshold]), 0.5)[0])


@dataclass(frozen=True)
class _Kinds:
    """The samples' categories for the calibration: ``seen`` (N ints), the one each sample
    was seen under (what it asks with, held out); ``member`` (N×C), whether its item may be
    matched under each of ``values`` (C sorted category ids)."""

    seen: np.ndarray
    member: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, seen: np.ndarray, of_item: Sequence[set[int]]) -> _Kinds:
        values = np.array(sorted(set(seen.tolist()).union(*of_item)), dtype=int)
        member = np.array([[int(v) in cats for v in values] for cats in of_item], bool)
        return cls(seen, member.reshape(len(seen), len(values)), values)


def _allowed(cats: _Kinds | None, query: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Q×R mask of the gallery samples each query may match (items of its category)."""
    if cats is None:
        return np.ones((int(query.sum()), int(rest.sum())), bool)
    columns = np.searchsorted(cats.values, cats.seen[query])
    return cats.member[rest][:, columns].T


def _leave_one_photo_out(x: np.ndarray, labels: np.ndarray, photos: np.ndarray,
                         alphas: Sequence[float], cats: _Kinds | None = None
                         ) -> dict[float, tuple[np.ndarray, float]]:
    """For each shrinkage of ``alphas``: the known scores (best similarity of each sample
    whose item has other photos, the gallery refit without its photo) and the top-1 accuracy
    of those samples."""
    scores: dict[float, list[float]] = {a: [] for a in alphas}
    correct = dict.fromkeys(alphas, 0)
    for photo in np.unique(photos):
        held = photos == photo
        rest = ~held
        if not rest.any():
            continue
        rest_labels = labels[rest]
        asked = np.array([(rest_labels == label).any() for label in labels[held]])
        if not asked.any():
            continue  # its items have no other photo: new items here, not known ones
        principal = _principal(x[rest])
        allowed = _allowed(cats, held, rest)
        for alpha in alphas:
            projection = Projection.fit(x[rest], rest_labels, alpha, principal)
            sims = np.where(allowed, projection(x[held]) @ projection(x[rest]).T, -1.0)
            best = np.argmax(sims, axis=1)[asked]
            scores[alpha].extend(sims[asked].max(axis=1).tolist())
            correct[alpha] += int((rest_labels[best] == labels[held][asked]).sum())
    return {a: (np.asarray(scores[a]), correct[a] / len(scores[a]) if scores[a] else 0.0)
            for a in alphas}


def _twin_scores(x: np.ndarray, labels: np.ndarray, photos: np.ndarray, alpha: float,
                 cats: _Kinds | None = None) -> np.ndarray:
    """Stand-in known scores: each sample whose item has another sample in the same photo
    (the other shoe of a pair), its best similarity to the gallery refit without it."""
    scores: list[float] = []
    for j in range(len(x)):
        twin = (labels == labels[j]) & (photos == photos[j])
        twin[j] = False
        if not twin.any():
            continue
        held = np.zeros(len(x), bool)
        held[j] = True
        rest = ~held
        projection = Projection.fit(x[rest], labels[rest], alpha)
        allowed = _allowed(cats, held, rest)
        sims = np.where(allowed, projection(x[held]) @ projection(x[rest]).T, -1.0)
        scores.append(float(sims.max()))
    return np.asarray(scores)


def _leave_one_item_out(x: np.ndarray, labels: np.ndarray, alpha: float,
                        cats: _Kinds | None = None) -> np.ndarray:
    """New scores: each sample's best similarity to the other items, the gallery refit
    without its item (as an item never seen is absent from the projection too)."""
    scores: list[float] = []
    for label in np.unique(labels):
        held = labels == label
        rest = ~held
        if not rest.any():
            continue
        projection = Projection.fit(x[rest], labels[rest], alpha)
        allowed = _allowed(cats, held, rest)
        sims = np.where(allowed, projection(x[held]) @ projection(x[rest]).T, -1.0)
        # A sample with no other item of its category is new by the category alone: it says
        # nothing of what a new item's best similarity is, so it does not move the threshold.
        scores.extend(float(s) for s in sims.max(axis=1)[allowed.any(axis=1)])
    return np.asarray(scores)
