"""Two service processes on one database share the photo jobs, and ``kill -9`` of one loses
none: the other takes the dead one's jobs — those it was running, once their lease runs out,
and those it had accepted and not started — without the dead one coming back.

Each process is a real server on its own port (as two machines, or two of ``serve
--workers``), detecting the synthetic world's ground truth slowly and writing each detection
to a shared file, so that the test counts how often each photo was detected: once, or twice
when the process detecting it was killed. The database is SQLite, or PostgreSQL with
``FASHIONKIT_TEST_POSTGRES`` (tests/databases.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from fashionkit.wardrobe.database import WardrobeDatabase
from tests.databases import fresh_database

from .fakes import TruthPredictor
from .live import all_pages, free_port, stop

PASSWORD = "correct horse"
LEASE_S = 3.0


class Server:
    def __init__(self, tmp_path: Path, url: str, name: str, photos: int):
        self.tmp, self.url, self.name, self.photos = tmp_path, url, name, photos
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def launch(self) -> None:
        command = [
            sys.executable, "-m", "tests.service.truth_server", "--port", str(self.port),
            "--db", self.url, "--data-dir", str(self.tmp / "data"), "--photos", str(self.photos),
            "--delay", "0.3", "--lease", str(LEASE_S), "--poll", "0.2",
            "--calls", str(self.tmp / "calls.txt"),
        ]  # fmt: skip
        with open(self.tmp / f"server-{self.name}.log", "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.tmp / f"server-{self.name}.log").read_text()
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"server {self.name} did not start")

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


def _jobs(engine) -> dict[str, tuple[str, str | None, int]]:
    """``{job id: (status, claimed_by, attempts)}`` as the database has them."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status, claimed_by, attempts FROM photo_jobs"))
        return {r.id: (r.status, r.claimed_by, r.attempts) for r in rows}


def _held_by(claimed_by: str | None, server: Server) -> bool:
    # Worker names are host:pid:random (fashionkit.service.photos.PhotoWorker).
    assert server.process is not None
    return claimed_by is not None and claimed_by.split(":")[-2] == str(server.process.pid)


def _running_in(engine, batch: dict[str, int], server: Server) -> tuple[set[str], Counter]:
    """The jobs of ``batch`` running in ``server``, and the count of each status in ``batch``."""
    jobs = {j: v for j, v in _jobs(engine).items() if j in batch}
    running = {j for j, (s, by, _) in jobs.items() if s == "running" and _held_by(by, server)}
    return running, Counter(s for s, _, _ in jobs.values())


def _throttle_is_shared(servers: list[Server]) -> None:
    """Wrong passwords sent alternately to the two processes are counted as by one."""
    with httpx.Client(timeout=30) as http:
        body = {"name": "bob", "password": PASSWORD}
        assert http.post(f"{servers[0].base}/api/users", json=body).status_code == 201
        form = {"username": "bob", "password": "wrong guess"}
        statuses = [http.post(f"{servers[k % 2].base}/api/token", data=form).status_code
                    for k in range(5)]  # fmt: skip
        assert statuses == [401] * 5
        for server in servers:
            form["password"] = PASSWORD
            refused = http.post(f"{server.base}/api/token", data=form)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


