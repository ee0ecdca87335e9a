import datetime as dt
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from fashionkit.errors import ConflictError, InvalidDataError, NotFoundError
from fashionkit.wardrobe import Wardrobe, WardrobeItem, migrate
from fashionkit.wardrobe.database import WardrobeDatabase
from fashionkit.wardrobe.image_files import ImageStore
from fashionkit.wardrobe.models import Base


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'w.sqlite'}"


def test_empty_database_migrates_to_head_and_matches_models(url):
    with Wardrobe(url) as w:
        assert migrate.current_revision(w.engine) == migrate.head_revision() == "0011"
        with w.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []


def test_previous_version_database_is_upgraded_keeping_rows(url, tmp_path):
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")
    assert "outfits" not in inspect(engine).get_table_names()
    # Rows written by the first schema, as an older fashionkit would have left them.
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (id, name, created_at) VALUES (1, 'default', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO items (id, user_id, key, category_id, supercategory, colors, season,"
                " occasion, favorite, created_at, updated_at) VALUES (7, 1, 'old-shirt', 0,"
                " 'upperbody', '[\"#ffffff\"]', '[]', '[]', 0, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(text("INSERT INTO wear_log (item_id, worn_on) VALUES (7, '2026-02-03')"))
    engine.dispose()

    with Wardrobe(url) as w:
        assert migrate.current_revision(w.engine) == migrate.head_revision()
        item = w.get("old-shirt")
        assert item.colors == ("#ffffff",) and item.last_worn == dt.date(2026, 2, 3)
        w.record_feedback(["old-shirt"], "wore", on=dt.date(2026, 3, 1))
        assert w.get("old-shirt").last_worn == dt.date(2026, 3, 1)
        with w.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_downgrade_to_base_and_back(url):
    engine = create_engine(url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(engine)
    assert {"items", "outfits", "feedback"} <= set(inspect(engine).get_table_names())


def test_sqlite_is_wal_with_foreign_keys(url, tmp_path):
    with Wardrobe(url) as w:
        w.add(WardrobeItem(id="a", category_id=1))
        with w.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    raw = sqlite3.connect(tmp_path / "w.sqlite")
    raw.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO wear_log (item_id, worn_on) VALUES (999, '2026-01-01')")
    raw.close()


def test_items_crud_and_users_are_separate(url):
    with Wardrobe(url) as w, Wardrobe(url, user="other") as other:
        w.add(WardrobeItem(id="navy-coat", category_id=9, colors=("#1f2a44",), attribute_ids=(317, 80)))
        other.add(WardrobeItem(id="navy-coat", category_id=6))
        with pytest.raises(ConflictError, match="already"):
            w.add(WardrobeItem(id="navy-coat", category_id=9))
        assert w.get("navy-coat").attribute_ids == (80, 317)
        assert other.get("navy-coat").category_id == 6

        changed = w.update("navy-coat", category="cape", brand="Acme", formality=4, colors=["#FFF"])
        assert (changed.category_id, changed.brand, changed.formality) == (12, "Acme", 4)
        assert changed.colors == ("#ffffff",)
        with pytest.raises(InvalidDataError, match="formality"):
            w.update("navy-coat", formality=9)
        assert w.update("navy-coat", brand=None).brand is None
        w.remove("navy-coat")
        assert len(w) == 0 and len(other) == 1
        with pytest.raises(NotFoundError, match="no item 'navy-coat'"):
            w.get("navy-coat")


def test_feedback_and_wear_log(url):
    with Wardrobe(url) as w:
        w.put_many([WardrobeItem(id=k, category_id=c) for k, c in (("t", 1), ("p", 6), ("s", 23))])
        w.record_feedback(["t", "p"], "like")
        w.record_feedback(["t", "p", "s"], "wore", on=dt.date(2026, 5, 1))
        events = w.feedback()
        assert [(e.items, e.kind) for e in events] == [
            (("p", "t"), "like"),
            (("p", "s", "t"), "wore"),
        ]
        assert w.get("s").last_worn == dt.date(2026, 5, 1)
        with pytest.raises(InvalidDataError, match="kind"):
            w.record_feedback(["t"], "love")
        with pytest.raises(NotFoundError, match="nope"):
            w.record_feedback(["t", "nope"], "like")
        # Removing an item cascades to its wear log and outfit links.
        w.remove("s")
        assert [e.items for e in w.feedback()] == [("p", "t"), ("p", "t")]


def test_image_store_is_content_addressed(tmp_path):
    store = ImageStore(tmp_path / "img")
    a = store.put_bytes(b"abc", ".jpg")
    assert a == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert store.put_bytes(b"abc", ".jpg") == a
    path = store.path(a, ".jpg")
    assert path.read_bytes() == b"abc" and path.parent.parent.name == "ba"
    assert [p.name for p in (tmp_path / "img").rglob("*") if p.is_file()] == [path.name]
    with pytest.raises(ValueError):
        store.path("../../etc/passwd", ".jpg")


def test_default_location_is_the_user_data_dir(tmp_path, monkeypatch):
    from fashionkit.wardrobe import default_url

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    url = default_url()
    assert url == f"sqlite:///{tmp_path / 'data' / 'fashionkit' / 'wardrobe.sqlite'}"
    with Wardrobe() as w:
        w.add(WardrobeItem(id="a", category_id=1))
    assert (tmp_path / "data" / "fashionkit" / "wardrobe.sqlite").exists()
    assert (tmp_path / "data" / "fashionkit").is_dir()


def test_a_photo_and_its_items_are_stored_all_or_nothing(tmp_path):
    """One transaction per photo: if any item fails, neither the photo nor any item stays
    (a killed server or a bad record never leaves half a photo's items)."""
    from PIL import Image

    from fashionkit.wardrobe import ItemInPhoto

    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 6), "navy").save(photo)
    rle = {"size": [6, 8], "counts": "0l0"}
    good = ItemInPhoto(item=WardrobeItem(id="a", category_id=23), box=(0, 0, 4, 4), mask=rle,
                        score=0.9, attribute_scores={})
    clash = ItemInPhoto(item=WardrobeItem(id="a", category_id=24), box=(0, 0, 4, 4), mask=rle,
                         score=0.8, attribute_scores={})
    w = Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}", image_dir=tmp_path / "img")
    with pytest.raises(ConflictError, match="'a' is already"):
        w.add_photo(photo, (6, 8), [good, clash])
    assert w.items() == [] and w.annotated_photos() == []
    _, digest, new = w.add_photo(photo, (6, 8), [good])
    assert new and w.has_photo(digest) and [i.id for i in w.items()] == ["a"]
    assert w.add_photo(photo, (6, 8), [clash])[2] is False  # same bytes: nothing added
    assert [i.id for i in w.items()] == ["a"]


