"""Photo upload, background detection jobs, their pictures, caps and isolation."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fashionkit.errors import NotFoundError
from fashionkit.service import ServiceSettings, create_app
from fashionkit.service.photos import JobStore, UploadRejected, check_image
from fashionkit.wardrobe.database import WardrobeDatabase

from .conftest import login, wait_for_job
from .fakes import TruthPredictor


@pytest.fixture
def predictor():
    return TruthPredictor()


@pytest.fixture
def detecting(db_url, tmp_path, predictor):
    settings = ServiceSettings(max_upload_bytes=300_000, max_pixels=400 * 400)
    app = create_app(
        db_url,
        tmp_path / "data",
        predictor=predictor,
        settings=settings,
    )
    with TestClient(app) as client:
        yield client


def _upload(client, headers, data, name="photo.png", content_type="image/png"):
    return client.post("/api/photos", files={"file": (name, data, content_type)}, headers=headers)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_detects_items_with_pictures(detecting, predictor):
    alice = login(detecting, "alice")
    data = predictor.photo(0)
    response = _upload(detecting, alice, data)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running", "done") and len(job["id"]) == 32
    job = wait_for_job(detecting, alice, job["id"])
    assert job["status"] == "done", job
    assert len(job["items"]) == predictor.garments(data) > 0
    items = {i["id"] for i in detecting.get("/api/items", headers=alice).json()}
    assert items == set(job["items"])

    for key in ("overlay_url", "supercategories_url"):
        picture = detecting.get(job[key], headers=alice)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(picture.content))
        # Small photos are drawn enlarged by a whole factor (legible tags); the super-category
        # view adds its legend on the right.
        factor = image.height // job["height"]
        assert factor >= 1 and image.height == factor * job["height"]
        assert image.width >= factor * job["width"]
        drawn = np.asarray(image.convert("RGB"))[:, : factor * job["width"]]
        photo = Image.open(io.BytesIO(data)).convert("RGB")
        photo = photo.resize((factor * job["width"], factor * job["height"]),
                             Image.Resampling.BICUBIC)
        assert not np.array_equal(drawn, np.asarray(photo))
    listed = detecting.get("/api/items", headers=alice).json()
    assert {i["cutout_url"] for i in listed} == {f"/api/items/{k}/cutout" for k in job["items"]}
    cutout = detecting.get(listed[0]["cutout_url"], headers=alice)
    assert cutout.status_code == 200 and Image.open(io.BytesIO(cutout.content)).mode == "RGBA"
    one = detecting.get(f"/api/items/{listed[0]['id']}", headers=alice).json()
    assert one["cutout_url"] == listed[0]["cutout_url"]
    assert [j["id"] for j in detecting.get("/api/photos", headers=alice).json()] == [job["id"]]

    again = wait_for_job(detecting, alice, _upload(detecting, alice, data).json()["id"])
    assert again["status"] == "done" and again["skipped"] and again["items"] == []


def test_a_garment_photographed_again_is_merged_into_the_item(detecting, predictor):
    import hashlib

    alice = login(detecting, "alice")
    first = _upload(detecting, alice, predictor.photo(0)).json()
    first = wait_for_job(detecting, alice, first["id"])
    # The same garments again: a brighter photo of other bytes.
    pixels = np.asarray(Image.open(io.BytesIO(predictor.photo(0))).convert("RGB"), np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels + 6, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    again = buffer.getvalue()
    predictor.truth[hashlib.sha256(again).hexdigest()] = \
        predictor.truth[hashlib.sha256(predictor.photo(0)).hexdigest()]
    second = wait_for_job(detecting, alice, _upload(detecting, alice, again).json()["id"])
    pairs = {(d["new"], d["existing"]) for d in second["duplicates"]}
    assert pairs and pairs <= set(zip(second["items"], first["items"], strict=True))
    for new, existing in sorted(pairs):
        merged = detecting.post(f"/api/items/{existing}/merge", json={"drop": new}, headers=alice)
        assert merged.status_code == 200, merged.text
        assert merged.json()["id"] == existing and merged.json()["cutout_url"]
    assert {i["id"] for i in detecting.get("/api/items", headers=alice).json()} == \
        set(first["items"]) | (set(second["items"]) - {new for new, _ in pairs})
    new, existing = sorted(pairs)[0]
    gone = detecting.post(f"/api/items/{existing}/merge", json={"drop": new}, headers=alice)
    assert gone.status_code == 404 and new in gone.json()["detail"]
    for body in ({"drop": existing}, {}, {"drop": 3}):
        refused = detecting.post(f"/api/items/{existing}/merge", json=body, headers=alice)
        assert refused.status_code == 422, (body, refused.text)


def test_type_is_sniffed_from_content_not_name(detecting, predictor):
    alice = login(detecting, "alice")
    data = predictor.photo(1)
    response = _upload(detecting, alice, data, name="notes.txt", content_type="text/plain")
    assert response.status_code == 202 and response.json()["format"] == "PNG"
    fake = _upload(detecting, alice, b"GIF89a but not really" * 10, name="x.png")
    assert fake.status_code == 415
    svg = _upload(detecting, alice, b"<svg xmlns='http://www.w3.org/2000/svg'/>", name="a.jpg")
    assert svg.status_code == 415
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    assert _upload(detecting, alice, gif.getvalue(), name="a.png").status_code == 415
    assert wait_for_job(detecting, alice, response.json()["id"])["status"] == "done"


def test_caps_and_damaged_files(detecting, predictor):
    alice = login(detecting, "alice")
    assert _upload(detecting, alice, b"").status_code == 400
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8)
    too_big = _png(Image.fromarray(noise))
    assert len(too_big) > 300_000
    response = _upload(detecting, alice, too_big)
    assert response.status_code == 413 and "bytes" in response.json()["detail"]
    wide = _png(Image.new("RGB", (2000, 100)))  # small file, too many pixels
    response = _upload(detecting, alice, wide)
    assert response.status_code == 413 and "pixels" in response.json()["detail"]
    whole = predictor.photo(2)
    response = _upload(detecting, alice, whole[: len(whole) // 2])
    assert response.status_code == 400 and "image" in response.json()["detail"]
    assert detecting.get("/api/photos", headers=alice).json() == []
    assert detecting.post("/api/photos", headers=alice).status_code == 422


def test_decompression_bomb_is_refused_before_decoding():
    # A 20000×20000 PNG of one colour compresses to a few hundred kilobytes.
    header_only = _png(Image.new("1", (20000, 20000)))
    with pytest.raises(UploadRejected) as err:
        check_image(header_only, max_pixels=1_000_000)
    assert err.value.status == 413


def test_photos_are_private(detecting, predictor):
    alice, bob = login(detecting, "alice"), login(detecting, "bob")
    job = wait_for_job(detecting, alice, _upload(detecting, alice, predictor.photo(3)).json()["id"])
    for path in ("", "/overlay.png", "/supercategories.png"):
        assert detecting.get(f"/api/photos/{job['id']}{path}", headers=bob).status_code == 404
    assert detecting.get("/api/photos", headers=bob).json() == []
    assert detecting.get(f"/api/items/{job['items'][0]}", headers=bob).status_code == 404
    assert detecting.get(f"/api/items/{job['items'][0]}/cutout", headers=bob).status_code == 404


@pytest.mark.parametrize(
    "job_id", ["..%2F..%2Fw.sqlite", "..%2Fservice-secret", "0" * 31, "Z" * 32, "%00" * 8]
)
def test_no_path_outside_the_data_dir(detecting, job_id):
    alice = login(detecting, "alice")
    response = detecting.get(f"/api/photos/{job_id}", headers=alice)
    assert response.status_code == 404


def test_detection_does_not_block_other_requests(detecting, predictor):
    import threading

    alice = login(detecting, "alice")
    predictor.gate = threading.Event()
    job = _upload(detecting, alice, predictor.photo(4)).json()
    # While detection waits, the service answers.
    assert detecting.get("/health").status_code == 200
    assert (
        detecting.post(
            "/api/items", json={"id": "x", "category": "pants"}, headers=alice
        ).status_code
        == 201
    )
    assert detecting.get(f"/api/photos/{job['id']}", headers=alice).json()["status"] in (
        "queued",
        "running",
    )
    predictor.gate.set()
    assert wait_for_job(detecting, alice, job["id"])["status"] == "done"


def test_failed_detection_is_reported(detecting, predictor):
    alice = login(detecting, "alice")
    predictor.fail = RuntimeError("out of memory on the device")
    job = wait_for_job(detecting, alice, _upload(detecting, alice, predictor.photo(5)).json()["id"])
    # The person is told what to do; the exception is for the server's log.
    assert job["status"] == "failed" and "try again" in job["error"]
    assert "out of memory" not in job["error"] and "RuntimeError" not in job["error"]
    assert detecting.get(f"/api/photos/{job['id']}/overlay.png", headers=alice).status_code == 404
    predictor.fail = None
    job = wait_for_job(detecting, alice, _upload(detecting, alice, predictor.photo(6)).json()["id"])
    assert job["status"] == "done"


def test_a_photo_with_more_items_than_the_wardrobe_has_room_for_adds_none(
    db_url, tmp_path, predictor
):
    # The upload asks for room for one item; the photo's items are counted when they are
    # stored. A photo that would go past the limit is refused whole, photo and items.
    first, second = predictor.photo(0), predictor.photo(2)
    room = predictor.garments(second)  # the second alone fits, not after the first
    assert 0 < predictor.garments(first) < room
    settings = ServiceSettings(max_items=room)
    with TestClient(create_app(db_url, tmp_path / "data", predictor=predictor,
                               settings=settings)) as client:  # fmt: skip
        alice = login(client, "alice")
        done = wait_for_job(client, alice, _upload(client, alice, first).json()["id"])
        held = predictor.garments(first)
        assert done["status"] == "done" and len(done["items"]) == held
        refused = wait_for_job(client, alice, _upload(client, alice, second).json()["id"])
        assert refused["status"] == "failed" and f"at most {room} items" in refused["error"]
        assert "would add" in refused["error"] and refused["items"] == []
        listed = client.get("/api/items", headers=alice)
        assert listed.headers["x-total-count"] == str(held)
        # Nothing of it was kept: with room made, the same photo is detected afresh.
        for item in done["items"]:
            assert client.delete(f"/api/items/{item}", headers=alice).status_code == 204
        again = wait_for_job(client, alice, _upload(client, alice, second).json()["id"])
        assert again["status"] == "done" and not again["skipped"]
        assert len(again["items"]) == predictor.garments(second)


def test_unfinished_jobs_run_after_a_restart(tmp_path, predictor):
    url, data_dir = f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data"
    with TestClient(create_app(url, data_dir)) as client:  # no model: nothing runs
        alice = login(client, "alice")
        user_id = client.get("/api/me", headers=alice).json()["id"]
    data = predictor.photo(7)
    # As a server killed after accepting the upload leaves it.
    with WardrobeDatabase(url) as database:
        store = JobStore(database, data_dir)
        job = store.create(user_id, data, check_image(data, max_pixels=10**6))
    with TestClient(create_app(url, data_dir, predictor=predictor)) as client:
        done = wait_for_job(client, alice, job["id"])
        assert done["status"] == "done" and len(done["items"]) == predictor.garments(data)
        assert done["attempts"] == 1
    assert not store.upload_path(job).exists()


def test_without_a_model_photos_say_so_and_the_rest_works(service):
    alice = login(service, "alice")
    assert service.get("/health").json()["detection"] is False
    png = _png(Image.new("RGB", (16, 16)))
    response = _upload(service, alice, png)
    assert response.status_code == 503 and "without a model" in response.json()["detail"]
    assert service.get("/api/photos", headers=alice).json() == []
    assert service.get("/api/photos/" + "0" * 32, headers=alice).status_code == 404
    assert (
        service.post("/api/items", json={"id": "x", "category": "pants"}, headers=alice).status_code
        == 201
    )


def test_oversized_bodies_are_refused_before_parsing(detecting, tmp_path):
    alice = login(detecting, "alice")
    huge = b"\x89PNG" + bytes(2_000_000)
    response = _upload(detecting, alice, huge)
    assert response.status_code == 413 and "request body" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        boundary = b"--b\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(40):
            yield bytes(64 * 1024)

    response = detecting.post(
        "/api/photos",
        content=chunks(),
        headers=alice | {"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert detecting.get("/api/photos", headers=alice).json() == []
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_real_predictor_through_the_service(tmp_path, predictor):
    """The real Predictor (untrained tiny model, box threshold 0 so it finds boxes anywhere)
    on the worker thread: the contract between service, ingest and drawing, not accuracy."""
    import torch

    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.inference import Predictor
    from fashionkit.modeling import build_model

    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        "data.image_size=96", "model.box_score_thresh=0.0", "model.box_detections_per_img=10",
        "model.rpn_pre_nms_top_n_test=100", "model.rpn_post_nms_top_n_test=40",
    ])  # fmt: skip
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe)).eval()
    real = Predictor(model, score_threshold=0.0, recipe=recipe)
    settings = ServiceSettings(min_score=0.0)
    app = create_app(
        f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data", predictor=real, settings=settings
    )
    with TestClient(app) as client:
        alice = login(client, "alice")
        job = wait_for_job(client, alice, _upload(client, alice, predictor.photo(8, size=96)).json()["id"])
        assert job["status"] == "done", job
        assert job["items"], "an untrained model with threshold 0 still returns boxes"
        assert client.get(job["overlay_url"], headers=alice).status_code == 200
        for key in job["items"]:
            assert client.get(f"/api/items/{key}/cutout", headers=alice).status_code == 200


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(buffer, format=fmt)
    checked = check_image(buffer.getvalue(), max_pixels=600)
    assert (checked.format, checked.width, checked.height) == (fmt, 30, 20)
    with pytest.raises(UploadRejected) as err:
        check_image(buffer.getvalue(), max_pixels=599)
    assert err.value.status == 413


def test_recover_removes_what_a_killed_server_left(tmp_path, predictor):
    database = WardrobeDatabase(f"sqlite:///{tmp_path / 'w.sqlite'}")
    one, two = database.user_id("one"), database.user_id("two")
    # A record of the file layout, from before jobs were rows: moved into the table.
    old_id = "f" * 32
    data = predictor.photo(9)
    (tmp_path / "jobs" / str(two)).mkdir(parents=True)
    (tmp_path / "jobs" / str(two) / f"{old_id}.json").write_text(json.dumps({
        "id": old_id, "user_id": two, "status": "queued", "created_at": "2026-11-30T10:00:00+00:00",
        "width": 64, "height": 64, "format": "PNG", "items": [], "skipped": False,
        "duplicates": [], "overlay": None, "supercategories": None, "error": None, "attempts": 0,
    }))  # fmt: skip
    (tmp_path / "jobs" / str(two) / ".incoming-x2").write_bytes(b'{"id": ')
    store = JobStore(database, tmp_path)
    (store.uploads_dir / f"{old_id}.png").write_bytes(data)
    image = check_image(data, max_pixels=10**6)
    queued = store.create(one, data, image)
    finished = store.create(one, data, image)
    finished["status"] = "done"
    store.save(finished)  # killed before its upload was deleted
    lost = store.create(one, data, image)
    store.upload_path(lost).unlink()
    (store.uploads_dir / "0123456789abcdef0123456789abcdef.png").write_bytes(data)  # no job
    (store.uploads_dir / ".incoming-x1").write_bytes(data[:100])  # killed mid-write

    counts = store.recover()
    assert counts == {
        "temporary": 1, "orphan_uploads": 2, "lost_uploads": 1, "imported_records": 1
    }  # fmt: skip
    assert sorted(p.name for p in store.uploads_dir.iterdir()) == sorted(
        [store.upload_path(queued).name, f"{old_id}.png"]
    )
    assert list((tmp_path / "jobs").glob("**/*.*")) == []
    old = store.get(old_id, two)
    assert old["status"] == "queued" and old["created_at"] == "2026-11-30T10:00:00+00:00"
    assert [j["id"] for j in store.of_user(two)] == [old_id]
    assert {j["id"] for j in store.of_user(one)} == {queued["id"], finished["id"], lost["id"]}
    assert store.get(lost["id"], one)["status"] == "failed"
    assert "upload it again" in store.get(lost["id"], one)["error"]
    assert store.get(queued["id"], one)["status"] == "queued"
    with pytest.raises(NotFoundError):
        store.get(queued["id"], two)  # another person's job is not there for them
    assert store.recover() == {
        "temporary": 0, "orphan_uploads": 0, "lost_uploads": 0, "imported_records": 0
    }  # fmt: skip
    database.close()


def _store_with_a_job(database, tmp_path, predictor, index=12):
    user = database.user_id("alice")
    store = JobStore(database, tmp_path)
    data = predictor.photo(index)
    return store, store.create(user, data, check_image(data, max_pixels=10**6))


def _expire(database, job) -> None:
    """As when the holder's process died :data:`LEASE_S` ago: its lease is in the past."""
    from sqlalchemy import update

    from fashionkit.wardrobe.models import JobRow

    with database.engine.begin() as connection:
        connection.execute(
            update(JobRow)
            .where(JobRow.id == job["id"])
            .values(lease_until=dt.datetime(2000, 1, 1))
        )


