"""Photo uploads and the background detection jobs of the web service.

An upload is checked before anything is kept: at most ``max_bytes`` bytes, a JPEG, PNG or
WebP *by its content* (a multi-picture JPEG, as phones and cameras write, is a JPEG: its first
picture is the photo) (the client's file name and content type are ignored), at most
``max_pixels`` pixels (read from the header, before decoding), and fully decodable. It is
written under a server-chosen name in ``DATA_DIR/uploads`` (to a temporary name and renamed,
so a crash never leaves half a file), then its job is a row of the wardrobe database
(:class:`~fashionkit.wardrobe.models.JobRow`). A worker thread claims each queued job once
(an atomic update, so several processes on one database never run a job twice) and runs it
through
:func:`fashionkit.wardrobe.ingest.ingest_photos` (which stores a photo and all of its items in
one transaction), and draws the Fig. 8 overlay and the Fig. 9 super-category view into the
wardrobe's image store.

A server killed at any point loses nothing it answered for and keeps nothing half-done. At the
next start, :meth:`JobStore.recover` removes temporary files and uploads that never got a job
record (their client got no 202) or whose job had finished; jobs left queued or running run
again (records of the earlier file layout, ``DATA_DIR/jobs/<user id>/<job id>.json``, are
moved into the table first). A job interrupted while running is run again up to :data:`MAX_ATTEMPTS` times in all,
then reported failed (a photo that kills the server must not do so at every start); when its
earlier attempt had already stored the photo, the job reports that photo's items.

Job record (also the JSON of ``GET /api/photos/{id}``)::

    {"id": str (32 hex), "user_id": int, "status": "queued"|"running"|"done"|"failed",
     "created_at": ISO time, "width": int, "height": int, "format": "JPEG"|"PNG"|"WEBP",
     "items": [item ids added], "skipped": bool (photo was already in the wardrobe),
     "duplicates": [{"new", "existing", "color_distance", "appearance"}],
     "overlay": sha256 | null, "supercategories": sha256 | null,
     "error": str | null (written for the person), "attempts": int (times detection started)}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import socket
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select, update

from fashionkit.errors import NotFoundError
from fashionkit.wardrobe.database import WardrobeDatabase
from fashionkit.wardrobe.models import JobRow

__all__ = [
    "UploadRejected",
    "CheckedImage",
    "check_image",
    "JobStore",
    "PhotoWorker",
    "UnusablePhoto",
    "JOB_ID",
    "MAX_ATTEMPTS",
]

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: Uploads decoded at once to check them (the others wait): a picture small on the wire may be
#: huge decoded (an all-zero 6300×6300 PNG is 113 KiB and 119 MB of pixels), so the memory for
#: checks is bounded by this many pictures of ``max_pixels``, whatever the number of uploads.
DECODING_AT_ONCE = 2
# The decodes run on these threads only, not on whichever request thread checks the upload:
# the C allocator keeps freed memory in per-thread arenas, so decodes spread over the 40
# request threads would each leave a picture's worth resident even when run one at a time.
_decoders = ThreadPoolExecutor(max_workers=DECODING_AT_ONCE, thread_name_prefix="fashionkit-check")
# Bytes a decoded pixel takes at most in the modes Pillow opens JPEG, PNG and WebP in (RGBA,
# CMYK, 32-bit integer).
BYTES_PER_PIXEL = 4
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_TEMPORARY = ".incoming-"
# Times a job may be started before an interruption is taken as its own doing.
MAX_ATTEMPTS = 3


class UnusablePhoto(Exception):
    """A photo detection could not read; its message is for the person who uploaded it."""


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


def _stream(data: bytes | BinaryIO) -> BinaryIO:
    if isinstance(data, bytes | bytearray):
        return io.BytesIO(data)
    data.seek(0)
    return data


def _size(data: bytes | BinaryIO) -> int:
    if isinstance(data, bytes | bytearray):
        return len(data)
    return data.seek(0, os.SEEK_END)


def check_image(data: bytes | BinaryIO, *, max_pixels: int) -> CheckedImage:
    """Sniff and validate an uploaded image (its bytes, or a seekable file of them);
    :class:`UploadRejected` (415 for other types, 413 for too many pixels, 400 for a damaged
    file) otherwise.

    Memory: the header is read first, and only a picture within ``max_pixels`` is decoded,
    at most :data:`DECODING_AT_ONCE` at a time in the process, so checking takes at most
    ``DECODING_AT_ONCE × BYTES_PER_PIXEL × max_pixels`` bytes of pixels (320 MB with the
    defaults) however many uploads arrive together. A JPEG is decoded at an eighth of its
    size (every coefficient is still read, so damage is still found)."""
    from PIL import Image, UnidentifiedImageError

    if not _size(data):
        raise UploadRejected(400, "the uploaded file is empty")
    try:
        # formats=: only these decoders may even look at the bytes.
        with Image.open(_stream(data), formats=list(_SUFFIXES)) as image:
            # Only the header so far (a PNG's EXIF may follow its pixels: read after decoding).
            width, height = image.size
            # Pillow calls a JPEG with more pictures after the first (MPF) "MPO"; the file is a
            # JPEG to every reader, and the first picture is the one they show.
            kind = "JPEG" if image.format == "MPO" else str(image.format)
    except Image.DecompressionBombError:
        # PIL refuses images far above its own pixel limit at open, before our cap is checked.
        raise UploadRejected(413, f"image is over the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise UploadRejected(
            415, "not a JPEG, PNG or WebP image (the type is read from the content)"
        ) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise UploadRejected(400, f"unreadable image: {err}") from None
    if width * height > max_pixels:
        raise UploadRejected(
            413, f"image of {width}×{height} pixels is over the limit of {max_pixels} pixels"
        )
    try:
        turned = _decoders.submit(_decode, data, kind).result()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UploadRejected(400, f"damaged {kind} image: {err}") from None
    return CheckedImage(kind, height, width) if turned else CheckedImage(kind, width, height)


def _decode(data: bytes | BinaryIO, kind: str) -> bool:
    """Decode the whole picture (on a :data:`_decoders` thread); whether its EXIF orientation
    shows it turned by a quarter (its width and height swapped)."""
    from PIL import Image

    with Image.open(_stream(data), formats=[kind]) as image:
        if kind == "JPEG":
            # DCT scaling: the whole file is decoded, into 1/64 of the pixels.
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        return image.getexif().get(0x0112) in (5, 6, 7, 8)


def _write_atomic(path: Path, data: bytes | BinaryIO) -> str:
    """Write ``data`` (bytes, or a file copied in blocks) to ``path`` whole or not at all;
    returns its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
    try:
        with os.fdopen(fd, "wb") as f:
            source = _stream(data)
            while block := source.read(1 << 20):
                digest.update(block)
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_EMPTY_RESULT: dict = {
    "items": [], "skipped": False, "duplicates": [], "overlay": None, "supercategories": None,
}  # fmt: skip


