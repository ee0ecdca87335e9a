"""``kill -9`` during uploads and detection: nothing half-written, nothing answered for is lost.

The server runs as a real process (tests/service/truth_server.py) that detects the synthetic
world's ground truth, slowly, so that a kill finds uploads arriving and jobs queued and
running. While it is dead its files and database are checked as it left them: every stored
photo has all of its items or none, every referenced picture is whole. After the restart every
job that got a 202 finishes with its photo's items, every item that got a 201 is there, and no
upload or temporary file is left behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .fakes import TruthPredictor
from .live import all_pages, free_port, start, stop

PASSWORD = "correct horse"


class Server:
    def __init__(self, tmp_path: Path, photos: int):
        self.tmp = tmp_path
        self.db = tmp_path / "w.sqlite"
        self.data = tmp_path / "data"
        self.images = tmp_path / "w-images"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.photos = photos
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "tests.service.truth_server", "--port", str(self.port),
            "--db", f"sqlite:///{self.db}", "--data-dir", str(self.data),
            "--photos", str(self.photos), "--delay", "0.15", "--lease", "3",
        ]  # fmt: skip
        self.process = start(command, self.port, self.tmp / "server.log")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


def _token(base: str) -> dict:
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post("/api/users", json={"name": "alice", "password": PASSWORD})
        token = http.post("/api/token", data={"username": "alice", "password": PASSWORD})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _traffic_until_killed(server: Server, headers: dict, photos: dict[int, bytes], tag: str):
    """Uploads (3 clients) and manual items (1 client) until the server is killed, which
    happens once a job is done and others are still queued or running. Returns the accepted
    jobs ``{job id: photo index}``, the ids of items answered 201 and of all items sent (one
    in flight at the kill may or may not have been stored)."""
    accepted: dict[str, int] = {}
    created: list[str] = []
    sent: list[str] = []
    pending = list(photos)
    lock = threading.Lock()
    dead = threading.Event()
    errors: list[str] = []

    def uploader() -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
            while not dead.is_set():
                with lock:
                    if not pending:
                        return
                    index = pending.pop(0)
                files = {"file": (f"{index}.png", photos[index], "image/png")}
                while True:
                    try:
                        response = http.post("/api/photos", files=files)
                    except httpx.TransportError:
                        return
                    if response.status_code != 429:  # too many waiting: as a client would
                        break
                    time.sleep(0.2)
                if response.status_code != 202:
                    errors.append(f"upload: {response.status_code} {response.text}")
                    return
                with lock:
                    accepted[response.json()["id"]] = index

    def item_maker() -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
            for k in range(10_000):
                key = f"{tag}-{k}"
                body = {"id": key, "category": "pants", "colors": ["#1f2a44"]}
                sent.append(key)
                try:
                    response = http.post("/api/items", json=body)
                except httpx.TransportError:
                    return
                if response.status_code != 201:
                    errors.append(f"item: {response.status_code} {response.text}")
                    return
                created.append(key)

    threads = [threading.Thread(target=uploader) for _ in range(3)]
    threads.append(threading.Thread(target=item_maker))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
        while time.monotonic() < deadline:
            with lock:  # this round's jobs (earlier rounds' are done or resuming)
                ours = set(accepted)
            statuses = [j["status"] for j in http.get("/api/photos").json() if j["id"] in ours]
            if "done" in statuses and {"queued", "running"} & set(statuses) and created:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no moment with jobs done and in flight: {statuses}")
    server.kill()
    dead.set()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert accepted and created
    return accepted, created, sent


def _check_files_as_the_kill_left_them(server: Server, garments: dict[str, int]) -> None:
    """With the server dead: each stored photo has all of its items, and every picture a row
    refers to is a whole image."""
    db = sqlite3.connect(server.db)
    try:
        photos = db.execute("SELECT id, sha256, suffix FROM photos").fetchall()
        for photo_id, sha, suffix in photos:
            count = db.execute(
                "SELECT COUNT(*) FROM items WHERE photo_id = ?", (photo_id,)
            ).fetchone()[0]
            assert count == garments[sha], f"photo {sha[:12]}: {count} of {garments[sha]} items"
            _whole_image(server.images, sha, suffix)
        for (cutout,) in db.execute("SELECT cutout_sha256 FROM items WHERE photo_id IS NOT NULL"):
            _whole_image(server.images, cutout, ".png")
    finally:
        db.close()


def _whole_image(root: Path, sha: str, suffix: str) -> None:
    path = root / sha[:2] / sha[2:4] / f"{sha}{suffix}"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    with Image.open(path) as image:
        image.load()


def _kill_during_uploads(tmp_path: Path, rounds: int) -> None:
    truth = TruthPredictor()
    per_round = 12
    photos = {i: truth.photo(i) for i in range(per_round * rounds)}
    garments = {hashlib.sha256(d).hexdigest(): truth.garments(d) for d in photos.values()}
    server = Server(tmp_path, len(photos))
    accepted: dict[str, int] = {}
    created: list[str] = []
    sent: list[str] = []
    try:
        server.start()
        headers = _token(server.base)
        for r in range(rounds):
            batch = {i: photos[i] for i in range(r * per_round, (r + 1) * per_round)}
            got, made, tried = _traffic_until_killed(server, headers, batch, tag=f"round{r}")
            accepted.update(got)
            created.extend(made)
            sent.extend(tried)
            _check_files_as_the_kill_left_them(server, garments)
            server.start()

        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                jobs = all_pages(http, "/api/photos")
                if all(j["status"] in ("done", "failed") for j in jobs):
                    break
                assert time.monotonic() < deadline, jobs
                time.sleep(0.1)
            by_id = {j["id"]: j for j in jobs}
            items = {i["id"]: i for i in all_pages(http, "/api/items")}
            for key in created:
                assert key in items, f"item {key} answered 201 and is gone"
            # Every job finished (those the client never heard of too), with its photo's items.
            assert set(accepted) <= set(by_id)
            for job in jobs:
                assert job["status"] == "done", job
                assert not job["skipped"], job
            for job_id, index in accepted.items():
                job = by_id[job_id]
                assert len(job["items"]) == truth.garments(photos[index]) > 0, job
                for key in job["items"]:
                    assert key in items
            found = {k for j in jobs for k in j["items"]}
            assert set(items) - found <= set(sent), "an item nobody sent"
            assert http.get(f"/api/items/{next(iter(found))}/cutout").status_code == 200
        _check_files_as_the_kill_left_them(server, garments)
        assert list((server.data / "uploads").iterdir()) == []
        assert not list((server.data / "jobs").glob("**/.incoming-*"))
    finally:
        server.stop()


def test_kill_during_uploads_loses_nothing_answered_and_leaves_nothing_half_done(tmp_path):
    _kill_during_uploads(tmp_path, rounds=1)


@pytest.mark.slow
def test_repeated_kills_during_uploads(tmp_path):
    _kill_during_uploads(tmp_path, rounds=4)


_DIE_IN_TRANSACTION = """
import os, sys
from fashionkit.wardrobe import Wardrobe
from fashionkit.wardrobe.ingest import ingest_photos
from tests.service.fakes import TruthPredictor