def test_a_job_is_held_by_one_worker_until_its_lease_runs_out(db_url, tmp_path, predictor):
    with WardrobeDatabase(db_url) as database:
        store, job = _store_with_a_job(database, tmp_path, predictor)
        first = store.claim_next("process-a", lease_s=30)
        assert first is not None and first["id"] == job["id"]
        assert first["status"] == "running" and first["attempts"] == 1
        assert store.claim_next("process-b", lease_s=30) is None  # held, lease running
        assert store.renew(first, "process-a", lease_s=30)
        assert not store.renew(first, "process-b", lease_s=30)  # b holds nothing

        _expire(database, first)  # a died: its lease ran out
        second = store.claim_next("process-b", lease_s=30)
        assert second is not None and second["id"] == job["id"] and second["attempts"] == 2
        assert store.claim_next("process-c", lease_s=30) is None
        # a was only slow: it can neither renew nor write its result any more.
        assert not store.renew(first, "process-a", lease_s=30)
        first.update(status="done", items=["from-a"])
        assert not store.finish(first, "process-a")
        assert store.get(job["id"], job["user_id"])["status"] == "running"
        second.update(status="done", items=["from-b"])
        assert store.finish(second, "process-b")
        assert not store.finish(second, "process-b")  # once
        ended = store.get(job["id"], job["user_id"])
        assert ended["status"] == "done" and ended["items"] == ["from-b"]
        assert ended["attempts"] == 2
        assert store.claim_next("process-c", lease_s=30) is None


