"""``fashionkit serve`` as a real process on loopback: it serves, and a restart keeps data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from .live import free_port, serve_command, start, stop


def _start(tmp_path, port, *extra):
    return start(serve_command(tmp_path, port, *extra), port, tmp_path / "server.log")


def _stop(process, sig=signal.SIGTERM):
    stop(process, sig)


def test_serve_then_restart_keeps_data(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(tmp_path, port)
    try:
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "fashionkit"
        body = {"name": "alice", "password": "correct horse"}
        assert httpx.post(f"{base}/api/users", json=body).status_code == 201
        token = httpx.post(
            f"{base}/api/token", data={"username": "alice", "password": "correct horse"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        item = {"id": "jeans", "category": "pants", "colors": ["#1f2a44"]}
        assert httpx.post(f"{base}/api/items", json=item, headers=headers).status_code == 201
        photo = httpx.post(
            f"{base}/api/photos",
            files={"file": ("a.png", b"\x89PNG", "image/png")},
            headers=headers,
        )
        assert photo.status_code == 503
    finally:
        _stop(process, signal.SIGKILL)  # no clean shutdown: committed data must survive

    process = _start(tmp_path, port)
    try:
        # The token secret is on disk: logins survive a restart too.
        response = httpx.get(f"{base}/api/items/jeans", headers=headers)
        assert response.status_code == 200 and response.json()["colors"] == ["#1f2a44"]
    finally:
        _stop(process)


def test_cli_help_does_not_import_the_web_stack():
    code = (
        "import sys, fashionkit.cli; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.strip() == "[]"


def test_concurrent_clients_get_no_server_errors(tmp_path):
    """A short burst of concurrent clients on loopback (the long load test is a benchmark):
    every answer is 2xx and every item created is there afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(tmp_path, port)

    def client(k: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=base, timeout=30) as http:
            name, password = f"user{k}", "long enough"
            statuses.append(
                http.post("/api/users", json={"name": name, "password": password}).status_code
            )
            token = http.post("/api/token", data={"username": name, "password": password})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for i in range(6):
                for item in (
                    {"id": f"top{i}", "category": "shirt, blouse", "colors": ["#ffffff"]},
                    {"id": f"pants{i}", "category": "pants", "colors": ["#1f2a44"]},
                ):
                    statuses.append(http.post("/api/items", json=item, headers=headers).status_code)
                edit = http.patch(f"/api/items/top{i}", json={"brand": "Acme"}, headers=headers)
                statuses.append(edit.status_code)
                statuses.append(
                    http.get("/api/outfits", params={"n": 3}, headers=headers).status_code
                )
            items = http.get("/api/items", headers=headers).json()
            assert len(items) == 12 and all(
                i.get("brand") == "Acme" for i in items if i["id"].startswith("top")
            )
        return statuses

    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = [s for batch in pool.map(client, range(8)) for s in batch]
    finally:
        _stop(process)
    assert statuses and all(200 <= s < 300 for s in statuses), sorted(set(statuses))


def test_serve_with_weights_detects_in_photos(tmp_path):
    from fashionkit.modeling import build_model, save_checkpoint
    from fashionkit.modeling.config import model_config_from_preset

    from .fakes import TruthPredictor

    weights = save_checkpoint(
        build_model(model_config_from_preset("cpu-tiny")), tmp_path / "model.pt"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(tmp_path, port, "--weights", str(weights), "--min-score", "0")
    try:
        assert httpx.get(f"{base}/health").json()["detection"] is True
        body = {"name": "alice", "password": "correct horse"}
        httpx.post(f"{base}/api/users", json=body)
        token = httpx.post(
            f"{base}/api/token", data={"username": "alice", "password": "correct horse"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        photo = TruthPredictor().photo(0, size=128)
        job = httpx.post(
            f"{base}/api/photos", files={"file": ("p.png", photo, "image/png")}, headers=headers
        ).json()
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = httpx.get(f"{base}/api/photos/{job['id']}", headers=headers).json()
        assert job["status"] == "done", job
        assert httpx.get(f"{base}{job['overlay_url']}", headers=headers).status_code == 200
    finally:
        _stop(process)


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started that are alive (Linux's /proc); a fresh worker is a
    spawned interpreter, so the resource tracker uvicorn's spawn starts is left out."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found |= {int(c) for c in f.read().split()}
        except FileNotFoundError:
            continue
    workers = set()
    for child in found:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                command = f.read()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in command:
            workers.add(child)
    return workers


def _wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_workers_share_one_address_logins_and_the_throttle(tmp_path):
    """``serve --workers 2``: two processes answer on one port; logins and the throttle hold
    on fresh connections (each accepted by either); a worker killed with -9 is replaced and
    the service answers meanwhile; SIGTERM stops them all."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(tmp_path, port, "--workers", "2")
    try:
        _wait_for(lambda: len(_children(process.pid)) == 2, what="two workers")
        body = {"name": "alice", "password": "correct horse"}
        assert httpx.post(f"{base}/api/users", json=body).status_code == 201

        def attempt(password: str) -> httpx.Response:  # a new connection each time
            return httpx.post(
                f"{base}/api/token", data={"username": "alice", "password": password}
            )

        assert [attempt("wrong guess").status_code for _ in range(5)] == [401] * 5
        # Within the second's wait after the fifth failure, whichever process answers.
        # (That the two count as one is shown deterministically with one process per port
        # in test_workers.py: which worker accepts a connection is the kernel's choice.)
        refused = attempt("correct horse")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        time.sleep(1.1)
        token = attempt("correct horse")
        assert token.status_code == 200
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for k in range(6):  # fresh connections: either worker may answer
            item = {"id": f"shirt-{k}", "category": "shirt, blouse"}
            assert httpx.post(f"{base}/api/items", json=item, headers=headers).status_code == 201

        victim = min(_children(process.pid))
        os.kill(victim, signal.SIGKILL)
        for _ in range(5):
            answer = httpx.get(f"{base}/api/items", headers=headers, timeout=30)
            assert answer.status_code == 200 and len(answer.json()) == 6
        _wait_for(
            lambda: len(_children(process.pid)) == 2 and victim not in _children(process.pid),
            what="the killed worker's replacement",
        )
    finally:
        _stop(process)
    assert process.returncode == 0
