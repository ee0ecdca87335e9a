"""One person's bulk work against the others: lists come in pages, a wardrobe holds at most
``max_items``, imports are stored in batches, and an invalid import answers with a short
error naming its records. Runs on SQLite and PostgreSQL (tests/databases.py)."""

from __future__ import annotations

import json
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from fashionkit.service import ServiceSettings, create_app
from fashionkit.service.deps import DEFAULT_PAGE, MAX_PAGE

from .conftest import login


def _items(n: int, prefix: str = "item", **extra) -> list[dict]:
    return [{"id": f"{prefix}-{i:04d}", "category": "shirt", **extra} for i in range(n)]


def _import(client, headers, items, **params):
    return client.post(
        "/api/wardrobe/import", content=json.dumps({"items": items}), headers=headers,
        params=params,
    )  # fmt: skip


@pytest.fixture
def limited(db_url, tmp_path):
    settings = ServiceSettings(max_items=30, import_batch=7)
    with TestClient(create_app(db_url, tmp_path / "data", settings=settings)) as client:
        yield client


def _follow(client, headers, path: str) -> tuple[list[dict], int]:
    """Every entry of a list by its Link headers, and how many pages it took."""
    entries, pages, url = [], 0, path
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        entries.extend(page)
        pages += 1
        total = int(response.headers["x-total-count"])
        link = response.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
        assert len(page) <= 10 and (link is None) == (len(entries) == total)
    return entries, pages


def test_lists_come_in_pages_that_add_up_to_the_whole(service, alice):
    assert _import(service, alice, _items(25) + _items(4, "fav", favorite=True)).status_code == 200
    first = service.get("/api/items", params={"limit": 10}, headers=alice)
    assert [i["id"] for i in first.json()] == [f"fav-{i:04d}" for i in range(4)] + [
        f"item-{i:04d}" for i in range(6)
    ]
    assert first.headers["x-total-count"] == "29"
    assert first.headers["link"] == '</api/items?limit=10&offset=10>; rel="next"'
    entries, pages = _follow(service, alice, "/api/items?limit=10")
    assert pages == 3 and len(entries) == 29 == len({i["id"] for i in entries})
    # Filters page the same way, in the database (category, favourite) or not (season).
    favourites, _ = _follow(service, alice, "/api/items?limit=3&favorite=true")
    assert [i["id"] for i in favourites] == [f"fav-{i:04d}" for i in range(4)]
    shirts = service.get("/api/items", params={"category": "shirt", "offset": 28}, headers=alice)
    assert len(shirts.json()) == 1 and "link" not in shirts.headers
    assert _follow(service, alice, "/api/items?limit=10&season=winter")[0] == []
    for bad in ({"limit": MAX_PAGE + 1}, {"limit": 0}, {"offset": -1}):
        assert service.get("/api/items", params=bad, headers=alice).status_code == 422


def test_a_list_without_a_limit_is_one_default_page(db_url, tmp_path):
    settings = ServiceSettings(import_batch=100)
    with TestClient(create_app(db_url, tmp_path / "data", settings=settings)) as client:
        alice = login(client, "alice")
        assert _import(client, alice, _items(DEFAULT_PAGE + 5)).status_code == 200
        listed = client.get("/api/items", headers=alice)
        assert len(listed.json()) == DEFAULT_PAGE
        assert listed.headers["x-total-count"] == str(DEFAULT_PAGE + 5)
        rest = client.get("/api/items", params={"offset": DEFAULT_PAGE}, headers=alice).json()
        assert len(rest) == 5


def test_feedback_comes_in_pages(service, alice):
    assert _import(service, alice, _items(3)).status_code == 200
    for kind in ("like", "dislike", "wore", "like"):
        body = {"items": ["item-0000", "item-0001"], "kind": kind}
        assert service.post("/api/outfits/feedback", json=body, headers=alice).status_code == 201
    page = service.get("/api/outfits/feedback", params={"limit": 3}, headers=alice)
    assert [e["kind"] for e in page.json()] == ["like", "dislike", "wore"]
    assert page.headers["x-total-count"] == "4" and "offset=3" in page.headers["link"]
    rest = service.get("/api/outfits/feedback", params={"offset": 3}, headers=alice).json()
    assert [e["kind"] for e in rest] == ["like"]


