"""Personal taste learned from feedback: a small linear model over features of item pairs.

Each feedback event rates a set of items: like = +1, wore = +0.5 (wearing is a weaker signal
than an explicit like), dislike = −1. Every pair of items in the set yields four features:

* ``item``: the two item ids (this exact pairing),
* ``family``: the two main-colour families (e.g. navy-and-white transfers to other blue/white
  pairs),
* ``category``: the two Fashionpedia categories (e.g. "dress with jacket"),
* ``pattern``: whether each is bold-patterned (plain/plain, plain/bold, bold/bold).

The weight of a feature is the ridge-regression solution for one-hot features that never
co-occur — the rating sum over the events containing it divided by (count + λ), with λ = 2 —
so a single like moves a weight to 1/3 and repeated consistent feedback approaches ±1. A pair's
score is ``Σ α_type · w``, with α = item 1.0, family 0.5, category 0.3, pattern 0.2, clipped to
±1. Deterministic: it depends only on the multiset of events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fashionkit.outfits.features import WardrobeIndex
from fashionkit.wardrobe.colors import COLOR_FAMILIES

__all__ = ["TasteModel", "FEEDBACK_RATING", "FEATURE_WEIGHTS"]

FEEDBACK_RATING: dict[str, float] = {"like": 1.0, "wore": 0.5, "dislike": -1.0}
FEATURE_WEIGHTS: dict[str, float] = {"item": 1.0, "family": 0.5, "category": 0.3, "pattern": 0.2}
_RIDGE = 2.0
_N_FAMILIES = len(COLOR_FAMILIES) + 1  # + "no colour"
_N_CATEGORIES = 46


def _ordered(a, b):
    return (a, b) if a <= b else (b, a)


@dataclass
class TasteModel:
    """Learned feature weights; empty (all zero) when there is no feedback."""

    item_pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    family: np.ndarray = field(default_factory=lambda: np.zeros((_N_FAMILIES, _N_FAMILIES)))
    category: np.ndarray = field(default_factory=lambda: np.zeros((_N_CATEGORIES,) * 2))
    pattern: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    events: int = 0

    @classmethod
    def fit(cls, index: WardrobeIndex, feedback: Iterable[tuple[Sequence[str], str]]) -> TasteModel:
        """Learn from ``(item ids, kind)`` events; ids not in ``index`` (removed items) are
        skipped, and so are events left with fewer than two items (no pair to learn from)."""
        sums: dict[tuple, float] = defaultdict(float)
        counts: dict[tuple, int] = defaultdict(int)
        n_events = 0
        for ids, kind in feedback:
            if kind not in FEEDBACK_RATING:
                raise ValueError(f"unknown feedback kind {kind!r}")
            rows = sorted({index.position[i] for i in ids if i in index.position})
            if len(rows) < 2:
                continue
            n_events += 1
            features = set()
            for x, a in enumerate(rows):
                for b in rows[x + 1 :]:
                    features.add(("item", *_ordered(index.items[a].id, index.items[b].id)))
                    features.add(("family", *_ordered(int(index.family[a]), int(index.family[b]))))
                    features.add(
                        ("category", *_ordered(int(index.category[a]), int(index.category[b])))
                    )
                    features.add(("pattern", *_ordered(int(index.bold[a]), int(index.bold[b]))))
            for f in features:
                sums[f] += FEEDBACK_RATING[kind]
                counts[f] += 1
        model = cls(events=n_events)
        for f, total in sorted(sums.items()):
            weight = total / (counts[f] + _RIDGE)
            kind_, a, b = f
            if kind_ == "item":
                model.item_pairs[(a, b)] = weight
            else:
                matrix = getattr(model, kind_)
                matrix[a, b] = matrix[b, a] = weight
        return model

    def pair_matrix(self, index: WardrobeIndex, rows: np.ndarray) -> np.ndarray:
        """Pair scores among ``rows`` of the index (K×K, symmetric, clipped to ±1)."""
        rows = np.asarray(rows)
        fam = index.family[rows].astype(int)
        cat = index.category[rows].astype(int)
        bold = index.bold[rows].astype(int)
        out = (
            FEATURE_WEIGHTS["family"] * self.family[fam[:, None], fam[None, :]]
            + FEATURE_WEIGHTS["category"] * self.category[cat[:, None], cat[None, :]]
            + FEATURE_WEIGHTS["pattern"] * self.pattern[bold[:, None], bold[None, :]]
        )
        if self.item_pairs:
            local = {index.items[r].id: k for k, r in enumerate(rows)}
            for (a, b), weight in self.item_pairs.items():
                if a in local and b in local:
                    i, j = local[a], local[b]
                    out[i, j] += FEATURE_WEIGHTS["item"] * weight
                    out[j, i] += FEATURE_WEIGHTS["item"] * weight
        return np.clip(out, -1.0, 1.0)

    def item_affinity(self, index: WardrobeIndex) -> np.ndarray:
        """Per item (N): the mean weight of the liked/disliked pairings it took part in, used
        to keep liked items among the candidates when the wardrobe is pruned."""
        total = np.zeros(len(index))
        count = np.zeros(len(index))
        for (a, b), weight in self.item_pairs.items():
            for key in (a, b):
                if key in index.position:
                    total[index.position[key]] += weight
                    count[index.position[key]] += 1
        return total / np.maximum(count, 1)

    @property
    def is_empty(self) -> bool:
        return self.events == 0
