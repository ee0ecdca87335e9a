"""Items CRUD, filters, per-person isolation and bad input."""

from __future__ import annotations

import pytest

SHIRT = {
    "id": "white-shirt",
    "category": "shirt, blouse",
    "colors": ["#ffffff"],
    "season": ["summer"],
}
JEANS = {"id": "jeans", "category": "pants", "colors": ["#1f2a44"], "occasion": ["casual"]}


def test_create_get_list_patch_delete(service, alice):
    response = service.post("/api/items", json=SHIRT, headers=alice)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == "white-shirt" and created["category"] == 0
    assert created["category_name"] == "shirt" and created["supercategory"] == "upperbody"
    assert service.get("/api/items/white-shirt", headers=alice).json() == created

    service.post("/api/items", json=JEANS, headers=alice)
    assert [i["id"] for i in service.get("/api/items", headers=alice).json()] == [
        "jeans",
        "white-shirt",
    ]

    patched = service.patch(
        "/api/items/white-shirt", json={"brand": "Acme", "season": None}, headers=alice
    ).json()
    assert patched["brand"] == "Acme" and "season" not in patched

    renamed = service.patch("/api/items/white-shirt", json={"id": "shirt"}, headers=alice)
    assert renamed.status_code == 200 and renamed.json()["id"] == "shirt"
    assert service.get("/api/items/white-shirt", headers=alice).status_code == 404

    assert service.delete("/api/items/shirt", headers=alice).status_code == 204
    assert service.get("/api/items/shirt", headers=alice).status_code == 404
    assert service.delete("/api/items/shirt", headers=alice).status_code == 404


def test_list_filters(service, alice):
    service.post("/api/items", json=SHIRT, headers=alice)
    service.post("/api/items", json=JEANS | {"favorite": True}, headers=alice)

    def ids(**params):
        response = service.get("/api/items", params=params, headers=alice)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()]

    assert ids(category="pants") == ["jeans"]
    assert ids(category="0") == ["white-shirt"]
    assert ids(season="Summer") == ["white-shirt"]
    assert ids(occasion="casual") == ["jeans"]
    assert ids(favorite="true") == ["jeans"]
    assert ids(favorite="false") == ["white-shirt"]
    for bad in ("no such thing", "46", "999"):
        assert service.get("/api/items", params={"category": bad}, headers=alice).status_code == 422


def test_others_items_are_404_and_untouched(service, alice, bob):
    service.post("/api/items", json=SHIRT, headers=alice)
    assert service.get("/api/items", headers=bob).json() == []
    assert service.get("/api/items/white-shirt", headers=bob).status_code == 404
    assert (
        service.patch("/api/items/white-shirt", json={"brand": "x"}, headers=bob).status_code == 404
    )
    assert service.delete("/api/items/white-shirt", headers=bob).status_code == 404
    assert service.get("/api/items/white-shirt/cutout", headers=bob).status_code == 404
    # The same id in two wardrobes is two items.
    assert (
        service.post("/api/items", json=SHIRT | {"brand": "Bob's"}, headers=bob).status_code == 201
    )
    assert "brand" not in service.get("/api/items/white-shirt", headers=alice).json()


def test_duplicate_id_is_409(service, alice):
    service.post("/api/items", json=SHIRT, headers=alice)
    service.post("/api/items", json=JEANS, headers=alice)
    assert service.post("/api/items", json=SHIRT, headers=alice).status_code == 409
    response = service.patch("/api/items/jeans", json={"id": "white-shirt"}, headers=alice)
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"id": "x", "category": "no such thing"}, "no Fashionpedia category"),
        ({"id": "x", "category": 46}, "not a Fashionpedia category"),
        ({"id": "x", "category": "pants", "colors": ["#12"]}, "colors"),
        ({"id": "x", "category": "pants", "season": ["monsoon"]}, "season"),
        ({"id": "x", "category": "pants", "formality": 9}, "formality"),
        ({"id": "x", "category": "pants", "attribute_ids": [100000]}, "attribute_ids"),
        ({"id": "x", "category": "pants", "owner": "bob"}, "unknown field"),
        ({"id": "", "category": "pants"}, "id must be"),
        ({"category": "pants"}, "id must be"),
    ],
)
def test_invalid_item_is_422_naming_the_field(service, alice, body, fragment):
    response = service.post("/api/items", json=body, headers=alice)
    assert response.status_code == 422
    payload = response.json()
    assert any(fragment in p["message"] for p in payload["problems"]), payload


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b'"text"', b"null"])
def test_non_object_bodies_are_4xx(service, alice, raw):
    headers = alice | {"Content-Type": "application/json"}
    response = service.post("/api/items", content=raw, headers=headers)
    assert response.status_code == 422
    service.post("/api/items", json=SHIRT, headers=alice)
    assert service.patch("/api/items/white-shirt", content=raw, headers=headers).status_code == 422


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"colors": ["red-ish"]}, "colors"),
        ({"formality": "high"}, "formality"),
        ({"last_worn": "2026-01-01"}, "read-only"),
        ({"key": "x"}, "read-only"),
    ],
)
def test_invalid_patch_is_422_and_changes_nothing(service, alice, changes, fragment):
    service.post("/api/items", json=SHIRT, headers=alice)
    response = service.patch("/api/items/white-shirt", json=changes, headers=alice)
    assert response.status_code == 422
    assert fragment in str(response.json())
    assert service.get("/api/items/white-shirt", headers=alice).json()["colors"] == ["#ffffff"]


def test_item_without_photo_has_no_cutout(service, alice):
    assert service.post("/api/items", json=SHIRT, headers=alice).json()["cutout_url"] is None
    assert service.get("/api/items", headers=alice).json()[0]["cutout_url"] is None
    assert service.get("/api/items/white-shirt/cutout", headers=alice).status_code == 404


def test_oversized_json_is_413(service, alice):
    body = {"id": "x", "category": "pants", "notes": "n" * (2 * 1024 * 1024)}
    response = service.post("/api/items", json=body, headers=alice)
    assert response.status_code == 413 and "detail" in response.json()


def test_busy_database_is_503_with_retry_after(service, alice, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from fashionkit.wardrobe import Wardrobe

    def locked(self, *args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(Wardrobe, "items", locked)
    response = service.get("/api/items", headers=alice)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_many_users_on_one_engine(tmp_path):
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app

    from .conftest import login

    app = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data")
    with TestClient(app) as client:
        users = [login(client, f"user{k}") for k in range(4)]
        for k, headers in enumerate(users):
            item = {"id": f"item{k}", "category": "pants"}
            assert client.post("/api/items", json=item, headers=headers).status_code == 201
        for k, headers in enumerate(users):  # each sees only their own items
            assert [i["id"] for i in client.get("/api/items", headers=headers).json()] == [
                f"item{k}"
            ]
