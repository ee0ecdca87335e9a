"""Concurrent writes to one wardrobe: every request ends in a defined answer (the write, 404 or
409, never an internal error) and no acknowledged edit is lost. Runs on SQLite, and on
PostgreSQL when ``FASHIONKIT_TEST_POSTGRES`` is set (tests/databases.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest

from fashionkit.errors import ConflictError, NotFoundError
from fashionkit.wardrobe import WardrobeItem
from fashionkit.wardrobe.database import WardrobeDatabase
from tests.databases import fresh_database

TRIALS = 8


@pytest.fixture
def database(tmp_path):
    with fresh_database(tmp_path) as url, WardrobeDatabase(url) as db:
        yield db


def at_once(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` in threads released together; each result is the value returned or the
    exception raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = calls[i]()
        except Exception as err:  # noqa: BLE001 - the outcome is what the test checks
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a concurrent call did not finish"
    return results


def outcome(result: object) -> str:
    if isinstance(result, ConflictError):
        return "conflict"
    if isinstance(result, NotFoundError):
        return "not found"
    if isinstance(result, Exception):
        raise AssertionError(f"unexpected {type(result).__name__}: {result}") from result
    return "ok"


def shirt(key: str) -> WardrobeItem:
    return WardrobeItem(id=key, category_id=1, name=key)


def test_two_creates_of_one_id_one_wins_one_conflicts(database):
    wardrobe = database.wardrobe("alice")
    for trial in range(TRIALS):
        key = f"s{trial}"
        add = partial(wardrobe.add, shirt(key))
        results = at_once(add, add)
        assert sorted(map(outcome, results)) == ["conflict", "ok"]
    assert len(wardrobe) == TRIALS


def test_two_renames_to_one_id_one_wins_one_conflicts(database):
    wardrobe = database.wardrobe("alice")
    for trial in range(TRIALS):
        wardrobe.add(shirt(f"a{trial}"))
        wardrobe.add(shirt(f"b{trial}"))
        results = at_once(
            partial(wardrobe.update, f"a{trial}", id=f"new{trial}"),
            partial(wardrobe.update, f"b{trial}", id=f"new{trial}"),
        )
        assert sorted(map(outcome, results)) == ["conflict", "ok"]
    assert len(wardrobe) == 2 * TRIALS


def test_edits_feedback_and_reads_during_a_delete_answer_404_or_succeed(database):
    wardrobe = database.wardrobe("alice")
    wardrobe.add(shirt("keep"))
    for trial in range(TRIALS):
        key = f"d{trial}"
        wardrobe.add(shirt(key))
        results = at_once(
            partial(wardrobe.remove, key),
            partial(wardrobe.update, key, notes="edited"),
            partial(wardrobe.record_feedback, [key, "keep"], "wore"),
            partial(wardrobe.cutout_path, key),
            partial(wardrobe.remove, key),
        )
        outcomes = [outcome(r) for r in results]
        assert outcomes.count("ok") >= 1 and "conflict" not in outcomes
        assert sorted([outcomes[0], outcomes[4]]) == ["not found", "ok"]
        with pytest.raises(NotFoundError):
            wardrobe.get(key)
    wardrobe.feedback()  # feedback whose items are gone still reads


def test_concurrent_edits_of_different_fields_all_land(database):
    wardrobe = database.wardrobe("alice")
    changes = [{"notes": "n"}, {"brand": "b"}, {"material": "wool"}, {"favorite": True}]
    for trial in range(TRIALS):
        key = f"e{trial}"
        wardrobe.add(shirt(key))
        results = at_once(*[partial(wardrobe.update, key, **c) for c in changes])
        assert [outcome(r) for r in results] == ["ok"] * len(changes)
        item = wardrobe.get(key)
        assert (item.notes, item.brand, item.material, item.favorite) == ("n", "b", "wool", True)


def test_a_running_server_answers_concurrent_requests_without_500s(tmp_path):
    """The same races as HTTP requests to ``fashionkit serve``: 201/409 for two creates,
    every concurrent PATCH lands, 204/404 for edits racing a delete."""
    import httpx

    from .live import free_port, serve_command, start, stop

    port = free_port()
    with fresh_database(tmp_path, "served") as url:
        command = serve_command(tmp_path, port)
        command[command.index("--db") + 1] = url
        server = start(command, port, tmp_path / "server.log")
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as http:
                login = {"name": "alice", "password": "correct horse"}
                assert http.post("/api/users", json=login).status_code == 201
                token = http.post(
                    "/api/token", data={"username": "alice", "password": "correct horse"}
                ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                for trial in range(TRIALS // 2):
                    body = {"id": f"s{trial}", "category": "shirt, blouse"}
                    post = partial(http.post, "/api/items", json=body)
                    codes = [r.status_code for r in at_once(post, post)]
                    assert sorted(codes) == [201, 409]
                    key = f"s{trial}"
                    fields = [{"notes": "n"}, {"brand": "b"}, {"material": "wool"},
                              {"favorite": True}]  # fmt: skip
                    patches = [partial(http.patch, f"/api/items/{key}", json=f) for f in fields]
                    assert [r.status_code for r in at_once(*patches)] == [200] * 4
                    item = http.get(f"/api/items/{key}").json()
                    assert (item["notes"], item["brand"], item["material"], item["favorite"]) == (
                        "n", "b", "wool", True
                    )  # fmt: skip
                    racing = at_once(
                        partial(http.delete, f"/api/items/{key}"),
                        partial(http.patch, f"/api/items/{key}", json={"notes": "late"}),
                        partial(http.post, "/api/outfits/feedback",
                                json={"items": [key], "kind": "like"}),  # fmt: skip
                        partial(http.get, f"/api/items/{key}/cutout"),
                    )
                    codes = [r.status_code for r in racing]
                    assert codes[0] == 204 and all(c < 500 for c in codes), codes
        finally:
            stop(server)
        assert "Traceback" not in (tmp_path / "server.log").read_text()