def test_a_job_started_too_often_is_failed_not_taken(db_url, tmp_path, predictor):
    from fashionkit.service.photos import MAX_ATTEMPTS

    with WardrobeDatabase(db_url) as database:
        store, job = _store_with_a_job(database, tmp_path, predictor)
        for k in range(MAX_ATTEMPTS):
            taken = store.claim_next(f"process-{k}", lease_s=30)
            assert taken is not None and taken["attempts"] == k + 1
            _expire(database, taken)
        assert store.claim_next("process-last", lease_s=30) is None
        failed = store.get(job["id"], job["user_id"])
        assert failed["status"] == "failed" and "interrupted" in failed["error"]
        assert not store.upload_path(job).exists()


def test_oldest_job_first_and_each_taken_once_by_racing_workers(db_url, tmp_path, predictor):
    """Eight threads (each its own worker name) take 12 jobs at once: every job exactly once,
    and the first taken is the oldest."""
    import threading

    with WardrobeDatabase(db_url) as database:
        user = database.user_id("alice")
        store = JobStore(database, tmp_path)
        data = predictor.photo(13)
        image = check_image(data, max_pixels=10**6)
        jobs = [store.create(user, data, image)["id"] for _ in range(12)]
        first = store.claim_next("first", lease_s=30)
        assert first is not None and first["id"] == jobs[0]
        taken: list[str] = []
        lock = threading.Lock()

        def worker(k: int) -> None:
            while (job := store.claim_next(f"w{k}", lease_s=30)) is not None:
                with lock:
                    taken.append(job["id"])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(taken) == sorted(jobs[1:])