def test_a_wardrobe_holds_at_most_max_items(limited):
    alice, bob = login(limited, "alice"), login(limited, "bob")
    assert _import(limited, alice, _items(30)).json() == {"imported": 30}
    one_more = limited.post("/api/items", json={"id": "extra", "category": "coat"}, headers=alice)
    assert one_more.status_code == 422 and "at most 30 items" in one_more.json()["detail"]
    # Replacing items already there adds none; one new one among them is refused, whole.
    assert _import(limited, alice, _items(30, brand="Acme")).json() == {"imported": 30}
    refused = _import(limited, alice, _items(30) + [{"id": "new", "category": "coat"}])
    assert refused.status_code == 422 and "would add 1" in refused.json()["detail"]
    assert limited.get("/api/items/new", headers=alice).status_code == 404
    assert limited.get("/api/items", headers=alice).headers["x-total-count"] == "30"
    # Another person's wardrobe is theirs to fill.
    assert limited.post("/api/items", json={"id": "x", "category": "coat"}, headers=bob).status_code == 201
    # Room again once some are removed.
    assert limited.delete("/api/items/item-0000", headers=alice).status_code == 204
    again = limited.post("/api/items", json={"id": "extra", "category": "coat"}, headers=alice)
    assert again.status_code == 201


def test_creates_at_once_for_the_last_room_stop_at_max_items(limited):
    """Four creates at once with room for two: the count is made in each write's transaction,
    so two answer 201 and two 422, and the wardrobe holds its most items, not more."""
    from .test_races import at_once

    alice = login(limited, "alice")
    assert _import(limited, alice, _items(28)).json() == {"imported": 28}
    posts = [
        partial(limited.post, "/api/items", json={"id": f"new-{i}", "category": "coat"},
                headers=alice)
        for i in range(4)
    ]  # fmt: skip
    answers = at_once(*posts)
    assert sorted(a.status_code for a in answers) == [201, 201, 422, 422]
    refused = [a.json()["detail"] for a in answers if a.status_code == 422]
    assert all("at most 30 items; this one has 30" in d for d in refused), refused
    assert limited.get("/api/items", headers=alice).headers["x-total-count"] == "30"


def test_an_import_is_stored_in_batches(limited):
    """30 items in batches of 7: five write transactions, not one, so that others' writes
    are not held up for the whole import."""
    alice = login(limited, "alice")
    engine = limited.app.state.service.database.engine
    commits: list[int] = []

    def count(_connection) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        assert _import(limited, alice, _items(30)).json() == {"imported": 30}
    finally:
        event.remove(engine, "commit", count)
    assert len(commits) >= 5
    assert limited.get("/api/items", headers=alice).headers["x-total-count"] == "30"
    # replace=false and a taken id: refused before any batch is written.
    carol = login(limited, "carol")
    assert _import(limited, carol, _items(20)).status_code == 200
    refused = _import(limited, carol, _items(8, "late") + _items(1), replace="false")
    assert refused.status_code == 409 and "nothing was imported" in refused.json()["detail"]
    assert "'item-0000'" in refused.json()["detail"]
    assert limited.get("/api/items/late-0000", headers=carol).status_code == 404


def test_an_invalid_import_answers_briefly_naming_its_records(service, alice):
    """1.1 MB of invalid items (the attacker's case answered 3.6 MB): the answer lists the
    first problems, each naming its item, and counts the rest."""
    bad = [{"id": f"bad-{i:05d}", "category": "no such category " + "x" * 150} for i in range(5000)]
    bad[3]["id"] = "y" * 100_000  # an id far too long, named in short
    body = json.dumps({"items": bad})
    assert len(body) > 1_000_000
    response = service.post("/api/wardrobe/import", content=body, headers=alice)
    assert response.status_code == 422
    assert len(response.content) < 20_000, len(response.content)
    answer = response.json()
    assert len(answer["problems"]) == 20 and answer["more_problems"] > 4900
    assert answer["problems"][0]["where"] == "item 0 (id 'bad-00000')"
    assert all(len(p["where"]) <= 300 and len(p["message"]) <= 300 for p in answer["problems"])
    assert "item 3" in json.dumps(answer["problems"])
    assert service.get("/api/items", headers=alice).json() == []
