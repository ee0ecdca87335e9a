"""Photo uploads and the background detection jobs of the web service.

An upload is checked before anything is kept: at most ``max_bytes`` bytes, a JPEG, PNG or
WebP *by its content* (a multi-picture JPEG, as phones and cameras write, is a JPEG: its first
picture is the photo) (the client's file name and content type are ignored), at most
``max_pixels`` pixels (read from the header, before decoding), and fully decodable. It is
written under a server-chosen name in ``DATA_DIR/uploads`` (to a temporary name and renamed,
so a crash never leaves half a file), then its job is a row of the wardrobe database
(:class:`~fashionkit.wardrobe.models.JobRow`). Each process's :class:`PhotoWorker` takes jobs
from that table, whichever process accepted them, and runs each through
:func:`fashionkit.wardrobe.ingest.ingest_photos` (which stores a photo and all of its items in
one transaction), and draws the Fig. 8 overlay and the Fig. 9 super-category view into the
wardrobe's image store.

Several processes on one database (``serve --workers N``, or several machines sharing a
PostgreSQL database and the data folder) share the jobs through leases. A worker takes a job
with one conditional ``UPDATE`` — the job is queued, or running under a lease that has run out
— that names it the holder, counts an attempt and sets ``lease_until`` :data:`LEASE_S` ahead;
of several processes exactly one such update succeeds. While it runs the job the holder renews
the lease every third of :data:`LEASE_S` (``ServiceSettings.job_lease_s``), so a job whose
process died is taken over by a live one within :data:`LEASE_S`, without waiting for the dead
one to come back. The result is
written only by the holder of the latest attempt (the final update names holder and attempt),
so a process that lost its lease to another, having stalled past it, cannot write a second
result. Leases compare the processes' clocks: machines sharing a database keep them in step
(NTP), well within :data:`LEASE_S`.

A server killed at any point loses nothing it answered for and keeps nothing half-done.
:meth:`JobStore.recover` (at every start, and every :data:`TIDY_S` in a worker) removes
temporary files and uploads that never got a job record (their client got no 202) or whose job
had finished — a file another live process is still writing or about to record is locked by
it (``flock``) and left alone — and marks failed the unfinished jobs whose upload is missing
(records of the earlier file layout, ``DATA_DIR/jobs/<user id>/<job id>.json``, are moved into
the table first). A job is started at most :data:`MAX_ATTEMPTS` times in all, then reported
failed (a photo that kills the server must not do so at every start); when an earlier attempt
had already stored the photo, the job reports that photo's items.

Job record (also the JSON of ``GET /api/photos/{id}``)::

    {"id": str (32 hex), "user_id": int, "status": "queued"|"running"|"done"|"failed",
     "created_at": ISO time, "width": int, "height": int, "format": "JPEG"|"PNG"|"WEBP",
     "items": [item ids added], "skipped": bool (photo was already in the wardrobe),
     "duplicates": [{"new", "existing", "color_distance", "appearance", "found_by"}],
     "overlay": sha256 | null, "supercategories": sha256 | null,
     "error": str | null (written for the person), "attempts": int (times detection started),
     "kind": "photo"}

A job of kind ``"outfit"`` (a "today's outfit" photo, :mod:`fashionkit.service.outfit_photos`)
runs through the same queue, claims and recovery; its record has ``"kind": "outfit"`` and the
keys of :data:`fashionkit.service.outfit_photos.EMPTY_RESULT` instead of ``items`` …
``supercategories``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import and_, func, or_, select, update

from fashionkit.errors import LimitError, NotFoundError
from fashionkit.wardrobe import file_locks
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
    "LEASE_S",
    "POLL_S",
    "TIDY_S",
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
#: Seconds a running job stays with its process without a renewal (renewed every third of it).
LEASE_S = 30.0
#: Seconds between a worker's reads of the job table when nothing woke it.
POLL_S = 2.0
#: Seconds between a worker's tidying of what stopped processes left (:meth:`JobStore.recover`).
TIDY_S = 300.0


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


def _unused(path: Path) -> int | None:
    """An open descriptor of ``path`` locked for us, when no live process holds it (the caller
    closes it); ``None`` when one does, or the file is gone."""
    try:
        return file_locks.open_unused(path)
    except FileNotFoundError:
        return None


def _write_locked(path: Path, data: bytes | BinaryIO) -> tuple[str, int]:
    """Write ``data`` (bytes, or a file copied in blocks) to ``path`` whole or not at all;
    returns its SHA-256 and a descriptor holding the file locked (``file_locks.hold``) from
    before its first byte, for the caller to close once the file's job is recorded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
    try:
        file_locks.hold(fd)
        with os.fdopen(os.dup(fd), "wb") as f:
            source = _stream(data)
            while block := source.read(1 << 20):
                digest.update(block)
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        os.close(fd)
        raise
    return digest.hexdigest(), fd


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_EMPTY_RESULT: dict = {
    "items": [], "skipped": False, "duplicates": [], "overlay": None, "supercategories": None,
}  # fmt: skip


