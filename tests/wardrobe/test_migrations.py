"""Migrations that matter to the service. 0003: its logins (``service_accounts``) inside the
migrations; 0004: its photo jobs as a table (``photo_jobs``); 0005: user ids never reused;
0006: a token generation per login, so that logins can be ended; 0007: leases on photo jobs
and the login throttle's table, for several service processes on one database.

Databases from before 0003 come in two kinds: made by the CLI (no ``service_accounts``), and
made by the service, which created the table itself on start. Both upgrade keeping their rows,
and afterwards Alembic's autogenerate finds nothing to change against the models.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    text,
)

from fashionkit.service.auth import Accounts, hash_password
from fashionkit.wardrobe import Wardrobe, migrate
from fashionkit.wardrobe.models import Base
from tests.databases import fresh_database


@pytest.fixture
def url(tmp_path):
    """SQLite in the test's folder, or a fresh PostgreSQL database (tests/databases.py)."""
    with fresh_database(tmp_path) as database:
        yield database


def _no_differences(engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert compare_metadata(context, Base.metadata) == []
        assert produce_migrations(context, Base.metadata).upgrade_ops.is_empty()


def _rows_of_0002(engine) -> None:
    """A wardrobe as fashionkit at revision 0002 leaves it: two people, an item, a wear."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, name, created_at) VALUES "
                "(1, 'alice', '2026-01-01'), (2, 'carol', '2026-01-02')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO items (id, user_id, key, category_id, supercategory, colors, season,"
                " occasion, favorite, created_at, updated_at) VALUES (7, 1, 'old-shirt', 0,"
                " 'upperbody', '[\"#ffffff\"]', '[]', '[]', false, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(text("INSERT INTO wear_log (item_id, worn_on) VALUES (7, '2026-02-03')"))


def _login_of_before_0006(engine) -> None:
    """Alice's login as revisions before 0006 stored it (no token generation)."""
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO service_accounts (user_id, password_hash) VALUES (1, :h)"),
            {"h": hash_password("long enough")},
        )


def _table_as_the_old_service_made_it(engine) -> None:
    """What ``Accounts`` did at start before 0003: ``create_all`` of its own table."""
    metadata = MetaData()
    Table("users", metadata, Column("id", Integer, primary_key=True))
    accounts = Table(
        "service_accounts",
        metadata,
        Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        Column("password_hash", String(200), nullable=False),
    )
    metadata.create_all(engine, tables=[accounts], checkfirst=True)


def test_service_database_of_0002_keeps_its_logins(url):
    engine = create_engine(url)
    migrate.upgrade(engine, "0002")
    _rows_of_0002(engine)
    _table_as_the_old_service_made_it(engine)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO service_accounts (user_id, password_hash) VALUES (1, :h)"),
            {"h": hash_password("correct horse")},
        )

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    accounts = Accounts(engine)
    alice = accounts.authenticate("alice", "correct horse")
    assert alice is not None and alice.user_id == 1
    assert accounts.authenticate("carol", "correct horse") is None  # a CLI wardrobe: no login
    _no_differences(engine)
    engine.dispose()
    with Wardrobe(url, user="alice") as wardrobe:
        assert wardrobe.get("old-shirt").colors == ("#ffffff",)


def test_cli_database_of_0002_gets_the_table(url):
    engine = create_engine(url)
    migrate.upgrade(engine, "0002")
    _rows_of_0002(engine)
    assert "service_accounts" not in inspect(engine).get_table_names()

    migrate.upgrade(engine)
    assert "service_accounts" in inspect(engine).get_table_names()
    _no_differences(engine)
    accounts = Accounts(engine)
    carol = accounts.set_password("carol", "long enough")
    assert carol.user_id == 2 and accounts.authenticate("carol", "long enough") == carol
    engine.dispose()


