""""Today's outfit" through the service: an upload recognises the person's items (a real
embedder on a tiny random-weight detector; detections are the synthetic world's ground truth)
and logs their wears, offers the other garments, and an offer accepted becomes an item."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from fastapi.testclient import TestClient

from fashionkit.service import create_app

from .conftest import login, wait_for_job
from .fakes import TruthPredictor, tiny_embedder

DAY = "2026-11-20"


@pytest.fixture
def predictor():
    return TruthPredictor()


@pytest.fixture
def client(db_url, tmp_path, predictor):
    app = create_app(db_url, tmp_path / "data", predictor=predictor, embedder=tiny_embedder())
    with TestClient(app) as client:
        yield client


def _photo(client, headers, data) -> dict:
    job = client.post("/api/photos", files={"file": ("p.png", data, "image/png")},
                      headers=headers).json()  # fmt: skip
    return wait_for_job(client, headers, job["id"])


def _outfit(client, headers, data, on=DAY):
    fields = {"on": on} if on is not None else {}
    return client.post("/api/outfit-photos", files={"file": ("o.png", data, "image/png")},
                       data=fields, headers=headers)  # fmt: skip


def _done(client, headers, response) -> dict:
    assert response.status_code == 202, response.text
    return wait_for_job(client, headers, response.json()["id"], prefix="/api/outfit-photos")


def test_outfit_photo_logs_wears_and_offers_new_items(client, predictor):
    alice = login(client, "alice")
    mine = _photo(client, alice, predictor.photo(0))["items"]
    _photo(client, alice, predictor.photo(2))
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    assert job["status"] == "done", job
    assert job["kind"] == "outfit" and job["worn_on"] == DAY
    recognised = [r["item"] for r in job["recognised"]]
    # Photo 0's garments, beside others in this photo: each of them is found again.
    assert sorted(recognised) == sorted(mine)
    assert sorted(job["logged"]) == sorted(recognised)
    assert all(0.5 < r["similarity"] <= 1.0001 for r in job["recognised"])
    assert len(job["new"]) >= predictor.garments(predictor.photo(1))
    assert all("stored" not in offer and offer["added"] is None for offer in job["new"])
    assert client.get(job["overlay_url"], headers=alice).headers["content-type"] == "image/png"
    items = {i["id"]: i for i in client.get("/api/items", headers=alice).json()}
    for key, item in items.items():
        worn = key in recognised
        assert item["times_worn"] == (1 if worn else 0), key
        assert item["last_worn"] == (DAY if worn else None)

    offer = job["new"][0]
    cutout = client.get(offer["cutout_url"], headers=alice)
    assert cutout.status_code == 200 and cutout.content[:8] == b"\x89PNG\r\n\x1a\n"
    added = client.post(offer["accept_url"], headers=alice)
    assert added.status_code == 201, added.text
    item = added.json()
    assert item["id"] == offer["id"] and item["category_name"] == offer["category_name"]
    assert item["times_worn"] == 1 and item["last_worn"] == DAY and item["cutout_url"]
    again = client.post(offer["accept_url"], headers=alice)
    assert again.status_code == 409 and offer["id"] in again.json()["detail"]
    shown = client.get(job["url"], headers=alice).json()
    assert shown["new"][0]["added"] == offer["id"]
    assert [o["added"] for o in shown["new"][1:]] == [None] * (len(shown["new"]) - 1)
    # Kept apart from photo uploads.
    assert client.get(f"/api/photos/{job['id']}", headers=alice).status_code == 404
    assert job["id"] not in {j["id"] for j in client.get("/api/photos", headers=alice).json()}
    assert [j["id"] for j in client.get("/api/outfit-photos", headers=alice).json()] == [
        job["id"]
    ]
    # The accepted item is recognised in the next outfit photo.
    next_day = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1), "2026-11-21"))
    assert offer["id"] in {r["item"] for r in next_day["recognised"]}


def test_nothing_to_recognise_by_fails_the_job_with_a_reason(client, predictor):
    bob = login(client, "bob")
    assert client.post("/api/items", json={"id": "tee", "category": "top"}, headers=bob)
    job = _done(client, bob, _outfit(client, bob, predictor.outfit(0), on=None))
    assert job["status"] == "failed" and "add items from photos" in job["error"]


def test_bad_days_and_missing_files_are_422(client, predictor):
    alice = login(client, "alice")
    for day in ("yesterday", "2026-13-01", "1800-01-01", "²"):
        response = _outfit(client, alice, predictor.outfit(0), on=day)
        assert response.status_code == 422, (day, response.text)
    assert client.post("/api/outfit-photos", data={"on": DAY}, headers=alice).status_code == 422
    unknown = client.post(f"/api/outfit-photos/{'0' * 32}/new/0", headers=alice)
    assert unknown.status_code == 404
    for index in ("-1", "1e3", "²", "99999"):
        response = client.post(f"/api/outfit-photos/{'0' * 32}/new/{index}", headers=alice)
        assert response.status_code == 404


def test_without_an_embedder_outfit_photos_answer_503(db_url, tmp_path):
    predictor = TruthPredictor()
    app = create_app(db_url, tmp_path / "data", predictor=predictor)
    with TestClient(app) as client:
        alice = login(client, "alice")
        response = _outfit(client, alice, predictor.outfit(0))
        assert response.status_code == 503 and "recognising" in response.json()["detail"]
        # Photos still work, their items stored without embeddings.
        assert _photo(client, alice, predictor.photo(0))["status"] == "done"


def test_suggestions_take_the_wear_log_settings(client):
    alice = login(client, "alice")
    for item in ({"id": "a-shirt", "category": "shirt", "colors": ["#ffffff"]},
                 {"id": "b-shirt", "category": "shirt", "colors": ["#ffffff"]},
                 {"id": "jeans", "category": "pants", "colors": ["#1f2a44"],
                  "last_worn": "2026-11-19"}):  # fmt: skip
        assert client.post("/api/items", json=item, headers=alice).status_code == 201
    state = client.app.state.service
    state.wardrobe_for(state.accounts.authenticate("alice", "correct horse").user_id).record_wears(
        ["a-shirt"], on=dt.date(2026, 11, 20)
    )
    params = {"today": "2026-11-24", "n": 1}
    assert "a-shirt" in client.get("/api/outfits", params=params, headers=alice).json()[0]["items"]
    favoured = client.get("/api/outfits", params=params | {"favour_rarely_worn": "true"},
                          headers=alice).json()[0]  # fmt: skip
    assert "b-shirt" in favoured["items"] and "white shirt never worn" in favoured["explanation"]
    rested = client.get("/api/outfits", params=params | {"not_worn_days": 7}, headers=alice)
    assert rested.json() == []  # the jeans were worn 5 days ago: no bottom left
    assert client.get("/api/outfits", params={"not_worn_days": -1}, headers=alice).status_code == 422


def test_items_embedded_by_another_model_are_embedded_again(db_url, tmp_path, predictor):
    """The server's model changed since the items were added: the outfit job embeds them with
    the new one first (their stored vectors of the old model cannot be compared)."""
    app = create_app(db_url, tmp_path / "data", predictor=predictor, embedder=tiny_embedder())
    with TestClient(app) as client:
        alice = login(client, "alice")
        mine = _photo(client, alice, predictor.photo(0))["items"]
        state = client.app.state.service
        wardrobe = state.wardrobe_for(state.accounts.authenticate("alice", "correct horse").user_id)
        keys, vectors = wardrobe.embeddings(tiny_embedder().key)
        with wardrobe.database.writing() as session:  # as if another model had embedded them
            from fashionkit.wardrobe.models import ItemEmbeddingRow

            for row in session.query(ItemEmbeddingRow):
                row.embedder = "an-older-model"
        assert wardrobe.embedders() == {"an-older-model": len(mine)}
        job = _done(client, alice, _outfit(client, alice, predictor.photo(0)))
        assert job["status"] == "done", job
        again, revectors = wardrobe.embeddings(tiny_embedder().key)
        assert again == keys and abs(revectors - vectors).max() < 1e-4


def test_an_offer_said_to_be_my_item_logs_it_and_teaches_its_view(client, predictor):
    alice = login(client, "alice")
    mine = _photo(client, alice, predictor.photo(0))["items"]
    _photo(client, alice, predictor.photo(2))
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    recognised = {r["item"] for r in job["recognised"]}
    missed = [k for k in mine if k not in recognised]
    offer = job["new"][0]
    target = missed[0] if missed else mine[0]
    said = client.post(offer["is_url"] + target, headers=alice)
    assert said.status_code == 200, said.text
    assert said.json()["id"] == target and said.json()["last_worn"] == DAY
    assert client.get(job["url"], headers=alice).json()["new"][0]["added"] == target
    again = client.post(offer["is_url"] + target, headers=alice)
    assert again.status_code == 409
    assert client.post(offer["accept_url"], headers=alice).status_code == 409
    unknown = client.post(job["new"][1]["is_url"] + "nobody-has-this", headers=alice)
    assert unknown.status_code == 404
    state = client.app.state.service
    wardrobe = state.wardrobe_for(state.accounts.authenticate("alice", "correct horse").user_id)
    keys, sources, _ = wardrobe.embedding_samples(tiny_embedder().key)
    views = {k for k, s in zip(keys, sources, strict=True) if s}
    assert target in views  # the offer's view of it, kept for next time


def test_an_offer_said_to_be_my_item_of_another_category_is_recognised_next_time(
    client, predictor
):
    # The detector called the garment one thing, the person says it is their item of another
    # category (a jacket they filed as a coat): next time the detector calls it the same, and
    # it is that item.
    alice = login(client, "alice")
    _photo(client, alice, predictor.photo(0))
    elsewhere = _photo(client, alice, predictor.photo(2))["items"]  # not in the outfit
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    offer = job["new"][0]
    category = {k: client.get(f"/api/items/{k}", headers=alice).json()["category"]
                for k in elsewhere}  # fmt: skip
    target = next(k for k in elsewhere if category[k] != offer["category_id"])
    assert client.post(offer["is_url"] + target, headers=alice).status_code == 200
    next_day = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1), "2026-11-21"))
    # The garment the offer was, seen under the detector's category, is now the item.
    seen = {(r["item"], r["category_id"]) for r in next_day["recognised"]}
    assert (target, offer["category_id"]) in seen, seen


def test_an_item_whose_category_i_corrected_is_still_recognised(client, predictor):
    alice = login(client, "alice")
    mine = _photo(client, alice, predictor.photo(0))["items"]
    before = client.get(f"/api/items/{mine[0]}", headers=alice).json()["category"]
    corrected = 9 if before != 9 else 4  # coat, or jacket
    edit = client.patch(f"/api/items/{mine[0]}", json={"category": corrected}, headers=alice)
    assert edit.status_code == 200, edit.text
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    # Found where the detector sees it as before: under the category it was added with.
    assert (mine[0], before) in {(r["item"], r["category_id"]) for r in job["recognised"]}
    assert client.get(f"/api/items/{mine[0]}", headers=alice).json()["category"] == corrected


def test_offers_carry_suggested_tags_from_my_items_and_accept_confirmed_ones(client, predictor):
    alice = login(client, "alice")
    mine = _photo(client, alice, predictor.photo(0))["items"]
    mine += _photo(client, alice, predictor.photo(2))["items"]
    for n, key in enumerate(mine):
        tags = {"brand": "acme", "occasion": ["work", "dinner"], "trend": "classic" if n < 2 else None}
        assert client.patch(f"/api/items/{key}", json=tags, headers=alice).status_code == 200
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    assert job["status"] == "done" and job["new"], job
    for offer in job["new"]:
        suggested = offer["suggested_tags"]
        # Every item says acme and work+dinner: "your usual", right every time so far. Only
        # two say a trend: too few to suggest one.
        assert suggested["brand"] == {"value": "acme", "confidence": 1.0, "source": "prior"}
        assert suggested["occasion"]["value"] == ["dinner", "work"]
        assert "trend" not in suggested
        assert all(s["source"] in ("learned", "prior") and 0 < s["confidence"] <= 1
                   for s in suggested.values())  # fmt: skip

    first, second = job["new"][0], job["new"][1]
    for bad in ({"tags": {"colour": "red"}}, {"tags": {"brand": 5}}, {"tags": ["brand"]},
                {"brand": "acme"}, {"tags": {"season": ["monsoon"]}}):  # fmt: skip
        refused = client.post(first["accept_url"], json=bad, headers=alice)
        assert refused.status_code == 422, (bad, refused.text)
    assert client.get(job["url"], headers=alice).json()["new"][0]["added"] is None
    confirmed = {"brand": "acme", "occasion": ["work", "dinner"], "material": None,
                 "season": ["winter"]}  # fmt: skip
    added = client.post(first["accept_url"], json={"tags": confirmed}, headers=alice)
    assert added.status_code == 201, added.text
    item = added.json()
    assert item["brand"] == "acme" and item["occasion"] == ["work", "dinner"]
    assert item["season"] == ["winter"] and "material" not in item
    # Without a body, as before: the item as detected.
    plain = client.post(second["accept_url"], headers=alice).json()
    assert "brand" not in plain and "occasion" not in plain

    # An existing item's suggestions, learned from the others.
    shown = client.get(f"/api/items/{mine[0]}/suggested-tags", headers=alice)
    assert shown.status_code == 200, shown.text
    assert shown.json()["item"] == mine[0]
    assert shown.json()["suggested_tags"]["brand"]["value"] == "acme"
    # While as many of Alice's requests for suggestions as she may have are computed, one that
    # would fit is refused at once (429), and one whose model is kept is still answered.
    import fashionkit.personal.tag_suggestions as ts

    state = client.app.state.service
    wardrobe = state.wardrobe_for(state.accounts.authenticate("alice", "correct horse").user_id)
    person = (wardrobe.url, wardrobe.user_id)
    ts._FITTED._people[person] = [threading.Lock(), ts.MAX_QUEUED_FITS]
    try:
        busy = client.get(f"/api/items/{mine[1]}/suggested-tags", headers=alice)
        kept = client.get(f"/api/items/{mine[0]}/suggested-tags", headers=alice)
    finally:
        del ts._FITTED._people[person]
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "10", busy.text
    assert "being computed" in busy.json()["detail"]
    assert kept.status_code == 200 and kept.json() == shown.json()
    assert client.get(f"/api/items/{mine[1]}/suggested-tags", headers=alice).status_code == 200
    assert client.post("/api/items", json={"id": "by-hand", "category": "top"}, headers=alice)
    by_hand = client.get("/api/items/by-hand/suggested-tags", headers=alice)
    assert by_hand.status_code == 422 and "by-hand" in by_hand.text
    assert client.get("/api/items/nobody/suggested-tags", headers=alice).status_code == 404


def test_a_person_with_no_labelled_items_gets_no_suggestions(client, predictor):
    alice = login(client, "alice")
    _photo(client, alice, predictor.photo(0))
    _photo(client, alice, predictor.photo(2))
    job = _done(client, alice, _outfit(client, alice, predictor.outfit(0, 1)))
    assert job["status"] == "done" and job["new"]
    for offer in job["new"]:
        # Detected items carry only what their attributes gave (material, season), never a
        # brand, trend or occasion: nothing of those to learn.
        assert not {"brand", "trend", "occasion"} & set(offer["suggested_tags"])
