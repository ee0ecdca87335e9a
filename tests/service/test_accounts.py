"""Registration, login, tokens and the password KDF."""

from __future__ import annotations

import hashlib

import pytest

from fashionkit.service.auth import TokenSigner, hash_password, verify_password

from .conftest import login


def test_health_needs_no_login(service):
    response = service.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "detection": False}


def test_register_login_and_me(service):
    headers = login(service, "alice")
    assert service.get("/api/me", headers=headers).json()["name"] == "alice"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "alice", "password": "short"},
        {"name": "../etc", "password": "long enough"},
        {"name": "", "password": "long enough"},
        {"name": "a" * 65, "password": "long enough"},
        {"name": "alice"},
        {"name": 5, "password": "long enough"},
    ],
)
def test_bad_registration_is_422(service, body):
    response = service.post("/api/users", json=body)
    assert response.status_code == 422
    assert "detail" in response.json()


def test_taken_name_is_409(service):
    login(service, "alice")
    response = service.post("/api/users", json={"name": "alice", "password": "other password"})
    assert response.status_code == 409 and "taken" in response.json()["detail"]


def test_name_of_a_cli_wardrobe_cannot_be_claimed(tmp_path):
    """A wardrobe made with the CLI (a users row without an account) is not handed to whoever
    registers its name first."""
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app
    from fashionkit.wardrobe import Wardrobe, WardrobeItem

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    with Wardrobe(url, user="carol", image_dir=tmp_path / "img") as wardrobe:
        wardrobe.add(WardrobeItem(id="coat", category_id=9))
    with TestClient(create_app(url, tmp_path / "data")) as client:
        response = client.post("/api/users", json={"name": "carol", "password": "long enough"})
        assert response.status_code == 409


@pytest.mark.parametrize("name, password", [("alice", "wrong password"), ("nobody", "x" * 10)])
def test_wrong_credentials_are_401(service, name, password):
    login(service, "alice")
    response = service.post("/api/token", data={"username": name, "password": password})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer a.b"}, {"X": "y"}],
)
def test_routes_need_a_valid_token(service, headers):
    for method, path in [
        ("get", "/api/items"),
        ("get", "/api/items/x"),
        ("get", "/api/outfits"),
        ("get", "/api/wardrobe/export"),
        ("get", "/api/photos"),
        ("get", "/api/me"),
    ]:
        assert getattr(service, method)(path, headers=headers).status_code == 401


def test_token_of_another_service_secret_is_rejected(service, tmp_path):
    login(service, "alice")
    forged = TokenSigner(b"another secret of 32 bytes......", 3600).issue(1)
    response = service.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_token_expiry_and_tampering():
    signer = TokenSigner(b"k" * 32, ttl_s=60)
    token = signer.issue(7, now=1000.0)
    assert signer.check(token, now=1059.0) == 7
    assert signer.check(token, now=1061.0) is None
    payload, signature = token.split(".")
    other = TokenSigner(b"k" * 32, ttl_s=60).issue(8, now=1000.0).split(".")[0]
    assert signer.check(f"{other}.{signature}", now=1000.0) is None
    assert signer.check(f"{payload}.{signature[:-2]}", now=1000.0) is None
    assert signer.check("", now=1000.0) is None


def test_secret_file_persists_and_is_private(tmp_path):
    first = TokenSigner.from_file(tmp_path / "secret", 60)
    second = TokenSigner.from_file(tmp_path / "secret", 60)
    assert second.check(first.issue(3)) == 3
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_password_hash_is_salted_scrypt():
    stored = hash_password("correct horse")
    scheme, n, r, p, _salt, _key = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert hash_password("correct horse") != stored  # a fresh salt every time
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert not verify_password("correct horse", "md5$whatever")
    assert not verify_password("correct horse", "garbage")


def test_password_hash_matches_hashlib_scrypt_directly():
    import base64

    stored = hash_password("pw")
    _, n, r, p, salt, key = stored.split("$")

    def unb64(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    expected = hashlib.scrypt(
        b"pw", salt=unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=64 << 20, dklen=32
    )
    assert unb64(key) == expected


def test_names_are_one_account_whatever_their_case(service):
    created = service.post("/api/users", json={"name": "Alice", "password": "correct horse"})
    assert created.status_code == 201 and created.json()["name"] == "alice"
    for other in ("alice", "ALICE", "aLiCe"):
        again = service.post("/api/users", json={"name": other, "password": "other password"})
        assert again.status_code == 409, (other, again.text)
    ids = set()
    for typed in ("alice", "ALICE", "Alice"):
        token = service.post("/api/token", data={"username": typed, "password": "correct horse"})
        assert token.status_code == 200, (typed, token.text)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        ids.add(service.get("/api/me", headers=headers).json()["id"])
    assert ids == {created.json()["id"]}


def test_a_cli_wardrobe_in_another_case_cannot_be_claimed(tmp_path):
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app
    from fashionkit.wardrobe import Wardrobe, WardrobeItem

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    with Wardrobe(url, user="Carol", image_dir=tmp_path / "img") as wardrobe:
        wardrobe.add(WardrobeItem(id="coat", category_id=9))
    with TestClient(create_app(url, tmp_path / "data")) as client:
        response = client.post("/api/users", json={"name": "carol", "password": "long enough"})
        assert response.status_code == 409 and "command line" in response.json()["detail"]


def test_cli_password_for_a_name_in_another_case_is_that_account(tmp_path):
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app
    from fashionkit.service.auth import Accounts
    from fashionkit.wardrobe.database import WardrobeDatabase

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    with TestClient(create_app(url, tmp_path / "data")) as client:
        registered = client.post("/api/users", json={"name": "erin", "password": "first one!"})
        database = WardrobeDatabase(url)
        try:
            changed = Accounts(database.engine).set_password("Erin", "second one")
        finally:
            database.close()
        assert changed.user_id == registered.json()["id"]
        token = client.post("/api/token", data={"username": "ERIN", "password": "second one"})
        assert token.status_code == 200
