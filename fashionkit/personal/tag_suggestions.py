"""Suggested tags for a newly photographed item, learned from the person's own labelled items,
for the person to confirm or edit.

A :class:`TagSuggester` is a :class:`~fashionkit.personal.tags.TagModel` fitted on one
person's items (one wardrobe: another person's items never reach it) that have an appearance
embedding of one embedder key (:meth:`~fashionkit.wardrobe.database.Wardrobe.embedding_samples`,
as :func:`~fashionkit.personal.wearlog.gallery_for` reads them: every vector of an item, its own
picture and its views in outfit photos, one ``group``) and at least one tag. The tags are the
item's fields of :data:`TAG_FIELDS` as stored, whether typed by the person or kept from the
detection (material and season from attributes). ``season`` and ``occasion`` are tuples; the
model sees one value per item, the tuple's canonical form (season in the order of
:data:`~fashionkit.wardrobe.attributes.SEASONS`, occasions sorted, joined by a character no
tag word may hold), so ``("summer", "spring")`` and ``("spring", "summer")`` are one value; an
empty tuple says nothing. A suggestion gives it back as a tuple.

Each suggestion is ``value``, ``confidence`` and ``source``: ``"learned"`` when the tag type's
probe learned a visual cue (``TagProbe.learned``: a logistic probe or a neighbour vote, over
one block of the embedding or all of it, alone or with the item's category), ``"prior"`` when
cross-validation over the person's items found none (:mod:`fashionkit.personal.tags`) and the
suggestion is their most frequent value — overall, or for the item's category where that
predicted better (the person's shoes are leather, their sweaters wool). A prior's
``confidence`` is the share of the person's labelled items (of that category, with one
pseudo-item of the overall shares) that have that value (each item counted once): how often
"your usual" is right, not the model's certainty about this item. The model learns from each
item's category as stored, and a new item is asked about with its detected one.

A tag type is suggested only when at least :data:`MIN_LABELLED_ITEMS` items carry it: with
fewer, even "your usual" is a guess. A person with no such item gets no suggestions, which is
not an error.

Fitting is the costly part: every candidate probe cross-validated on every labelled vector,
seconds for a few hundred vectors and tens of seconds for a wardrobe photographed a thousand
times, where suggesting from the fitted model takes milliseconds. So a fitted model is kept
(:data:`KEPT_MODELS` of them per process) and used again for the same person and the same
inputs (the vectors, tags and categories it was fitted on, by digest: nothing to invalidate,
an edit makes other inputs). Asking about each of one's new items, or the page asking again,
fits once; an item without tags asks with the same inputs as any other, since leaving it out
leaves nothing out. And one person's fits run one at a time (in a process; a server of
several processes keeps models and queues in each): requests that arrive during a fit
wait for it and then find its model, instead of each fitting the same model at once, so a
burst of one person's requests costs one fit and never more than one runs for them. Asked
with ``max_queued`` (the service asks with :data:`MAX_QUEUED_FITS`), a request that finds that
many of the person's requests already running or waiting is refused with
:class:`~fashionkit.errors.BusyError` rather than held: each waiting request holds one of the
server's threads, and a person asking about many labelled items at once (each a fit of its own,
as each is left out of its own) would otherwise hold them all for minutes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from fashionkit.errors import BusyError, InvalidDataError, Problem
from fashionkit.personal.tags import TagModel
from fashionkit.wardrobe.attributes import SEASONS
from fashionkit.wardrobe.database import Wardrobe
from fashionkit.wardrobe.items import WardrobeItem

__all__ = [
    "TAG_FIELDS",
    "LIST_FIELDS",
    "MIN_LABELLED_ITEMS",
    "KEPT_MODELS",
    "MAX_QUEUED_FITS",
    "SuggestedTag",
    "TagSuggester",
    "tag_values",
    "field_value",
    "suggest_tags",
    "suggest_tags_for_item",
    "tag_problems",
    "blocks_of",
]

#: The item fields suggested, in the order they are shown.
TAG_FIELDS: tuple[str, ...] = ("material", "brand", "trend", "season", "occasion")
#: Those of :data:`TAG_FIELDS` that are tuples on the item.
LIST_FIELDS = frozenset({"season", "occasion"})
#: Fewest labelled items a tag type is suggested from.
MIN_LABELLED_ITEMS = 3
#: Fitted models kept per process (module docstring); a few megabytes each.
KEPT_MODELS = 8
#: The service's bound on one person's suggestion requests running or waiting at once.
MAX_QUEUED_FITS = 4
# Joins a tuple field's words into one value: a control character, which no season name or
# occasion word can hold (fashionkit.wardrobe.items refuses them), so splitting is exact.
_JOIN = "\x1f"


@dataclass(frozen=True)
class SuggestedTag:
    """A suggested ``value`` of one item field (a string; a tuple for :data:`LIST_FIELDS`),
    the ``confidence`` in it (0..1) and its ``source``: ``"learned"`` or ``"prior"`` (module
    docstring)."""

    value: str | tuple[str, ...]
    confidence: float
    source: str

    def to_json(self) -> dict:
        """``{"value": str | [str], "confidence": float, "source": "learned" | "prior"}``."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"value": value, "confidence": round(self.confidence, 4), "source": self.source}