original = Wardrobe._insert_detected
def insert_then_die(self, session, photo_id, detected, *args):
    original(self, session, photo_id, detected, *args)  # flushed: the row is in the database file
    os._exit(9)  # as kill -9: inside the transaction, before the commit
Wardrobe._insert_detected = insert_then_die
predictor = TruthPredictor()
path = sys.argv[2]
open(path, "wb").write(predictor.photo(0))
with Wardrobe(sys.argv[1], user="alice") as wardrobe:
    ingest_photos(wardrobe, predictor, [path])
"""


def test_death_inside_the_photo_transaction_leaves_no_item(tmp_path):
    """The process dies after the first of a photo's items was written to the database, before
    the commit: neither the photo nor any item is there afterwards, and ingesting again adds
    them all."""
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.ingest import ingest_photos

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    truth = TruthPredictor()
    data = truth.photo(0)
    photo = tmp_path / "photo.png"
    result = subprocess.run(
        [sys.executable, "-c", _DIE_IN_TRANSACTION, url, str(photo)],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 9, result.stderr
    assert photo.read_bytes() == data
    with Wardrobe(url, user="alice") as wardrobe:
        assert wardrobe.items() == [] and wardrobe.annotated_photos() == []
        report = ingest_photos(wardrobe, truth, [photo])
        assert len(report.added) == truth.garments(data) and not report.skipped