def _share_and_kill(tmp_path: Path, rounds: int, per_round: int) -> None:
    truth = TruthPredictor()
    photos = {i: truth.photo(i) for i in range(per_round * rounds)}
    sha = {i: hashlib.sha256(d).hexdigest() for i, d in photos.items()}
    with fresh_database(tmp_path) as url:
        WardrobeDatabase(url).close()  # the schema, before both start
        servers = [Server(tmp_path, url, name, len(photos)) for name in "ab"]
        engine = create_engine(url)
        try:
            for server in servers:
                server.launch()
            for server in servers:
                server.wait_ready()
            with httpx.Client(base_url=servers[0].base, timeout=30) as http:
                http.post("/api/users", json={"name": "alice", "password": PASSWORD})
                token = http.post("/api/token", data={"username": "alice", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            _throttle_is_shared(servers)

            accepted: dict[str, int] = {}
            taken_over: set[str] = set()  # running in the victim when it was killed
            for r in range(rounds):
                victim, survivor = servers[r % 2], servers[1 - r % 2]
                batch: dict[str, int] = {}
                for k, index in enumerate(range(r * per_round, (r + 1) * per_round)):
                    server = servers[k % 2]  # spread over both
                    response = httpx.post(
                        f"{server.base}/api/photos", headers=headers, timeout=30,
                        files={"file": (f"{index}.png", photos[index], "image/png")},
                    )  # fmt: skip
                    assert response.status_code == 202, response.text
                    batch[response.json()["id"]] = index
                accepted.update(batch)
                deadline = time.monotonic() + 30
                while True:  # a moment with the victim detecting, jobs done and queued
                    running, statuses = _running_in(engine, batch, victim)
                    if running and statuses["done"] and statuses["queued"] >= 2:
                        # Between that read and the kill the victim may have finished its job;
                        # frozen, it cannot, so what a second read sees is what the kill finds.
                        victim.freeze()
                        time.sleep(0.05)  # a commit already sent lands before the second read
                        running, statuses = _running_in(engine, batch, victim)
                        if running and statuses["queued"]:
                            break
                        victim.thaw()
                    assert time.monotonic() < deadline, _jobs(engine)
                    time.sleep(0.02)
                victim.kill()
                at_kill = _jobs(engine)
                taken_over |= {j for j, (s, by, _) in at_kill.items()
                               if s == "running" and _held_by(by, victim)}  # fmt: skip
                assert any(s == "queued" for s, _, _ in at_kill.values())

                # The survivor finishes every job, the victim's too, with the victim dead.
                deadline = time.monotonic() + 60
                while {s for j, (s, _, _) in _jobs(engine).items() if j in batch} != {"done"}:
                    assert time.monotonic() < deadline, _jobs(engine)
                    assert survivor.process is not None and survivor.process.poll() is None
                    time.sleep(0.1)
                if r + 1 < rounds:
                    victim.launch()
                    victim.wait_ready()

            final = _jobs(engine)
            calls = Counter((tmp_path / "calls.txt").read_text().split())
            for job_id, index in accepted.items():
                status, _, attempts = final[job_id]
                assert status == "done"
                if job_id in taken_over:
                    # Detected by the victim (maybe) and once more by its taker, or reported
                    # from the photo the victim had stored just before it died.
                    assert attempts == 2 and 1 <= calls[sha[index]] <= 2, (job_id, calls)
                else:
                    assert attempts == 1 and calls[sha[index]] == 1, (job_id, calls)
            assert set(calls) == set(sha.values())
            assert taken_over

            with httpx.Client(base_url=survivor.base, headers=headers, timeout=30) as http:
                jobs = {j["id"]: j for j in all_pages(http, "/api/photos")}
                items = {i["id"] for i in all_pages(http, "/api/items")}
            found: list[str] = []
            for job_id, index in accepted.items():
                job = jobs[job_id]
                assert not job["skipped"] and len(job["items"]) == truth.garments(photos[index])
                found.extend(job["items"])
            # Each photo's items once: no job reported another's, no photo stored twice.
            assert len(found) == len(set(found)) and set(found) == items
            with engine.connect() as connection:
                stored = connection.execute(text("SELECT COUNT(*) FROM photos")).scalar_one()
            assert stored == len(photos)

            # What the kills left (temporary files, an upload whose job had just ended) goes
            # at the next tidying, as any process's start or worker does it.
            from fashionkit.service.photos import JobStore

            with WardrobeDatabase(url) as database:
                JobStore(database, tmp_path / "data").recover()
            assert list((tmp_path / "data" / "uploads").iterdir()) == []
        finally:
            for server in servers:
                server.stop()
            engine.dispose()


def test_two_processes_share_jobs_and_a_killed_ones_are_not_lost(tmp_path):
    _share_and_kill(tmp_path, rounds=1, per_round=8)


@pytest.mark.slow
def test_repeated_kills_of_either_process(tmp_path):
    _share_and_kill(tmp_path, rounds=4, per_round=12)
