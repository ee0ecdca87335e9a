"""Outfit suggestions and feedback through the service equal the library's own answers."""

from __future__ import annotations

import datetime as dt

import pytest

from fashionkit.outfits import Conditions, suggest_for_wardrobe
from fashionkit.wardrobe import Wardrobe

WARDROBE = [
    {"id": "white-shirt", "category": "shirt, blouse", "colors": ["#ffffff"]},
    {"id": "blue-tee", "category": "top, t-shirt, sweatshirt", "colors": ["#3060c0"]},
    {"id": "jeans", "category": "pants", "colors": ["#1f2a44"]},
    {"id": "khakis", "category": "pants", "colors": ["#c3b091"]},
    {"id": "black-shoes", "category": "shoe", "colors": ["#111111"]},
    {"id": "coat", "category": "coat", "colors": ["#4a4a4a"], "season": ["winter"]},
]


@pytest.fixture
def stocked(service, alice):
    for item in WARDROBE:
        assert service.post("/api/items", json=item, headers=alice).status_code == 201
    return alice


def _library(db_url, conditions, k=10):
    with Wardrobe(
        db_url,
        user="alice",
        apply_migrations=False,
    ) as wardrobe:
        return [o.to_json() for o in suggest_for_wardrobe(wardrobe, conditions, k=k)]


def test_suggestions_equal_the_library(service, stocked, db_url):
    params = {"season": "winter", "temperature": 5, "n": 4}
    response = service.get("/api/outfits", params=params, headers=stocked)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got == _library(db_url, Conditions(season="winter", temperature=5), k=4)
    assert got and all("coat" in o["items"] and o["explanation"] for o in got)


def test_with_builds_around_items(service, stocked):
    response = service.get(
        "/api/outfits", params=[("with", "khakis"), ("with", "blue-tee")], headers=stocked
    )
    assert response.status_code == 200
    assert response.json()
    assert all({"khakis", "blue-tee"} <= set(o["items"]) for o in response.json())


def test_feedback_changes_suggestions_like_the_library(service, stocked, db_url):
    body = {"items": ["blue-tee", "khakis", "black-shoes"], "kind": "dislike"}
    response = service.post("/api/outfits/feedback", json=body, headers=stocked)
    assert response.status_code == 201 and isinstance(response.json()["outfit_id"], int)
    events = service.get("/api/outfits/feedback", headers=stocked).json()
    assert [(e["items"], e["kind"]) for e in events] == [
        (["black-shoes", "blue-tee", "khakis"], "dislike")
    ]
    got = service.get("/api/outfits", params={"n": 3}, headers=stocked).json()
    assert got == _library(db_url, Conditions(), k=3)


def test_wore_logs_the_day(service, stocked):
    body = {"items": ["white-shirt", "jeans"], "kind": "wore", "on": "2026-11-20"}
    assert service.post("/api/outfits/feedback", json=body, headers=stocked).status_code == 201
    item = service.get("/api/items/jeans", headers=stocked).json()
    assert item["last_worn"] == dt.date(2026, 11, 20).isoformat()


@pytest.mark.parametrize(
    "params",
    [
        {"season": "monsoon"},
        {"temperature": "warm"},
        {"temperature": 1000},
        {"n": 0},
        {"n": 10000},
        {"formality": 7},
    ],
)
def test_bad_conditions_are_422(service, stocked, params):
    response = service.get("/api/outfits", params=params, headers=stocked)
    assert response.status_code == 422
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"items": ["jeans"], "kind": "love"},
        {"items": [], "kind": "like"},
        {"items": ["jeans"], "kind": "wore", "on": "yesterday"},
        {"kind": "like"},
    ],
)
def test_bad_feedback_is_422(service, stocked, body):
    assert service.post("/api/outfits/feedback", json=body, headers=stocked).status_code == 422


def test_outfits_and_feedback_are_private(service, stocked, bob):
    assert service.get("/api/outfits", params={"with": "jeans"}, headers=bob).status_code == 404
    body = {"items": ["jeans", "white-shirt"], "kind": "like"}
    assert service.post("/api/outfits/feedback", json=body, headers=bob).status_code == 404
    service.post("/api/outfits/feedback", json=body, headers=stocked)
    assert service.get("/api/outfits/feedback", headers=bob).json() == []
    assert service.get("/api/outfits", headers=bob).json() == []


def test_unknown_locked_item_is_404(service, stocked):
    response = service.get("/api/outfits", params={"with": "nope"}, headers=stocked)
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_locks_no_outfit_can_hold_are_refused(service, alice):
    for key, category in (("shirt-a", "shirt"), ("top-b", "top")):
        body = {"id": key, "category": category}
        assert service.post("/api/items", json=body, headers=alice).status_code == 201
    response = service.get(
        "/api/outfits", params=[("with", "shirt-a"), ("with", "top-b")], headers=alice
    )
    assert response.status_code == 422 and "one top per outfit" in response.json()["detail"]