def _job_of(row: JobRow) -> dict:
    result = {**_EMPTY_RESULT, **(row.result or {})}
    return {
        "id": row.id,
        "user_id": row.user_id,
        "status": row.status,
        "created_at": row.created_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
        "width": row.width,
        "height": row.height,
        "format": row.photo_format,
        "items": list(result["items"]),
        "skipped": bool(result["skipped"]),
        "duplicates": list(result["duplicates"]),
        "overlay": result["overlay"],
        "supercategories": result["supercategories"],
        "error": row.error,
        "attempts": row.attempts,
    }


class JobStore:
    """Job records in the wardrobe database (:class:`~fashionkit.wardrobe.models.JobRow`) and
    the pending uploads on disk, in ``root/uploads``. Jobs are handled as the dicts of the
    module docstring."""

    def __init__(self, database: WardrobeDatabase, root: Path):
        self.database = database
        self.uploads_dir = root / "uploads"
        self.legacy_jobs_dir = root / "jobs"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)

    def upload_path(self, job: dict) -> Path:
        return self.uploads_dir / f"{job['id']}{_SUFFIXES[job['format']]}"

    def create(self, user_id: int, data: bytes | BinaryIO, image: CheckedImage) -> dict:
        """A queued job for the checked upload ``data`` (bytes, or a seekable file copied in
        blocks, so an upload need not be in memory)."""
        row = JobRow(
            id=uuid.uuid4().hex,
            user_id=user_id,
            status="queued",
            photo_format=image.format,
            width=image.width,
            height=image.height,
            attempts=0,
            created_at=_now(),
        )
        # The photo first: a job record always has its upload until the job has finished.
        row.photo_sha256 = _write_atomic(self.uploads_dir / f"{row.id}{image.suffix}", data)
        with self.database.sessions.begin() as session:
            session.add(row)
        return _job_of(row)

    def save(self, job: dict) -> None:
        """Store the job's status, attempts, error and result (and when it finished)."""
        values = {
            "status": job["status"],
            "attempts": job["attempts"],
            "error": job["error"],
            "result": {key: job[key] for key in _EMPTY_RESULT},
        }
        if job["status"] in ("done", "failed"):
            values["finished_at"] = _now()
        with self.database.engine.begin() as connection:
            connection.execute(update(JobRow).where(JobRow.id == job["id"]).values(**values))

    def claim(self, job_id: str, user_id: int, by: str) -> dict | None:
        """Take a queued job for running: one atomic ``UPDATE … WHERE status = 'queued'``, so
        that of several processes exactly one gets it. The job, now running with one attempt
        more; ``None`` when it is not queued (someone else has it, or it ended)."""
        now = _now()
        with self.database.engine.begin() as connection:
            taken = connection.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued")
                .values(
                    status="running",
                    attempts=JobRow.attempts + 1,
                    claimed_by=by,
                    claimed_at=now,
                    started_at=now,
                )
            ).rowcount
        return self.get(job_id, user_id) if taken else None

    def get(self, job_id: str, user_id: int) -> dict:
        """The job, when it belongs to ``user_id``; :class:`NotFoundError` otherwise (also for
        another person's job: its existence is not disclosed)."""
        if not JOB_ID.fullmatch(job_id) or not isinstance(user_id, int):
            raise NotFoundError("photo", job_id)
        with self.database.sessions() as session:
            row = session.scalar(
                select(JobRow).where(JobRow.id == job_id, JobRow.user_id == user_id)
            )
            if row is None:
                raise NotFoundError("photo", job_id)
            return _job_of(row)

    def _select(self, *where, offset: int = 0, limit: int | None = None) -> list[dict]:
        with self.database.sessions() as session:
            rows = session.scalars(
                select(JobRow)
                .where(*where)
                .order_by(JobRow.created_at, JobRow.id)
                .offset(offset)
                .limit(limit)
            )
            return [_job_of(row) for row in rows]

    def all(self) -> list[dict]:
        return self._select()

    def of_user(self, user_id: int, *, offset: int = 0, limit: int | None = None) -> list[dict]:
        """The person's jobs, oldest first (``offset``/``limit``: one page of them)."""
        return self._select(JobRow.user_id == user_id, offset=offset, limit=limit)

    def count_of_user(self, user_id: int) -> int:
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(JobRow).where(JobRow.user_id == user_id)
                ).scalar_one()
            )

    def waiting(self, user_id: int) -> int:
        """How many of the person's jobs are queued or running, in every process."""
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(JobRow)
                    .where(JobRow.user_id == user_id, JobRow.status.in_(("queued", "running")))
                ).scalar_one()
            )

    def unfinished(self) -> list[dict]:
        return self._select(JobRow.status.in_(("queued", "running")))

    def requeue(self, job: dict) -> None:
        """Put a job that was running when its process stopped back in the queue."""
        with self.database.engine.begin() as connection:
            connection.execute(
                update(JobRow)
                .where(JobRow.id == job["id"])
                .values(status="queued", claimed_by=None, claimed_at=None)
            )
        job["status"] = "queued"

    def _import_legacy_records(self) -> int:
        """Job records of the file layout (``jobs/<user id>/<job id>.json``) into the table."""
        if not self.legacy_jobs_dir.is_dir():
            return 0
        imported = 0
        for path in sorted(self.legacy_jobs_dir.glob("**/*.json")):
            try:
                job = json.loads(path.read_text("utf-8"))
                row = JobRow(
                    id=job["id"],
                    user_id=job["user_id"],
                    status=job["status"],
                    photo_sha256="",
                    photo_format=job["format"],
                    width=job["width"],
                    height=job["height"],
                    attempts=job.get("attempts", 0),
                    created_at=dt.datetime.fromisoformat(job["created_at"])
                    .astimezone(dt.UTC)
                    .replace(tzinfo=None),
                    error=job.get("error"),
                    result={key: job.get(key, _EMPTY_RESULT[key]) for key in _EMPTY_RESULT},
                )
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("unreadable job record %s, left in place", path)
                continue
            upload = self.upload_path(job)
            if upload.exists():
                row.photo_sha256 = hashlib.sha256(upload.read_bytes()).hexdigest()
            with self.database.sessions.begin() as session:
                if session.get(JobRow, row.id) is None:
                    session.add(row)
            path.unlink()
            imported += 1
        for path in self.legacy_jobs_dir.glob(f"**/{_TEMPORARY}*"):
            path.unlink(missing_ok=True)
        return imported

    def recover(self) -> dict[str, int]:
        """Tidy what a killed server left, before any job runs: temporary files, uploads
        without a job record or whose job has finished, and unfinished jobs whose upload is
        missing (marked failed). Returns counts of each, for the log."""
        counts = {"temporary": 0, "orphan_uploads": 0, "lost_uploads": 0}
        counts["imported_records"] = self._import_legacy_records()
        for path in self.uploads_dir.glob(f"{_TEMPORARY}*"):
            path.unlink(missing_ok=True)
            counts["temporary"] += 1
        pending = {self.upload_path(job).name: job for job in self.unfinished()}
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
    ``predictor_for(user_id)``: the predictor of that person's photos (default ``predictor``).
    """

    def __init__(
        self, store: JobStore, predictor, wardrobe_for: Callable, *, min_score: float = 0.5,
        predictor_for: Callable[[int], Any] | None = None,
    ):
        self.store = store
        self.predictor = predictor
        # The predictor of one person's photos (their own model when they taught one:
        # fashionkit.personal.models.PersonalPredictors); ``predictor`` for everyone otherwise.
        self.predictor_for = predictor_for or (lambda user_id: predictor)
        self.wardrobe_for = wardrobe_for
        self.min_score = min_score
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fashionkit-detect")
        self._waiting: Counter[int] = Counter()  # per person: jobs reserved or not finished
        self._waiting_lock = threading.Lock()
        # Names this process in the jobs it claims.
        self.name = f"{socket.gethostname()}:{os.getpid()}"

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
        for job in self.store.unfinished():
            if job["attempts"] >= MAX_ATTEMPTS:
                job["status"] = "failed"
                job["error"] = (
                    f"detection was interrupted {job['attempts']} times (the server stopped "
                    "while it ran); upload the photo again to retry"
                )
                self.store.save(job)
                self.store.upload_path(job).unlink(missing_ok=True)
                continue
            if job["status"] == "running":
                self.store.requeue(job)
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
        job = self.store.claim(job_id, user_id, self.name)
        if job is None:  # taken by another process, or no longer queued
            return
        upload = self.store.upload_path(job)
        try:
            self._detect(job, upload)
            job["status"] = "done"
        except UnusablePhoto as err:
            job["status"] = "failed"
            job["error"] = str(err)
        except Exception:  # a failed job is reported to its owner, not lost
            # The details are for the server's log; the person is told what they can do.
            log.exception("photo job %s failed", job_id)
            job["status"] = "failed"
            job["error"] = (
                "detection failed on the server; try again later, or upload another photo"
            )
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
        predictor = self.predictor_for(job["user_id"])
        predictions = []

        def recording(sources, **kwargs):
            out = predictor(sources, **kwargs)
            predictions.extend(out)
            return out

        report = ingest_photos(wardrobe, recording, [upload], min_score=self.min_score)
        if report.problems:
            raise UnusablePhoto("; ".join(p.message for p in report.problems))
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