def _result_keys(kind: str) -> dict:
    if kind == "outfit":
        from fashionkit.service.outfit_photos import EMPTY_RESULT

        return EMPTY_RESULT
    return _EMPTY_RESULT


def _job_of(row: JobRow) -> dict:
    """The job record of a row of either kind: the fields every job has, and the result keys
    of its kind (:data:`_EMPTY_RESULT`, or the outfit photos' ``EMPTY_RESULT``) with their
    lists copied, so that a record never shares a list with the row."""
    kind = row.kind or "photo"
    empty = _result_keys(kind)
    result = {**empty, **(row.result or {})}
    return {
        "id": row.id,
        "user_id": row.user_id,
        "status": row.status,
        "created_at": row.created_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
        "width": row.width,
        "height": row.height,
        "format": row.photo_format,
        **{key: list(result[key]) if isinstance(result[key], list) else result[key]
           for key in empty},
        "error": row.error,
        "attempts": row.attempts,
        "kind": kind,
    }


def _takeable(now: dt.datetime):
    """Jobs a worker may take: queued, or running under a lease that has run out (or, left by
    a fashionkit before leases, under none)."""
    return or_(
        JobRow.status == "queued",
        and_(
            JobRow.status == "running",
            or_(JobRow.lease_until.is_(None), JobRow.lease_until < now),
        ),
    )