def test_downgrade_to_0002_drops_only_the_logins(url):
    engine = create_engine(url)
    migrate.upgrade(engine)
    Accounts(engine).set_password("alice", "long enough")
    migrate.downgrade(engine, "0002")
    assert "service_accounts" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["alice"]
    migrate.upgrade(engine)
    assert Accounts(engine).authenticate("alice", "long enough") is None
    engine.dispose()


def test_alembic_autogenerate_writes_an_empty_revision(url, tmp_path):
    """``alembic revision --autogenerate`` against a database the service has run on: the
    revision it writes changes nothing (before 0003 it proposed dropping the logins table)."""
    from fastapi.testclient import TestClient

    from fashionkit.service import create_app

    with TestClient(create_app(url, tmp_path / "data")) as client:
        body = {"name": "alice", "password": "correct horse"}
        assert client.post("/api/users", json=body).status_code == 201

    scripts = tmp_path / "migrations"
    shutil.copytree(resources.files("fashionkit.wardrobe").joinpath("migrations"), scripts)
    config = Config()
    config.set_main_option("script_location", str(scripts))
    engine = create_engine(url)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message="nothing", autogenerate=True, rev_id="9999")
    engine.dispose()
    written = next((scripts / "versions").glob("9999_*.py")).read_text()
    upgrade = written.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    code = [line.strip() for line in upgrade.splitlines() if line.strip()[:1] not in ("", "#")]
    assert code == ["pass"], written


def test_database_of_0003_gets_the_jobs_table(url, tmp_path):
    """A wardrobe at 0003 (a person with a login and an item) upgrades to 0004 keeping its
    rows, and the service then keeps its photo jobs in the new table."""
    from fashionkit.service.photos import JobStore, check_image
    from fashionkit.wardrobe.database import WardrobeDatabase
    from tests.service.fakes import TruthPredictor

    engine = create_engine(url)
    migrate.upgrade(engine, "0003")
    _rows_of_0002(engine)
    _login_of_before_0006(engine)
    assert "photo_jobs" not in inspect(engine).get_table_names()

    migrate.upgrade(engine, "0004")
    assert migrate.current_revision(engine) == "0004"
    assert "photo_jobs" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT user_id FROM service_accounts")).scalars().all() == [1]
    migrate.upgrade(engine)
    assert Accounts(engine).authenticate("alice", "long enough") is not None
    migrate.downgrade(engine, "0004")
    engine.dispose()

    data = TruthPredictor().photo(0)
    with WardrobeDatabase(url) as database:
        assert database.wardrobe("alice").get("old-shirt").colors == ("#ffffff",)
        store = JobStore(database, tmp_path / "data")
        job = store.create(1, data, check_image(data, max_pixels=10**6))
        assert [j["id"] for j in store.of_user(1)] == [job["id"]]

    engine = create_engine(url)
    migrate.downgrade(engine, "0003")
    assert "photo_jobs" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM items")).scalars().all() == ["old-shirt"]
    engine.dispose()


def test_a_deleted_users_id_is_never_given_to_the_next(url):
    """A database at 0004 upgrades keeping its users, accounts and items; then the id of the
    newest user, once deleted, does not come back (a token naming it would name a stranger)."""
    from fashionkit.wardrobe.database import WardrobeDatabase

    engine = create_engine(url)
    migrate.upgrade(engine, "0004")
    _rows_of_0002(engine)
    _login_of_before_0006(engine)
    if engine.dialect.name == "postgresql":  # the rows above were inserted with their ids
        with engine.begin() as conn:
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users")
            )
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    _no_differences(engine)
    assert Accounts(engine).authenticate("alice", "long enough") is not None
    engine.dispose()

    with WardrobeDatabase(url) as database:
        assert database.wardrobe("alice").get("old-shirt").colors == ("#ffffff",)
        mallory = database.user_id("mallory")
        with database.engine.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": mallory})
        assert database.user_id("next") > mallory

    engine = create_engine(url)
    migrate.downgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM items")).scalars().all() == ["old-shirt"]
    engine.dispose()