def test_a_worker_whose_lease_was_taken_writes_nothing(db_url, tmp_path, predictor):
    """The worker stalls in detection past its lease and another process takes the job over:
    its result is refused, and it leaves the upload to the new holder, who then runs the job
    and reports the items the first one had stored (once)."""
    import time

    from fashionkit.service.photos import PhotoWorker

    with WardrobeDatabase(db_url) as database:
        store, job = _store_with_a_job(database, tmp_path, predictor, index=15)
        taken: list[dict] = []

        def stalled(paths, **kwargs):
            # What a stall past the lease leads to: the lease runs out, another takes it.
            (held,) = [j for j in store.unfinished() if j["id"] == job["id"]]
            _expire(database, held)
            taken.append(store.claim_next("process-b", lease_s=30))
            return predictor(paths, **kwargs)

        worker = PhotoWorker(
            store, stalled, lambda user_id: database.wardrobe("alice"), poll_s=0.05
        )
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while not taken or worker._held is not None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            worker.shutdown(wait=True)
        now = store.get(job["id"], job["user_id"])
        assert now["status"] == "running" and now["attempts"] == 2 and now["items"] == []
        assert store.upload_path(job).exists()  # for process b

        b = PhotoWorker(store, predictor, lambda user_id: database.wardrobe("alice"))
        b.name = "process-b"
        b._run_job(taken[0])
        done = store.get(job["id"], job["user_id"])
        assert done["status"] == "done" and len(done["items"]) == predictor.garments(
            predictor.photo(15)
        )
        assert not store.upload_path(job).exists()
        # b found the photo stored by a: its items are reported, not stored a second time.
        assert sorted(done["items"]) == sorted(i.id for i in database.wardrobe("alice").items())


