"""Suggested tags from a person's own labelled items: a visible tag is learned and an
invisible one falls to the prior, shuffled labels teach nothing, another person's items never
count, too few labelled items give nothing, tuple fields come back as tuples; a fitted model
serves again until its inputs change, and one person's fits queue, boundedly, while another's
run."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fashionkit.personal.tag_suggestions as ts
from fashionkit.errors import BusyError, InvalidDataError, NotFoundError
from fashionkit.personal.tag_suggestions import (
    MIN_LABELLED_ITEMS,
    TagSuggester,
    field_value,
    suggest_tags,
    suggest_tags_for_item,
    tag_values,
)
from fashionkit.wardrobe import WardrobeItem
from fashionkit.wardrobe.database import WardrobeDatabase

KEY = "test-embedder"
MATERIALS = ("denim", "silk", "wool")
DIMS = 16


def _looks(seed: int):
    """One direction per material (what a material looks like) and a noise generator."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(len(MATERIALS), DIMS)) * 2.0, rng


def _closet(wardrobe, seed: int, items: int, *, materials=MATERIALS, brand="acme",
            prefix="item", shuffle=False, views=2):
    """``items`` items whose material shows in their embedding and whose brand is one value
    for all but every fifth (``"other"``): drawn independently of the look. ``shuffle``: each
    item's material given to another item. Returns ``(directions, material per item)``."""
    directions, rng = _looks(seed)
    kinds = np.arange(items) % len(MATERIALS)
    labels = [materials[k] for k in kinds]
    if shuffle:
        labels = [labels[i] for i in rng.permutation(items)]
    vectors, samples = {}, []
    for n in range(items):
        look = directions[kinds[n]] + 0.7 * rng.normal(size=DIMS)
        key = f"{prefix}-{n:02d}"
        wardrobe.add(WardrobeItem(id=key, category_id=1, material=labels[n],
                                  brand=brand if n % 5 else "other"))  # fmt: skip
        vectors[key] = look
        samples.extend((key, f"photo{v}", look + 0.2 * rng.normal(size=DIMS))
                       for v in range(views - 1))  # fmt: skip
    wardrobe.set_embeddings(KEY, vectors)
    if samples:
        wardrobe.add_views(KEY, samples)
    return directions, labels


def _new_looks(directions, seed: int, per_material: int = 5):
    rng = np.random.default_rng(seed)
    kinds = np.repeat(np.arange(len(MATERIALS)), per_material)
    return directions[kinds] + 0.7 * rng.normal(size=(len(kinds), DIMS)), [MATERIALS[k] for k in kinds]


@pytest.fixture
def database(tmp_path):
    with WardrobeDatabase(f"sqlite:///{tmp_path / 'w.sqlite'}") as db:
        yield db


def test_a_visible_tag_is_learned_and_an_invisible_one_is_the_prior(database):
    alice = database.wardrobe("alice")
    directions, _ = _closet(alice, 0, 30)
    queries, truth = _new_looks(directions, 1)
    suggestions = suggest_tags(alice, KEY, queries)
    assert [s["material"].source for s in suggestions] == ["learned"] * len(truth)
    right = np.mean([s["material"].value == t for s, t in zip(suggestions, truth, strict=True)])
    assert right >= 0.8, right
    assert all(0.5 < s["material"].confidence <= 1 for s in suggestions)
    # The brand does not show: the person's usual one, with how often it is right.
    for s in suggestions:
        assert s["brand"].source == "prior" and s["brand"].value == "acme"
        assert s["brand"].confidence == pytest.approx(24 / 30)
    assert set(suggestions[0]) == {"material", "brand"}  # nobody said trend, season, occasion


def test_shuffled_labels_teach_nothing(database):
    alice = database.wardrobe("alice")
    directions, labels = _closet(alice, 0, 30, shuffle=True)
    queries, truth = _new_looks(directions, 1)
    suggestions = suggest_tags(alice, KEY, queries)
    right = np.mean([s["material"].value == t for s, t in zip(suggestions, truth, strict=True)])
    assert right <= 0.5, right  # a third by chance; the learned model above gets ≥ 0.8


