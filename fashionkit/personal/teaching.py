""""Teach my model": from a person's corrected photos to a new active version of their model.

:func:`teach` exports the wardrobe's photos with the items as the person corrected them
(:func:`~fashionkit.wardrobe.dataset.export_dataset`), fine-tunes the base checkpoint on them
(:func:`~fashionkit.personal.finetune.finetune_personal`) and registers the result as the
person's next version, made active (:class:`~fashionkit.personal.models.PersonalModels`). The
CLI runs it in the foreground; the web service through :class:`TeachJobs`.

:class:`TeachJobs` runs one fine-tuning at a time per process on a background thread, each
job a ``model_jobs`` row (:class:`~fashionkit.wardrobe.models.ModelJobRow`) with its state
(queued → running → done | failed | cancelled), progress and message. A person has at most one
job queued or running. Cancelling sets ``cancel_requested`` in the row; the running
fine-tuning reads it at its next progress report (at most every
:data:`POLL_S` seconds, so a job is cancelled from any process on the database) and stops at
the next step; no version is registered.

A process killed while a job runs leaves no half-written model: the checkpoint is written
atomically and becomes a version only once whole (:func:`finetune_personal`), so the killed
job left at most an unregistered file. Several service processes may share the database and
the models folder (``serve --workers N``, where a worker that died is restarted while the
others go on), so what a dead process left is told from a live one's work as the photo jobs
do it (:mod:`fashionkit.service.photos`): the process that accepts a job holds an ``flock`` on
the job's lock file (``<models>/jobs/<job id>.lock``) from before its row exists until the job
has finished, and the kernel drops the lock when that process dies, however it dies. A queued
job lives only in the accepting process's pool, so it holds the lock while queued too.
:meth:`TeachJobs.recover` (at every start) marks failed a queued or running job only when its
lock can be taken — the process that owned it is gone — ("start again": teaching is not
retried by itself, as it takes minutes of the server's CPU the person may no longer want to
spend), and :func:`~fashionkit.personal.models.remove_orphans` deletes stray files: only files
older than a job's budget and a minute, as a live fine-tuning writes its checkpoint once, at
its end, and registers it at once. Without ``fcntl`` (Windows) no lock can be seen, every
unfinished job is taken for an interrupted one and several processes must be started together.

Job record (also the JSON of ``GET /api/model/jobs/{id}``)::

    {"id": str (32 hex), "state": "queued"|"running"|"done"|"failed"|"cancelled",
     "progress": float 0..1, "message": str | null, "cancel_requested": bool,
     "minutes": float (the budget), "version": int | null (made when done),
     "created_at": ISO time, "finished_at": ISO time | null}
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from fashionkit.errors import ConflictError, InvalidDataError, NotFoundError, Problem
from fashionkit.personal.finetune import PERSONAL_SETTINGS, FinetuneResult, FinetuneSettings
from fashionkit.personal.models import ModelVersion, PersonalModels, remove_orphans
from fashionkit.wardrobe import file_locks
from fashionkit.wardrobe.database import Wardrobe, WardrobeDatabase
from fashionkit.wardrobe.models import ModelJobRow

__all__ = [
    "MIN_PHOTOS",
    "POLL_S",
    "TeachResult",
    "TeachJobs",
    "corrected_photos",
    "teach",
]

log = logging.getLogger(__name__)

#: Photos with corrected items that teaching needs at least (fewer teach nothing reliable).
MIN_PHOTOS = 5
#: Seconds between a running job's writes of its progress (and reads of a cancellation).
POLL_S = 1.0
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_UNFINISHED = ("queued", "running")
_STOPPED = ("the server stopped while your model was being taught; no new version was made: "
            "teach it again")


@dataclass(frozen=True)
class TeachResult:
    """``version``: the new active version (``None`` when cancelled); ``finetune``: what the
    fine-tuning did."""

    version: ModelVersion | None
    finetune: FinetuneResult


def corrected_photos(wardrobe: Wardrobe) -> int:
    """The person's photos with at least one item in them (what teaching learns from)."""
    return sum(1 for photo in wardrobe.annotated_photos() if photo.objects)


