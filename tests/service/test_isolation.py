"""Every route: one person never reads or changes another's data, and bad input is never a 500.

The route tables below must name every route of the app (a test checks it), so a new route
cannot be added without saying how it keeps people apart.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from fashionkit.service import create_app

from .conftest import login, wait_for_job
from .fakes import TruthPredictor, tiny_embedder

# Routes that hold no one's data.
PUBLIC = {
    ("GET", "/"), ("GET", "/ui.js"), ("GET", "/favicon.svg"), ("GET", "/health"),
    ("GET", "/api/categories"), ("POST", "/api/users"), ("POST", "/api/token"),
}  # fmt: skip
HAND = [
    {"id": "white-shirt", "category": "shirt", "colors": ["#ffffff"], "brand": "Alice's"},
    {"id": "jeans", "category": "pants", "colors": ["#1f2a44"]},
    {"id": "loafers", "category": "shoe", "colors": ["#5a3a22"]},
    {"id": "alices-boots", "category": "shoe", "colors": ["#222222"]},  # no one else's id
]


@pytest.fixture
def world(db_url, tmp_path):
    """Alice with hand-entered items, a detected photo, an outfit photo and feedback; Bob
    with one item."""
    predictor = TruthPredictor()
    # A base to teach from, never read: nobody here has the photos teaching needs.
    app = create_app(db_url, tmp_path / "data", predictor=predictor, embedder=tiny_embedder(),
                     teach_base=tmp_path / "base.pt")
    with TestClient(app, raise_server_exceptions=False) as client:
        alice, bob = login(client, "alice"), login(client, "bob")
        for item in HAND:
            assert client.post("/api/items", json=item, headers=alice).status_code == 201
        photo = predictor.photo(0)
        files = {"file": ("p.png", photo, "image/png")}
        job = wait_for_job(
            client, alice, client.post("/api/photos", files=files, headers=alice).json()["id"]
        )
        assert job["status"] == "done" and job["items"]
        for key in job["items"]:  # her tags, which her outfit photo's offers are suggested
            assert client.patch(f"/api/items/{key}", json={"brand": "Alice's"},
                                headers=alice).status_code == 200  # fmt: skip
        outfit_photo = predictor.outfit(0, 1)
        files = {"file": ("o.png", outfit_photo, "image/png")}
        outfit = wait_for_job(
            client, alice,
            client.post("/api/outfit-photos", files=files, headers=alice).json()["id"],
            prefix="/api/outfit-photos",
        )  # fmt: skip
        assert outfit["status"] == "done" and outfit["new"]
        assert outfit["new"][0]["suggested_tags"]["brand"]["value"] == "Alice's"
        body = {"items": ["white-shirt", "jeans", "loafers"], "kind": "like"}
        assert client.post("/api/outfits/feedback", json=body, headers=alice).status_code == 201
        assert client.post("/api/items", json={"id": "bobs-tee", "category": "top"}, headers=bob)
        model_job = _alices_model(app)
        yield {
            "client": client, "app": app, "alice": alice, "bob": bob, "job": job,
            "photo": photo, "detected": job["items"][0], "outfit": outfit,
            "outfit_photo": outfit_photo, "model_job": model_job,
        }  # fmt: skip


def _alices_model(app) -> str:
    """Alice's own model (version 1, in use) and a teaching job of hers still running; the
    job's id."""
    from fashionkit.personal.models import PersonalModels
    from fashionkit.wardrobe.models import ModelJobRow

    state = app.state.service
    wardrobe = state.database.wardrobe("alice")
    models = PersonalModels(wardrobe, state.models_dir)
    path = models.new_file()
    path.write_bytes(b"Alice's model")
    models.register(path, base="base.pt", photos=1, minutes=1.0, steps=1)
    job_id = "c" * 32
    with state.database.sessions.begin() as session:
        session.add(ModelJobRow(id=job_id, user_id=wardrobe.user_id, state="running",
                                progress=0.5, cancel_requested=False, minutes=5.0))
    return job_id


def _snapshot(client, headers) -> dict:
    return {
        "export": client.get("/api/wardrobe/export", headers=headers).json(),
        "feedback": client.get("/api/outfits/feedback", headers=headers).json(),
        "photos": client.get("/api/photos", headers=headers).json(),
        "outfit_photos": client.get("/api/outfit-photos", headers=headers).json(),
        "items": client.get("/api/items", headers=headers).json(),
    }


def _same_as_unknown(response, unknown) -> None:
    """Another person's id answers exactly as an id nobody has (404, same wording)."""
    assert response.status_code == unknown.status_code == 404
    assert response.json().keys() == unknown.json().keys() == {"detail"}