def test_noise_is_less_sure_than_a_look_it_learned(database):
    alice = database.wardrobe("alice")
    directions, _ = _closet(alice, 0, 30)
    queries, _ = _new_looks(directions, 1)
    rng = np.random.default_rng(9)
    # Between the looks of two materials: the probe must hesitate.
    blurred = 0.5 * directions[0] + 0.5 * directions[1] + 0.1 * rng.normal(size=(10, DIMS))
    sure = [s["material"].confidence for s in suggest_tags(alice, KEY, queries)]
    unsure = [s["material"].confidence for s in suggest_tags(alice, KEY, blurred)]
    assert np.mean(sure) > np.mean(unsure) + 0.1, (np.mean(sure), np.mean(unsure))


def test_only_the_persons_own_items_count(database):
    alice, bob = database.wardrobe("alice"), database.wardrobe("bob")
    # Bob's items look the same and carry his own words, under the same embedder key.
    directions, _ = _closet(bob, 0, 30, materials=("bobs-denim", "bobs-silk", "bobs-wool"),
                            brand="bobs-brand", prefix="b")  # fmt: skip
    queries, _ = _new_looks(directions, 1)
    # Alice has too few labelled items: nothing to suggest, whatever Bob has.
    _closet(alice, 5, MIN_LABELLED_ITEMS - 1, prefix="a")
    assert suggest_tags(alice, KEY, queries) == [{}] * len(queries)
    # With enough of her own, only her words come back.
    _closet(alice, 6, 30, prefix="more")
    words = {s.value for row in suggest_tags(alice, KEY, queries) for s in row.values()}
    assert words and words <= set(MATERIALS) | {"acme", "other"}, words
    with pytest.raises(NotFoundError):
        suggest_tags_for_item(alice, "b-00", KEY)


def test_too_few_labelled_items_give_nothing(database):
    alice = database.wardrobe("alice")
    queries = np.ones((2, DIMS))
    assert suggest_tags(alice, KEY, queries) == [{}, {}]  # no embeddings at all
    _closet(alice, 0, MIN_LABELLED_ITEMS - 1)
    assert suggest_tags(alice, KEY, queries) == [{}, {}]
    # Items without tags teach nothing either.
    alice.add(WardrobeItem(id="bare", category_id=1))
    alice.set_embeddings(KEY, {"bare": np.ones(DIMS)})
    assert TagSuggester.fit(alice, KEY).labelled == {}
    alice.update("bare", material="denim", brand="acme")
    suggester = TagSuggester.fit(alice, KEY)
    assert suggester.labelled == {"material": MIN_LABELLED_ITEMS, "brand": MIN_LABELLED_ITEMS}
    assert set(suggester.suggest(queries)[0]) == {"material", "brand"}
    # Another embedder's vectors are another space: not used.
    assert suggest_tags(alice, "another-model", queries) == [{}, {}]


def test_tuple_fields_are_one_value_and_come_back_as_tuples(database):
    alice = database.wardrobe("alice")
    rng = np.random.default_rng(0)
    vectors = {}
    for n in range(8):
        season = ("summer", "spring") if n % 2 else ("spring", "summer")
        alice.add(WardrobeItem(id=f"i{n}", category_id=1, season=season,
                               occasion=("work", "party") if n < 6 else ()))  # fmt: skip
        vectors[f"i{n}"] = rng.normal(size=DIMS)
    alice.set_embeddings(KEY, vectors)
    item = alice.get("i1")
    assert tag_values(item)["season"] == tag_values(alice.get("i0"))["season"]
    assert field_value("occasion", tag_values(item)["occasion"]) == ("party", "work")
    (row,) = suggest_tags(alice, KEY, rng.normal(size=(1, DIMS)))
    assert row["season"].value == ("spring", "summer") and row["season"].confidence == 1.0
    assert row["occasion"].value == ("party", "work")
    assert row["occasion"].to_json() == {"value": ["party", "work"], "confidence": 1.0,
                                         "source": "prior"}  # fmt: skip


