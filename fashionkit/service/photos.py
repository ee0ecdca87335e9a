"""Photo uploads and the background detection jobs of the web service.

An upload is checked before anything is kept: at most ``max_bytes`` bytes, a JPEG, PNG or
WebP *by its content* (the client's file name and content type are ignored), at most
``max_pixels`` pixels (read from the header, before decoding), and fully decodable. It is
written under a server-chosen name in ``DATA_DIR/uploads`` and a job record in
``DATA_DIR/jobs/<user id>/<job id>.json`` (both written to a temporary name and renamed, so a
crash never leaves half a file). One worker thread runs the jobs in order, each through
:func:`fashionkit.wardrobe.ingest.ingest_photos` (which stores a photo and all of its items in
one transaction), and draws the Fig. 8 overlay and the Fig. 9 super-category view into the
wardrobe's image store.

A server killed at any point loses nothing it answered for and keeps nothing half-done. At the
next start, :meth:`JobStore.recover` removes temporary files and uploads that never got a job
record (their client got no 202) or whose job had finished; jobs left queued or running run
again. A job interrupted while running is run again up to :data:`MAX_ATTEMPTS` times in all,
then reported failed (a photo that kills the server must not do so at every start); when its
earlier attempt had already stored the photo, the job reports that photo's items.

Job record (also the JSON of ``GET /api/photos/{id}``)::

    {"id": str (32 hex), "user_id": int, "status": "queued"|"running"|"done"|"failed",
     "created_at": ISO time, "width": int, "height": int, "format": "JPEG"|"PNG"|"WEBP",
     "items": [item ids added], "skipped": bool (photo was already in the wardrobe),
     "duplicates": [{"new", "existing", "color_distance", "appearance"}],
     "overlay": sha256 | null, "supercategories": sha256 | null, "error": str | null,
     "attempts": int (times detection started)}
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fashionkit.errors import NotFoundError

__all__ = [
    "UploadRejected",
    "CheckedImage",
    "check_image",
    "JobStore",
    "PhotoWorker",
    "JOB_ID",
    "MAX_ATTEMPTS",
]

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_TEMPORARY = ".incoming-"
# Times a job may be started before an interruption is taken as its own doing.
MAX_ATTEMPTS = 3


class UploadRejected(Exception):
    """An upload that is not acceptable; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CheckedImage:
    format: str  # "JPEG" | "PNG" | "WEBP"
    width: int
    height: int

    @property
    def suffix(self) -> str:
        return _SUFFIXES[self.format]


