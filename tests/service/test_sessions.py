"""Logins end: a password change or a sign-out ends every token issued before it, whichever
device holds it, and a token from before tokens carried a generation is refused. Runs on
SQLite and on PostgreSQL (tests/databases.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from sqlalchemy import delete

from fashionkit.service.auth import Accounts
from fashionkit.wardrobe.database import WardrobeDatabase
from fashionkit.wardrobe.models import UserRow

from .conftest import login


def _token(client, name: str, password: str) -> dict | None:
    response = client.post("/api/token", data={"username": name, "password": password})
    if response.status_code != 200:
        return None
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _me(client, headers: dict) -> int:
    return client.get("/api/me", headers=headers).status_code


def test_a_password_change_ends_every_earlier_token(service):
    laptop = login(service, "alice")
    phone = _token(service, "alice", "correct horse")
    assert _me(service, laptop) == _me(service, phone) == 200

    body = {"current_password": "correct horse", "new_password": "a new one, longer"}
    changed = service.post("/api/me/password", json=body, headers=laptop)
    assert changed.status_code == 200, changed.text
    assert changed.headers["cache-control"] == "no-store"
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}

    # The token that asked, the other device's, and nothing else.
    assert _me(service, laptop) == _me(service, phone) == 401
    assert service.get("/api/items", headers=phone).status_code == 401
    assert _me(service, fresh) == 200
    assert _token(service, "alice", "correct horse") is None
    new_login = _token(service, "alice", "a new one, longer")
    assert new_login is not None and _me(service, new_login) == 200
    assert _me(service, fresh) == 200  # logging in again does not end the other logins


def test_a_wrong_current_password_changes_nothing(service):
    alice = login(service, "alice")
    body = {"current_password": "not the password", "new_password": "a new one, longer"}
    refused = service.post("/api/me/password", json=body, headers=alice)
    assert refused.status_code == 403 and "current password" in refused.json()["detail"]
    assert _me(service, alice) == 200
    assert _token(service, "alice", "correct horse") is not None
    weak = {"current_password": "correct horse", "new_password": "aaaaaaaa"}
    assert service.post("/api/me/password", json=weak, headers=alice).status_code == 422
    assert _me(service, alice) == 200


def test_wrong_current_passwords_are_slowed_as_logins_are(service):
    alice = login(service, "alice")
    body = {"current_password": "not the password", "new_password": "a new one, longer"}
    codes = [
        service.post("/api/me/password", json=body, headers=alice).status_code for _ in range(6)
    ]
    assert codes[:5] == [403] * 5 and codes[5] == 429, codes


def test_signing_out_ends_every_token_and_a_new_login_works(service):
    laptop = login(service, "alice")
    phone = _token(service, "alice", "correct horse")
    bob = login(service, "bob")
    assert service.post("/api/logout", headers=phone).status_code == 204
    assert _me(service, laptop) == _me(service, phone) == 401
    assert service.post("/api/logout", headers=phone).status_code == 401
    assert _me(service, bob) == 200  # another person's logins are theirs
    again = _token(service, "alice", "correct horse")
    assert again is not None and _me(service, again) == 200


def test_a_password_set_on_the_command_line_ends_the_web_tokens(service, db_url):
    alice = login(service, "alice")
    database = WardrobeDatabase(db_url)
    try:
        Accounts(database.engine).set_password("alice", "set from the shell")
    finally:
        database.close()
    assert _me(service, alice) == 401
    assert _token(service, "alice", "set from the shell") is not None


def test_a_deleted_accounts_token_names_nobody(service, db_url):
    alice = login(service, "alice")
    database = WardrobeDatabase(db_url)
    try:
        with database.engine.begin() as connection:
            connection.execute(delete(UserRow).where(UserRow.name == "alice"))
    finally:
        database.close()
    assert _me(service, alice) == 401
    carol = login(service, "carol")  # takes no id of Alice's: her token stays refused
    assert _me(service, carol) == 200 and _me(service, alice) == 401


def test_a_token_without_a_generation_is_refused(service, tmp_path):
    """Tokens signed before they carried a generation (``{"sub", "exp"}``) would outlive any
    password change, so the service no longer accepts them, signature good or not."""
    alice = login(service, "alice")
    user_id = service.get("/api/me", headers=alice).json()["id"]
    secret = (tmp_path / "data" / "service-secret").read_bytes()

    def signed(claims: dict) -> dict:
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        return {"Authorization": f"Bearer {payload}.{signature}"}

    expires = int(time.time()) + 3600
    assert _me(service, signed({"sub": user_id, "gen": 0, "exp": expires})) == 200  # the form
    assert _me(service, signed({"sub": user_id, "exp": expires})) == 401
    assert _me(service, signed({"sub": user_id, "gen": 1, "exp": expires})) == 401
    assert _me(service, signed({"sub": user_id, "gen": "0", "exp": expires})) == 401
    assert _me(service, signed({"sub": user_id, "gen": True, "exp": expires})) == 401