def test_an_items_suggestions_leave_it_out(database):
    alice = database.wardrobe("alice")
    directions, labels = _closet(alice, 0, 30)
    # A trend three items carry, the asking one among them: without it, too few to suggest.
    for key in ("item-00", "item-01", "item-02"):
        alice.update(key, trend="classic")
    assert TagSuggester.fit(alice, KEY).labelled["trend"] == MIN_LABELLED_ITEMS
    found = suggest_tags_for_item(alice, "item-00")  # the key most items have
    assert "trend" not in found
    assert found["material"].value == labels[0] and found["material"].source == "learned"
    assert "trend" in suggest_tags_for_item(alice, "item-03")
    alice.add(WardrobeItem(id="by-hand", category_id=1))
    with pytest.raises(InvalidDataError, match="by-hand"):
        suggest_tags_for_item(alice, "by-hand", KEY)
    with pytest.raises(NotFoundError):
        suggest_tags_for_item(alice, "nobody-has-this", KEY)
    empty = database.wardrobe("carol")
    empty.add(WardrobeItem(id="x", category_id=1))
    with pytest.raises(InvalidDataError, match="appearance embedding"):
        suggest_tags_for_item(empty, "x")


def test_a_tag_that_goes_by_category_is_suggested_by_the_new_items_category(database):
    # Shoes are leather, sweaters wool, whatever they look like: "your usual for shoes".
    alice = database.wardrobe("alice")
    rng = np.random.default_rng(5)
    vectors, samples = {}, []
    for n in range(24):
        category, material = (32, "leather") if n % 2 else (5, "wool")  # shoe / sweater
        key = f"item-{n:02d}"
        alice.add(WardrobeItem(id=key, category_id=category, material=material))
        vectors[key] = rng.normal(size=DIMS)
        samples.append((key, "photo", vectors[key] + 0.2 * rng.normal(size=DIMS)))
    alice.set_embeddings(KEY, vectors)
    alice.add_views(KEY, samples)
    queries = rng.normal(size=(4, DIMS))
    suggester = TagSuggester.fit(alice, KEY)
    assert suggester.model is not None
    assert suggester.model.probes["material"].method == "category"
    by_category = suggester.suggest(queries, [32, 5, 32, 5])
    assert [s["material"].value for s in by_category] == ["leather", "wool"] * 2
    assert all(s["material"].source == "prior" for s in by_category)
    # 12 of 12 shoes, with one pseudo-item of the overall half-and-half.
    assert by_category[0]["material"].confidence == pytest.approx(12.5 / 13)
    # Without the categories: the overall usual, half right.
    assert {round(s["material"].confidence, 3) for s in suggester.suggest(queries)} == {0.5}
    with pytest.raises(InvalidDataError, match="categories"):
        suggester.suggest(queries, [32])


@pytest.fixture
def cold():
    """No fitted model kept from elsewhere, before or after the test."""
    ts._FITTED.clear()
    yield
    ts._FITTED.clear()


@pytest.fixture
def fits(cold, monkeypatch):
    """The rows of every TagModel fit the suggestions make."""
    calls = []
    real = ts.TagModel.fit

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ts.TagModel, "fit", counted)
    return calls


def _two_people(database, alices_seed: int, bobs_seed: int):
    alice, bob = database.wardrobe("alice"), database.wardrobe("bob")
    _closet(alice, alices_seed, 12)
    _closet(bob, bobs_seed, 12)
    return alice, bob


def test_a_fitted_model_is_used_again_until_its_inputs_change(database, fits):
    alice = database.wardrobe("alice")
    directions, labels = _closet(alice, 0, 30)
    queries, _ = _new_looks(directions, 1, per_material=2)
    first = suggest_tags(alice, KEY, queries)
    assert suggest_tags(alice, KEY, queries) == first and len(fits) == 1
    # New items without tags ask with the same inputs: leaving one out leaves nothing out.
    for n in range(2):
        alice.add(WardrobeItem(id=f"new-{n}", category_id=1))
        alice.set_embeddings(KEY, {f"new-{n}": queries[n]})
    assert len(fits) == 1
    suggest_tags_for_item(alice, "new-0")
    suggest_tags_for_item(alice, "new-1")
    assert len(fits) == 1
    # A labelled item asking about itself is left out of its own fit: other inputs, once.
    own = suggest_tags_for_item(alice, "item-00")
    assert suggest_tags_for_item(alice, "item-00") == own and len(fits) == 2
    # An edit changes the inputs: a new fit, and the answer follows the edit.
    for n in range(30):
        alice.update(f"item-{n:02d}", brand="zeta")
    after = suggest_tags(alice, KEY, queries)
    assert len(fits) == 3
    assert {s["brand"].value for s in after} == {"zeta"} != {s["brand"].value for s in first}
    # Another person with the very same items and vectors gets a model of their own.
    bob = database.wardrobe("bob")
    _closet(bob, 0, 30)
    for n in range(30):
        bob.update(f"item-{n:02d}", brand="zeta")
    assert suggest_tags(bob, KEY, queries) == after and len(fits) == 4


