"""The service's /api/model routes: teach in the background with progress, the version in use,
cancel, rollback, use; 409/422/503; and each person's model and jobs are theirs alone."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from fashionkit.service import ServiceSettings, create_app
from tests.service.conftest import login, wait_for_job
from tests.service.fakes import TruthPredictor

SETTINGS = ServiceSettings(teach_minutes=1.0, teach_min_photos=3, teach_max_steps=2)


@pytest.fixture
def predictor():
    return TruthPredictor()


@pytest.fixture
def service(tmp_path, tiny_base, predictor):
    app = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data",
                     predictor=predictor, settings=SETTINGS, teach_base=tiny_base)
    with TestClient(app) as client:
        yield client


def _upload(client, headers, predictor, photos: int) -> None:
    for index in range(photos):
        files = {"file": ("p.png", predictor.photo(index, size=96), "image/png")}
        job = client.post("/api/photos", headers=headers, files=files).json()
        assert wait_for_job(client, headers, job["id"])["status"] == "done"


def wait_for_model_job(client, headers, job_id: str, timeout: float = 240.0) -> list[dict]:
    """Every distinct state of the job until it ends (done, failed or cancelled)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/model/jobs/{job_id}", headers=headers).json()
        if not seen or job != seen[-1]:
            seen.append(job)
        if job["state"] in ("done", "failed", "cancelled"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"model job {job_id} did not end: {seen[-1]}")


def test_teach_rollback_use_and_isolation(service, predictor):
    alice, bob = login(service, "alice"), login(service, "bob")
    status = service.get("/api/model", headers=alice).json()
    assert status["active"] is None and status["versions"] == [] and status["can_teach"]
    assert (status["photos"], status["min_photos"]) == (0, 3)
    too_few = service.post("/api/model/teach", headers=alice)
    assert too_few.status_code == 422 and "at least 3 photos" in too_few.json()["detail"]

    _upload(service, alice, predictor, 3)
    started = service.post("/api/model/teach", headers=alice)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running") and job["minutes"] == 1.0
    again = service.post("/api/model/teach", headers=alice)
    assert again.status_code == 409 and "already being taught" in again.json()["detail"]

    # Bob can neither see nor cancel Alice's job, and has no model of his own.
    assert service.get(f"/api/model/jobs/{job['id']}", headers=bob).status_code == 404
    assert service.delete(f"/api/model/jobs/{job['id']}", headers=bob).status_code == 404

    states = wait_for_model_job(service, alice, job["id"])
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    done = states[-1]
    assert done["state"] == "done", done
    assert done["version"] == 1 and done["progress"] == 1.0 and done["finished_at"]

    status = service.get("/api/model", headers=alice).json()
    assert status["active"]["version"] == 1 and status["active"]["photos"] == 3
    assert [v["version"] for v in status["versions"]] == [1]
    assert status["jobs"][0]["id"] == job["id"]
    bobs = service.get("/api/model", headers=bob).json()
    assert bobs["active"] is None and bobs["versions"] == [] and bobs["jobs"] == []
    assert service.post("/api/model/use/1", headers=bob).status_code == 404
    assert service.post("/api/model/rollback", headers=bob).status_code == 409

    # Alice's next photo is detected with her model, not the service's; Bob's with the base.
    calls = predictor.calls
    files = {"file": ("p.png", predictor.photo(7, size=96), "image/png")}
    photo = service.post("/api/photos", headers=alice, files=files).json()
    assert wait_for_job(service, alice, photo["id"])["status"] == "done"
    assert predictor.calls == calls
    files = {"file": ("p.png", predictor.photo(8, size=96), "image/png")}
    photo = service.post("/api/photos", headers=bob, files=files).json()
    assert wait_for_job(service, bob, photo["id"])["status"] == "done"
    assert predictor.calls == calls + 1

    rolled = service.post("/api/model/rollback", headers=alice)
    assert rolled.status_code == 200 and rolled.json() == {"active": None}
    used = service.post("/api/model/use/1", headers=alice)
    assert used.status_code == 200 and used.json()["active"]["version"] == 1
    assert service.post("/api/model/use/2", headers=alice).status_code == 404
    assert service.post("/api/model/use/0", headers=alice).status_code == 422
    assert service.get("/api/model/jobs/not-a-job", headers=alice).status_code == 404


def test_cancel_makes_no_version(service, predictor):
    alice = login(service, "alice")
    _upload(service, alice, predictor, 3)
    job = service.post("/api/model/teach", headers=alice).json()
    cancelled = service.delete(f"/api/model/jobs/{job['id']}", headers=alice)
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    end = wait_for_model_job(service, alice, job["id"])[-1]
    assert end["state"] == "cancelled" and end["version"] is None
    assert service.get("/api/model", headers=alice).json()["versions"] == []
    # A new job may start once that one has ended.
    assert service.post("/api/model/teach", headers=alice).status_code == 202


def test_without_a_base_model_teaching_answers_503(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data")
    with TestClient(app) as client:
        alice = login(client, "alice")
        assert client.post("/api/model/teach", headers=alice).status_code == 503
        status = client.get("/api/model", headers=alice).json()
        assert status["can_teach"] is False and status["active"] is None
        assert client.get("/api/model/jobs/" + "a" * 32, headers=alice).status_code == 503
