"""Arbitrary JSON to the item and outfit routes: always an answer, never a server error."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fashionkit.service import create_app
from fashionkit.wardrobe.items import EDITABLE_FIELDS

from .conftest import login

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_values = st.one_of(
    _json,
    st.sampled_from(["pants", "shirt, blouse", "#ffffff", "winter", "0", "45", "46", "-1"]),
    # Strings that have broken it: unicode digits (isdigit but not int), NUL, over-long.
    st.sampled_from(["²", "١", "a\x00b", "x" * 201, "b" * 101]),
    st.lists(st.sampled_from(["#fff", "red", "summer", "monsoon", "work"]), max_size=3),
    st.integers(min_value=-2, max_value=400),
)
_items = st.dictionaries(
    st.sampled_from(["id", "last_worn", "key", "owner", *EDITABLE_FIELDS]), _values, max_size=8
)


def _client(tmp: Path) -> tuple[TestClient, dict]:
    client = TestClient(create_app(f"sqlite:///{tmp / 'w.sqlite'}", tmp / "data"))
    client.__enter__()
    headers = login(client, "alice")
    client.post("/api/items", json={"id": "base", "category": "pants"}, headers=headers)
    return client, headers


_tmp = tempfile.TemporaryDirectory()
_state: dict = {}


def _service():
    if not _state:
        _state["client"], _state["headers"] = _client(Path(_tmp.name))
    return _state["client"], _state["headers"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_items | _json)
def test_item_routes_never_fail_on_bad_json(body):
    client, headers = _service()
    created = client.post("/api/items", json=body, headers=headers)
    assert created.status_code in (201, 409, 422), created.text
    patched = client.patch("/api/items/base", json=body, headers=headers)
    assert patched.status_code in (200, 404, 409, 422), patched.text
    if patched.status_code == 200:  # renamed or changed: put the base item back
        client.delete(f"/api/items/{patched.json()['id']}", headers=headers)
        client.post("/api/items", json={"id": "base", "category": "pants"}, headers=headers)


@settings(max_examples=150, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(["season", "temperature", "occasion", "formality", "with", "n", "outer"]),
        st.text(max_size=12) | st.integers(-100, 100).map(str),
        max_size=5,
    ),
    feedback=_json,
)
def test_outfit_routes_never_fail_on_bad_input(params, feedback):
    client, headers = _service()
    response = client.get("/api/outfits", params=params, headers=headers)
    assert response.status_code in (200, 404, 422), response.text
    response = client.post("/api/outfits/feedback", json=feedback, headers=headers)
    assert response.status_code in (201, 404, 422), response.text


def test_non_standard_json_numbers_are_4xx():
    client, headers = _service()
    headers = headers | {"Content-Type": "application/json"}
    for raw in (b'{"id": Infinity, "category": "pants"}', b'{"id": "n", "category": NaN}'):
        assert client.post("/api/items", content=raw, headers=headers).status_code == 422
        assert client.patch("/api/items/base", content=raw, headers=headers).status_code == 422
    raw = b'{"items": ["base"], "kind": NaN}'
    assert client.post("/api/outfits/feedback", content=raw, headers=headers).status_code == 422


def test_non_finite_temperature_is_422():
    client, headers = _service()
    for value in ("nan", "inf", "-inf", "NaN"):
        response = client.get("/api/outfits", params={"temperature": value}, headers=headers)
        assert response.status_code == 422, (value, response.text)