def _interrupted_too_often(attempts: int) -> str:
    return (
        f"detection was interrupted {attempts} times (the server stopped while it ran); "
        "upload the photo again to retry"
    )


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

    def create(
        self,
        user_id: int,
        data: bytes | BinaryIO,
        image: CheckedImage,
        *,
        kind: str = "photo",
        result: dict | None = None,
    ) -> dict:
        """A queued job for the checked upload ``data`` (bytes, or a seekable file copied in
        blocks, so an upload need not be in memory). ``kind``: ``"photo"`` or ``"outfit"``;
        ``result``: what the job starts from (an outfit photo's day)."""
        row = JobRow(
            kind=kind,
            result=result,
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
        # The file stays locked until the record is committed, so that no other process's
        # recover() takes it for an upload without a job meanwhile.
        path = self.uploads_dir / f"{row.id}{image.suffix}"
        row.photo_sha256, lock = _write_locked(path, data)
        try:
            with self.database.sessions.begin() as session:
                session.add(row)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            os.close(lock)
        return _job_of(row)

    def save(self, job: dict) -> None:
        """Store the job's status, attempts, error and result (and when it finished), whoever
        holds it; a worker ends the job it holds with :meth:`finish` instead."""
        with self.database.engine.begin() as connection:
            connection.execute(
                update(JobRow).where(JobRow.id == job["id"]).values(**self._values(job))
            )

    def _values(self, job: dict) -> dict:
        values = {
            "status": job["status"],
            "attempts": job["attempts"],
            "error": job["error"],
            "result": {key: job[key] for key in _result_keys(job.get("kind", "photo"))},
        }
        if job["status"] in ("done", "failed"):
            values["finished_at"] = _now()
            values["lease_until"] = None
        return values

    def claim_next(self, by: str, lease_s: float = 30.0) -> dict | None:
        """Take the oldest job a worker may take (:func:`_takeable`) for the worker named
        ``by``, under a lease of ``lease_s`` seconds: the job, now running with one attempt
        more; ``None`` when there is none. A job already started :data:`MAX_ATTEMPTS` times is
        marked failed instead (:meth:`fail_exhausted`).

        Each candidate is taken with one ``UPDATE … WHERE`` it is still takeable and still at
        the attempt that was read: of several processes trying at once, exactly one updates
        the row (SQLite runs writers one at a time; PostgreSQL re-checks the condition on the
        row another transaction has just updated), and the others try the next candidate."""
        self.fail_exhausted()
        while True:
            now = _now()
            with self.database.engine.connect() as connection:
                candidates = connection.execute(
                    select(JobRow.id, JobRow.attempts)
                    .where(_takeable(now), JobRow.attempts < MAX_ATTEMPTS)
                    .order_by(JobRow.created_at, JobRow.id)
                    .limit(8)
                ).all()
            if not candidates:
                return None
            for job_id, attempts in candidates:
                taken = self._take(job_id, attempts, by, lease_s)
                if taken is not None:
                    return taken

    def _take(self, job_id: str, attempts: int, by: str, lease_s: float) -> dict | None:
        now = _now()
        with self.database.engine.begin() as connection:
            taken = connection.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.attempts == attempts, _takeable(now))
                .values(
                    status="running",
                    attempts=attempts + 1,
                    claimed_by=by,
                    claimed_at=now,
                    started_at=now,
                    lease_until=now + dt.timedelta(seconds=lease_s),
                )
            ).rowcount
        if not taken:
            return None
        with self.database.sessions() as session:
            row = session.get(JobRow, job_id)
            return None if row is None else _job_of(row)

    def renew(self, job: dict, by: str, lease_s: float) -> bool:
        """Extend the lease of ``job`` (as :meth:`claim_next` returned it) to ``lease_s``
        seconds from now; ``False`` when ``by`` no longer holds that attempt of it (its lease
        ran out and another worker took it)."""
        with self.database.engine.begin() as connection:
            return bool(
                connection.execute(
                    update(JobRow)
                    .where(*self._held(job, by))
                    .values(lease_until=_now() + dt.timedelta(seconds=lease_s))
                ).rowcount
            )

    def finish(self, job: dict, by: str) -> bool:
        """Store the end of ``job`` (status, error, result) if ``by`` still holds that attempt
        of it; ``False``, writing nothing, when another worker has taken it over since."""
        with self.database.engine.begin() as connection:
            return bool(
                connection.execute(
                    update(JobRow).where(*self._held(job, by)).values(**self._values(job))
                ).rowcount
            )

    @staticmethod
    def _held(job: dict, by: str) -> tuple:
        return (
            JobRow.id == job["id"],
            JobRow.status == "running",
            JobRow.claimed_by == by,
            JobRow.attempts == job["attempts"],
        )

    def fail_exhausted(self) -> int:
        """Mark failed the takeable jobs already started :data:`MAX_ATTEMPTS` times (their
        processes stopped while they ran), and remove their uploads. Returns how many."""
        now = _now()
        with self.database.engine.connect() as connection:
            exhausted = connection.execute(
                select(JobRow.id, JobRow.attempts, JobRow.photo_format).where(
                    _takeable(now), JobRow.attempts >= MAX_ATTEMPTS
                )
            ).all()
        failed = 0
        for job_id, attempts, photo_format in exhausted:
            with self.database.engine.begin() as connection:
                marked = connection.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.attempts == attempts, _takeable(now))
                    .values(
                        status="failed",
                        error=_interrupted_too_often(attempts),
                        finished_at=now,
                        lease_until=None,
                    )
                ).rowcount
            if marked:
                self.upload_path({"id": job_id, "format": photo_format}).unlink(missing_ok=True)
                failed += 1
        return failed

    def get(self, job_id: str, user_id: int, *, kind: str | None = None) -> dict:
        """The job, when it belongs to ``user_id`` (and is of ``kind``, when given);
        :class:`NotFoundError` otherwise (also for another person's job: its existence is not
        disclosed)."""
        what = "outfit photo" if kind == "outfit" else "photo"
        if not JOB_ID.fullmatch(job_id) or not isinstance(user_id, int):
            raise NotFoundError(what, job_id)
        where = [JobRow.id == job_id, JobRow.user_id == user_id]
        if kind is not None:
            where.append(JobRow.kind == kind)
        with self.database.sessions() as session:
            row = session.scalar(select(JobRow).where(*where))
            if row is None:
                raise NotFoundError(what, job_id)
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

    def of_user(
        self, user_id: int, *, offset: int = 0, limit: int | None = None, kind: str = "photo"
    ) -> list[dict]:
        """The person's jobs of ``kind``, oldest first (``offset``/``limit``: one page)."""
        return self._select(
            JobRow.user_id == user_id, JobRow.kind == kind, offset=offset, limit=limit
        )

    def count_of_user(self, user_id: int, *, kind: str = "photo") -> int:
        with self.database.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(JobRow)
                    .where(JobRow.user_id == user_id, JobRow.kind == kind)
                ).scalar_one()
            )

    def update_result(self, job: dict, change: Callable[[dict], dict]) -> dict:
        """Change a finished job's result (an offered item accepted): ``change`` maps the
        stored result to the keys to replace, in one transaction that holds the row, so that
        two changes at once both land. The job afterwards."""
        with self.database.writing() as session:
            row = session.scalar(
                select(JobRow)
                .where(JobRow.id == job["id"], JobRow.user_id == job["user_id"])
                .with_for_update()
            )
            if row is None:
                raise NotFoundError("outfit photo", job["id"])
            current = dict(row.result or {})
            row.result = {**current, **change(current)}
            session.flush()
            return _job_of(row)

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

    def _unfinished_ids(self) -> set[str]:
        with self.database.engine.connect() as connection:
            return set(
                connection.execute(
                    select(JobRow.id).where(JobRow.status.in_(("queued", "running")))
                ).scalars()
            )

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
        """Tidy what a killed process left: temporary files, uploads without a job record or
        whose job has finished, and unfinished jobs whose upload is missing (marked failed).
        Safe while other processes serve the same folder: a file a live process is writing or
        has not yet recorded is locked by it and left alone, and a job is marked failed only
        while it is still unfinished. Returns counts of each, for the log."""
        counts = {"temporary": 0, "orphan_uploads": 0, "lost_uploads": 0}
        counts["imported_records"] = self._import_legacy_records()
        unfinished = self._unfinished_ids()
        for path in sorted(self.uploads_dir.iterdir()):
            if path.name.startswith(_TEMPORARY):
                kind = "temporary"
            elif path.stem not in unfinished:
                kind = "orphan_uploads"
            else:
                continue
            fd = _unused(path)
            if fd is None:
                continue
            try:
                # Read again under the lock: the writer may have recorded its job meanwhile.
                if kind == "temporary" or path.stem not in self._unfinished_ids():
                    path.unlink(missing_ok=True)
                    counts[kind] += 1
            finally:
                os.close(fd)
        for job in self.unfinished():
            if self.upload_path(job).exists():
                continue
            with self.database.engine.begin() as connection:
                counts["lost_uploads"] += connection.execute(
                    update(JobRow)
                    .where(JobRow.id == job["id"], JobRow.status.in_(("queued", "running")))
                    .values(
                        status="failed",
                        error="the uploaded photo was lost when the server stopped; "
                        "upload it again",
                        finished_at=_now(),
                        lease_until=None,
                    )
                ).rowcount
        return counts