def tag_values(item: WardrobeItem) -> dict[str, str | None]:
    """The item's :data:`TAG_FIELDS` as one string each (``None``: not said)."""
    out: dict[str, str | None] = {}
    for name in TAG_FIELDS:
        value = getattr(item, name)
        if name == "season":
            words = [s for s in SEASONS if s in value]
            out[name] = _JOIN.join(words) if words else None
        elif name in LIST_FIELDS:
            out[name] = _JOIN.join(sorted(set(value))) if value else None
        else:
            out[name] = value or None
    return out


def field_value(name: str, value: str) -> str | tuple[str, ...]:
    """A value of :func:`tag_values` back in the item field's own form."""
    return tuple(value.split(_JOIN)) if name in LIST_FIELDS else value


def tag_problems(tags: Mapping, where: str) -> list[Problem]:
    """What is wrong with ``tags`` as confirmed tags (field → value, ``None`` to leave it
    unset): only :data:`TAG_FIELDS` may be named. The values themselves are checked as any
    item's are (:func:`~fashionkit.wardrobe.items.item_from_dict`)."""
    unknown = sorted(str(k) for k in tags if k not in TAG_FIELDS)
    if not unknown:
        return []
    return [Problem(where, "tags", f"unknown tag(s) {', '.join(map(repr, unknown))}; tags "
                    f"are {', '.join(TAG_FIELDS)}")]  # fmt: skip