def test_logins_of_0005_get_a_token_generation(url):
    """0006 keeps every login (generation 0); after a password change the generation is 1, and
    a downgrade to 0005 keeps the logins without it."""
    engine = create_engine(url)
    migrate.upgrade(engine, "0005")
    _rows_of_0002(engine)
    _login_of_before_0006(engine)
    migrate.upgrade(engine)
    _no_differences(engine)
    accounts = Accounts(engine)
    alice = accounts.authenticate("alice", "long enough")
    assert alice is not None and alice.generation == 0
    assert accounts.set_password("alice", "another one").generation == 1
    assert accounts.get(1).generation == 1
    migrate.downgrade(engine, "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT user_id FROM service_accounts")).scalars().all() == [1]
        assert "token_generation" not in {
            c["name"] for c in inspect(conn).get_columns("service_accounts")
        }
    engine.dispose()


def test_jobs_of_0006_get_leases_and_the_throttle_its_table(url, tmp_path):
    """A job an older service left running (no lease) is taken over at once after 0007; the
    throttle's table is there, and a downgrade to 0006 removes both and keeps the job."""
    from fashionkit.service.photos import JobStore, check_image
    from fashionkit.wardrobe.database import WardrobeDatabase
    from tests.service.fakes import TruthPredictor

    engine = create_engine(url)
    migrate.upgrade(engine, "0006")
    _rows_of_0002(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO photo_jobs (id, user_id, status, photo_sha256, photo_format, width,"
                " height, attempts, created_at, claimed_by, claimed_at) VALUES (:id, 1,"
                " 'running', '', 'PNG', 64, 64, 1, '2026-12-01', 'gone:1', '2026-12-01')"
            ),
            {"id": "a" * 32},
        )
    assert "service_throttle" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert "service_throttle" in inspect(engine).get_table_names()
    _no_differences(engine)
    engine.dispose()

    data = TruthPredictor().photo(0)
    with WardrobeDatabase(url) as database:
        store = JobStore(database, tmp_path / "data")
        (store.uploads_dir / f"{'a' * 32}.png").write_bytes(data)
        taken = store.claim_next("here:2", lease_s=30)
        assert taken is not None and taken["id"] == "a" * 32 and taken["attempts"] == 2
        store.create(1, data, check_image(data, max_pixels=10**6))

    engine = create_engine(url)
    migrate.downgrade(engine, "0006")
    assert "service_throttle" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert "lease_until" not in {c["name"] for c in inspect(conn).get_columns("photo_jobs")}
        assert conn.execute(text("SELECT COUNT(*) FROM photo_jobs")).scalar_one() == 2
    engine.dispose()