class PhotoWorker:
    """Runs detection jobs of every process on the database, one at a time on one background
    thread of this process (the model is not shared across threads), holding each under a
    lease that a second thread renews (see the module docstring).

    ``predictor``: a :class:`~fashionkit.inference.Predictor` or a callable with its
    interface. ``wardrobe_for(user_id)``: the person's :class:`~fashionkit.wardrobe.Wardrobe`.
    ``lease_s``: how long a job stays with this process without a renewal; ``poll_s``: how
    often the table is read for jobs when nothing woke the worker (another process's uploads,
    jobs whose process died). Nothing runs before :meth:`start`. ``predictor_for(user_id)``:
    the predictor of that person's photos (default ``predictor``). ``embedder``: an
    ItemEmbedder of the service's base model, the same for everyone whichever model detects
    their photos, so that a person's item embeddings stay comparable across their model
    versions.
    """

    def __init__(
        self,
        store: JobStore,
        predictor,
        wardrobe_for: Callable,
        *,
        min_score: float = 0.5,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
        embedder=None,
        predictor_for: Callable[[int], Any] | None = None,
        max_items: int | None = None,
    ):
        self.store = store
        # The most items one wardrobe holds: the upload checked for room for one, a photo
        # may hold several, and other uploads of the person's may have filled it meanwhile.
        self.max_items = max_items
        self.predictor = predictor
        # An ItemEmbedder of the predictor's model: items found in photos keep their
        # embedding, and outfit photos are recognised; None: neither.
        self.embedder = embedder
        # The predictor of one person's photos (their own model when they taught one:
        # fashionkit.personal.models.PersonalPredictors); ``predictor`` for everyone otherwise.
        self.predictor_for = predictor_for or (lambda user_id: predictor)
        self.wardrobe_for = wardrobe_for
        self.min_score = min_score
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._uploading: Counter[int] = Counter()  # per person: uploads not yet recorded
        self._uploading_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._held: dict | None = None  # the job being run, as claim_next returned it
        self._held_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Names this process in the jobs it holds; the random part tells apart processes of
        # one pid on one host name (containers, or a pid reused after a restart).
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def reserve(self, user_id: int, limit: int) -> bool:
        """Hold a place for one more upload of this person's in this process, unless
        ``limit`` of theirs are arriving here already. The place is given back by
        :meth:`release`, or by :meth:`submit` once the job is recorded (then it counts in
        :meth:`JobStore.waiting`)."""
        with self._uploading_lock:
            if self._uploading[user_id] >= limit:
                return False
            self._uploading[user_id] += 1
            return True

    def uploading(self, user_id: int) -> int:
        """The person's uploads reserved in this process and not yet recorded as jobs."""
        with self._uploading_lock:
            return self._uploading[user_id]

    def release(self, user_id: int) -> None:
        with self._uploading_lock:
            self._uploading[user_id] -= 1
            if self._uploading[user_id] <= 0:
                del self._uploading[user_id]

    def submit(self, job: dict, *, reserved: bool = False) -> None:
        """Wake the worker for a newly recorded job (giving back its place when
        ``reserved``). Jobs run oldest first, whichever process recorded them."""
        if reserved:
            self.release(job["user_id"])
        self._wake.set()

    def start(self) -> None:
        for target, name in ((self._loop, "detect"), (self._renew_leases, "lease")):
            thread = threading.Thread(target=target, name=f"fashionkit-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; ``wait``: until the job running now has ended. Jobs not started
        stay queued for any process."""
        self._stop.set()
        self._wake.set()
        if wait:
            for thread in self._threads:
                thread.join()

    def _loop(self) -> None:
        next_tidy = time.monotonic() + TIDY_S
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if time.monotonic() >= next_tidy:
                    next_tidy = time.monotonic() + TIDY_S
                    tidied = self.store.recover()
                    if any(tidied.values()):
                        log.info("tidied after a stopped process: %s", tidied)
                job = self.store.claim_next(self.name, self.lease_s)
            except Exception:  # the database away for a while: try again at the next poll
                log.exception("could not read the photo jobs")
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                continue
            self._run_job(job)

    def _renew_leases(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self._held_lock:
                job = self._held
            if job is None:
                continue
            try:
                if not self.store.renew(job, self.name, self.lease_s):
                    log.warning("photo job %s was taken over by another process", job["id"])
            except Exception:
                log.exception("could not renew the lease of photo job %s", job["id"])

    def _run_job(self, job: dict) -> None:
        with self._held_lock:
            self._held = job
        upload = self.store.upload_path(job)
        try:
            self._detect(job, upload)
            job["status"] = "done"
        except UnusablePhoto as err:
            job["status"] = "failed"
            job["error"] = str(err)
        except Exception:  # a failed job is reported to its owner, not lost
            # The details are for the server's log; the person is told what they can do.
            log.exception("photo job %s failed", job["id"])
            job["status"] = "failed"
            job["error"] = (
                "detection failed on the server; try again later, or upload another photo"
            )
        finally:
            with self._held_lock:
                self._held = None
        try:
            finished = self.store.finish(job, self.name)
        except Exception:  # its lease runs out and another process runs it again
            log.exception("could not store the end of photo job %s", job["id"])
            return
        if finished:
            upload.unlink(missing_ok=True)
        else:  # its new holder needs the upload, and writes the result
            log.warning("photo job %s: the lease was lost, the result not stored", job["id"])

    def _detect(self, job: dict, upload: Path) -> None:
        from fashionkit.inference.visualize import draw_overlay, draw_supercategories
        from fashionkit.wardrobe.image_files import file_digest
        from fashionkit.wardrobe.ingest import ingest_photos

        if not upload.exists():
            raise UnusablePhoto(
                "the uploaded photo is not on this server (several machines must share the "
                "service's data folder); upload it again"
            )
        wardrobe = self.wardrobe_for(job["user_id"])
        if job.get("kind") == "outfit":
            from fashionkit.service.outfit_photos import recognise_outfit

            recognise_outfit(self, wardrobe, job, upload)
            return
        predictor = self.predictor_for(job["user_id"])
        predictions = []

        def recording(sources, **kwargs):
            out = predictor(sources, **kwargs)
            predictions.extend(out)
            return out

        duplicates = None
        if self.embedder is not None:
            from fashionkit.personal.wearlog import recognised_duplicates

            key = self.embedder.key
            duplicates = lambda w, ids: recognised_duplicates(w, key, ids)  # noqa: E731
        try:
            report = ingest_photos(
                wardrobe, recording, [upload], min_score=self.min_score, embedder=self.embedder,
                max_items=self.max_items, duplicates=duplicates,
            )  # fmt: skip
        except LimitError as err:
            raise UnusablePhoto(str(err)) from None
        if report.problems:
            raise UnusablePhoto("; ".join(p.message for p in report.problems))
        job["items"] = list(report.added)
        job["skipped"] = bool(report.skipped)
        if report.skipped and job["attempts"] > 1:
            # An earlier attempt of this job stored the photo and its items, then its process
            # stopped before the job record said so: report them as this job's.
            job["items"] = wardrobe.photo_items(file_digest(upload))
            job["skipped"] = False
        job["duplicates"] = [
            {
                "new": d.new,
                "existing": d.existing,
                "color_distance": (round(d.color_distance, 4)
                                   if math.isfinite(d.color_distance) else None),
                "appearance": round(d.appearance, 4),
                "found_by": d.found_by,
            }
            for d in report.duplicates
        ]
        prediction = predictions[0] if predictions else None
        if prediction is not None and prediction.photo is not None:
            for key, draw in (("overlay", draw_overlay), ("supercategories", draw_supercategories)):
                buffer = io.BytesIO()
                draw(prediction).save(buffer, format="PNG")
                job[key] = wardrobe.images.put_bytes(buffer.getvalue(), ".png")