def _bob_ids(client, bob) -> set[str]:
    return {i["id"] for i in client.get("/api/items", headers=bob).json()}


def check_me(w):
    me = w["client"].get("/api/me", headers=w["bob"]).json()
    assert me["name"] == "bob"


def check_create_item(w):
    c = w["client"]
    # The same id as one of Alice's: a separate item in Bob's wardrobe.
    body = {"id": "white-shirt", "category": "top", "brand": "Bob's"}
    assert c.post("/api/items", json=body, headers=w["bob"]).status_code == 201
    assert c.get("/api/items/white-shirt", headers=w["alice"]).json()["brand"] == "Alice's"


def check_list_items(w):
    c = w["client"]
    listed = c.get("/api/items", headers=w["bob"]).json()
    assert w["detected"] not in {i["id"] for i in listed}
    assert all(i.get("brand") != "Alice's" for i in listed)
    for params in ({"category": "pants"}, {"season": "summer"}, {"occasion": "work"}):
        assert all(
            i["id"] in _bob_ids(c, w["bob"])
            for i in c.get("/api/items", params=params, headers=w["bob"]).json()
        )


def _item_route(method, suffix=""):
    def check(w):
        c = w["client"]
        kwargs = {"json": {"brand": "stolen"}} if method == "PATCH" else {}
        theirs = c.request(
            method, f"/api/items/{w['detected']}{suffix}", headers=w["bob"], **kwargs
        )
        unknown = c.request(
            method, f"/api/items/nobody-has-this{suffix}", headers=w["bob"], **kwargs
        )
        _same_as_unknown(theirs, unknown)

    return check


def check_merge(w):
    c = w["client"]
    # Alice's item into Bob's, and Bob's into Alice's: both as an item nobody has.
    for keep, drop in ((w["detected"], "bobs-tee"), ("bobs-tee", w["detected"])):
        theirs = c.post(f"/api/items/{keep}/merge", json={"drop": drop}, headers=w["bob"])
        unknown = c.post(f"/api/items/{keep.replace(w['detected'], 'nobody-has-this')}/merge",
                         json={"drop": drop.replace(w["detected"], "nobody-has-this")},
                         headers=w["bob"])  # fmt: skip
        _same_as_unknown(theirs, unknown)
    assert "bobs-tee" in _bob_ids(c, w["bob"])


def check_outfits(w):
    c = w["client"]
    theirs = c.get("/api/outfits", params={"with": w["detected"]}, headers=w["bob"])
    unknown = c.get("/api/outfits", params={"with": "nobody-has-this"}, headers=w["bob"])
    _same_as_unknown(theirs, unknown)
    mine = _bob_ids(c, w["bob"])
    for outfit in c.get("/api/outfits", headers=w["bob"]).json():
        assert set(outfit["items"]) <= mine


def check_give_feedback(w):
    c = w["client"]
    body = {"items": [w["detected"], "jeans"], "kind": "dislike"}
    theirs = c.post("/api/outfits/feedback", json=body, headers=w["bob"])
    assert theirs.status_code == 404 and w["detected"] in theirs.json()["detail"]


def check_list_feedback(w):
    assert w["client"].get("/api/outfits/feedback", headers=w["bob"]).json() == []


def check_import(w):
    c = w["client"]
    body = {"items": [{"id": "jeans", "category": "skirt"}, {"id": "loafers", "category": 1}]}
    assert c.post("/api/wardrobe/import", json=body, headers=w["bob"]).json() == {"imported": 2}
    assert c.get("/api/items/jeans", headers=w["alice"]).json()["category_name"] == "pants"


def check_export(w):
    c = w["client"]
    exported = c.get("/api/wardrobe/export", headers=w["bob"]).json()
    assert {i["id"] for i in exported["items"]} == _bob_ids(c, w["bob"])
    assert all(i.get("brand") != "Alice's" for i in exported["items"])


def check_upload(w):
    c = w["client"]
    # The same photo: Bob gets his own job and items; Alice cannot see his job.
    files = {"file": ("p.png", w["photo"], "image/png")}
    job = wait_for_job(c, w["bob"], c.post("/api/photos", files=files, headers=w["bob"]).json()["id"])
    assert job["status"] == "done" and not job["skipped"] and job["id"] != w["job"]["id"]
    assert set(job["items"]) <= _bob_ids(c, w["bob"])
    unknown = c.get(f"/api/photos/{'0' * 32}", headers=w["alice"])
    _same_as_unknown(c.get(f"/api/photos/{job['id']}", headers=w["alice"]), unknown)


