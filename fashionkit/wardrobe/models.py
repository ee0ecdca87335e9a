"""SQLAlchemy 2 ORM tables of the wardrobe store (the schema at the newest migration).

The schema is created and changed only by the Alembic migrations in ``migrations/versions``;
these classes must match the head revision (a test compares them with ``compare_metadata``).

Formats of JSON columns: ``box`` is XYXY float pixels in the photo; ``mask`` a COCO RLE dict
(``{"size": [H, W], "counts": str}``); ``colors`` a list of ``"#rrggbb"`` (main first);
``season`` a list of ``"spring"|"summer"|"autumn"|"winter"``; ``occasion`` a list of free words.
Images (photos and cut-outs) live on disk, named by the SHA-256 of their bytes
(:mod:`fashionkit.wardrobe.image_files`); rows store that digest.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "UserRow",
    "PhotoRow",
    "ItemRow",
    "ItemAttributeRow",
    "ItemDetailRow",
    "ItemAppearanceRow",
    "WearRow",
    "OutfitRow",
    "OutfitItemRow",
    "FeedbackRow",
    "AccountRow",
    "JobRow",
    "ThrottleRow",
    "ItemEmbeddingRow",
    "PersonalModelRow",
    "ModelJobRow",
    "MODEL_JOB_STATES",
    "FEEDBACK_KINDS",
    "JOB_STATUSES",
    "JOB_KINDS",
]

FEEDBACK_KINDS: tuple[str, ...] = ("like", "dislike", "wore")
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed")
# "photo": items are added from the photo; "outfit": a photo of what the person wears today,
# whose items are recognised and logged as worn (fashionkit.service.photos).
JOB_KINDS: tuple[str, ...] = ("photo", "outfit")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    # A deleted person's id is never given to the next one (tokens name users by id).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class PhotoRow(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("user_id", "sha256", name="uq_photos_user_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    suffix: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_items_user_key"),
        CheckConstraint(
            "formality IS NULL OR (formality BETWEEN 1 AND 5)", name="ck_items_formality"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    category_id: Mapped[int] = mapped_column(Integer)
    # The category the detector gave the item when it was added from a photo (None: entered by
    # hand, or stored before this was kept). The person may correct ``category_id``; the
    # detector keeps seeing the item as it did, so recognition matches it under both.
    detected_category_id: Mapped[int | None] = mapped_column(Integer)
    supercategory: Mapped[str] = mapped_column(String(50))
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    box: Mapped[list | None] = mapped_column(JSON)
    mask: Mapped[dict | None] = mapped_column(JSON)
    cutout_sha256: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    colors: Mapped[list] = mapped_column(JSON, default=list)
    season: Mapped[list] = mapped_column(JSON, default=list)
    material: Mapped[str | None] = mapped_column(String(100))
    pattern: Mapped[str | None] = mapped_column(String(100))
    brand: Mapped[str | None] = mapped_column(String(100))
    trend: Mapped[str | None] = mapped_column(String(100))
    occasion: Mapped[list] = mapped_column(JSON, default=list)
    formality: Mapped[int | None] = mapped_column(Integer)
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)

    attributes: Mapped[list[ItemAttributeRow]] = relationship(
        cascade="all, delete-orphan", order_by="ItemAttributeRow.attribute_id"
    )
    details: Mapped[list[ItemDetailRow]] = relationship(
        cascade="all, delete-orphan", order_by="ItemDetailRow.id"
    )
    photo: Mapped[PhotoRow | None] = relationship()
    appearances: Mapped[list[ItemAppearanceRow]] = relationship(
        cascade="all, delete-orphan", order_by="ItemAppearanceRow.id"
    )


class ItemAttributeRow(Base):
    __tablename__ = "item_attributes"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    attribute_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score: Mapped[float | None] = mapped_column(Float)


class ItemDetailRow(Base):
    """A garment part (sleeve, neckline, pocket …) attached to its garment."""

    __tablename__ = "item_details"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(Integer)
    attribute_ids: Mapped[list] = mapped_column(JSON, default=list)
    box: Mapped[list | None] = mapped_column(JSON)
    mask: Mapped[dict | None] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)


class ItemAppearanceRow(Base):
    """Where an item is in a wardrobe photo besides its own placement (``items.photo_id``,
    ``box``, ``mask``): in another photo (a duplicate merged into it) or a second time in its
    own (the other shoe of a pair). Kept so that the photo's annotations, from which a
    person's detector is fine-tuned, still hold it: a garment left out of them would teach
    the detector it is background. ``details``: its parts as placed there (a list of
    ``{category_id, attribute_ids, box, mask, score}``)."""

    __tablename__ = "item_appearances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    box: Mapped[list] = mapped_column(JSON)
    mask: Mapped[dict] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    details: Mapped[list] = mapped_column(JSON, default=list)


class WearRow(Base):
    __tablename__ = "wear_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    worn_on: Mapped[dt.date] = mapped_column(Date)
    outfit_id: Mapped[int | None] = mapped_column(ForeignKey("outfits.id", ondelete="SET NULL"))


class OutfitRow(Base):
    __tablename__ = "outfits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    score: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[dict | None] = mapped_column(JSON)

    items: Mapped[list[OutfitItemRow]] = relationship(
        cascade="all, delete-orphan", order_by="OutfitItemRow.item_id"
    )


class OutfitItemRow(Base):
    __tablename__ = "outfit_items"

    outfit_id: Mapped[int] = mapped_column(
        ForeignKey("outfits.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("kind IN ('like', 'dislike', 'wore')", name="ck_feedback_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    outfit_id: Mapped[int] = mapped_column(ForeignKey("outfits.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)

    outfit: Mapped[OutfitRow] = relationship()


class AccountRow(Base):
    """A web-service login for a wardrobe: the password hash of the ``users`` row it belongs
    to (format: :func:`fashionkit.service.auth.hash_password`). A user without one has a
    wardrobe (made with the CLI) but cannot log in to the service until a password is set."""

    __tablename__ = "service_accounts"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(200))
    # Carried by every token of this login; raising it ends them all (fashionkit.service.auth).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class JobRow(Base):
    """A photo detection job of the web service (:mod:`fashionkit.service.photos`).

    ``status`` goes queued → running → done or failed. A process takes a job with one
    conditional ``UPDATE`` (queued, or running with its lease run out) that sets
    ``claimed_by``/``claimed_at``/``lease_until`` and counts an attempt, so that of several
    processes sharing the database exactly one holds it; the holder renews ``lease_until``
    while it runs, and only the holder of that attempt may write the result. ``photo_sha256`` and
    ``photo_format`` name the uploaded file (kept under the service's data folder until the
    job ends); ``error`` is written for the person, never a raw exception; ``result`` holds
    what the job found: ``{"items": [ids], "skipped": bool, "duplicates": [...], "overlay":
    sha256 | null, "supercategories": sha256 | null}``. ``kind`` (:data:`JOB_KINDS`):
    ``"outfit"`` jobs recognise the person's items in the photo instead, and their ``result`` is
    :mod:`fashionkit.service.outfit_photos`'s."""

    __tablename__ = "photo_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="ck_photo_jobs_status"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    photo_format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSON)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16), default="photo", server_default="photo")