def test_stale_temporary_files_are_removed_fresh_ones_kept(tmp_path):
    """What a writer killed mid-write leaves; a write in progress elsewhere is left alone."""
    import os
    import time

    store = ImageStore(tmp_path / "img")
    digest = store.put_bytes(b"photo bytes", ".jpg")
    folder = store.path(digest, ".jpg").parent
    stale, fresh = folder / ".incoming-old", folder / ".incoming-new"
    stale.write_bytes(b"half a pho")
    fresh.write_bytes(b"being writ")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert store.remove_stale_temporary(min_age_s=3600) == 1
    assert not stale.exists() and fresh.exists() and store.has(digest, ".jpg")


def test_one_database_hands_out_wardrobes_on_its_engine(url):
    with WardrobeDatabase(url) as database:
        alice, bob = database.wardrobe("alice"), database.wardrobe("bob")
        assert alice.engine is bob.engine is database.engine
        alice.add(WardrobeItem(id="tee", category_id=1))
        assert len(bob) == 0 and bob.items() == []
        alice.close()  # a view: the database's engine stays usable
        again = database.wardrobe("alice", user_id=alice.user_id)
        assert [i.id for i in again.items()] == ["tee"]
    with Wardrobe(url, user="alice") as alone:  # the CLI's form: its own engine
        assert [i.id for i in alone.items()] == ["tee"]
