"""The wardrobe store: one person's items, wear log, outfits and feedback in a SQL database.

SQLite by default (a file in the user's data directory, WAL journal, foreign keys enforced);
any SQLAlchemy URL works (``postgresql+psycopg://…`` for larger deployments). Opening a store
applies any pending migration. Images go to a content-addressed folder
(:class:`~fashionkit.wardrobe.image_files.ImageStore`) that belongs to the database:
:func:`default_image_dir` (``<name>-images/`` beside a SQLite file). The CLI and the web service
both use it, so a wardrobe's photos and cut-outs are found whichever of them opens it.

Several people can share one database: every row belongs to the ``user`` the store was opened
for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from fashionkit.errors import ConflictError, InvalidDataError, LimitError, NotFoundError, Problem
from fashionkit.ontology import load_ontology
from fashionkit.wardrobe import migrate
from fashionkit.wardrobe.image_files import ImageStore
from fashionkit.wardrobe.items import WardrobeItem, item_from_dict, item_to_dict
from fashionkit.wardrobe.models import (
    FEEDBACK_KINDS,
    AccountRow,
    FeedbackRow,
    ItemAppearanceRow,
    ItemAttributeRow,
    ItemDetailRow,
    ItemEmbeddingRow,
    ItemRow,
    OutfitItemRow,
    OutfitRow,
    PhotoRow,
    UserRow,
    WearRow,
)

__all__ = [
    "Wardrobe",
    "WardrobeDatabase",
    "FeedbackEvent",
    "ItemPart",
    "ItemInPhoto",
    "Placement",
    "ItemRecord",
    "RecognitionSamples",
    "WearStats",
    "AnnotatedPhoto",
    "PhotoAnnotation",
    "default_url",
    "default_image_dir",
    "create_store_engine",
]


_CHUNK = 500
# The conflict of two writers inserting one item id at once (the loser retries).
_ID_TAKEN = "an item id of this write was added meanwhile; retry"
SQLITE_BUSY_TIMEOUT_S = 30.0
# What the wear log says of an item, in one place for every query that reports it: times worn
# counts days (the table has no unique constraint on item and day, so a day logged twice
# still counts once) and the last day worn.
_DAYS_WORN = func.count(func.distinct(WearRow.worn_on))
_LAST_WORN = func.max(WearRow.worn_on)


def _part_json(part: ItemPart | ItemDetailRow) -> dict:
    """A part (found, or stored as an item's detail) as the JSON an appearance keeps its parts
    in."""
    return {
        "category_id": part.category_id,
        "attribute_ids": list(part.attribute_ids or ()),
        "box": [float(v) for v in part.box] if part.box is not None else None,
        "mask": dict(part.mask) if part.mask is not None else None,
        "score": part.score,
    }


def default_url() -> str:
    """``sqlite:///<user data dir>/fashionkit/wardrobe.sqlite`` (platformdirs)."""
    import platformdirs

    return f"sqlite:///{platformdirs.user_data_path('fashionkit') / 'wardrobe.sqlite'}"


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, enforced foreign keys and a writer
    waits up to :data:`SQLITE_BUSY_TIMEOUT_S` for another to finish."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # One writer at a time: others wait for it up to this long before "database is locked"
    # (sqlite3's default, 5 s, is short for a web service with many people writing at once).
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if database and database != ":memory:":
            # WAL lets the CLI read while a service writes; the mode persists in the file.
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


def default_image_dir(url: str) -> Path:
    """The image folder of the database ``url``: ``<db stem>-images/`` beside a SQLite file
    (``wardrobe.sqlite`` → ``wardrobe-images/``); for other databases ``images/`` in the user
    data directory (platformdirs)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database).expanduser()
        return db.with_name(db.stem + "-images")
    import platformdirs

    return platformdirs.user_data_path("fashionkit") / "images"


@dataclass(frozen=True)
class FeedbackEvent:
    """One piece of feedback: the outfit's item ids, ``kind`` in like/dislike/wore, and when."""

    items: tuple[str, ...]
    kind: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ItemPart:
    """A garment part kept with its garment: Fashionpedia part category (sleeve 31, pocket 32,
    neckline 33 …), its attribute ids, box XYXY in the photo, mask as COCO RLE, score."""

    category_id: int
    attribute_ids: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: dict | None = None
    score: float | None = None


@dataclass(frozen=True)
class Placement:
    """Where an item is seen once more in the photo it was found in (the other shoe of a
    pair): box XYXY, mask as COCO RLE, score, its parts there, and its embedding there
    (as :attr:`ItemInPhoto.embedding`)."""

    box: tuple[float, float, float, float]
    mask: dict
    score: float
    details: tuple[ItemPart, ...] = ()
    embedding: tuple[str, np.ndarray] | None = None


@dataclass(frozen=True)
class ItemInPhoto:
    """An item found in a photo, ready to store: the item, where it is (box XYXY, mask as COCO
    RLE), the detector's score and attribute scores, its parts as details, its cut-out's
    digest in the image store, and ``also``: the item seen once more in the same photo
    (:class:`Placement`; the other shoe of a pair)."""

    item: WardrobeItem
    box: tuple[float, float, float, float]
    mask: dict
    score: float
    attribute_scores: dict[int, float]
    details: tuple[ItemPart, ...] = ()
    cutout_sha256: str | None = None
    # (embedder key, D float32 L2-normalised vector): stored with the item, for recognising it
    # in later photos.
    embedding: tuple[str, np.ndarray] | None = None
    also: tuple[Placement, ...] = ()


@dataclass(frozen=True)
class RecognitionSamples:
    """Every vector of one embedder of a person's items, for a recognition gallery: ``keys``,
    ``sources`` and ``vectors`` as :meth:`Wardrobe.embedding_samples` gives them; ``seen_as``:
    the category the detector gave the item where each vector was seen (a view's photo; for the
    item's own picture, the category it was added under from a photo, else its category);
    ``categories``: item id → the item's category now (the person's word on it)."""

    keys: list[str]
    sources: list[str]
    vectors: np.ndarray
    seen_as: list[int]
    categories: dict[str, int]


@dataclass(frozen=True)
class WearStats:
    """How often an item was worn: ``times_worn`` counts days (two wear records of one day are
    one wear), ``last_worn`` the latest of them (``None``: never)."""

    times_worn: int = 0
    last_worn: dt.date | None = None


@dataclass(frozen=True)
class ItemRecord:
    """An item as one transaction saw it, with what a reply about it shows besides its fields:
    whether it has a cut-out and on how many days it was worn. Writes return it from their own
    transaction, so a rename or delete right after a write cannot turn its reply into a 404."""

    item: WardrobeItem
    has_cutout: bool
    times_worn: int


@dataclass(frozen=True)
class PhotoAnnotation:
    """An item (or, with ``is_part``, one of its parts) as drawn in a photo: box XYXY pixels,
    mask COCO RLE, the person's category and attribute ids."""

    item: str
    category_id: int
    box: tuple[float, ...]
    mask: dict
    attribute_ids: tuple[int, ...]
    is_part: bool = False
    # The item seen again (ItemAppearanceRow): not the placement it was found at.
    is_appearance: bool = False


@dataclass(frozen=True)
class AnnotatedPhoto:
    """A stored photo (``path`` in the image store, size ``height`` × ``width``) and the
    objects in it."""

    path: Path
    sha256: str
    height: int
    width: int
    objects: tuple[PhotoAnnotation, ...]


class WardrobeDatabase:
    """One wardrobe database for a whole process: one engine and connection pool, migrated once,
    with its image folder, handing out each person's :class:`Wardrobe` (:meth:`wardrobe`).
    Use as a context manager or call :meth:`close`.

    ``image_dir``: where photos and cut-outs are stored; leave it to the default
    (:func:`default_image_dir` of ``url``) unless every program opening this database is given
    the same folder."""

    def __init__(
        self,
        url: str | None = None,
        *,
        image_dir: str | Path | None = None,
        apply_migrations: bool = True,
    ):
        self.url = url or default_url()
        self.engine = create_store_engine(self.url)
        if apply_migrations:
            migrate.upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.images = ImageStore(image_dir or default_image_dir(self.url))

    def __enter__(self) -> WardrobeDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def wardrobe(self, user: str, *, user_id: int | None = None) -> Wardrobe:
        """The wardrobe of ``user`` (created when new), sharing this database's engine; closing
        it leaves the engine open. ``user_id``: the ``users`` row id when the caller already
        knows it (a logged-in account), which saves looking it up."""
        return Wardrobe(database=self, user=user, user_id=user_id)

    def user_id(self, user: str) -> int:
        """The ``users`` row of ``user``, created when there is none."""
        try:
            with self.sessions.begin() as session:
                row = session.scalar(select(UserRow).where(UserRow.name == user))
                if row is None:
                    row = UserRow(name=user)
                    session.add(row)
                    session.flush()
                return row.id
        except IntegrityError:
            # Another connection created it between our read and our insert: it exists now.
            with self.sessions() as session:
                found = session.scalar(select(UserRow.id).where(UserRow.name == user))
            if found is None:
                raise
            return found

    def account_password_hash(self, user: str) -> str | None:
        """The password hash of ``user``'s web-service login, ``None`` when that wardrobe has
        none. A wardrobe with a login belongs to that account, so other tools ask for its
        password before opening it."""
        with self.sessions() as session:
            return session.scalar(
                select(AccountRow.password_hash)
                .join(UserRow, UserRow.id == AccountRow.user_id)
                .where(UserRow.name == user)
            )

    @contextmanager
    def writing(self, conflict: str = "the wardrobe changed meanwhile; retry") -> Iterator[Session]:
        """A write transaction that sees no other writer between its reads and its writes.

        SQLite takes its writer lock at the start (``BEGIN IMMEDIATE``), so transactions that
        read a row and write it back run one after another; on PostgreSQL the reads that matter
        lock their rows (:meth:`Wardrobe._row` with ``lock``). A unique or foreign-key
        violation left to the database (two writers inserting one id) raises
        :class:`ConflictError` with ``conflict``; a row deleted under an update or a delete
        raises :class:`NotFoundError`."""
        try:
            with self.sessions.begin() as session:
                if self.engine.dialect.name == "sqlite":
                    # pysqlite opens transactions lazily, so this is the transaction's first
                    # statement and takes the writer lock before anything is read.
                    session.connection().exec_driver_sql("BEGIN IMMEDIATE")
                yield session
        except IntegrityError as err:
            raise ConflictError(conflict) from err
        except StaleDataError as err:
            raise NotFoundError("item", "deleted meanwhile") from err


class Wardrobe:
    """A person's wardrobe in a database. Use as a context manager or call :meth:`close`.

    ``Wardrobe(url, user=...)`` opens the database for this wardrobe alone (its own engine,
    disposed by :meth:`close`); a program serving many people opens one
    :class:`WardrobeDatabase` and asks it for each person's wardrobe. ``image_dir`` and
    ``apply_migrations`` are as for :class:`WardrobeDatabase`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        user: str = "default",
        image_dir: str | Path | None = None,
        apply_migrations: bool = True,
        database: WardrobeDatabase | None = None,
        user_id: int | None = None,
    ):
        self._owns_database = database is None
        if database is None:
            database = WardrobeDatabase(
                url, image_dir=image_dir, apply_migrations=apply_migrations
            )
        self.database = database
        self.url = database.url
        self.engine = database.engine
        self._sessions = database.sessions
        self.images = database.images
        self.user = user
        self.user_id = user_id if user_id is not None else database.user_id(user)

    def __enter__(self) -> Wardrobe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_database:
            self.database.close()

    # -- items -------------------------------------------------------------------------------
    def _item_query(self):
        return (
            select(ItemRow)
            .where(ItemRow.user_id == self.user_id)
            .options(selectinload(ItemRow.attributes))
            .order_by(ItemRow.key)
        )

    def _last_worn(self, session: Session, item_ids: list[int] | None = None) -> dict[int, dt.date]:
        query = select(WearRow.item_id, func.max(WearRow.worn_on)).group_by(WearRow.item_id)
        if item_ids is not None:
            query = query.where(WearRow.item_id.in_(item_ids))
        else:
            query = query.join(ItemRow, ItemRow.id == WearRow.item_id).where(
                ItemRow.user_id == self.user_id
            )
        return {item_id: worn for item_id, worn in session.execute(query)}

    @staticmethod
    def _to_item(row: ItemRow, last_worn: dt.date | None) -> WardrobeItem:
        return WardrobeItem(
            id=row.key,
            category_id=row.category_id,
            name=row.name,
            colors=tuple(row.colors or ()),
            season=tuple(row.season or ()),
            material=row.material,
            pattern=row.pattern,
            brand=row.brand,
            trend=row.trend,
            occasion=tuple(row.occasion or ()),
            formality=row.formality,
            attribute_ids=tuple(a.attribute_id for a in row.attributes),
            favorite=bool(row.favorite),
            notes=row.notes,
            last_worn=last_worn,
        )

    @staticmethod
    def _fill_row(row: ItemRow, item: WardrobeItem, attribute_scores: dict[int, float] | None) -> None:
        row.key = item.id
        row.name = item.name
        row.category_id = item.category_id
        row.supercategory = load_ontology().category(item.category_id).supercategory
        row.colors = list(item.colors)
        row.season = list(item.season)
        row.material = item.material
        row.pattern = item.pattern
        row.brand = item.brand
        row.trend = item.trend
        row.occasion = list(item.occasion)
        row.formality = item.formality
        row.favorite = item.favorite
        row.notes = item.notes
        scores = attribute_scores or {}
        old = {a.attribute_id: a for a in row.attributes}
        row.attributes = [
            old.get(a) or ItemAttributeRow(attribute_id=a, score=scores.get(a))
            for a in item.attribute_ids
        ]

    def items(
        self,
        category_id: int | None = None,
        *,
        favorite: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[WardrobeItem]:
        """All items (or those of one category, or (not) marked favourite), ordered by id, with
        ``last_worn`` from the wear log; ``offset``/``limit``: one page of them."""
        query = self._item_query()
        if category_id is not None:
            query = query.where(ItemRow.category_id == category_id)
        if favorite is not None:
            query = query.where(ItemRow.favorite.is_(favorite))
        if offset or limit is not None:
            query = query.offset(offset).limit(limit)
        with self._sessions() as session:
            rows = session.scalars(query).all()
            if limit is None:
                worn = self._last_worn(session)
            else:  # a page: the wear log of its items only
                worn = {}
                ids = [r.id for r in rows]
                for start in range(0, len(ids), _CHUNK):
                    worn.update(self._last_worn(session, ids[start : start + _CHUNK]))
            return [self._to_item(r, worn.get(r.id)) for r in rows]

    def feedback_count(self) -> int:
        with self._sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(FeedbackRow)
                    .where(FeedbackRow.user_id == self.user_id)
                )
                or 0
            )

    def count(self, category_id: int | None = None, *, favorite: bool | None = None) -> int:
        """How many items :meth:`items` would return without a page."""
        query = select(func.count()).select_from(ItemRow).where(ItemRow.user_id == self.user_id)
        if category_id is not None:
            query = query.where(ItemRow.category_id == category_id)
        if favorite is not None:
            query = query.where(ItemRow.favorite.is_(favorite))
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def _row(self, session: Session, key: str, *, lock: bool = False) -> ItemRow:
        query = self._item_query().where(ItemRow.key == key)
        if lock:
            # PostgreSQL: concurrent writers of this item wait for this transaction.
            query = query.with_for_update(of=ItemRow)
        row = session.scalar(query)
        if row is None:
            raise NotFoundError("item", key)
        return row

    def get(self, key: str) -> WardrobeItem:
        with self._sessions() as session:
            row = self._row(session, key)
            return self._to_item(row, self._last_worn(session, [row.id]).get(row.id))

    def record(self, key: str) -> ItemRecord:
        """The item ``key`` with its cut-out flag and days worn, read in one transaction."""
        with self._sessions() as session:
            return self._record(session, self._row(session, key))

    def _record(self, session: Session, row: ItemRow) -> ItemRecord:
        days, last = session.execute(
            select(_DAYS_WORN, _LAST_WORN).where(WearRow.item_id == row.id)
        ).one()
        return ItemRecord(self._to_item(row, last), row.cutout_sha256 is not None, int(days or 0))

    def __len__(self) -> int:
        with self._sessions() as session:
            return self._held(session)

    def _held(self, session: Session) -> int:
        """How many items the person holds, as ``session`` reads them."""
        count = session.scalar(
            select(func.count()).select_from(ItemRow).where(ItemRow.user_id == self.user_id)
        )
        return int(count or 0)

    def add(
        self,
        item: WardrobeItem,
        *,
        attribute_scores: dict[int, float] | None = None,
        max_items: int | None = None,
    ) -> WardrobeItem:
        """Add a new item; :class:`~fashionkit.errors.ConflictError` when its id is taken,
        :class:`~fashionkit.errors.LimitError` when the wardrobe holds ``max_items`` already."""
        return self.add_record(item, attribute_scores=attribute_scores, max_items=max_items).item

    def add_record(
        self,
        item: WardrobeItem,
        *,
        attribute_scores: dict[int, float] | None = None,
        max_items: int | None = None,
    ) -> ItemRecord:
        """:meth:`add`, returning the :class:`ItemRecord` its transaction wrote."""
        with self.database.writing(_ID_TAKEN) as session:
            (row,) = self._put(
                session, [item], replace=False, attribute_scores=[attribute_scores],
                max_items=max_items,
            )  # fmt: skip
            return self._record(session, row)

    def put_many(
        self,
        items: Iterable[WardrobeItem],
        *,
        replace: bool = True,
        attribute_scores: list[dict[int, float] | None] | None = None,
        max_items: int | None = None,
    ) -> None:
        """Insert items, or (``replace=True``) overwrite those whose id exists, in one
        transaction. An item's ``last_worn`` adds a wear-log entry for that day if missing.
        :class:`~fashionkit.errors.LimitError`, and nothing written, when the new ones would
        take the wardrobe past ``max_items``."""
        with self.database.writing(_ID_TAKEN) as session:
            self._put(
                session, list(items), replace=replace, attribute_scores=attribute_scores,
                max_items=max_items,
            )  # fmt: skip

    def check_room(self, adding: int, max_items: int | None) -> None:
        """:class:`~fashionkit.errors.LimitError` when ``adding`` items would take this
        wardrobe past ``max_items`` now: an early answer, before work that would be wasted
        (decoding an upload, reading an import). The writes that take ``max_items`` count
        again in their own transaction, which is what holds under races."""
        with self._sessions() as session:
            self._room(session, adding, max_items)

    def _lock_person(self, session: Session) -> None:
        """Lock the person's row for the rest of ``session``'s transaction (PostgreSQL;
        SQLite's writer lock serialises every write already), before any item's lock, so that
        writers holding both take them in one order."""
        session.execute(select(UserRow.id).where(UserRow.id == self.user_id).with_for_update())

    def _room(self, session: Session, adding: int, max_items: int | None) -> None:
        """:class:`~fashionkit.errors.LimitError` when ``adding`` items would take this
        wardrobe past ``max_items`` (``None``: no limit), counted in the writing transaction
        after :meth:`_lock_person`. A count read before the write, in a transaction of its
        own, lets two requests that each see room for one both add theirs; with the lock the
        second writer waits, then counts the first one's item (on PostgreSQL each statement
        reads what was committed before it)."""
        if max_items is None or adding <= 0:
            return
        held = self._held(session)
        if held + adding > max_items:
            raise LimitError(
                f"a wardrobe holds at most {max_items} items; this one has {held} and this "
                f"request would add {adding}: remove some first"
            )

    def _take_room(self, session: Session, adding: int, max_items: int | None) -> None:
        """:meth:`_lock_person`, then :meth:`_room`, for a write that locks no item row before
        it adds (:meth:`_put` locks the items it replaces in between)."""
        if max_items is None or adding <= 0:
            return
        self._lock_person(session)
        self._room(session, adding, max_items)

    def _put(
        self,
        session: Session,
        items: list[WardrobeItem],
        *,
        replace: bool,
        attribute_scores: list[dict[int, float] | None] | None,
        max_items: int | None = None,
    ) -> list[ItemRow]:
        """The writes of :meth:`put_many` in ``session``; the rows of ``items``, in order."""
        scores = attribute_scores or [None] * len(items)
        keys = [i.id for i in items]
        existing: dict[str, ItemRow] = {}
        if max_items is not None:
            self._lock_person(session)
        # Chunked IN lists: SQLite caps the number of bound parameters per statement.
        # Locked (PostgreSQL): an item edited or deleted meanwhile is replaced or inserted
        # again after that write, not lost to a stale read. In id order, as _rows_for
        # locks, so that writers of the same items wait instead of deadlocking (per
        # chunk; imports come in batches of at most one chunk).
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            query = (
                self._item_query()
                .where(ItemRow.key.in_(chunk))
                .order_by(None)
                .order_by(ItemRow.id)
                .with_for_update(of=ItemRow)
            )
            existing.update((r.key, r) for r in session.scalars(query))
        self._room(session, len({k for k in keys if k not in existing}), max_items)
        for item, item_scores in zip(items, scores, strict=True):
            row = existing.get(item.id)
            if row is not None and not replace:
                raise ConflictError(f"item id {item.id!r} is already in the wardrobe")
            if row is None:
                row = ItemRow(user_id=self.user_id, attributes=[])
                session.add(row)
                existing[item.id] = row
            self._fill_row(row, item, item_scores)
        session.flush()
        worn = [(existing[i.id].id, i.last_worn) for i in items if i.last_worn is not None]
        logged: set[tuple[int, dt.date]] = set()
        for start in range(0, len(worn), _CHUNK):
            ids = [item_id for item_id, _ in worn[start : start + _CHUNK]]
            rows = session.execute(
                select(WearRow.item_id, WearRow.worn_on).where(WearRow.item_id.in_(ids))
            )
            logged.update((item_id, day) for item_id, day in rows)
        for item_id, day in worn:
            if (item_id, day) not in logged:
                session.add(WearRow(item_id=item_id, worn_on=day))
                logged.add((item_id, day))
        return [existing[i.id] for i in items]

    def update(self, key: str, **changes) -> WardrobeItem:
        """:meth:`edit`, returning the item only."""
        return self.edit(key, **changes).item

    def edit(self, key: str, **changes) -> ItemRecord:
        """Change fields of an item (names and formats as in the import format: ``category`` by
        name or id, ``colors`` as hex …); invalid values raise :class:`InvalidDataError`.

        The item is read, changed and written in one transaction holding its row, so edits of
        different fields made at the same time all land."""
        with self.database.writing() as session:
            row = self._row(session, key, lock=True)
            current = item_to_dict(self._to_item(row, None))
            current.pop("last_worn", None)
            for name, value in changes.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value
            item, problems = item_from_dict(
                current, source=f"wardrobe {self.user!r}", where=f"item {key!r}"
            )
            if problems:
                raise InvalidDataError(problems)
            assert item is not None
            if item.id != key and session.scalar(
                select(ItemRow.id).where(ItemRow.user_id == self.user_id, ItemRow.key == item.id)
            ):
                raise ConflictError(f"item id {item.id!r} is already in the wardrobe")
            self._fill_row(row, item, None)
            session.flush()
            return self._record(session, row)

    def remove(self, key: str) -> None:
        with self.database.writing() as session:
            session.delete(self._row(session, key, lock=True))

    # -- photos and detected items ----------------------------------------------------------
    def add_photo(self, path: str | Path, size: tuple[int, int],
                  items: Iterable[ItemInPhoto] = (), *,
                  max_items: int | None = None) -> tuple[int, str, bool]:
        """Store a photo file (content-addressed) with its decoded ``size`` ``(H, W)`` and the
        items found in it, all in one transaction: a crash leaves the photo with all of its
        items or with none of them. Returns ``(photo row id, sha256, new)``; ``new`` is False
        when this person already added the same bytes, and then ``items`` are not added.
        :class:`~fashionkit.errors.LimitError`, and nothing stored in the database, when its
        items would take the wardrobe past ``max_items``."""
        items = list(items)
        digest, suffix = self.images.put_file(path)
        with self.database.writing("this photo or an item id in it was added meanwhile") as session:
            row = session.scalar(
                select(PhotoRow).where(PhotoRow.user_id == self.user_id, PhotoRow.sha256 == digest)
            )
            if row is not None:
                return row.id, digest, False
            self._take_room(session, len(items), max_items)
            row = PhotoRow(
                user_id=self.user_id, sha256=digest, suffix=suffix, height=size[0], width=size[1]
            )
            session.add(row)
            session.flush()
            for detected in items:
                self._insert_detected(session, row.id, detected, digest)
            return row.id, digest, True

    def has_photo(self, sha256: str) -> bool:
        """Whether this person already added a photo with these bytes."""
        with self._sessions() as session:
            return session.scalar(
                select(PhotoRow.id).where(PhotoRow.user_id == self.user_id,
                                          PhotoRow.sha256 == sha256)
            ) is not None

    def photo_items(self, sha256: str) -> list[str]:
        """Ids of the items found in this person's photo with these bytes (none when it is
        not stored), in the order they were stored."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(ItemRow.key)
                    .join(PhotoRow, PhotoRow.id == ItemRow.photo_id)
                    .where(PhotoRow.user_id == self.user_id, PhotoRow.sha256 == sha256)
                    .order_by(ItemRow.id)
                )
            )

    def _insert_detected(
        self, session: Session, photo_id: int | None, detected: ItemInPhoto,
        photo_sha256: str | None = None,
    ) -> None:
        """Store one detected item. In a stored photo (``photo_id``, ``photo_sha256``) its
        other placements there become appearances, and their embeddings views seen in that
        photo; in a photo not kept (an outfit photo) they have nothing to refer to and are
        left out."""
        item = detected.item
        if session.scalar(
            select(ItemRow.id).where(ItemRow.user_id == self.user_id, ItemRow.key == item.id)
        ):
            raise ConflictError(f"item id {item.id!r} is already in the wardrobe")
        row = ItemRow(user_id=self.user_id, attributes=[])
        session.add(row)
        self._fill_row(row, item, detected.attribute_scores)
        row.photo_id = photo_id
        row.detected_category_id = item.category_id
        row.box = [float(v) for v in detected.box]
        row.mask = dict(detected.mask)
        row.score = float(detected.score)
        row.cutout_sha256 = detected.cutout_sha256
        row.details = [
            ItemDetailRow(
                category_id=d.category_id,
                attribute_ids=list(d.attribute_ids),
                box=[float(v) for v in d.box] if d.box is not None else None,
                mask=dict(d.mask) if d.mask is not None else None,
                score=d.score,
            )
            for d in detected.details
        ]
        if photo_id is not None:
            row.appearances = [
                ItemAppearanceRow(photo_id=photo_id, box=[float(v) for v in p.box],
                                  mask=dict(p.mask), score=float(p.score),
                                  details=[_part_json(d) for d in p.details])
                for p in detected.also
            ]  # fmt: skip
        session.flush()
        if detected.embedding is not None:
            embedder, vector = detected.embedding
            session.add(self._embedding_row(row.id, embedder, vector))
        if photo_sha256 is not None:
            # One view per photo (the views' key): the first other placement's.
            views = {p.embedding[0]: p.embedding[1] for p in reversed(detected.also)
                     if p.embedding is not None}  # fmt: skip
            for embedder, vector in views.items():
                session.add(self._embedding_row(row.id, embedder, vector, photo_sha256,
                                                item.category_id))

    def details(self, key: str) -> list[ItemPart]:
        with self._sessions() as session:
            row = self._row(session, key)
            return [
                ItemPart(
                    category_id=d.category_id,
                    attribute_ids=tuple(d.attribute_ids or ()),
                    box=tuple(d.box) if d.box else None,
                    mask=d.mask,
                    score=d.score,
                )
                for d in row.details
            ]

    def cutout_path(self, key: str) -> Path | None:
        """The item's cut-out (RGBA PNG) on disk, ``None`` for items entered by hand."""
        with self._sessions() as session:
            digest = self._row(session, key).cutout_sha256
        return self.images.path(digest, ".png") if digest else None

    def existing_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that are ids of items in this wardrobe."""
        keys = list(keys)
        found: set[str] = set()
        with self._sessions() as session:
            for start in range(0, len(keys), _CHUNK):
                found.update(
                    session.scalars(
                        select(ItemRow.key).where(
                            ItemRow.user_id == self.user_id,
                            ItemRow.key.in_(keys[start : start + _CHUNK]),
                        )
                    )
                )
        return found

    def keys_with_cutouts(self) -> set[str]:
        """Ids of the items that have a cut-out (those found in photos), in one query."""
        with self._sessions() as session:
            return set(
                session.scalars(
                    select(ItemRow.key).where(
                        ItemRow.user_id == self.user_id, ItemRow.cutout_sha256.is_not(None)
                    )
                )
            )

    def photo_of(self, key: str) -> Path | None:
        with self._sessions() as session:
            photo = self._row(session, key).photo
            return self.images.path(photo.sha256, photo.suffix) if photo else None

    def annotated_photos(self) -> list[AnnotatedPhoto]:
        """Every photo with the items found in it, as the person corrected them (category,
        attributes) and their parts (details), ordered by photo id."""
        with self._sessions() as session:
            photos = session.scalars(
                select(PhotoRow).where(PhotoRow.user_id == self.user_id).order_by(PhotoRow.id)
            ).all()
            rows = session.scalars(
                self._item_query()
                .where(ItemRow.photo_id.is_not(None))
                .options(selectinload(ItemRow.details))
            ).all()
            # The items seen again in photos (merged duplicates, the other shoe of a pair),
            # under the item's category and attributes as the person corrected them.
            seen_again = session.execute(
                select(ItemAppearanceRow, ItemRow)
                .join(ItemRow, ItemRow.id == ItemAppearanceRow.item_id)
                .where(ItemRow.user_id == self.user_id)
                .options(selectinload(ItemRow.attributes))
                .order_by(ItemAppearanceRow.id)
            ).all()
            # Per photo, in item order (an item's own placement first): the item, its box,
            # mask and parts there, and whether it is an appearance.
            by_photo: dict[int, list[tuple[tuple[int, int], ItemRow, list, dict, list, bool]]] = {}
            for row in rows:
                if row.mask is not None and row.box is not None:
                    by_photo.setdefault(row.photo_id, []).append(
                        ((row.id, 0), row, row.box, row.mask,
                         [_part_json(d) for d in row.details], False))
            for appearance, row in seen_again:
                by_photo.setdefault(appearance.photo_id, []).append(
                    ((row.id, appearance.id), row, appearance.box, appearance.mask,
                     appearance.details or [], True))
            out = []
            for photo in photos:
                objects = []
                for _, row, box, mask, parts, again in sorted(by_photo.get(photo.id, []),
                                                              key=lambda e: e[0]):
                    objects.append(
                        PhotoAnnotation(
                            item=row.key,
                            category_id=row.category_id,
                            box=tuple(box),
                            mask=mask,
                            attribute_ids=tuple(a.attribute_id for a in row.attributes),
                            is_appearance=again,
                        )
                    )
                    for detail in parts:
                        if detail.get("mask") is not None and detail.get("box") is not None:
                            objects.append(
                                PhotoAnnotation(
                                    item=row.key,
                                    category_id=int(detail["category_id"]),
                                    box=tuple(detail["box"]),
                                    mask=detail["mask"],
                                    attribute_ids=tuple(detail.get("attribute_ids") or ()),
                                    is_part=True,
                                    is_appearance=again,
                                )
                            )
                out.append(
                    AnnotatedPhoto(
                        path=self.images.path(photo.sha256, photo.suffix),
                        sha256=photo.sha256,
                        height=photo.height,
                        width=photo.width,
                        objects=tuple(objects),
                    )
                )
            return out

    def merge(self, keep: str, drop: str) -> WardrobeItem:
        """:meth:`merge_record`'s item."""
        return self.merge_record(keep, drop).item

    def merge_record(self, keep: str, drop: str) -> ItemRecord:
        """Merge item ``drop`` into ``keep`` (the same garment photographed twice): its wear
        log, outfits and details move to ``keep``, its attributes are added, where it was in
        its photo becomes an appearance of ``keep`` there (with its own appearances), its
        embeddings views of ``keep`` (its own picture's as seen in its photo), then ``drop``
        is removed. So the photo's annotations still hold the garment, and recognition has
        one more view of it. Returns ``keep`` as the merge left it. :class:`NotFoundError`
        names an id not in this wardrobe; :class:`InvalidDataError` for an item merged into
        itself."""
        if keep == drop:
            raise InvalidDataError(
                [Problem(f"wardrobe {self.user!r}", f"item {keep!r}", "cannot merge into itself")]
            )
        with self.database.writing() as session:
            kept, dropped = self._rows_for(session, [keep, drop])
            for wear in session.scalars(select(WearRow).where(WearRow.item_id == dropped.id)):
                wear.item_id = kept.id
            in_kept = set(
                session.scalars(
                    select(OutfitItemRow.outfit_id).where(OutfitItemRow.item_id == kept.id)
                )
            )
            for link in session.scalars(
                select(OutfitItemRow).where(OutfitItemRow.item_id == dropped.id)
            ).all():
                if link.outfit_id in in_kept:
                    session.delete(link)
                else:
                    session.add(OutfitItemRow(outfit_id=link.outfit_id, item_id=kept.id))
                    session.delete(link)
            known = {a.attribute_id for a in kept.attributes}
            for attribute in dropped.attributes:
                if attribute.attribute_id not in known:
                    kept.attributes.append(
                        ItemAttributeRow(attribute_id=attribute.attribute_id, score=attribute.score)
                    )
            for detail in dropped.details:
                kept.details.append(
                    ItemDetailRow(
                        category_id=detail.category_id,
                        attribute_ids=detail.attribute_ids,
                        box=None,  # boxes and masks refer to the other photo
                        mask=None,
                        score=detail.score,
                    )
                )
            if dropped.photo_id is not None and dropped.box is not None \
                    and dropped.mask is not None:
                kept.appearances.append(ItemAppearanceRow(
                    photo_id=dropped.photo_id, box=dropped.box, mask=dropped.mask,
                    score=dropped.score,
                    details=[_part_json(d) for d in dropped.details if d.box is not None]))
            for appearance in list(dropped.appearances):
                dropped.appearances.remove(appearance)
                kept.appearances.append(ItemAppearanceRow(
                    photo_id=appearance.photo_id, box=appearance.box, mask=appearance.mask,
                    score=appearance.score, details=appearance.details))  # fmt: skip
            self._move_views(session, dropped, kept)
            session.flush()
            session.delete(dropped)
            session.flush()
            return self._record(session, kept)

    def _move_views(self, session: Session, dropped: ItemRow, kept: ItemRow) -> None:
        """``dropped``'s embeddings as views of ``kept``: each keeps its photo, the one of its
        own picture the SHA-256 of the photo it was found in (of its cut-out when it has no
        photo), seen under the category the detector gave it. Where ``kept`` has a view of
        that photo already, its own stays."""
        own_source = dropped.photo.sha256 if dropped.photo is not None else dropped.cutout_sha256
        taken: set[tuple[str, str]] = {
            (embedder, source) for embedder, source in session.execute(
                select(ItemEmbeddingRow.embedder, ItemEmbeddingRow.source)
                .where(ItemEmbeddingRow.item_id == kept.id))}  # fmt: skip
        for view in session.scalars(
            select(ItemEmbeddingRow).where(ItemEmbeddingRow.item_id == dropped.id)
        ).all():
            source = view.source or own_source
            if not source or (view.embedder, source) in taken:
                continue
            taken.add((view.embedder, source))
            seen_as = view.category_id if view.source else (
                dropped.detected_category_id if dropped.detected_category_id is not None
                else dropped.category_id)
            session.add(ItemEmbeddingRow(item_id=kept.id, embedder=view.embedder, source=source,
                                         dims=view.dims, vector=view.vector,
                                         category_id=seen_as))

    # -- wear log, outfits, feedback ------------------------------------------------------------
    def _rows_for(self, session: Session, keys: Iterable[str]) -> list[ItemRow]:
        keys = list(dict.fromkeys(keys))
        # Locked (PostgreSQL) so that none is deleted before the outfit refers to it, in the
        # order of their row ids whatever the order of ``keys``: two transactions locking the
        # same items then wait for each other instead of deadlocking.
        rows = {
            r.key: r
            for r in session.scalars(
                select(ItemRow)
                .where(ItemRow.user_id == self.user_id, ItemRow.key.in_(keys))
                .order_by(ItemRow.id)
                .with_for_update()
            )
        }
        missing = [k for k in keys if k not in rows]
        if missing:
            raise NotFoundError("item", missing[0] if len(missing) == 1 else missing)
        return [rows[k] for k in keys]

    def _save_outfit(self, session, keys, score, explanation, conditions) -> OutfitRow:
        rows = self._rows_for(session, keys)
        outfit = OutfitRow(
            user_id=self.user_id,
            score=score,
            explanation=explanation,
            conditions=conditions,
            items=[OutfitItemRow(item_id=r.id) for r in rows],
        )
        session.add(outfit)
        session.flush()
        return outfit

    def record_feedback(
        self,
        keys: Iterable[str],
        kind: str,
        *,
        on: dt.date | None = None,
        score: float | None = None,
        explanation: str | None = None,
    ) -> int:
        """Feedback on an outfit (its item ids): ``"like"``, ``"dislike"`` or ``"wore"`` (which
        also logs a wear of each item on ``on``, default today). Returns the outfit's row id."""
        source = f"wardrobe {self.user!r}"
        if kind not in FEEDBACK_KINDS:
            raise InvalidDataError(
                [Problem(source, "feedback", f"kind must be one of {FEEDBACK_KINDS}, got {kind!r}")]
            )
        keys = list(dict.fromkeys(keys))
        if len(keys) < 1:
            raise InvalidDataError([Problem(source, "feedback", "needs at least one item id")])
        with self.database.writing() as session:
            outfit = self._save_outfit(session, keys, score, explanation, None)
            session.add(FeedbackRow(user_id=self.user_id, outfit_id=outfit.id, kind=kind))
            if kind == "wore":
                day = on or dt.date.today()
                for link in outfit.items:
                    session.add(WearRow(item_id=link.item_id, worn_on=day, outfit_id=outfit.id))
            return outfit.id

    def feedback(self, *, offset: int = 0, limit: int | None = None) -> list[FeedbackEvent]:
        """All feedback (``offset``/``limit``: one page of it), oldest first. An item deleted
        while this reads is left out of its outfits, as it would be once deleted."""
        with self._sessions() as session:
            rows = session.scalars(
                select(FeedbackRow)
                .where(FeedbackRow.user_id == self.user_id)
                .options(selectinload(FeedbackRow.outfit).selectinload(OutfitRow.items))
                .order_by(FeedbackRow.id)
                .offset(offset)
                .limit(limit)
            ).all()
            # Read after the links (each statement sees its own moment on PostgreSQL): every
            # item a link names is here unless it has since been deleted.
            keys = dict(
                session.execute(
                    select(ItemRow.id, ItemRow.key).where(ItemRow.user_id == self.user_id)
                ).all()
            )
            return [
                FeedbackEvent(
                    items=tuple(
                        sorted(keys[link.item_id] for link in r.outfit.items if link.item_id in keys)
                    ),
                    kind=r.kind,
                    created_at=r.created_at,
                )
                for r in rows
            ]

    # -- recognition: item embeddings, wear counts, wears from photos ---------------------------
    @staticmethod
    def _embedding_row(
        item_id: int,
        embedder: str,
        vector: np.ndarray,
        source: str = "",
        category_id: int | None = None,
    ) -> ItemEmbeddingRow:
        values = np.asarray(vector, dtype="<f4")
        if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
            raise InvalidDataError(
                [Problem("embedding", f"embedder {embedder!r}",
                         f"a vector is 1-D, non-empty and finite, got shape {values.shape}")]
            )  # fmt: skip
        return ItemEmbeddingRow(
            item_id=item_id,
            embedder=embedder,
            source=source,
            dims=len(values),
            vector=values.tobytes(),
            category_id=category_id,
        )

    def set_embeddings(
        self, embedder: str, vectors: Mapping[str, np.ndarray], *, replace_all: bool = False,
        views: Iterable[tuple[str, str, np.ndarray]] = (),
    ) -> None:
        """Store each item's vector of its own picture (item id → D float32) under
        ``embedder`` (the embedder's ``key``), replacing the item's earlier one of that key, in
        one transaction. ``replace_all``: also drop this person's own-picture vectors of that
        key for items not given (a reindex; views from outfit photos stay). ``views``: vectors
        of items seen in other photos, as :meth:`add_views` takes them, stored in the same
        transaction. :class:`NotFoundError` names an unknown item id."""
        views = list(views)
        with self.database.writing() as session:
            rows = self._rows_for(session, vectors)
            ids = [r.id for r in rows]
            stale = delete(ItemEmbeddingRow).where(
                ItemEmbeddingRow.embedder == embedder, ItemEmbeddingRow.source == ""
            )
            if replace_all:
                mine = select(ItemRow.id).where(ItemRow.user_id == self.user_id)
                session.execute(stale.where(ItemEmbeddingRow.item_id.in_(mine)))
            else:
                for start in range(0, len(ids), _CHUNK):
                    session.execute(
                        stale.where(ItemEmbeddingRow.item_id.in_(ids[start : start + _CHUNK]))
                    )
            for row, vector in zip(rows, vectors.values(), strict=True):
                session.add(self._embedding_row(row.id, embedder, vector))
            if views:
                self._store_views(session, embedder, views, {})

    def add_views(
        self,
        embedder: str,
        views: Iterable[tuple[str, str, np.ndarray]],
        *,
        categories: Mapping[str, int] | None = None,
    ) -> None:
        """Store vectors of items as seen in other photos: ``(item id, source photo SHA-256,
        D float32)`` each, replacing an earlier one of the same item, key and photo; one
        transaction. ``categories``: item id → the category the detector gave it in that
        photo, kept with the view (:meth:`recognition_samples`). :class:`NotFoundError` names
        an unknown item id."""
        with self.database.writing() as session:
            self._store_views(session, embedder, views, dict(categories or {}))

    def _store_views(self, session: Session, embedder: str,
                     views: Iterable[tuple[str, str, np.ndarray]],
                     categories: Mapping[str, int]) -> None:
        views = [(key, str(source), vector) for key, source, vector in views]
        if any(not source for _, source, _ in views):
            raise ValueError("a view needs the photo it was seen in")
        rows = {r.key: r for r in self._rows_for(session, [k for k, _, _ in views])}
        for key, source, vector in views:
            session.execute(
                delete(ItemEmbeddingRow).where(
                    ItemEmbeddingRow.item_id == rows[key].id,
                    ItemEmbeddingRow.embedder == embedder,
                    ItemEmbeddingRow.source == source,
                )
            )
            session.add(
                self._embedding_row(
                    rows[key].id, embedder, vector, source, categories.get(key)
                )
            )

    def embeddings(self, embedder: str) -> tuple[list[str], np.ndarray]:
        """This person's item ids that have a vector of ``embedder`` of their own picture, and
        those vectors (N×D float32, in the same order, by item id); ``([], 0×0)`` when there
        are none. :class:`InvalidDataError` when stored vectors are damaged or of mixed
        sizes."""
        keys, _, vectors, _ = self._vectors(embedder, own_only=True)
        return keys, vectors

    def embedding_samples(self, embedder: str) -> tuple[list[str], list[str], np.ndarray]:
        """Every vector of ``embedder`` of this person's items, own pictures and views:
        ``(item ids, sources, N×D float32)``, by item id then source (``""`` first)."""
        keys, sources, vectors, _ = self._vectors(embedder, own_only=False)
        return keys, sources, vectors

    def recognition_samples(self, embedder: str) -> RecognitionSamples:
        """:meth:`embedding_samples` with the categories each vector was seen under and each
        item's own (:class:`RecognitionSamples`), read together."""
        keys, sources, vectors, categories = self._vectors(embedder, own_only=False)
        seen_as = [view if view is not None else detected if detected is not None else now
                   for view, detected, now in categories]  # fmt: skip
        now_of = {k: now for k, (_, _, now) in zip(keys, categories, strict=True)}
        return RecognitionSamples(keys, sources, vectors, seen_as, now_of)

    def _vectors(self, embedder: str, *, own_only: bool):
        query = (
            select(
                ItemRow.key,
                ItemEmbeddingRow.source,
                ItemEmbeddingRow.dims,
                ItemEmbeddingRow.vector,
                ItemEmbeddingRow.category_id,
                ItemRow.detected_category_id,
                ItemRow.category_id,
            )
            .join(ItemRow, ItemRow.id == ItemEmbeddingRow.item_id)
            .where(ItemRow.user_id == self.user_id, ItemEmbeddingRow.embedder == embedder)
            .order_by(ItemRow.key, ItemEmbeddingRow.source)
        )
        if own_only:
            query = query.where(ItemEmbeddingRow.source == "")
        with self._sessions() as session:
            rows = session.execute(query).all()
        if not rows:
            return [], [], np.zeros((0, 0), np.float32), []
        found = [(k, d, v) for k, _, d, v, *_ in rows]
        dims = {d for _, d, _ in found}
        bad = [k for k, d, v in found if len(v) != 4 * d]
        if len(dims) > 1 or bad:
            where = f"embedder {embedder!r}"
            message = (f"vector of item {bad[0]!r} is damaged" if bad
                       else f"vectors of different sizes {sorted(dims)}")
            raise InvalidDataError(
                [Problem(f"wardrobe {self.user!r}", where,
                         f"{message}: run 'fashionkit wardrobe reindex'")]
            )  # fmt: skip
        vectors = np.stack([np.frombuffer(v, dtype="<f4") for _, _, v in found])
        return (
            [k for k, _, _ in found],
            [r.source for r in rows],
            vectors.astype(np.float32),
            [(r[4], r[5], r[6]) for r in rows],
        )

    def embedders(self) -> dict[str, int]:
        """Embedder key → how many of this person's items have a vector of it."""
        with self._sessions() as session:
            return dict(
                session.execute(
                    select(
                        ItemEmbeddingRow.embedder, func.count(func.distinct(ItemEmbeddingRow.item_id))
                    )
                    .join(ItemRow, ItemRow.id == ItemEmbeddingRow.item_id)
                    .where(ItemRow.user_id == self.user_id)
                    .group_by(ItemEmbeddingRow.embedder)
                ).all()
            )

    def wear_stats(
        self,
        keys: Iterable[str] | None = None,
        *,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> dict[str, WearStats]:
        """Item id → :class:`WearStats` for every item (of ``keys``, when given) worn at least
        once (counting the days from ``since`` to ``until``, both included, when given);
        items never worn are absent."""
        query = (
            select(ItemRow.key, _DAYS_WORN, _LAST_WORN)
            .join(ItemRow, ItemRow.id == WearRow.item_id)
            .where(ItemRow.user_id == self.user_id)
            .group_by(ItemRow.key)
        )
        if since is not None:
            query = query.where(WearRow.worn_on >= since)
        if until is not None:
            query = query.where(WearRow.worn_on <= until)
        wanted = list(keys) if keys is not None else None
        out: dict[str, WearStats] = {}
        with self._sessions() as session:
            for start in range(0, len(wanted), _CHUNK) if wanted is not None else [0]:
                chunk = (
                    query.where(ItemRow.key.in_(wanted[start : start + _CHUNK]))
                    if wanted is not None
                    else query
                )
                for key, count, last in session.execute(chunk):
                    out[key] = WearStats(int(count), last)
        return out

    def record_wears(self, keys: Iterable[str], on: dt.date | None = None) -> list[str]:
        """Log that the items ``keys`` were worn on ``on`` (default today), once per item and
        day: an item already logged that day is not logged again. Returns the ids newly
        logged, in the order given. :class:`NotFoundError` names an unknown id (then nothing
        is logged)."""
        day = on or dt.date.today()
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        with self.database.writing() as session:
            rows = self._rows_for(session, keys)
            ids = [r.id for r in rows]
            logged = set(
                session.scalars(
                    select(WearRow.item_id).where(WearRow.item_id.in_(ids), WearRow.worn_on == day)
                )
            )
            added = []
            for row in rows:
                if row.id not in logged:
                    session.add(WearRow(item_id=row.id, worn_on=day))
                    added.append(row.key)
            return added

    def add_detected(
        self, found: Iterable[ItemInPhoto], *, max_items: int | None = None
    ) -> list[str]:
        """Add items found in a photo that is not kept as one of the wardrobe's photos (an
        outfit photo, whose other garments are already items: kept, it would teach a
        fine-tuned detector that they are background). Each keeps its cut-out, box, mask,
        details and embedding; all or none are added. Returns their ids.
        :class:`~fashionkit.errors.LimitError`, and none added, when they would take the
        wardrobe past ``max_items``."""
        found = list(found)
        with self.database.writing("an item id of this write was added meanwhile") as session:
            self._take_room(session, len(found), max_items)
            for detected in found:
                self._insert_detected(session, None, detected)
        return [d.item.id for d in found]

    def item_photos(self) -> dict[str, str | None]:
        """Item id → the SHA-256 of the wardrobe photo it was found in (``None``: entered by
        hand, or added from an outfit photo)."""
        with self._sessions() as session:
            return dict(
                session.execute(
                    select(ItemRow.key, PhotoRow.sha256)
                    .outerjoin(PhotoRow, PhotoRow.id == ItemRow.photo_id)
                    .where(ItemRow.user_id == self.user_id)
                ).all()
            )