def _digest(x: np.ndarray, records: list[dict[str, str | None]], groups: list[str],
            categories: list[int]) -> str:
    """A digest of everything a :class:`TagModel` is fitted from: equal digests, equal models."""
    h = hashlib.sha256()
    h.update(json.dumps([x.shape, x.dtype.str, records, groups, categories],
                        sort_keys=True).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


class _FittedModels:
    """The last :data:`KEPT_MODELS` fitted models by (person, digest of their inputs), and one
    lock per person with a fit running or waiting, held while that person's model is looked up
    and fitted (module docstring)."""

    def __init__(self, size: int):
        self.size = size
        self._models: OrderedDict[tuple[Hashable, str], TagModel] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts, never held during a fit
        self._people: dict[Hashable, list] = {}  # person → [their lock, requests using it]

    def _kept(self, key: tuple[Hashable, str]) -> TagModel | None:
        """The model kept under ``key``, now the most recently used (the caller holds the
        lock)."""
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
        return model

    def get(self, person: Hashable, digest: str, fit: Callable[[], TagModel],
            max_queued: int | None = None) -> TagModel:
        key = (person, digest)
        with self._lock:
            model = self._kept(key)
            if model is not None:  # kept: no fit, so no wait and no refusal
                return model
            entry = self._people.setdefault(person, [threading.Lock(), 0])
            if max_queued is not None and entry[1] >= max_queued:
                raise BusyError(f"{entry[1]} of your requests for suggested tags are being "
                                "computed; ask again when they are done")
            entry[1] += 1
        try:
            with entry[0]:
                with self._lock:  # fitted while this request waited its turn
                    model = self._kept(key)
                if model is not None:
                    return model
                model = fit()
                with self._lock:
                    self._models[key] = model
                    while len(self._models) > self.size:
                        self._models.popitem(last=False)
                return model
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._people[person]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


_FITTED = _FittedModels(KEPT_MODELS)


class TagSuggester:
    """Tag suggestions from one person's labelled items (module docstring). Build with
    :meth:`fit`; :meth:`suggest` for any number of embeddings of the same embedder.
    ``labelled``: tag type → how many items it was learned from (only those suggested)."""

    def __init__(self, model: TagModel | None, labelled: dict[str, int],
                 shares: dict[str, dict[str, float]]):
        self.model = model
        self.labelled = labelled
        self._shares = shares

    def __repr__(self) -> str:
        return f"TagSuggester({self.model!r}, labelled={self.labelled})"

    @classmethod
    def fit(cls, wardrobe: Wardrobe, embedder_key: str, *,
            leave_out: Iterable[str] = ()) -> TagSuggester:
        """Fit on the items of ``wardrobe`` that have an embedding of ``embedder_key`` and
        tags, except those of ``leave_out`` (an item asking about itself must not be its own
        evidence). :class:`InvalidDataError` when the stored vectors are damaged."""
        keys, _, vectors = wardrobe.embedding_samples(embedder_key)
        return cls._fit(wardrobe, keys, vectors, set(leave_out))

    @classmethod
    def _fit(cls, wardrobe: Wardrobe, keys: list[str], vectors: np.ndarray,
             leave_out: set[str], max_queued: int | None = None) -> TagSuggester:
        embedded = set(keys) - leave_out
        # Read after the vectors: an item removed in between is simply not used.
        items = [i for i in wardrobe.items() if i.id in embedded]
        tags = {i.id: tag_values(i) for i in items}
        category_of = {i.id: i.category_id for i in items}
        per_type: dict[str, Counter[str]] = {
            name: Counter(v for t in tags.values() if (v := t[name]) is not None)
            for name in TAG_FIELDS
        }
        kept = {name: counts for name, counts in per_type.items()
                if sum(counts.values()) >= MIN_LABELLED_ITEMS}  # fmt: skip
        records = {key: {n: t[n] for n in kept if t[n] is not None} for key, t in tags.items()}
        rows = [i for i, key in enumerate(keys) if records.get(key)]
        if not rows:
            return cls(None, {}, {})
        x = vectors[rows]
        records_of_rows = [records[keys[i]] for i in rows]
        groups = [keys[i] for i in rows]
        categories = [category_of[keys[i]] for i in rows]
        model = _FITTED.get(
            (wardrobe.url, wardrobe.user_id), _digest(x, records_of_rows, groups, categories),
            lambda: TagModel.fit(x, records_of_rows, groups=groups,
                                 blocks=blocks_of(x.shape[1]), categories=categories),
            max_queued)
        shares = {name: {v: c / sum(counts.values()) for v, c in counts.items()}
                  for name, counts in kept.items()}  # fmt: skip
        labelled = {name: sum(counts.values()) for name, counts in kept.items()}
        return cls(model, labelled, shares)

    def suggest(self, embeddings: np.ndarray, categories: Iterable[int] | None = None
                ) -> list[dict[str, SuggestedTag]]:
        """For each row of ``embeddings`` (M×D float, the embedder the suggester was fitted
        for) and its category id in ``categories`` (M ints; without them, a tag that goes by
        category is suggested as the person's overall usual), item field →
        :class:`SuggestedTag`, in the order of :data:`TAG_FIELDS`; empty dicts when there is
        nothing to suggest from. :class:`InvalidDataError` for rows of another length or with
        non-finite values, or another number of categories."""
        x = np.asarray(embeddings, dtype=np.float64)
        if self.model is None:
            return [{} for _ in range(len(x))]
        out = []
        cats = list(categories) if categories is not None else None
        for predicted in self.model.predict(x, cats):
            row = {}
            for name in TAG_FIELDS:
                if name not in predicted:
                    continue
                suggestion = predicted[name]
                probe = self.model.probes[name]
                if probe.method == "category":  # the usual value of the item's category
                    row[name] = SuggestedTag(field_value(name, suggestion.value),
                                             float(suggestion.confidence), "prior")
                elif not probe.learned:
                    share = self._shares[name].get(suggestion.value, 0.0)
                    row[name] = SuggestedTag(field_value(name, suggestion.value), share, "prior")
                else:
                    row[name] = SuggestedTag(field_value(name, suggestion.value),
                                             float(suggestion.confidence), "learned")
            out.append(row)
        return out


def blocks_of(dims: int) -> dict[str, slice] | None:
    """The blocks (features, colour, texture, fabric) of the vectors of ``dims`` dimensions
    that an :class:`~fashionkit.personal.embedding.ItemEmbedder` makes, which a tag probe looks
    at one by one and a gallery weighs; ``None`` for vectors of another layout, looked at
    whole."""
    # Imported here: the embedder's module brings torch, which the service's routes need not
    # load.
    from fashionkit.personal.embedding import embedding_blocks

    try:
        return embedding_blocks(dims)
    except InvalidDataError:
        return None


def suggest_tags(wardrobe: Wardrobe, embedder_key: str, embeddings: np.ndarray,
                 categories: Iterable[int] | None = None) -> list[dict[str, SuggestedTag]]:
    """Suggested tags for each of ``embeddings`` (M×D, of ``embedder_key``; ``categories``:
    their category ids), learned from the person's items: :meth:`TagSuggester.fit` then
    :meth:`TagSuggester.suggest`."""
    return TagSuggester.fit(wardrobe, embedder_key).suggest(embeddings, categories)


def suggest_tags_for_item(wardrobe: Wardrobe, item_id: str, embedder_key: str | None = None,
                          *, max_queued: int | None = None) -> dict[str, SuggestedTag]:
    """Suggested tags for the person's item ``item_id`` from its own picture's embedding,
    learned from their other items. ``embedder_key``: whose embeddings (default: the one most
    of the person's items have). :class:`NotFoundError` for an item not in this wardrobe;
    :class:`InvalidDataError` when it has no embedding of that key (entered by hand, or not
    reindexed for this model); :class:`BusyError` when ``max_queued`` of the person's
    requests are running or waiting already (module docstring)."""
    item = wardrobe.get(item_id)
    if embedder_key is None:
        known = wardrobe.embedders()
        if not known:
            raise InvalidDataError([Problem(
                f"item {item_id!r}", "embedding",
                "none of your items has an appearance embedding: add items from photos, or "
                "run 'fashionkit wardrobe reindex --weights MODEL.pt'")])  # fmt: skip
        embedder_key = max(sorted(known), key=lambda k: known[k])
    keys, _, vectors = wardrobe.embedding_samples(embedder_key)
    # Its own picture's vector comes first (sources sort "" first), else its first view.
    rows = [i for i, key in enumerate(keys) if key == item_id]
    if not rows:
        raise InvalidDataError([Problem(
            f"item {item_id!r}", "embedding",
            f"has no appearance embedding of model {embedder_key!r} (items entered by hand "
            "have no picture): run 'fashionkit wardrobe reindex' with that model")])  # fmt: skip
    suggester = TagSuggester._fit(wardrobe, keys, vectors, {item_id}, max_queued)
    return suggester.suggest(vectors[rows[:1]], [item.category_id])[0]
