"""The web service under load: 50 concurrent clients on loopback for 60 s.

Starts a real ``fashionkit serve`` process on 127.0.0.1 with its own SQLite database and data
folder, and a detection model (``--weights``; by default a seeded, untrained ``cpu-tiny``
checkpoint written here: detection then costs what the real small model costs, whatever it
finds). Each client is a person with an account and a seeded wardrobe of 6 items, and repeats
one cycle of requests, each sent as soon as the last one answered (a closed loop, no think time):

    upload a photo (synthetic, 256², PNG) · add an item · edit an item's tags · outfits ·
    add · edit · list items (filtered) · outfits · edit · the upload's job status

Detection (one job at a time) is slower than 50 people uploading: once 20 of a person's photos
wait, the server answers their uploads 429 (its back-pressure), and those answers are counted
as such, not as errors. Every request's latency is the wall time from sending it to having read
the whole answer, measured in this process (asyncio + httpx, one connection per client). The
server's detection thread, its request threads and these 50 clients share the machine's CPU
cores, so the figures are the whole system's on this machine, not the server's alone.

Then a phase of races (``--race-people`` of the people, ``--race-rounds`` rounds each, all at
once): in each round a person sends, each group at the same instant, two creates of one id; two
renames of two items to one new id with an edit of the first; four PATCHes of different fields
of one item; and a delete of an item with an edit, feedback ("wore"), its cut-out and a second
delete. Every acknowledged write of it is checked like the others: a created or renamed item is
there under its id, each field a PATCH answered 200 for is in the item, an item whose delete
answered 204 is gone. The answers' statuses are tabled per race.

Afterwards the server is stopped (SIGTERM) and checked: every item answered 201 is listed by
the API as its owner's and is in the database file (read with sqlite3), with the tags of its
last edit answered 200; no answer was a 5xx and no connection failed.

Ends with ``RESULT server_errors N``, ``RESULT lost_items N`` and ``RESULT p95_ms X`` (all
requests of the load phase); the races' 5xx answers and failed connections count in
``server_errors``, their lost items, edits and deletes in ``lost_items``. ``--quick``: 10 s and
5 race rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "load test password"
CYCLE = ("upload", "add", "edit", "outfits", "add", "edit", "list", "outfits", "edit", "photo")
CATEGORIES = ("shirt", "top", "pants", "skirt", "shoe", "coat", "dress", "sweater", "bag")
COLOURS = ("#1f2a44", "#ffffff", "#c3b091", "#3060c0", "#111111", "#8b0000", "#808080")
SEASONS = (["summer"], ["winter"], ["spring", "autumn"], [])


@dataclass
class Client:
    index: int
    headers: dict
    created: list[str] = field(default_factory=list)
    brand: dict[str, str] = field(default_factory=dict)  # item id -> brand of its last edit
    # item id -> the fields racing PATCHes answered 200 for, and their values
    fields: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))
    deleted: set[str] = field(default_factory=set)  # ids whose delete answered 204
    job: str | None = None
    n: int = 0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    failures: list[str] = field(default_factory=list)  # connection errors, timeouts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def untrained_model(folder: Path) -> Path:
    import torch

    from fashionkit.modeling import build_model, save_checkpoint
    from fashionkit.modeling.config import model_config_from_preset

    torch.manual_seed(0)
    return save_checkpoint(build_model(model_config_from_preset("cpu-tiny")), folder / "model.pt")


def photos(count: int) -> list[bytes]:
    from fashionkit.data.synth import render_image

    out = []
    for index in range(count):
        buffer = io.BytesIO()
        render_image(seed=3, index=index, size=256).image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def start_server(folder: Path, port: int, weights: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "fashionkit.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--db", f"sqlite:///{folder / 'w.sqlite'}",
        "--data-dir", str(folder / "data"), "--weights", str(weights),
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open(folder / "server.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{(folder / 'server.log').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start in 120 s")


async def sign_up(http: httpx.AsyncClient, k: int) -> Client:
    name = f"person{k:02d}"
    response = await http.post("/api/users", json={"name": name, "password": PASSWORD})
    response.raise_for_status()
    token = await http.post("/api/token", data={"username": name, "password": PASSWORD})
    token.raise_for_status()
    client = Client(k, {"Authorization": f"Bearer {token.json()['access_token']}"})
    seed = [
        {"id": f"seed-{j}", "category": c, "colors": [COLOURS[(k + j) % len(COLOURS)]]}
        for j, c in enumerate(("shirt", "top", "pants", "skirt", "shoe", "coat"))
    ]
    response = await http.post("/api/wardrobe/import", json={"items": seed}, headers=client.headers)
    response.raise_for_status()
    client.created.extend(i["id"] for i in seed)
    return client


async def one_request(http, client: Client, kind: str, rng: random.Random, pool: list[bytes]):
    h = client.headers
    if kind == "upload":
        data = pool[rng.randrange(len(pool))]
        return await http.post(
            "/api/photos", files={"file": ("p.png", data, "image/png")}, headers=h
        )
    if kind == "add":
        key = f"c{client.index}-{client.n}"
        body = {
            "id": key,
            "category": CATEGORIES[client.n % len(CATEGORIES)],
            "colors": [rng.choice(COLOURS)],
            "season": rng.choice(SEASONS),
        }
        response = await http.post("/api/items", json=body, headers=h)
        if response.status_code == 201:
            client.created.append(key)
        return response
    if kind == "edit":
        key = rng.choice(client.created)
        brand = f"brand-{client.n}"
        changes = {"brand": brand, "occasion": [rng.choice(["work", "casual", "party"])]}
        response = await http.patch(f"/api/items/{key}", json=changes, headers=h)
        if response.status_code == 200:
            client.brand[key] = brand
        return response
    if kind == "outfits":
        params = {"n": 5, "season": rng.choice(["summer", "winter", "spring"])}
        if rng.random() < 0.5:
            params["temperature"] = rng.randint(-5, 30)
        return await http.get("/api/outfits", params=params, headers=h)
    if kind == "list":
        return await http.get("/api/items", params={"category": "pants"}, headers=h)
    if kind == "photo":
        return await http.get(
            f"/api/photos/{client.job}" if client.job else "/api/photos", headers=h
        )
    raise ValueError(kind)


async def run_client(base, client: Client, pool, deadline: float, tally: Tally) -> None:
    rng = random.Random(client.index)
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        step = client.index  # clients start at different points of the cycle
        while time.perf_counter() < deadline:
            kind = CYCLE[step % len(CYCLE)]
            step += 1
            client.n += 1
            start = time.perf_counter()
            try:
                response = await one_request(http, client, kind, rng, pool)
                await response.aread()
            except httpx.HTTPError as err:
                tally.failures.append(f"{kind}: {type(err).__name__}: {err}")
                continue
            tally.latencies[kind].append((time.perf_counter() - start) * 1000)
            tally.statuses[kind][response.status_code] += 1
            if kind == "upload" and response.status_code == 202:
                client.job = response.json()["id"]


async def load(base: str, clients: int, seconds: float, pool: list[bytes]):
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        people = [await sign_up(http, k) for k in range(clients)]
    tally = Tally()
    start = time.perf_counter()
    await asyncio.gather(*(run_client(base, c, pool, start + seconds, tally) for c in people))
    return people, tally, time.perf_counter() - start


async def timed(tally: Tally, kind: str, request) -> httpx.Response | None:
    """Await ``request`` (an httpx coroutine), tallying its latency and status as ``kind``;
    ``None`` when the connection failed."""
    start = time.perf_counter()
    try:
        response = await request
        await response.aread()
    except httpx.HTTPError as err:
        tally.failures.append(f"{kind}: {type(err).__name__}: {err}")
        return None
    tally.latencies[kind].append((time.perf_counter() - start) * 1000)
    tally.statuses[kind][response.status_code] += 1
    return response


def status(response: httpx.Response | None) -> int | None:
    return None if response is None else response.status_code


async def race_round(http: httpx.AsyncClient, client: Client, r: int, tally: Tally) -> None:
    """One round of conflicting writes by ``client``: each group of requests is sent at once
    (asyncio.gather over separate connections)."""
    h = client.headers
    prefix = f"race{client.index}-{r}"

    async def at_once(kind: str, *requests) -> list[int | None]:
        answers = await asyncio.gather(*(timed(tally, kind, q) for q in requests))
        return [status(a) for a in answers]

    async def new_item(key: str, category: str) -> bool:
        answer = await timed(
            tally, "race-setup", http.post("/api/items", json={"id": key, "category": category},
                                           headers=h)
        )  # fmt: skip
        if status(answer) == 201:
            client.created.append(key)
            return True
        return False

    # Two creates of one id: one 201, one 409.
    key = f"{prefix}-c"
    body = {"id": key, "category": "shirt"}
    created = await at_once("race-create", *(http.post("/api/items", json=body, headers=h)
                                             for _ in range(2)))  # fmt: skip
    if 201 in created:
        client.created.append(key)

    # Two renames to one id, and an edit of the first item meanwhile.
    a, b, new = f"{prefix}-ra", f"{prefix}-rb", f"{prefix}-rn"
    if await new_item(a, "pants") and await new_item(b, "pants"):
        renamed = await at_once(
            "race-rename",
            http.patch(f"/api/items/{a}", json={"id": new}, headers=h),
            http.patch(f"/api/items/{b}", json={"id": new}, headers=h),
            http.patch(f"/api/items/{a}", json={"notes": "hemmed"}, headers=h),
        )
        for old, answer in zip((a, b), renamed[:2], strict=True):
            if answer == 200:
                client.created[client.created.index(old)] = new
        if renamed[2] == 200:  # applied before a rename of ``a`` or to ``a`` unrenamed
            client.fields[new if renamed[0] == 200 else a]["notes"] = "hemmed"

    # Four PATCHes of different fields of one item: each answered 200 must be in it.
    key = f"{prefix}-p"
    if await new_item(key, "coat"):
        changes = [{"notes": "n"}, {"brand": "b"}, {"material": "wool"}, {"favorite": True}]
        patched = await at_once(
            "race-patch", *(http.patch(f"/api/items/{key}", json=c, headers=h) for c in changes)
        )
        for change, answer in zip(changes, patched, strict=True):
            if answer == 200:
                client.fields[key].update(change)

    # A delete, with an edit, feedback, the cut-out and a second delete at the same time.
    key = f"{prefix}-d"
    if await new_item(key, "skirt"):
        answers = await at_once(
            "race-delete",
            http.delete(f"/api/items/{key}", headers=h),
            http.patch(f"/api/items/{key}", json={"notes": "late"}, headers=h),
            http.post("/api/outfits/feedback", json={"items": [key], "kind": "wore"}, headers=h),
            http.get(f"/api/items/{key}/cutout", headers=h),
            http.delete(f"/api/items/{key}", headers=h),
        )
        if 204 in (answers[0], answers[4]):
            client.created.remove(key)
            client.deleted.add(key)


async def races(base: str, people: list[Client], rounds: int) -> Tally:
    tally = Tally()

    async def person(client: Client) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for r in range(rounds):
                await race_round(http, client, r, tally)

    await asyncio.gather(*(person(c) for c in people))
    return tally


async def check_through_api(base: str, people: list[Client]) -> tuple[int, int, dict]:
    """Items answered 201 but not listed (lost), edits answered 200 but not shown (a racing
    PATCH's field counts as one edit; an item whose delete answered 204 but is listed, too);
    and the photo jobs' statuses."""
    lost = lost_edits = 0
    jobs: dict[str, int] = defaultdict(int)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def every(path: str, headers: dict) -> list[dict]:
            # Lists come in pages (at most 1000 entries each).
            entries: list[dict] = []
            while True:
                page = await http.get(
                    path, params={"limit": 1000, "offset": len(entries)}, headers=headers
                )
                entries.extend(page.json())
                if len(entries) >= int(page.headers["x-total-count"]):
                    return entries

        for person in people:
            items = {i["id"]: i for i in await every("/api/items", person.headers)}
            lost += sum(key not in items for key in person.created)
            lost_edits += sum(
                items.get(key, {}).get("brand") != brand for key, brand in person.brand.items()
            )
            lost_edits += sum(
                items.get(key, {}).get(name) != value
                for key, fields in person.fields.items()
                for name, value in fields.items()
            )
            lost_edits += sum(key in items for key in person.deleted)
            for job in await every("/api/photos", person.headers):
                jobs[job["status"]] += 1
    return lost, lost_edits, dict(jobs)


def check_database(db: Path, people: list[Client]) -> int:
    """Items answered 201 that are not rows of their owner in the database file."""
    connection = sqlite3.connect(db)
    try:
        lost = 0
        for person in people:
            rows = connection.execute(
                "SELECT items.key FROM items JOIN users ON users.id = items.user_id "
                "WHERE users.name = ?",
                (f"person{person.index:02d}",),
            )
            keys = {key for (key,) in rows}
            lost += sum(key not in keys for key in person.created)
        return lost
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s instead of 60 s")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--weights", type=Path, default=None, help="model for detection")
    parser.add_argument("--keep", type=Path, default=None, help="keep the server's files here")
    parser.add_argument("--race-people", type=int, default=10, help="people racing themselves")
    parser.add_argument("--race-rounds", type=int, default=None, help="default 25, --quick 5")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    rounds = args.race_rounds or (5 if args.quick else 25)

    folder = Path(args.keep or tempfile.mkdtemp(prefix="fashionkit-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    weights = args.weights or untrained_model(folder)
    pool = photos(24)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"server: fashionkit serve on {base}, SQLite, files in {folder}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    server = start_server(folder, port, weights)
    try:
        people, tally, elapsed = asyncio.run(load(base, args.clients, seconds, pool))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        racers = people[: args.race_people]
        started = time.perf_counter()
        raced = asyncio.run(races(base, racers, rounds))
        race_s = time.perf_counter() - started
        lost_api, lost_edits, jobs = asyncio.run(check_through_api(base, people))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
    lost_db = check_database(folder / "w.sqlite", people)

    total = sum(len(v) for v in tally.latencies.values())
    print(f"\n{args.clients} clients for {elapsed:.1f} s: {total} requests, "
          f"{total / elapsed:.1f} requests/s")  # fmt: skip
    print(f"{'request':10}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}  statuses")
    everything = []
    for kind in dict.fromkeys(CYCLE):
        values = np.array(tally.latencies[kind])
        everything.extend(tally.latencies[kind])
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(tally.statuses[kind].items()))
        if len(values):
            print(f"{kind:10}{len(values):8d}{np.percentile(values, 50):10.1f}"
                  f"{np.percentile(values, 95):10.1f}{values.max():10.1f}  {statuses}")  # fmt: skip
    all_values = np.array(everything)
    p50, p95 = np.percentile(all_values, 50), np.percentile(all_values, 95)
    print(f"{'all':10}{len(all_values):8d}{p50:10.1f}{p95:10.1f}{all_values.max():10.1f}")

    race_total = sum(len(v) for v in raced.latencies.values())
    print(f"\nraces: {len(racers)} people × {rounds} rounds in {race_s:.1f} s, "
          f"{race_total} requests")  # fmt: skip
    print(f"{'race':14}{'count':>8}{'p50 ms':>10}{'max ms':>10}  statuses")
    for kind, values in raced.latencies.items():
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(raced.statuses[kind].items()))
        print(f"{kind:14}{len(values):8d}{np.percentile(values, 50):10.1f}"
              f"{max(values):10.1f}  {statuses}")  # fmt: skip

    server_errors = sum(
        len(t.failures) + sum(n for per in t.statuses.values() for s, n in per.items() if s >= 500)
        for t in (tally, raced)
    )
    client_errors = sum(
        n for per_kind in tally.statuses.values() for s, n in per_kind.items() if 400 <= s < 500
    )
    created = sum(len(p.created) for p in people)
    print(f"\nitems created: {created}; missing through the API: {lost_api}, "
          f"in the database: {lost_db}; edits not shown: {lost_edits}")  # fmt: skip
    print(f"photo jobs: {jobs} (queued ones run at the next start)")
    too_many = sum(per_kind.get(429, 0) for per_kind in tally.statuses.values())
    print(f"4xx answers of the load phase: {client_errors} (429, too many photos waiting: "
          f"{too_many}); connection failures: {len(tally.failures)}")  # fmt: skip
    for failure in (tally.failures + raced.failures)[:5]:
        print(f"  {failure}")
    print(f"RESULT server_errors {server_errors}")
    print(f"RESULT lost_items {max(lost_api, lost_db) + lost_edits}")
    print(f"RESULT p95_ms {p95:.1f}")


if __name__ == "__main__":
    main()
