"""A person's fine-tuned detectors: numbered versions, the one in use, rollback.

Each version is a checkpoint file in the person's own folder of the models directory,
``<models dir>/<user id>/<random name>.pt``, and a ``personal_models`` row
(:class:`~fashionkit.wardrobe.models.PersonalModelRow`: version 1, 2, …, the base it was
fine-tuned from, photos, minutes and steps, whether it is active). The models directory belongs
to the database as the image folder does (:func:`default_model_dir`: ``<db stem>-models/``
beside a SQLite file), so the CLI and the web service see the same versions. User ids are never
reused, so a folder is only ever one person's.

At most one version per person is active: their next photos are detected with it
(:class:`PersonalPredictors` for the service, :func:`active_model_path` for the CLI); with none
active the base model is used. :meth:`PersonalModels.rollback` makes the version before the
active one active (from version 1: back to the base model). A person's rows go with their
``users`` row (foreign keys cascade); :func:`remove_orphans` deletes the files of people who
no longer exist and files no row names (a fine-tuning that was killed before its version was
registered), and :meth:`PersonalModels.remove_all` a person's every version.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from fashionkit.errors import ConflictError, NotFoundError
from fashionkit.wardrobe.database import Wardrobe, WardrobeDatabase
from fashionkit.wardrobe.models import PersonalModelRow, UserRow

__all__ = [
    "ModelVersion",
    "PersonalModels",
    "PersonalPredictors",
    "active_model_path",
    "default_model_dir",
    "remove_orphans",
]

#: An unregistered file younger than this may still be registered by a running fine-tuning.
ORPHAN_AGE_S = 3600.0


def default_model_dir(url: str) -> Path:
    """The models directory of the database ``url``: ``<db stem>-models/`` beside a SQLite file
    (``wardrobe.sqlite`` → ``wardrobe-models/``); for other databases ``models/`` in the user
    data directory (platformdirs), as :func:`~fashionkit.wardrobe.default_image_dir` does."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database).expanduser()
        return db.with_name(db.stem + "-models")
    import platformdirs

    return platformdirs.user_data_path("fashionkit") / "models"


@dataclass(frozen=True)
class ModelVersion:
    """One version of a person's model: its number, checkpoint ``path``, the ``base``
    checkpoint it was fine-tuned from, when, on how many ``photos``, in how many ``minutes``
    and ``steps``, and whether it is the ``active`` one."""

    version: int
    path: Path
    base: str
    created_at: dt.datetime
    photos: int
    minutes: float
    steps: int
    active: bool

    def to_json(self) -> dict[str, Any]:
        """``{"version", "base", "created_at" (ISO, UTC), "photos", "minutes", "steps",
        "active"}`` (no file path: it is the server's business)."""
        return {
            "version": self.version,
            "base": Path(self.base).name,
            "created_at": self.created_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds"),
            "photos": self.photos,
            "minutes": round(self.minutes, 2),
            "steps": self.steps,
            "active": self.active,
        }


