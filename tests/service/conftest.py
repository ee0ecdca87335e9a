"""Shared fixtures: a service on a fresh database (SQLite, or PostgreSQL: tests/databases.py),
and logged-in clients."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from fashionkit.service import create_app
from tests.databases import fresh_database


def wait_for_job(
    client: TestClient,
    headers: dict,
    job_id: str,
    timeout: float = 30.0,
    *,
    prefix: str = "/api/photos",
) -> dict:
    """The photo job (``prefix="/api/outfit-photos"``: the outfit photo job) once it is done or
    failed; fails the test if it is neither by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{prefix}/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def login(client: TestClient, name: str, password: str = "correct horse") -> dict:
    """Register ``name`` and return the Authorization header of its token."""
    assert client.post("/api/users", json={"name": name, "password": password}).status_code == 201
    response = client.post("/api/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def db_url(tmp_path):
    """SQLite in the test's folder, or a fresh PostgreSQL database (tests/databases.py)."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def service(db_url, tmp_path):
    app = create_app(db_url, tmp_path / "data")
    with TestClient(app) as client:
        yield client


@pytest.fixture
def alice(service):
    return login(service, "alice")


@pytest.fixture
def bob(service):
    return login(service, "bob")