def test_recover_leaves_an_upload_another_process_is_recording(tmp_path, predictor):
    """An upload renamed into place whose job is not committed yet is locked by its writer:
    a recover() meanwhile (another process starting) leaves it; once the writer is gone it is
    an orphan and goes."""
    import fcntl
    import os

    with WardrobeDatabase(f"sqlite:///{tmp_path / 'w.sqlite'}") as database:
        store = JobStore(database, tmp_path)
        path = store.uploads_dir / ("0" * 32 + ".png")
        path.write_bytes(predictor.photo(14))
        temporary = store.uploads_dir / ".incoming-abc"
        temporary.write_bytes(b"half")
        holders = [os.open(p, os.O_RDONLY) for p in (path, temporary)]
        # Another process's lock: flock locks belong to the open file, so this one conflicts.
        for fd in holders:
            fcntl.flock(fd, fcntl.LOCK_EX)
        counts = store.recover()
        assert counts["orphan_uploads"] == counts["temporary"] == 0
        assert path.exists() and temporary.exists()
        for fd in holders:
            os.close(fd)
        counts = store.recover()
        assert counts["orphan_uploads"] == counts["temporary"] == 1
        assert not path.exists() and not temporary.exists()


def _job_left_running(tmp_path, predictor, index, attempts):
    """A server that knew alice, then stopped with a job of hers 'running'."""
    url, data_dir = f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data"
    with TestClient(create_app(url, data_dir)) as client:
        alice = login(client, "alice")
        user_id = client.get("/api/me", headers=alice).json()["id"]
    data = predictor.photo(index)
    with WardrobeDatabase(url) as database:
        store = JobStore(database, data_dir)
        job = store.create(user_id, data, check_image(data, max_pixels=10**6))
        job["status"], job["attempts"] = "running", attempts
        store.save(job)
    return url, data_dir, alice, job, data