def check_list_photos(w):
    c = w["client"]
    assert w["job"]["id"] not in {j["id"] for j in c.get("/api/photos", headers=w["bob"]).json()}


def _photo_route(suffix=""):
    def check(w):
        c = w["client"]
        theirs = c.get(f"/api/photos/{w['job']['id']}{suffix}", headers=w["bob"])
        unknown = c.get(f"/api/photos/{'0' * 32}{suffix}", headers=w["bob"])
        _same_as_unknown(theirs, unknown)

    return check


def check_upload_outfit(w):
    c = w["client"]
    # Alice's outfit photo: Bob's job recognises only Bob's items (her embeddings are hers
    # alone; his come from the photo he uploaded above), and Alice cannot see his job.
    files = {"file": ("o.png", w["outfit_photo"], "image/png")}
    posted = c.post("/api/outfit-photos", files=files, headers=w["bob"]).json()
    job = wait_for_job(c, w["bob"], posted["id"], prefix="/api/outfit-photos")
    assert job["status"] == "done" and job["id"] != w["outfit"]["id"]
    # (Bob's items of that photo have the ids Alice's have: the wears his job logged are his,
    # as the snapshot of Alice's items, wears included, shows at the end.)
    assert {r["item"] for r in job["recognised"]} <= _bob_ids(c, w["bob"])
    # Suggested from his items alone: none of his embedded items has a brand.
    assert job["new"] and all("brand" not in o["suggested_tags"] for o in job["new"])
    unknown = c.get(f"/api/outfit-photos/{'0' * 32}", headers=w["alice"])
    _same_as_unknown(c.get(f"/api/outfit-photos/{job['id']}", headers=w["alice"]), unknown)


def check_list_outfit_photos(w):
    c = w["client"]
    listed = c.get("/api/outfit-photos", headers=w["bob"]).json()
    assert w["outfit"]["id"] not in {j["id"] for j in listed}


def _outfit_route(method, suffix=""):
    def check(w):
        c = w["client"]
        theirs = c.request(method, f"/api/outfit-photos/{w['outfit']['id']}{suffix}",
                           headers=w["bob"])  # fmt: skip
        unknown = c.request(method, f"/api/outfit-photos/{'0' * 32}{suffix}", headers=w["bob"])
        _same_as_unknown(theirs, unknown)

    return check


def check_offer_is(w):
    c = w["client"]
    # Alice's offer, named as Bob's item: as unknown. Bob's own offer named as Alice's item
    # (an id only she has): 404 naming the item, and nothing of hers changes.
    _outfit_route("POST", "/new/0/is/bobs-tee")(w)
    bobs = c.get("/api/outfit-photos", headers=w["bob"]).json()
    offered = [j for j in bobs if j["status"] == "done" and j["new"]]
    assert offered, "Bob's outfit photo (check_upload_outfit) offers new garments"
    theirs = c.post(offered[0]["new"][0]["is_url"] + "alices-boots", headers=w["bob"])
    assert theirs.status_code == 404 and "alices-boots" in theirs.json()["detail"]


def check_change_password(w):
    c = w["client"]
    body = {"current_password": "correct horse", "new_password": "bobs new password"}
    changed = c.post("/api/me/password", json=body, headers=w["bob"])
    assert changed.status_code == 200, changed.text
    w["bob"] = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    # Bob's change ends Bob's tokens only: Alice's token and password still work.
    assert c.get("/api/me", headers=w["alice"]).json()["name"] == "alice"
    assert login_ok(c, "alice", "correct horse") and not login_ok(c, "alice", "bobs new password")


def check_logout(w):
    c = w["client"]
    assert c.post("/api/logout", headers=w["bob"]).status_code == 204
    assert c.get("/api/me", headers=w["bob"]).status_code == 401
    assert c.get("/api/me", headers=w["alice"]).json()["name"] == "alice"


def _alices_model_in_use(w) -> None:
    model = w["client"].get("/api/model", headers=w["alice"]).json()
    assert model["active"]["version"] == 1 and [j["id"] for j in model["jobs"]] == [w["model_job"]]
    assert model["jobs"][0]["cancel_requested"] is False


def check_model(w):
    model = w["client"].get("/api/model", headers=w["bob"]).json()
    assert model["active"] is None and model["versions"] == [] and model["jobs"] == []


def check_teach(w):
    # Alice's running job does not stop Bob; his own photos (none) do.
    taught = w["client"].post("/api/model/teach", headers=w["bob"])
    assert taught.status_code == 422 and "photos" in taught.json()["detail"]
    _alices_model_in_use(w)