def _enough_photos(wardrobe: Wardrobe, min_photos: int) -> int:
    have = corrected_photos(wardrobe)
    if have < min_photos:
        raise InvalidDataError([Problem(
            f"wardrobe {wardrobe.user!r}", "photos",
            f"teaching needs at least {min_photos} photos with corrected items, this wardrobe "
            f"has {have}: add photos, correct their items, then teach again")])
    return have


def teach(
    wardrobe: Wardrobe,
    base: str | Path,
    *,
    minutes: float = 5.0,
    models: PersonalModels | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: threading.Event | None = None,
    min_photos: int = MIN_PHOTOS,
    settings: FinetuneSettings = PERSONAL_SETTINGS,
    seed: int = 0,
    max_steps: int | None = None,
) -> TeachResult:
    """Fine-tune ``base`` on the person's corrected photos for at most ``minutes`` and make
    the result their active version (see the module docstring). :class:`InvalidDataError`
    when they have fewer than ``min_photos`` such photos or ``base`` is unusable."""
    from fashionkit.personal.finetune import finetune_personal
    from fashionkit.wardrobe.dataset import export_dataset

    models = models or PersonalModels(wardrobe)
    _enough_photos(wardrobe, min_photos)
    out = models.new_file()
    try:
        with tempfile.TemporaryDirectory(prefix="fashionkit-teach-") as tmp:
            export_dataset(wardrobe, tmp)
            result = finetune_personal(base, tmp, out, max_minutes=minutes, seed=seed,
                                       progress=progress, cancel=cancel, settings=settings,
                                       max_steps=max_steps)
        if result.cancelled:
            return TeachResult(None, result)
        version = models.register(out, base=base, photos=result.photos, minutes=result.minutes,
                                  steps=result.steps)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return TeachResult(version, result)