def test_0008_adds_item_embeddings_and_job_kinds(url):
    """Jobs of before 0008 are photo jobs; an item's embedding goes with the item; a downgrade
    to 0006 drops the table and the column and keeps the jobs."""
    engine = create_engine(url)
    migrate.upgrade(engine, "0006")
    _rows_of_0002(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO photo_jobs (id, user_id, status, photo_sha256, photo_format, width, "
                "height, attempts, created_at) VALUES "
                "('" + "a" * 32 + "', 1, 'done', '', 'PNG', 4, 4, 1, '2026-01-01')"
            )
        )
    migrate.upgrade(engine)
    _no_differences(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT kind FROM photo_jobs")).scalars().all() == ["photo"]
        item_id = conn.execute(text("SELECT id FROM items")).scalars().first()
        conn.execute(
            text(
                "INSERT INTO item_embeddings (item_id, embedder, source, dims, vector, "
                "updated_at) VALUES (:item, 'k', '', 1, :vector, '2026-01-01')"
            ),
            {"item": item_id, "vector": b"\0\0\x80?"},
        )
    with Wardrobe(url, user="alice") as wardrobe:
        keys, vectors = wardrobe.embeddings("k")
        assert vectors.tolist() == [[1.0]] and len(keys) == 1
        wardrobe.remove(keys[0])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM item_embeddings")).scalar() == 0
    migrate.downgrade(engine, "0006")
    with engine.connect() as conn:
        assert "item_embeddings" not in inspect(conn).get_table_names()
        assert "kind" not in {c["name"] for c in inspect(conn).get_columns("photo_jobs")}
        assert conn.execute(text("SELECT COUNT(*) FROM photo_jobs")).scalar() == 1


def test_processes_starting_together_migrate_one_after_another(url):
    """Four engines (as four service processes starting at once) migrate one empty database
    at the same moment: each succeeds, and the schema is made once."""
    import threading

    engines = [create_engine(url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def migrate_it(engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as err:  # reported below, with the others'
            errors.append(err)

    threads = [threading.Thread(target=migrate_it, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrate.current_revision(engines[0]) == migrate.head_revision()
    _no_differences(engines[0])
    for engine in engines:
        engine.dispose()


def test_0010_keeps_what_the_detector_saw_and_leaves_older_rows_to_their_category(url):
    """Items and views of before 0010 have no detected category: recognition takes the item's
    own; a downgrade to 0009 drops both columns and keeps the rows."""
    engine = create_engine(url)
    migrate.upgrade(engine, "0009")
    _rows_of_0002(engine)
    with engine.begin() as conn:
        item_id, category = conn.execute(text("SELECT id, category_id FROM items")).first()
        conn.execute(
            text(
                "INSERT INTO item_embeddings (item_id, embedder, source, dims, vector, "
                "updated_at) VALUES (:item, 'k', :source, 1, :vector, '2026-01-01')"
            ),
            [{"item": item_id, "source": s, "vector": b"\0\0\x80?"} for s in ("", "b" * 64)],
        )
    migrate.upgrade(engine)
    _no_differences(engine)
    with Wardrobe(url, user="alice") as wardrobe:
        samples = wardrobe.recognition_samples("k")
        assert samples.sources == ["", "b" * 64]
        assert samples.seen_as == [category, category]
        key = samples.keys[0]
        wardrobe.add_views("k", [(key, "c" * 64, np.ones(1))], categories={key: category + 1})
        assert wardrobe.recognition_samples("k").seen_as == [category, category, category + 1]
    migrate.downgrade(engine, "0009")
    with engine.connect() as conn:
        assert "category_id" not in {c["name"] for c in inspect(conn).get_columns("item_embeddings")}
        assert "detected_category_id" not in {c["name"] for c in inspect(conn).get_columns("items")}
        assert conn.execute(text("SELECT COUNT(*) FROM item_embeddings")).scalar() == 3
    engine.dispose()


def test_0011_adds_item_appearances_and_a_downgrade_drops_them(url):
    """Wardrobes of before 0011 get an empty table of appearances; merging then keeps where
    the merged item was. A downgrade to 0010 drops the table and keeps the items."""
    engine = create_engine(url)
    migrate.upgrade(engine, "0010")
    _rows_of_0002(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO photos (id, user_id, sha256, suffix, width, height, "
                          "created_at) VALUES (3, 1, :sha, '.png', 8, 8, '2026-01-01')"),
                     {"sha": "a" * 64})  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO items (id, user_id, key, category_id, supercategory, photo_id, box,"
                " mask, colors, season, occasion, favorite, created_at, updated_at) VALUES (8, 1,"
                " 'new-shirt', 0, 'upperbody', 3, '[0, 0, 4, 4]', :mask, '[]', '[]', '[]', false,"
                " '2026-01-01', '2026-01-01')"
            ),
            {"mask": json.dumps({"size": [8, 8], "counts": "04000"})},
        )
    migrate.upgrade(engine)
    _no_differences(engine)
    with Wardrobe(url, user="alice") as wardrobe:
        wardrobe.merge("old-shirt", "new-shirt")
        [photo] = wardrobe.annotated_photos()
        assert [(o.item, o.is_appearance) for o in photo.objects] == [("old-shirt", True)]
    migrate.downgrade(engine, "0010")
    with engine.connect() as conn:
        assert "item_appearances" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT key FROM items")).scalars().all() == ["old-shirt"]
    engine.dispose()