class PersonalModels:
    """The model versions of ``wardrobe``'s person; files under ``root`` (default
    :func:`default_model_dir` of the wardrobe's database)."""

    def __init__(self, wardrobe: Wardrobe, root: str | Path | None = None):
        self.wardrobe = wardrobe
        self.user_id = wardrobe.user_id
        self.root = Path(root) if root is not None else default_model_dir(wardrobe.url)
        self._database = wardrobe.database

    @property
    def folder(self) -> Path:
        """This person's folder of model files."""
        return self.root / str(self.user_id)

    def _version_of(self, row: PersonalModelRow) -> ModelVersion:
        return ModelVersion(
            version=row.version, path=self.folder / row.file_name, base=row.base,
            created_at=row.created_at, photos=row.photos, minutes=row.minutes, steps=row.steps,
            active=bool(row.active),
        )

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        with self._database.sessions() as session:
            rows = session.scalars(
                select(PersonalModelRow)
                .where(PersonalModelRow.user_id == self.user_id)
                .order_by(PersonalModelRow.version)
            ).all()
            return [self._version_of(r) for r in rows]

    def active_model(self) -> ModelVersion | None:
        """The version in use, ``None`` when the base model is."""
        with self._database.sessions() as session:
            row = session.scalar(
                select(PersonalModelRow).where(
                    PersonalModelRow.user_id == self.user_id, PersonalModelRow.active.is_(True)
                )
            )
            return self._version_of(row) if row is not None else None

    def get(self, version: int) -> ModelVersion:
        with self._database.sessions() as session:
            row = session.scalar(
                select(PersonalModelRow).where(
                    PersonalModelRow.user_id == self.user_id, PersonalModelRow.version == version
                )
            )
            if row is None:
                raise NotFoundError("model version", version)
            return self._version_of(row)

    def new_file(self) -> Path:
        """A fresh path in this person's folder for a fine-tuning to write to; it becomes a
        version with :meth:`register` (until then :func:`remove_orphans` may remove it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{uuid.uuid4().hex}.pt"

    def register(self, path: str | Path, *, base: str | Path, photos: int, minutes: float,
                 steps: int, activate: bool = True) -> ModelVersion:
        """Make the checkpoint ``path`` (a :meth:`new_file`, already written whole) the next
        version, active unless ``activate`` is false."""
        path = Path(path)
        if path.parent.resolve() != self.folder.resolve() or not path.is_file():
            raise ValueError(f"{path} is not a written file of {self.folder}")
        with self._database.writing("another model version was registered meanwhile; retry"
                                    ) as session:
            last = session.scalar(
                select(PersonalModelRow.version)
                .where(PersonalModelRow.user_id == self.user_id)
                .order_by(PersonalModelRow.version.desc())
                .limit(1)
                .with_for_update()
            )
            if activate:
                self._deactivate(session)
            row = PersonalModelRow(
                user_id=self.user_id, version=(last or 0) + 1, file_name=path.name,
                base=str(base), photos=int(photos), minutes=float(minutes), steps=int(steps),
                active=activate,
            )
            session.add(row)
            session.flush()
            return self._version_of(row)

    def _deactivate(self, session) -> None:
        session.execute(
            update(PersonalModelRow)
            .where(PersonalModelRow.user_id == self.user_id, PersonalModelRow.active.is_(True))
            .values(active=False)
        )

    def activate(self, version: int) -> ModelVersion:
        """Use ``version`` for this person's next photos (:class:`NotFoundError` if there is no
        such version of theirs)."""
        with self._database.writing() as session:
            row = session.scalar(
                select(PersonalModelRow).where(
                    PersonalModelRow.user_id == self.user_id, PersonalModelRow.version == version
                ).with_for_update()
            )
            if row is None:
                raise NotFoundError("model version", version)
            self._deactivate(session)
            row.active = True
            session.flush()
            return self._version_of(row)

    def rollback(self) -> ModelVersion | None:
        """Go back one version: the newest version older than the active one becomes active;
        from the oldest, the base model is used again (returns ``None``).
        :class:`ConflictError` when no personal model is in use."""
        with self._database.writing() as session:
            rows = session.scalars(
                select(PersonalModelRow)
                .where(PersonalModelRow.user_id == self.user_id)
                .order_by(PersonalModelRow.version)
                .with_for_update()
            ).all()
            active = [r for r in rows if r.active]
            if not active:
                raise ConflictError("no personal model is in use: nothing to roll back")
            earlier = [r for r in rows if r.version < active[0].version]
            self._deactivate(session)
            if not earlier:
                return None
            earlier[-1].active = True
            session.flush()
            return self._version_of(earlier[-1])

    def remove_all(self) -> int:
        """Delete every version of this person (rows and files); returns how many there were."""
        with self._database.writing() as session:
            rows = session.scalars(
                select(PersonalModelRow).where(PersonalModelRow.user_id == self.user_id)
            ).all()
            for row in rows:
                session.delete(row)
        shutil.rmtree(self.folder, ignore_errors=True)
        return len(rows)


def active_model_path(wardrobe: Wardrobe, root: str | Path | None = None) -> Path | None:
    """The checkpoint of the person's active model, ``None`` when they use the base model."""
    version = PersonalModels(wardrobe, root).active_model()
    return version.path if version is not None else None


def remove_orphans(database: WardrobeDatabase, root: str | Path,
                   min_age_s: float = ORPHAN_AGE_S) -> int:
    """Delete, under the models directory ``root``, the folders of people who no longer exist
    and, in the others, files no version names that are older than ``min_age_s`` (written by a
    fine-tuning that never registered them: it was cancelled late or killed). Returns how many
    files went."""
    root = Path(root)
    if not root.is_dir():
        return 0
    with database.sessions() as session:
        users = set(session.scalars(select(UserRow.id)))
        named = {(uid, name) for uid, name in session.execute(
            select(PersonalModelRow.user_id, PersonalModelRow.file_name))}
    removed = 0
    now = time.time()
    for folder in root.iterdir():
        if not folder.is_dir() or not folder.name.isdigit():
            continue
        uid = int(folder.name)
        if uid not in users:
            removed += sum(1 for p in folder.iterdir() if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            continue
        for path in folder.iterdir():
            if (path.is_file() and (uid, path.name) not in named
                    and now - path.stat().st_mtime >= min_age_s):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


class PersonalPredictors:
    """The predictor for each person's photos in a service: their active model's, loaded once
    and kept for the ``keep`` people who used one last, or ``base`` (the service's own
    predictor) for people without one. ``make(path)`` builds a predictor from a checkpoint
    (default: a :class:`~fashionkit.inference.Predictor` on ``device`` keeping detections
    scoring ``score_threshold``)."""

    def __init__(self, database: WardrobeDatabase, root: str | Path, base: Any, *,
                 score_threshold: float = 0.5, device: str = "cpu", keep: int = 4,
                 make: Any = None):
        self.database = database
        self.root = Path(root)
        self.base = base
        self.keep = keep
        self._make = make or (lambda path: _predictor(path, device, score_threshold))
        self._loaded: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def for_user(self, user_id: int) -> Any:
        with self.database.sessions() as session:
            name = session.scalar(
                select(PersonalModelRow.file_name).where(
                    PersonalModelRow.user_id == user_id, PersonalModelRow.active.is_(True)
                )
            )
        if name is None:
            return self.base
        key = (user_id, name)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        predictor = self._make(self.root / str(user_id) / name)
        with self._lock:
            self._loaded[key] = predictor
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        return predictor


def _predictor(path: Path, device: str, score_threshold: float) -> Any:
    from fashionkit.inference import Predictor

    return Predictor(path, device=device, score_threshold=score_threshold)
