"""Photo uploads and the background detection jobs of the web service.

An upload is checked before anything is kept: at most ``max_bytes`` bytes, a JPEG, PNG or
WebP *by its content* (the client's file name and content type are ignored), at most
``max_pixels`` pixels (read from the header, before decoding), and fully decodable. It is
written under a server-chosen name in ``DATA_DIR/uploads`` and a job record in
``DATA_DIR/jobs/<job id>.json`` (both written to a temporary name and renamed, so a crash never
leaves half a file). One worker thread runs the jobs in order, each through
:func:`fashionkit.wardrobe.ingest.ingest_photos`, and draws the Fig. 8 overlay and the Fig. 9
super-category view into the wardrobe's image store. Jobs left queued or running by a stopped
server run again at the next start (ingest skips a photo already stored).

Job record (also the JSON of ``GET /api/photos/{id}``)::

    {"id": str (32 hex), "user_id": int, "status": "queued"|"running"|"done"|"failed",
     "created_at": ISO time, "width": int, "height": int, "format": "JPEG"|"PNG"|"WEBP",
     "items": [item ids added], "skipped": bool (photo was already in the wardrobe),
     "duplicates": [{"new", "existing", "color_distance", "appearance"}],
     "overlay": sha256 | null, "supercategories": sha256 | null, "error": str | null}
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UploadRejected", "CheckedImage", "check_image", "JobStore", "PhotoWorker", "JOB_ID"]

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
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

    def _path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise KeyError(job_id)
        return self.jobs_dir / f"{job_id}.json"

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
        }
        # The photo first: a job record always has its upload until the job has finished.
        _write_atomic(self.upload_path(job), data)
        self.save(job)
        return job

    def save(self, job: dict) -> None:
        with self._lock:
            _write_atomic(self._path(job["id"]), json.dumps(job).encode("utf-8"))

    def get(self, job_id: str, user_id: int) -> dict:
        """The job, when it belongs to ``user_id``; ``KeyError`` otherwise (also for another
        person's job: its existence is not disclosed)."""
        path = self._path(job_id)
        try:
            job = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise KeyError(job_id) from None
        if job.get("user_id") != user_id:
            raise KeyError(job_id)
        return job

    def all(self) -> list[dict]:
        jobs = []
        for path in self.jobs_dir.glob("*.json"):
            try:
                jobs.append(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError):
                log.warning("unreadable job record %s", path)
        jobs.sort(key=lambda j: (j.get("created_at", ""), j.get("id", "")))
        return jobs

    def of_user(self, user_id: int) -> list[dict]:
        return [j for j in self.all() if j.get("user_id") == user_id]


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

    def submit(self, job: dict):
        return self._pool.submit(self._run, job["id"], job["user_id"])

    def resume(self) -> int:
        """Queue again the jobs a previous run left unfinished; returns how many."""
        pending = [j for j in self.store.all() if j.get("status") in ("queued", "running")]
        for job in pending:
            self.submit(job)
        return len(pending)

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, job_id: str, user_id: int) -> None:
        job = self.store.get(job_id, user_id)
        job["status"] = "running"
        self.store.save(job)
        upload = self.store.upload_path(job)
        try:
            self._detect(job, upload)
            job["status"] = "done"
        except Exception as err:  # a failed job is reported to its owner, not lost
            log.exception("photo job %s failed", job_id)
            job["status"] = "failed"
            job["error"] = f"{type(err).__name__}: {err}"
        self.store.save(job)
        upload.unlink(missing_ok=True)

    def _detect(self, job: dict, upload: Path) -> None:
        from fashionkit.inference.visualize import draw_overlay, draw_supercategories
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