def _hold(path: Path) -> int:
    """Create the lock file ``path`` and lock it for this process: a descriptor the caller
    closes once the job has finished (or that the process's death closes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = file_locks.open_unused(path, os.O_RDWR | os.O_CREAT)
    if fd is None:
        raise RuntimeError(f"{path} is held by another process")
    return fd


def _abandoned(path: Path) -> int | None:
    """``-1`` when no lock file ``path`` exists (its job has no live owner, or has finished),
    an open descriptor holding it locked when its owner is gone (the caller closes it),
    ``None`` while a live process holds it."""
    try:
        return file_locks.open_unused(path, os.O_RDWR)
    except FileNotFoundError:
        return -1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds") if value else None


def _job_of(row: ModelJobRow) -> dict:
    return {
        "id": row.id,
        "state": row.state,
        "progress": round(float(row.progress), 4),
        "message": row.message,
        "cancel_requested": bool(row.cancel_requested),
        "minutes": float(row.minutes),
        "version": row.version,
        "created_at": _iso(row.created_at),
        "finished_at": _iso(row.finished_at),
    }


class TeachJobs:
    """The service's "teach my model" jobs over ``database``, model files under ``root``.

    ``base``: the checkpoint every person's model is fine-tuned from (``None``: teaching is not
    available). ``wardrobe_for(user_id)``: the person's wardrobe. ``minutes``: each job's time
    budget; ``min_photos``, ``settings``, ``max_steps``: as for :func:`teach`."""

    def __init__(self, database: WardrobeDatabase, root: str | Path, base: str | Path | None,
                 wardrobe_for: Callable[[int], Wardrobe], *, minutes: float = 5.0,
                 min_photos: int = MIN_PHOTOS, settings: FinetuneSettings = PERSONAL_SETTINGS,
                 max_steps: int | None = None):
        self.database = database
        self.root = Path(root)
        self.base = Path(base) if base is not None else None
        self.wardrobe_for = wardrobe_for
        self.minutes = minutes
        self.min_photos = min_photos
        self.settings = settings
        self.max_steps = max_steps
        # Fine-tuning takes every core it is given: one at a time in a process.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fashionkit-teach")
        self._cancels: dict[str, threading.Event] = {}
        # Lock descriptors of the jobs this process accepted and has not finished.
        self._held: dict[str, int] = {}
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def available(self) -> bool:
        return self.base is not None

    def lock_path(self, job_id: str) -> Path:
        """The file the process owning job ``job_id`` holds locked while the job is
        unfinished (see the module docstring)."""
        return self.root / "jobs" / f"{job_id}.lock"

    def _release(self, job_id: str) -> None:
        with self._lock:
            fd = self._held.pop(job_id, None)
        if fd is not None:
            # Removed while still locked: a recover() that opened it meanwhile then finds the
            # job finished in its row.
            self.lock_path(job_id).unlink(missing_ok=True)
            os.close(fd)

    # -- records -----------------------------------------------------------------------------
    def get(self, job_id: str, user_id: int) -> dict:
        """The job when it is ``user_id``'s; :class:`NotFoundError` otherwise (another person's
        job is not disclosed)."""
        with self.database.sessions() as session:
            row = self._row(session, job_id, user_id)
            return _job_of(row)

    def _row(self, session, job_id: str, user_id: int) -> ModelJobRow:
        if not JOB_ID.fullmatch(str(job_id)):
            raise NotFoundError("model job", job_id)
        row = session.scalar(
            select(ModelJobRow).where(ModelJobRow.id == job_id, ModelJobRow.user_id == user_id)
        )
        if row is None:
            raise NotFoundError("model job", job_id)
        return row

    def of_user(self, user_id: int, limit: int = 20) -> list[dict]:
        """The person's latest jobs, newest first."""
        with self.database.sessions() as session:
            rows = session.scalars(
                select(ModelJobRow).where(ModelJobRow.user_id == user_id)
                .order_by(ModelJobRow.created_at.desc(), ModelJobRow.id).limit(limit)
            ).all()
            return [_job_of(r) for r in rows]

    def _set(self, job_id: str, **values) -> None:
        where = [ModelJobRow.id == job_id]
        if values.get("state") in ("done", "failed", "cancelled"):
            values["finished_at"] = _now()
            # Only the runner ends a running job; a job already ended stays as it ended.
            where.append(ModelJobRow.state == "running")
        with self.database.engine.begin() as connection:
            connection.execute(update(ModelJobRow).where(*where).values(**values))

    # -- starting, cancelling -----------------------------------------------------------------
    def start(self, user_id: int) -> dict:
        """Queue a job for the person and run it in the background. :class:`ConflictError`
        while one of theirs is queued or running; :class:`InvalidDataError` when they have too
        few corrected photos."""
        if self.base is None:
            raise RuntimeError("teaching is not available without a base model")
        wardrobe = self.wardrobe_for(user_id)
        _enough_photos(wardrobe, self.min_photos)
        row = ModelJobRow(id=uuid.uuid4().hex, user_id=user_id, state="queued", progress=0.0,
                          message="waiting to start", cancel_requested=False,
                          minutes=self.minutes, created_at=_now())
        # Locked before the row exists, so no recover() elsewhere sees the job without owner.
        fd = _hold(self.lock_path(row.id))
        with self._lock:
            self._held[row.id] = fd
        try:
            with self.database.writing("a model job was started meanwhile") as session:
                running = session.scalar(
                    select(ModelJobRow.id).where(ModelJobRow.user_id == user_id,
                                                 ModelJobRow.state.in_(_UNFINISHED))
                    .with_for_update()
                )
                if running is not None:
                    raise ConflictError(
                        f"your model is already being taught (job {running}); wait for it or "
                        "cancel it")
                session.add(row)
                session.flush()
                job = _job_of(row)
            with self._lock:
                self._cancels[row.id] = threading.Event()
            self._pool.submit(self._run, row.id, user_id)
        except BaseException:
            self._release(row.id)
            raise
        return job

    def cancel(self, job_id: str, user_id: int) -> dict:
        """Ask the person's job to stop: a queued one is cancelled at once, a running one at
        its next training step. A finished job is left as it is."""
        with self.database.writing() as session:
            row = self._row(session, job_id, user_id)
            if row.state == "queued":
                row.state, row.finished_at = "cancelled", _now()
                row.cancel_requested, row.message = True, "cancelled"
            elif row.state == "running":
                row.cancel_requested, row.message = True, "cancelling…"
            session.flush()
            job = _job_of(row)
        with self._lock:
            event = self._cancels.get(job_id)
        if event is not None:
            event.set()
        return job

    # -- running ------------------------------------------------------------------------------
    def _claim(self, job_id: str) -> bool:
        with self.database.engine.begin() as connection:
            return bool(connection.execute(
                update(ModelJobRow)
                .where(ModelJobRow.id == job_id, ModelJobRow.state == "queued")
                .values(state="running", claimed_by=self.name, started_at=_now(),
                        message="preparing the photos")
            ).rowcount)

    def _run(self, job_id: str, user_id: int) -> None:
        with self._lock:
            cancel = self._cancels.setdefault(job_id, threading.Event())
            self._started.add(job_id)
        try:
            if not self._claim(job_id):
                return
            self._teach(job_id, user_id, cancel)
        except Exception:
            log.exception("model job %s failed", job_id)
            self._set(job_id, state="failed",
                      message="teaching failed on the server; try again later")
        finally:
            with self._lock:
                self._cancels.pop(job_id, None)
                self._started.discard(job_id)
            self._release(job_id)

    def _teach(self, job_id: str, user_id: int, cancel: threading.Event) -> None:
        assert self.base is not None
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] < POLL_S and fraction < 1.0:
                return
            last[0] = now
            self._set(job_id, progress=fraction, message=message)
            with self.database.sessions() as session:
                if session.scalar(select(ModelJobRow.cancel_requested)
                                  .where(ModelJobRow.id == job_id)):
                    cancel.set()

        wardrobe = self.wardrobe_for(user_id)
        models = PersonalModels(wardrobe, self.root)
        try:
            result = teach(wardrobe, self.base, minutes=self.minutes, models=models,
                           progress=progress, cancel=cancel, min_photos=self.min_photos,
                           settings=self.settings, max_steps=self.max_steps)
        except InvalidDataError as err:
            self._set(job_id, state="failed", message=str(err))
            return
        if result.version is None:
            if self._stopping.is_set():
                self._set(job_id, state="failed", message=_STOPPED)
            else:
                self._set(job_id, state="cancelled", message="cancelled; no new version")
            return
        self._set(job_id, state="done", progress=1.0, version=result.version.version,
                  message=f"version {result.version.version} in use: "
                          f"{result.finetune.photos} photos, {result.finetune.minutes:.1f} min")

    # -- lifecycle ----------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """What stopped processes left: their queued and running jobs marked failed, stray
        model files removed. Safe while other processes serve the same database: a job whose
        lock a live process holds is left alone (see the module docstring). Returns counts,
        for the log."""
        with self.database.sessions() as session:
            unfinished = list(session.scalars(
                select(ModelJobRow.id).where(ModelJobRow.state.in_(_UNFINISHED))))
        failed = 0
        for job_id in unfinished:
            with self._lock:
                ours = job_id in self._held
            if ours:
                continue
            path = self.lock_path(job_id)
            fd = _abandoned(path)
            if fd is None:
                continue
            try:
                # Under its lock: a row still unfinished now has no owner left.
                with self.database.engine.begin() as connection:
                    failed += connection.execute(
                        update(ModelJobRow)
                        .where(ModelJobRow.id == job_id, ModelJobRow.state.in_(_UNFINISHED))
                        .values(state="failed", finished_at=_now(), message=_STOPPED)
                    ).rowcount
                if fd >= 0:
                    path.unlink(missing_ok=True)
            finally:
                if fd >= 0:
                    os.close(fd)
        # A live fine-tuning's checkpoint is written at its end and registered at once: a file
        # older than a job's budget and a minute belongs to no live job.
        stray = remove_orphans(self.database, self.root, min_age_s=self.minutes * 60 + 60)
        return {"interrupted_model_jobs": int(failed), "stray_model_files": stray}

    def shutdown(self, wait: bool = True) -> None:
        """Stop: running jobs stop at their next step and are reported failed (no version);
        queued ones stay queued in the table, their locks released, and the next
        :meth:`recover` of any process reports them failed."""
        self._stopping.set()
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            never_run = [j for j in self._held if j not in self._started]
        for job_id in never_run:
            self._release(job_id)