def _model_job_route(method):
    def check(w):
        c = w["client"]
        theirs = c.request(method, f"/api/model/jobs/{w['model_job']}", headers=w["bob"])
        _same_as_unknown(theirs, c.request(method, f"/api/model/jobs/{'0' * 32}", headers=w["bob"]))
        _alices_model_in_use(w)

    return check


def check_model_rollback(w):
    rolled = w["client"].post("/api/model/rollback", headers=w["bob"])
    assert rolled.status_code == 409
    _alices_model_in_use(w)


def check_model_use(w):
    c = w["client"]
    _same_as_unknown(c.post("/api/model/use/1", headers=w["bob"]),
                     c.post("/api/model/use/99", headers=w["bob"]))
    assert c.get("/api/model", headers=w["bob"]).json()["active"] is None
    _alices_model_in_use(w)


# In this order: the last two end Bob's tokens.
ISOLATION = {
    ("GET", "/api/me"): check_me,
    ("POST", "/api/items"): check_create_item,
    ("GET", "/api/items"): check_list_items,
    ("GET", "/api/items/{item_id}"): _item_route("GET"),
    ("PATCH", "/api/items/{item_id}"): _item_route("PATCH"),
    ("DELETE", "/api/items/{item_id}"): _item_route("DELETE"),
    ("GET", "/api/items/{item_id}/cutout"): _item_route("GET", "/cutout"),
    ("GET", "/api/items/{item_id}/suggested-tags"): _item_route("GET", "/suggested-tags"),
    ("POST", "/api/items/{item_id}/merge"): check_merge,
    ("GET", "/api/outfits"): check_outfits,
    ("POST", "/api/outfits/feedback"): check_give_feedback,
    ("GET", "/api/outfits/feedback"): check_list_feedback,
    ("POST", "/api/wardrobe/import"): check_import,
    ("GET", "/api/wardrobe/export"): check_export,
    ("POST", "/api/photos"): check_upload,
    ("GET", "/api/photos"): check_list_photos,
    ("GET", "/api/photos/{job_id}"): _photo_route(),
    ("GET", "/api/photos/{job_id}/overlay.png"): _photo_route("/overlay.png"),
    ("GET", "/api/photos/{job_id}/supercategories.png"): _photo_route("/supercategories.png"),
    ("POST", "/api/outfit-photos"): check_upload_outfit,
    ("GET", "/api/outfit-photos"): check_list_outfit_photos,
    ("GET", "/api/outfit-photos/{job_id}"): _outfit_route("GET"),
    ("GET", "/api/outfit-photos/{job_id}/overlay.png"): _outfit_route("GET", "/overlay.png"),
    ("GET", "/api/outfit-photos/{job_id}/new/{index}/cutout"): _outfit_route(
        "GET", "/new/0/cutout"
    ),
    ("POST", "/api/outfit-photos/{job_id}/new/{index}"): _outfit_route("POST", "/new/0"),
    ("POST", "/api/outfit-photos/{job_id}/new/{index}/is/{item_id}"): check_offer_is,
    ("GET", "/api/model"): check_model,
    ("POST", "/api/model/teach"): check_teach,
    ("GET", "/api/model/jobs/{job_id}"): _model_job_route("GET"),
    ("DELETE", "/api/model/jobs/{job_id}"): _model_job_route("DELETE"),
    ("POST", "/api/model/rollback"): check_model_rollback,
    ("POST", "/api/model/use/{version}"): check_model_use,
    ("POST", "/api/me/password"): check_change_password,
    ("POST", "/api/logout"): check_logout,
}


def _routes(app) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_every_route_is_in_a_table():
    app = create_app("sqlite://", "/nonexistent-not-created-until-start")
    assert _routes(app) == PUBLIC | set(ISOLATION), "name each new route in PUBLIC or ISOLATION"
    assert not PUBLIC & set(ISOLATION)


def test_no_route_reaches_anothers_data(world):
    client, alice = world["client"], world["alice"]
    before = _snapshot(client, alice)
    for route, check in ISOLATION.items():
        try:
            check(world)
        except AssertionError as err:
            raise AssertionError(f"{route}: {err}") from err
    assert _snapshot(client, alice) == before
    cutout = client.get(f"/api/items/{world['detected']}/cutout", headers=alice)
    assert cutout.status_code == 200
    # Alice's offers are still hers to take.
    offer = world["outfit"]["new"][0]
    assert client.post(offer["accept_url"], headers=alice).status_code == 201


def _concrete(path: str, value: str = "x") -> str:
    return (path.replace("{item_id}", value).replace("{job_id}", value)
            .replace("{index}", value).replace("{version}", value))


