"""What an attacker's test of the running service tried: uploads phones make, ids that break
routes, account names in another case, and the headers of every answer."""

from __future__ import annotations

import hashlib
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from fashionkit.data.synth import render_image
from fashionkit.service import ServiceSettings, create_app
from fashionkit.service.photos import check_image

from .conftest import login, wait_for_job
from .fakes import TruthPredictor


def _mpo(synth_image: Image.Image) -> bytes:
    """A multi-picture JPEG as phones write it: the photo, then a second (smaller) picture."""
    buffer = io.BytesIO()
    second = synth_image.resize((synth_image.width // 2, synth_image.height // 2))
    synth_image.save(buffer, format="MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def test_multi_picture_jpeg_is_a_jpeg(db_url, tmp_path):
    predictor = TruthPredictor()
    synth = render_image(seed=5, index=0, size=160, max_figures=1)
    data = _mpo(synth.image)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    predictor.truth[hashlib.sha256(data).hexdigest()] = synth.annotations
    checked = check_image(data, max_pixels=160 * 160)
    assert (checked.format, checked.width, checked.height) == ("JPEG", 160, 160)

    app = create_app(
        db_url, tmp_path / "data", predictor=predictor,
        settings=ServiceSettings(max_pixels=400 * 400),
    )  # fmt: skip
    with TestClient(app) as client:
        alice = login(client, "alice")
        response = client.post(
            "/api/photos", files={"file": ("IMG_0001.JPG", data, "image/jpeg")}, headers=alice
        )
        assert response.status_code == 202, response.text
        assert response.json()["format"] == "JPEG"
        job = wait_for_job(client, alice, response.json()["id"])
        assert job["status"] == "done", job
        assert len(job["items"]) == predictor.garments(data) > 0


@pytest.mark.parametrize(
    "item_id", ["x/cutout", "a\\b", "..", "abc\u202egpj", "co\u200bat", "tab\there"]
)
def test_ids_that_would_be_unreachable_are_refused(service, alice, item_id):
    response = service.post("/api/items", json={"id": item_id, "category": "shirt"}, headers=alice)
    assert response.status_code == 422, response.text
    assert repr(item_id) in response.json()["detail"]  # the answer names the id
    assert service.get("/api/items", headers=alice).json() == []
    service.post("/api/items", json={"id": "ok", "category": "shirt"}, headers=alice)
    renamed = service.patch("/api/items/ok", json={"id": item_id}, headers=alice)
    assert renamed.status_code == 422, renamed.text
    assert [i["id"] for i in service.get("/api/items", headers=alice).json()] == ["ok"]


def test_an_encoded_slash_does_not_reach_another_items_cutout(db_url, tmp_path):
    predictor = TruthPredictor()
    app = create_app(
        db_url, tmp_path / "data", predictor=predictor,
        settings=ServiceSettings(max_pixels=400 * 400),
    )  # fmt: skip
    with TestClient(app) as client:
        alice = login(client, "alice")
        job = client.post(
            "/api/photos", files={"file": ("p.png", predictor.photo(0), "image/png")},
            headers=alice,
        ).json()  # fmt: skip
        job = wait_for_job(client, alice, job["id"])
        key = job["items"][0]
        assert client.get(f"/api/items/{key}/cutout", headers=alice).status_code == 200
        for encoded in ("%2F", "%2f", "%5C", "%5c"):
            response = client.get(f"/api/items/{key}{encoded}cutout", headers=alice)
            assert response.status_code == 404, (encoded, response.headers)
            assert response.headers["content-type"] == "application/json"


def test_a_running_server_names_in_any_case_and_its_headers(tmp_path):
    """``fashionkit serve`` as a real process: one account whatever the case of its name, and
    the headers of its answers."""
    import httpx

    from .live import free_port, serve_command, start, stop

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(serve_command(tmp_path, port), port, tmp_path / "server.log")
    try:
        body = {"name": "Dora", "password": "correct horse"}
        assert httpx.post(f"{base}/api/users", json=body).status_code == 201
        body["name"] = "dora"
        assert httpx.post(f"{base}/api/users", json=body).status_code == 409
        token = httpx.post(
            f"{base}/api/token", data={"username": "DORA", "password": "correct horse"}
        )
        assert token.status_code == 200, token.text
        assert token.headers["cache-control"] == "no-store"
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = httpx.get(f"{base}/api/me", headers=headers)
        assert me.json()["name"] == "dora" and me.headers["cache-control"] == "no-store"
        for path in ("/", "/ui.js", "/favicon.svg", "/health", "/api/categories", "/nothing"):
            answer = httpx.get(f"{base}{path}")
            assert answer.headers["x-content-type-options"] == "nosniff", path
        assert httpx.get(f"{base}/api/me").headers["x-content-type-options"] == "nosniff"
        # Swagger UI and ReDoc load their scripts from a CDN: off unless asked for.
        assert httpx.get(f"{base}/docs").status_code == 404
        assert httpx.get(f"{base}/redoc").status_code == 404
        assert httpx.get(f"{base}/openapi.json").status_code == 200
    finally:
        stop(process)


def test_swagger_ui_only_when_asked_for(db_url, tmp_path):
    with TestClient(create_app(db_url, tmp_path / "data", api_docs=True)) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert docs.headers["x-content-type-options"] == "nosniff"


def test_answers_of_middleware_carry_the_headers(service, alice):
    refused = service.get("/api/items/a%2Fb", headers=alice)
    assert refused.status_code == 404
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["cache-control"] == "no-store"
    for path in ("/api/items", "/api/outfits/feedback", "/api/wardrobe/export"):
        answer = service.get(path, headers=alice)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert "no-store" not in service.get("/api/categories").headers.get("cache-control", "")


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1899-12-31"])
def test_days_outside_a_sane_range_are_refused(service, alice, day):
    service.post("/api/items", json={"id": "tee", "category": "top"}, headers=alice)
    worn = service.post(
        "/api/outfits/feedback", json={"items": ["tee"], "kind": "wore", "on": day}, headers=alice
    )
    assert worn.status_code == 422 and day in worn.text and "1900-01-01" in worn.text
    imported = service.post(
        "/api/wardrobe/import", json=[{"id": "coat", "category": "coat", "last_worn": day}],
        headers=alice,
    )  # fmt: skip
    assert imported.status_code == 422 and "last_worn" in imported.text
    fine = service.post(
        "/api/outfits/feedback", json={"items": ["tee"], "kind": "wore", "on": "2020-02-29"},
        headers=alice,
    )  # fmt: skip
    assert fine.status_code == 201, fine.text


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_password_guessing_is_slowed_and_registrations_are_capped(db_url, tmp_path):
    from fashionkit.service.limits import ThrottleRules

    clock = _Clock()
    throttle = ThrottleRules(registrations_per_window=3, clock=clock)
    with TestClient(create_app(db_url, tmp_path / "data", throttle=throttle)) as client:
        login(client, "alice")

        def attempt(password, name="alice"):
            return client.post("/api/token", data={"username": name, "password": password})

        assert [attempt("wrong guess").status_code for _ in range(5)] == [401] * 5
        blocked = attempt("correct horse")  # even the right password waits its turn
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
        assert attempt("wrong guess", name="ALICE").status_code == 429  # one account
        clock.now += 1
        assert attempt("wrong guess").status_code == 401
        blocked = attempt("wrong guess")
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "2"
        clock.now += 2
        assert attempt("correct horse").status_code == 200  # clears the account's count
        assert attempt("wrong guess").status_code == 401

        for k in range(2):  # alice was the first of three
            body = {"name": f"user{k}", "password": "correct horse"}
            assert client.post("/api/users", json=body).status_code == 201
        refused = client.post("/api/users", json={"name": "user9", "password": "correct horse"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        clock.now += 3600
        again = client.post("/api/users", json={"name": "user9", "password": "correct horse"})
        assert again.status_code == 201


def test_guessing_from_one_client_is_slowed_across_accounts(db_url):
    from fashionkit.service.limits import LoginThrottle, ThrottleRules
    from fashionkit.wardrobe.database import WardrobeDatabase

    clock = _Clock()
    with WardrobeDatabase(db_url) as database:
        throttle = LoginThrottle(database, ThrottleRules(clock=clock))
        for k in range(20):
            assert throttle.login_wait(f"n{k}", "10.0.0.1") == 0
            throttle.login_failed(f"n{k}", "10.0.0.1")
        assert throttle.login_wait("someone-else", "10.0.0.1") == 1
        assert throttle.login_wait("someone-else", "10.0.0.2") == 0
        waits = []
        for _ in range(15):
            clock.now += throttle.login_wait("m0", "10.0.0.3")
            throttle.login_failed("m0", "10.0.0.3")
            waits.append(throttle.login_wait("m0", "10.0.0.3"))
        assert waits[:6] == [0, 0, 0, 0, 1, 2] and waits[-1] == 15 * 60
        # A name of any length is one account, and its count is forgotten after a day.
        long_name = "x" * 5000
        for _ in range(5):
            throttle.login_failed(long_name, "10.0.0.4")
        assert throttle.login_wait(long_name, "10.0.0.5") == 1
        assert throttle.login_wait("x" * 4999, "10.0.0.5") == 0
        clock.now += 24 * 3600 + 1
        assert throttle.login_wait(long_name, "10.0.0.5") == 0
        throttle.login_failed("m1", "10.0.0.6")  # deletes the forgotten counts
        from fashionkit.wardrobe.models import ThrottleRow

        with database.sessions() as session:
            keys = set(session.scalars(select(ThrottleRow.key)))
        assert keys == {"account:m1", "client:10.0.0.6"}


def test_two_service_instances_on_one_database_share_the_counts(db_url, tmp_path):
    """Wrong passwords sent alternately to two applications on one database (as two service
    processes) are slowed as if sent to one; registrations are capped over both alike."""
    from fashionkit.service.limits import ThrottleRules

    clock = _Clock()
    rules = ThrottleRules(registrations_per_window=3, clock=clock)
    apps = [create_app(db_url, tmp_path / "data", throttle=rules) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        login(one, "alice")

        def attempt(client, password="wrong guess"):
            return client.post("/api/token", data={"username": "alice", "password": password})

        statuses = [attempt((one, two)[k % 2]).status_code for k in range(5)]
        assert statuses == [401] * 5
        for client in (one, two):  # the sixth waits, in either process
            blocked = attempt(client, "correct horse")
            assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
        clock.now += 1
        assert attempt(two).status_code == 401
        assert attempt(one).headers["retry-after"] == "2"
        clock.now += 2
        assert attempt(one, "correct horse").status_code == 200  # clears it for both
        assert attempt(two, "correct horse").status_code == 200

        body = {"name": "bob", "password": "correct horse"}
        assert two.post("/api/users", json=body).status_code == 201  # alice was the first
        body = {"name": "carol", "password": "correct horse"}
        assert one.post("/api/users", json=body).status_code == 201
        body = {"name": "dave", "password": "correct horse"}
        for client in (one, two):
            assert client.post("/api/users", json=body).status_code == 429


def test_failures_from_many_threads_are_all_counted(db_url):
    """Wrong passwords counted from 8 threads at once (each count a read and a write of one
    row): none is lost, as none would be from several processes."""
    import threading

    from fashionkit.service.limits import LoginThrottle, ThrottleRules
    from fashionkit.wardrobe.database import WardrobeDatabase
    from fashionkit.wardrobe.models import ThrottleRow

    with WardrobeDatabase(db_url) as database:
        throttles = [LoginThrottle(database, ThrottleRules()) for _ in range(8)]
        threads = [
            threading.Thread(
                target=lambda t=t: [t.login_failed("alice", f"10.0.0.{k}") for k in range(5)]
            )
            for t in throttles
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with database.sessions() as session:
            assert session.get(ThrottleRow, "account:alice").failures == 40
            assert session.get(ThrottleRow, "client:10.0.0.3").failures == 8


@pytest.mark.parametrize("password", ["aaaaaaaa", " " * 8, "abababab", "\t" * 12])
def test_easily_guessed_passwords_are_refused(service, password):
    response = service.post("/api/users", json={"name": "alice", "password": password})
    assert response.status_code == 422 and "different characters" in response.text