def test_one_persons_fits_run_one_at_a_time_and_another_persons_alongside(database, cold,
                                                                          monkeypatch):
    alice, bob = _two_people(database, 0, 1)
    real = ts.TagModel.fit
    lock = threading.Lock()
    running: dict[int, int] = {}
    most: dict[int, int] = {}
    fitted: list[int] = []
    bob_started = threading.Event()

    def watched(x, *args, **kwargs):
        person = 1 if abs(float(x[0, 0]) - float(bob_x[0, 0])) < 1e-12 else 0
        with lock:
            running[person] = running.get(person, 0) + 1
            most[person] = max(most.get(person, 0), running[person])
            fitted.append(person)
        if person == 1:
            bob_started.set()
        else:  # Alice's fit waits for Bob's to start: a global lock would hang it here.
            assert bob_started.wait(10), "another person's fit did not run alongside"
        try:
            return real(x, *args, **kwargs)
        finally:
            with lock:
                running[person] -= 1

    bob_x = np.array([bob.embedding_samples(KEY)[2][0]])
    monkeypatch.setattr(ts.TagModel, "fit", watched)
    errors: list[BaseException] = []

    def ask(wardrobe, item=None):
        try:
            if item is None:
                suggest_tags(wardrobe, KEY, np.zeros((1, DIMS)))
            else:
                suggest_tags_for_item(wardrobe, item, KEY)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    # Six of Alice's requests with the same inputs, two with others (items asking about
    # themselves), and one of Bob's, all at once.
    jobs = [(alice, None)] * 6 + [(alice, "item-00"), (alice, "item-01"), (bob, None)]
    threads = [threading.Thread(target=ask, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(fitted) == [0, 0, 0, 1]  # Alice's three distinct inputs once each, Bob's once
    assert most == {0: 1, 1: 1}


def test_a_person_with_too_many_requests_waiting_is_refused_not_held(database, cold,
                                                                     monkeypatch):
    alice, bob = _two_people(database, 0, 0)
    real = ts.TagModel.fit
    release = threading.Event()
    started = threading.Semaphore(0)

    def held(*args, **kwargs):
        started.release()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(ts.TagModel, "fit", held)
    limit = ts.MAX_QUEUED_FITS
    answers: list[object] = []
    # Each labelled item asking about itself is a fit of its own: one runs, the rest wait.
    threads = [threading.Thread(target=lambda k=k: answers.append(
        suggest_tags_for_item(alice, f"item-{k:02d}", KEY, max_queued=limit)))
        for k in range(limit)]
    for t in threads:
        t.start()
    assert started.acquire(timeout=30)  # the first fit runs; the others wait behind it
    for _ in range(600):  # until all of them are in the queue (at most 30 s)
        if ts._FITTED._people.get((alice.url, alice.user_id), [None, 0])[1] == limit:
            break
        threading.Event().wait(0.05)
    with pytest.raises(BusyError, match=f"{limit} of your requests"):
        suggest_tags_for_item(alice, "item-09", KEY, max_queued=limit)
    # Without the bound (the outfit-photo job, the command line) a request waits its turn, and
    # another person is not refused for Alice's queue.
    monkeypatch.setattr(ts.TagModel, "fit", real)
    assert suggest_tags_for_item(bob, "item-09", KEY, max_queued=limit)
    release.set()
    for t in threads:
        t.join(60)
    assert len(answers) == limit
    assert suggest_tags_for_item(alice, "item-09", KEY, max_queued=limit)  # room again
