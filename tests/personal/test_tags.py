"""TagModel: learned tags beat the prior where the tag shows, fall to the prior where it does
not or when labels are shuffled; bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from fashionkit.errors import InvalidDataError
from fashionkit.personal.tags import TagModel, prior_of


def _items(seed: int, items: int, per_item: int, dims: int = 24):
    """Items whose ``colour`` tag shows in the embedding (a direction per value, plus noise)
    and whose ``lucky`` tag is drawn independently of it."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(3, dims)) * 1.5
    colours = rng.integers(0, 3, items)
    lucky = rng.choice(["yes", "no", "no", "maybe"], items)
    looks = directions[colours] + rng.normal(size=(items, dims))  # each item its own look
    x = np.repeat(looks, per_item, axis=0) + 0.3 * rng.normal(size=(items * per_item, dims))
    tags = [{"colour": f"c{colours[k]}", "lucky": str(lucky[k])}
            for k in range(items) for _ in range(per_item)]
    groups = [f"item{k}" for k in range(items) for _ in range(per_item)]
    return x, tags, groups


def _accuracy(model: TagModel, x: np.ndarray, tags, tag_type: str) -> float:
    predicted = model.predict(x)
    return float(np.mean([p[tag_type].value == t[tag_type]
                          for p, t in zip(predicted, tags, strict=True)]))


def test_grounded_tag_beats_prior_and_shuffled_labels_do_not():
    x, tags, groups = _items(0, items=60, per_item=3)
    # The last 30 items are never seen in fitting: tags of new items.
    x, test_x = x[:90], x[90::3]
    tags, test_tags = tags[:90], tags[90::3]
    groups = groups[:90]
    model = TagModel.fit(x, tags, groups=groups)
    learned = _accuracy(model, test_x, test_tags, "colour")
    prior_value, _ = prior_of([t["colour"] for t in tags])
    prior = float(np.mean([t["colour"] == prior_value for t in test_tags]))
    assert learned >= 0.8 and learned > prior + 0.3, (learned, prior)
    assert model.probes["colour"].penalty is not None

    # The same samples with each item's tags given to another item: nothing left to learn.
    rng = np.random.default_rng(2)
    order = rng.permutation(30)
    shuffled = [tags[3 * order[i // 3]] for i in range(len(tags))]
    model = TagModel.fit(x, shuffled, groups=groups)
    after = _accuracy(model, test_x, test_tags, "colour")
    assert after <= prior + 0.15, (after, prior)


def test_ungrounded_tag_gets_the_prior():
    x, tags, groups = _items(3, items=30, per_item=3)
    model = TagModel.fit(x, tags, groups=groups)
    probe = model.probes["lucky"]
    assert probe.penalty is None  # cross-validation by item found nothing to learn
    value, frequency = prior_of([t["lucky"] for t in tags])
    suggestions = model.predict(x[:5])
    assert all(s["lucky"] == suggestions[0]["lucky"] for s in suggestions)
    assert suggestions[0]["lucky"].value == value


def test_confidence_is_a_probability_and_follows_evidence():
    x, tags, groups = _items(4, items=30, per_item=3)
    model = TagModel.fit(x, tags, groups=groups)
    clear = model.predict(x)
    # Halfway between two values' looks the probe must be less sure than on an item itself.
    blurred = model.predict(0.5 * x + 0.5 * x[np.roll(np.arange(len(x)), 3)])
    sure = np.array([s["colour"].confidence for s in clear])
    unsure = np.array([s["colour"].confidence for s in blurred])
    assert ((sure > 0) & (sure <= 1)).all()
    assert sure.mean() > unsure.mean() + 0.05, (sure.mean(), unsure.mean())


def test_missing_values_and_single_value_tags():
    x, tags, groups = _items(5, items=12, per_item=2)
    tags = [dict(t, brand=None if i % 2 else "acme") for i, t in enumerate(tags)]
    model = TagModel.fit(x, tags, groups=groups)
    assert model.predict(x[:1])[0]["brand"].value == "acme"


def test_bad_inputs():
    x, tags, groups = _items(6, items=6, per_item=2)
    with pytest.raises(InvalidDataError, match="at least one"):
        TagModel.fit(np.zeros((0, 4)), [])
    with pytest.raises(InvalidDataError, match="tag records"):
        TagModel.fit(x, tags[:-1])
    with pytest.raises(InvalidDataError, match="groups"):
        TagModel.fit(x, tags, groups=groups[:3])
    with pytest.raises(InvalidDataError, match="expected a string"):
        TagModel.fit(x, [dict(t, colour=3) for t in tags])
    bad = x.copy()
    bad[2, 0] = np.inf
    with pytest.raises(InvalidDataError, match="row 2"):
        TagModel.fit(bad, tags)
    model = TagModel.fit(x, tags, groups=groups)
    with pytest.raises(InvalidDataError, match="dimensions"):
        model.predict(np.zeros((1, x.shape[1] + 2)))