def check_image(data: bytes, *, max_pixels: int) -> CheckedImage:
    """Sniff and validate an uploaded image; :class:`UploadRejected` (415 for other types,
    413 for too many pixels, 400 for a damaged file) otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadRejected(400, "the uploaded file is empty")
    try:
        # formats=: only these decoders may even look at the bytes.
        with Image.open(io.BytesIO(data), formats=list(_SUFFIXES)) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: shown turned
                width, height = height, width
            checked = CheckedImage(str(image.format), width, height)
    except Image.DecompressionBombError:
        # PIL refuses images far above its own pixel limit at open, before our cap is checked.
        raise UploadRejected(413, f"image is over the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise UploadRejected(
            415, "not a JPEG, PNG or WebP image (the type is read from the content)"
        ) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise UploadRejected(400, f"unreadable image: {err}") from None
    if checked.width * checked.height > max_pixels:
        raise UploadRejected(
            413,
            f"image of {checked.width}×{checked.height} pixels is over the limit of "
            f"{max_pixels} pixels",
        )
    try:
        with Image.open(io.BytesIO(data), formats=[checked.format]) as image:
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UploadRejected(400, f"damaged {checked.format} image: {err}") from None
    return checked


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JobStore:
    """Job records and pending uploads on disk, under ``root``."""

    def __init__(self, root: Path):
        self.jobs_dir = root / "jobs"
        self.uploads_dir = root / "uploads"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, job_id: str, user_id: int) -> Path:
        # A person's records in a folder of their own: listing them reads no one else's.
        if not JOB_ID.fullmatch(job_id) or not isinstance(user_id, int):
            raise NotFoundError("photo", job_id)
        return self.jobs_dir / str(user_id) / f"{job_id}.json"

    def upload_path(self, job: dict) -> Path:
        return self.uploads_dir / f"{job['id']}{_SUFFIXES[job['format']]}"

    def create(self, user_id: int, data: bytes, image: CheckedImage) -> dict:
        job = {
            "id": uuid.uuid4().hex,
            "user_id": user_id,
            "status": "queued",
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "width": image.width,
            "height": image.height,
            "format": image.format,
            "items": [],
            "skipped": False,
            "duplicates": [],
            "overlay": None,
            "supercategories": None,
            "error": None,
            "attempts": 0,
        }
        # The photo first: a job record always has its upload until the job has finished.
        _write_atomic(self.upload_path(job), data)
        self.save(job)
        return job

    def save(self, job: dict) -> None:
        with self._lock:
            path = self._path(job["id"], job["user_id"])
            _write_atomic(path, json.dumps(job).encode("utf-8"))

    def get(self, job_id: str, user_id: int) -> dict:
        """The job, when it belongs to ``user_id``; :class:`NotFoundError` otherwise (also for
        another person's job: its existence is not disclosed)."""
        try:
            job = json.loads(self._path(job_id, user_id).read_text("utf-8"))
        except FileNotFoundError:
            raise NotFoundError("photo", job_id) from None
        if job.get("user_id") != user_id:
            raise NotFoundError("photo", job_id)
        return job

    @staticmethod
    def _read(paths) -> list[dict]:
        jobs = []
        for path in paths:
            try:
                jobs.append(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError):
                log.warning("unreadable job record %s", path)
        jobs.sort(key=lambda j: (j.get("created_at", ""), j.get("id", "")))
        return jobs

    def all(self) -> list[dict]:
        return self._read(self.jobs_dir.glob("*/*.json"))

    def of_user(self, user_id: int) -> list[dict]:
        return self._read((self.jobs_dir / str(user_id)).glob("*.json"))

    def recover(self) -> dict[str, int]:
        """Tidy what a killed server left, before any job runs: temporary files, uploads
        without a job record or whose job has finished, and unfinished jobs whose upload is
        missing (marked failed). Returns counts of each, for the log."""
        counts = {"temporary": 0, "orphan_uploads": 0, "lost_uploads": 0}
        for pattern in (f"{_TEMPORARY}*", f"*/{_TEMPORARY}*"):
            for folder in (self.jobs_dir, self.uploads_dir):
                for path in folder.glob(pattern):
                    path.unlink(missing_ok=True)
                    counts["temporary"] += 1
        # Records of the first layout (all in one folder) move to their person's folder.
        for job in self._read(self.jobs_dir.glob("*.json")):
            self.save(job)
            (self.jobs_dir / f"{job['id']}.json").unlink()
        pending = {}
        for job in self.all():
            if job.get("status") in ("queued", "running") and job.get("format") in _SUFFIXES:
                pending[self.upload_path(job).name] = job
        for path in self.uploads_dir.iterdir():
            if path.name not in pending:
                path.unlink(missing_ok=True)
                counts["orphan_uploads"] += 1
        for name, job in pending.items():
            if not (self.uploads_dir / name).exists():
                job["status"] = "failed"
                job["error"] = (
                    "the uploaded photo was lost when the server stopped; upload it again"
                )
                self.save(job)
                counts["lost_uploads"] += 1
        return counts


class PhotoWorker:
    """Runs detection jobs on one background thread (the model is not shared across threads).

    ``predictor``: a :class:`~fashionkit.inference.Predictor` or a callable with its
    interface. ``wardrobe_for(user_id)``: the person's :class:`~fashionkit.wardrobe.Wardrobe`.
    """

    def __init__(
        self, store: JobStore, predictor, wardrobe_for: Callable, *, min_score: float = 0.5
    ):
        self.store = store
        self.predictor = predictor
        self.wardrobe_for = wardrobe_for
        self.min_score = min_score
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fashionkit-detect")
        self._waiting: Counter[int] = Counter()  # per person: jobs reserved or not finished
        self._waiting_lock = threading.Lock()

    def reserve(self, user_id: int, limit: int) -> bool:
        """Hold a place for one more of this person's jobs, unless ``limit`` of theirs are
        waiting or running already. A reserved place is given back by :meth:`release`, or by
        the job's end once :meth:`submit` has run it."""
        with self._waiting_lock:
            if self._waiting[user_id] >= limit:
                return False
            self._waiting[user_id] += 1
            return True

    def release(self, user_id: int) -> None:
        with self._waiting_lock:
            self._waiting[user_id] -= 1

    def submit(self, job: dict, *, reserved: bool = False):
        if not reserved:
            with self._waiting_lock:
                self._waiting[job["user_id"]] += 1
        return self._pool.submit(self._run, job["id"], job["user_id"])

    def resume(self) -> int:
        """Queue again the jobs a previous run left unfinished, oldest first; a job already
        started :data:`MAX_ATTEMPTS` times is marked failed instead. Returns how many were
        queued."""
        queued = 0
        for job in self.store.all():
            if job.get("status") not in ("queued", "running"):
                continue
            if job.get("attempts", 0) >= MAX_ATTEMPTS:
                job["status"] = "failed"
                job["error"] = (
                    f"detection was interrupted {job['attempts']} times (the server stopped "
                    "while it ran); upload the photo again to retry"
                )
                self.store.save(job)
                self.store.upload_path(job).unlink(missing_ok=True)
                continue
            self.submit(job)
            queued += 1
        return queued

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, job_id: str, user_id: int) -> None:
        released = threading.Event()
        try:
            self._run_job(job_id, user_id, released)
        finally:
            if not released.is_set():
                self.release(user_id)

    def _run_job(self, job_id: str, user_id: int, released: threading.Event) -> None:
        job = self.store.get(job_id, user_id)
        job["status"] = "running"
        job["attempts"] = job.get("attempts", 0) + 1
        self.store.save(job)
        upload = self.store.upload_path(job)
        try:
            self._detect(job, upload)
            job["status"] = "done"
        except Exception as err:  # a failed job is reported to its owner, not lost
            log.exception("photo job %s failed", job_id)
            job["status"] = "failed"
            job["error"] = f"{type(err).__name__}: {err}"
        # The place is free before the record says so: whoever sees "done" may upload again.
        self.release(user_id)
        released.set()
        self.store.save(job)
        upload.unlink(missing_ok=True)

    def _detect(self, job: dict, upload: Path) -> None:
        from fashionkit.inference.visualize import draw_overlay, draw_supercategories
        from fashionkit.wardrobe.image_files import file_digest
        from fashionkit.wardrobe.ingest import ingest_photos

        wardrobe = self.wardrobe_for(job["user_id"])
        predictions = []

        def recording(sources, **kwargs):
            out = self.predictor(sources, **kwargs)
            predictions.extend(out)
            return out

        report = ingest_photos(wardrobe, recording, [upload], min_score=self.min_score)
        if report.problems:
            raise ValueError("; ".join(p.message for p in report.problems))
        job["items"] = list(report.added)
        job["skipped"] = bool(report.skipped)
        if report.skipped and job["attempts"] > 1:
            # An earlier attempt of this job stored the photo and its items, then the server
            # stopped before the job record said so: report them as this job's.
            job["items"] = wardrobe.photo_items(file_digest(upload))
            job["skipped"] = False
        job["duplicates"] = [
            {
                "new": d.new,
                "existing": d.existing,
                "color_distance": round(d.color_distance, 4),
                "appearance": round(d.appearance, 4),
            }
            for d in report.duplicates
        ]
        prediction = predictions[0] if predictions else None
        if prediction is not None and prediction.photo is not None:
            for key, draw in (("overlay", draw_overlay), ("supercategories", draw_supercategories)):
                buffer = io.BytesIO()
                draw(prediction).save(buffer, format="PNG")
                job[key] = wardrobe.images.put_bytes(buffer.getvalue(), ".png")