class ThrottleRow(Base):
    """The web service's login throttle, shared by every process on the database
    (:class:`fashionkit.service.limits.LoginThrottle`). ``key``: ``"account:<name>"`` or
    ``"client:<address>"`` for wrong passwords (``failures`` of them, the last at ``last_s``),
    ``"register:<address>"`` for registrations (``times``: those of the window, newest last).
    Times are seconds since the epoch."""

    __tablename__ = "service_throttle"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_s: Mapped[float] = mapped_column(Float, index=True)
    times: Mapped[list | None] = mapped_column(JSON)


class ItemEmbeddingRow(Base):
    """An item's appearance embedding, for recognising it in later photos
    (:mod:`fashionkit.personal.wearlog`). ``embedder`` is the embedder's ``key`` (the model and
    embedding version that made the vector: vectors of different keys are not comparable);
    ``source`` where the vector was seen: ``""`` for the item's own picture (its wardrobe photo
    or cut-out), else the SHA-256 of an outfit photo it was recognised in (another view of it,
    which makes later recognition surer); ``vector`` is ``dims`` little-endian float32 values,
    L2-normalised. Rows belong to a person through their item and go with it."""

    __tablename__ = "item_embeddings"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    embedder: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    dims: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    # The category the detector gave the item in the photo this view was seen in (None for the
    # item's own picture: the item's detected category stands for it). A person who says an
    # offered garment is their item may be correcting the detector's category too.
    category_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


MODEL_JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")


class PersonalModelRow(Base):
    """One version of a person's fine-tuned detector (:mod:`fashionkit.personal.models`).

    ``version`` counts 1, 2, … per person; ``file_name`` is the checkpoint's name in the
    person's folder of the models directory; ``base`` the checkpoint it was fine-tuned from;
    ``photos``, ``minutes`` and ``steps`` what the fine-tuning took. At most one row per person
    is ``active``: the model their next photos are detected with (none: the base model)."""

    __tablename__ = "personal_models"
    __table_args__ = (
        UniqueConstraint("user_id", "version", name="uq_personal_models_user_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(200))
    base: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    photos: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelJobRow(Base):
    """A "teach my model" job of the web service (:mod:`fashionkit.personal.teaching`).

    ``state`` goes queued → running → done, failed or cancelled; ``progress`` is the share
    done (0..1) and ``message`` what is happening, or why it failed, written for the person;
    ``cancel_requested`` asks the process running it to stop at the next training step;
    ``minutes`` is the time budget; ``version`` the model version it made (when done)."""

    __tablename__ = "model_jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed', 'cancelled')",
            name="ck_model_jobs_state",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    minutes: Mapped[float] = mapped_column(Float)
    version: Mapped[int | None] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
