"""Wardrobe export and import through the service."""

from __future__ import annotations

import json

from fashionkit.service import ServiceSettings

ITEMS = [
    {"id": "jeans", "category": "pants", "colors": ["#1f2a44"], "brand": "Acme"},
    {"id": "tee", "category": 1, "season": ["summer"], "last_worn": "2026-11-01"},
]


def test_export_then_import_into_another_wardrobe(service, alice, bob):
    response = service.post("/api/wardrobe/import", json={"items": ITEMS}, headers=alice)
    assert response.status_code == 200 and response.json() == {"imported": 2}
    exported = service.get("/api/wardrobe/export", headers=alice)
    assert exported.status_code == 200
    payload = exported.json()
    assert payload["format"] == "fashionkit-wardrobe" and len(payload["items"]) == 2

    assert service.get("/api/wardrobe/export", headers=bob).json()["items"] == []
    assert service.post("/api/wardrobe/import", content=exported.content, headers=bob).json() == {
        "imported": 2
    }
    assert service.get("/api/wardrobe/export", headers=bob).json() == payload
    assert service.get("/api/items/tee", headers=bob).json()["last_worn"] == "2026-11-01"


def test_invalid_import_stores_nothing_and_hides_server_paths(service, alice, tmp_path):
    bad = {"items": [ITEMS[0], {"id": "x", "category": "nope"}, {"id": "jeans", "category": 6}]}
    response = service.post("/api/wardrobe/import", json=bad, headers=alice)
    assert response.status_code == 422
    payload = response.json()
    assert {p["where"] for p in payload["problems"]} == {"item 1 (id 'x')", "item 2 (id 'jeans')"}
    assert str(tmp_path) not in json.dumps(payload)
    assert service.get("/api/items", headers=alice).json() == []


def test_import_without_replace_refuses_taken_ids(service, alice):
    service.post("/api/wardrobe/import", json={"items": ITEMS}, headers=alice)
    response = service.post(
        "/api/wardrobe/import", params={"replace": "false"}, json={"items": ITEMS}, headers=alice
    )
    assert response.status_code == 409


def test_import_garbage_is_4xx(service, alice):
    for raw in (b"not json at all", b"\xff\xfe\x00garbage", b"42", b'{"format": "other"}'):
        response = service.post("/api/wardrobe/import", content=raw, headers=alice)
        assert response.status_code == 422, (raw, response.text)


def test_import_is_capped(tmp_path):
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app

    from .conftest import login

    settings = ServiceSettings(max_import_bytes=1000)
    app = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data", settings=settings)
    with TestClient(app) as client:
        headers = login(client, "alice")
        big = json.dumps({"items": ITEMS * 20}).encode()
        assert client.post("/api/wardrobe/import", content=big, headers=headers).status_code == 413