def test_job_interrupted_after_storing_reports_its_items(tmp_path, predictor):
    """Killed between the database commit and the job record's update: the job runs again,
    finds its photo stored, and reports the items its first attempt added (not 'skipped')."""
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.ingest import ingest_photos

    url, data_dir, alice, job, data = _job_left_running(tmp_path, predictor, 10, attempts=1)
    with Wardrobe(url, user="alice") as wardrobe:  # what the first attempt committed
        upload = data_dir / "uploads" / f"{job['id']}.png"
        stored = ingest_photos(wardrobe, predictor, [upload]).added
    assert len(stored) == predictor.garments(data) > 0
    with TestClient(create_app(url, data_dir, predictor=predictor)) as client:
        done = wait_for_job(client, alice, job["id"])
        assert done["status"] == "done" and not done["skipped"], done
        assert done["items"] == stored and done["attempts"] == 2
        assert len(client.get("/api/items", headers=alice).json()) == len(stored)


def test_job_interrupted_too_often_is_reported_failed(tmp_path, predictor):
    from fashionkit.service.photos import MAX_ATTEMPTS

    url, data_dir, alice, job, _ = _job_left_running(tmp_path, predictor, 11, MAX_ATTEMPTS)
    with TestClient(create_app(url, data_dir, predictor=predictor)) as client:
        failed = client.get(f"/api/photos/{job['id']}", headers=alice).json()
        assert failed["status"] == "failed" and "interrupted" in failed["error"]
        assert client.get("/api/items", headers=alice).json() == []
    assert predictor.calls == 0
    assert not (data_dir / "uploads" / f"{job['id']}.png").exists()  # tidied at the next start


def test_waiting_photos_per_person_are_capped(tmp_path, predictor):
    import threading

    settings = ServiceSettings(max_waiting_photos=2)
    predictor.gate = threading.Event()
    app = create_app(
        f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data", predictor=predictor,
        settings=settings,
    )  # fmt: skip
    with TestClient(app) as client:
        alice, bob = login(client, "alice"), login(client, "bob")
        assert _upload(client, alice, b"not an image").status_code == 415  # takes no place
        first = [_upload(client, alice, predictor.photo(20 + k)).json()["id"] for k in range(2)]
        refused = _upload(client, alice, predictor.photo(22))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
        assert "waiting for detection" in refused.json()["detail"]
        assert _upload(client, bob, predictor.photo(23)).status_code == 202  # his own places
        predictor.gate.set()
        for job_id in first:
            assert wait_for_job(client, alice, job_id)["status"] == "done"
        assert _upload(client, alice, predictor.photo(22)).status_code == 202