def test_private_routes_need_a_valid_token(world):
    client = world["client"]
    for method, path in ISOLATION:
        for headers in ({}, {"Authorization": "Bearer forged.token"}, {"Authorization": "Basic x"}):
            response = client.request(method, _concrete(path), headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"


# Path values and bodies that have broken services: unicode digits, NUL, traversal, very long
# ids, JSON nested past Python's recursion limit, numbers past its int conversion limit.
HOSTILE_PATHS = ["²", "%00", "..%2F..%2Fw.sqlite", "x" * 5000, "%F0%9F%91%97", "-1", "0" * 32]
HOSTILE_BODIES = [
    b"",
    b"\xff\xfe\x00garbage",
    b"[" * 200_000 + b"]" * 200_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"9" * 5000,
    b'{"id": "x\\u0000", "category": "\\u00b2", "items": ["\\u0000"], "kind": "like"}',
    b'{"id": 1e999, "category": NaN, "colors": [1e999], "formality": -1e999}',
    b'{"name": "a", "password": "' + b"p" * 1000 + b'"}',
]
HOSTILE_QUERIES = [
    {"category": "²"}, {"season": "\x00"}, {"temperature": "1e999"}, {"n": "9" * 5000},
    {"with": ["x"] * 11}, {"favorite": "perhaps"}, {"replace": "²"}, {"occasion": "x" * 5000},
]  # fmt: skip


def _signed_in_again(client, headers: dict, path: str) -> dict:
    """A fresh token after a sign-out, so that the next hostile request is authenticated."""
    if path != "/api/logout":
        return headers
    token = client.post("/api/token", data={"username": "alice", "password": "correct horse"})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_bad_input_on_every_route_is_never_a_500(world):
    client, alice = world["client"], world["alice"]
    routes = sorted(PUBLIC | set(ISOLATION))
    seen = 0
    for method, path in routes:
        values = HOSTILE_PATHS if "{" in path else [None]
        for value in values:
            url = _concrete(path, value) if value is not None else path
            for body in HOSTILE_BODIES if method in ("POST", "PATCH") else [None]:
                for content_type in ("application/json", "multipart/form-data; boundary=b"):
                    headers = alice | {"Content-Type": content_type}
                    response = client.request(method, url, content=body, headers=headers)
                    assert response.status_code < 500, (
                        method,
                        url,
                        body and body[:40],
                        response.text,
                    )
                    seen += 1
                    alice = _signed_in_again(client, alice, path)
            for params in HOSTILE_QUERIES:
                response = client.request(method, url, params=params, headers=alice)
                assert response.status_code < 500, (method, url, params, response.text)
                seen += 1
                alice = _signed_in_again(client, alice, path)
    assert seen > 500
    # Nothing of that reached Alice's data.
    assert client.get("/api/items/white-shirt", headers=alice).json()["brand"] == "Alice's"


def test_a_web_accounts_wardrobe_opens_on_the_command_line_only_with_its_password(
    db_url, tmp_path, monkeypatch
):
    """``default`` registered on the page: the CLI's default ``--user`` must not add to or read
    that account's wardrobe, nor replace its password, without the account's password."""
    from typer.testing import CliRunner

    from fashionkit.cli import app as cli

    monkeypatch.delenv("FASHIONKIT_PASSWORD", raising=False)

    def run(*args: str, password: str | None = None, input: str | None = None):
        env = {"FASHIONKIT_PASSWORD": password} if password is not None else {}
        return CliRunner().invoke(cli, ["wardrobe", *args, "--db", db_url], input=input, env=env)

    with TestClient(create_app(db_url, tmp_path / "data")) as client:
        owner = login(client, "default")
        refused = run("add", "--id", "planted", "--category", "shirt")
        assert refused.exit_code == 2 and "belongs to the web service" in refused.output
        wrong = run("add", "--id", "planted", "--category", "shirt", password="not it at all")
        assert wrong.exit_code == 2 and "wrong password" in wrong.output
        assert run("list").exit_code == 2
        takeover = run("password", "--password-stdin", input="a new password\n")
        assert takeover.exit_code == 2
        assert client.get("/api/items", headers=owner).json() == []
        assert login_ok(client, "default", "correct horse")

        added = run("add", "--id", "mine", "--category", "shirt", password="correct horse")
        assert added.exit_code == 0, added.output
        assert [i["id"] for i in client.get("/api/items", headers=owner).json()] == ["mine"]
        # A wardrobe without a login still opens as before.
        assert run("add", "--id", "x", "--category", "shirt", "--user", "cli-only").exit_code == 0


def login_ok(client: TestClient, name: str, password: str) -> bool:
    response = client.post("/api/token", data={"username": name, "password": password})
    return response.status_code == 200
