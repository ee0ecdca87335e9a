"""A person's model versions: the migration, register/activate/rollback, isolation between
people, teach() from a wardrobe (and its cancel), recovery after a kill, per-person predictors."""

from __future__ import annotations

import os
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, delete, inspect

from fashionkit.errors import ConflictError, InvalidDataError, NotFoundError
from fashionkit.personal.models import (
    PersonalModels,
    PersonalPredictors,
    active_model_path,
    default_model_dir,
    remove_orphans,
)
from fashionkit.personal.teaching import TeachJobs, corrected_photos, teach
from fashionkit.wardrobe import migrate
from fashionkit.wardrobe.database import WardrobeDatabase
from fashionkit.wardrobe.models import Base, ModelJobRow, UserRow
from tests.databases import fresh_database

from .conftest import wardrobe_with_photos


@pytest.fixture
def url(tmp_path):
    with fresh_database(tmp_path) as database:
        yield database


@pytest.fixture
def database(url):
    with WardrobeDatabase(url) as db:
        yield db


def _fake_model(models: PersonalModels, text: str = "weights"):
    path = models.new_file()
    path.write_text(text)
    return models.register(path, base="/models/base.pt", photos=7, minutes=1.5, steps=42)


def test_migration_0009_matches_the_models_and_downgrades(url):
    engine = create_engine(url)
    migrate.upgrade(engine, "0008")
    assert "personal_models" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert {"personal_models", "model_jobs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate.downgrade(engine, "0008")
    assert not {"personal_models", "model_jobs"} & set(inspect(engine).get_table_names())
    engine.dispose()


def test_versions_activate_rollback(database, tmp_path):
    models = PersonalModels(database.wardrobe("alice"), tmp_path / "models")
    assert models.versions() == [] and models.active_model() is None
    with pytest.raises(ConflictError, match="nothing to roll back"):
        models.rollback()
    first, second = _fake_model(models), _fake_model(models)
    assert (first.version, second.version) == (1, 2)
    assert [v.active for v in models.versions()] == [False, True]
    assert models.active_model().version == 2
    assert second.path.parent == tmp_path / "models" / str(models.user_id)
    assert models.rollback().version == 1
    assert models.active_model().version == 1
    assert models.rollback() is None and models.active_model() is None  # the base again
    assert models.activate(2).version == 2
    with pytest.raises(NotFoundError):
        models.activate(3)
    assert active_model_path(models.wardrobe, models.root) == second.path
    assert models.get(1).to_json() | {"created_at": None} == {
        "version": 1, "base": "base.pt", "created_at": None, "photos": 7, "minutes": 1.5,
        "steps": 42, "active": False}


def test_people_see_and_use_only_their_own_versions(database, tmp_path):
    root = tmp_path / "models"
    alice = PersonalModels(database.wardrobe("alice"), root)
    bob = PersonalModels(database.wardrobe("bob"), root)
    _fake_model(alice, "alice's")
    assert bob.versions() == [] and bob.active_model() is None
    with pytest.raises(NotFoundError):
        bob.activate(1)
    with pytest.raises(ConflictError):
        bob.rollback()
    assert _fake_model(bob, "bob's").version == 1  # numbered per person
    assert alice.active_model().path.read_text() == "alice's"
    assert bob.active_model().path.read_text() == "bob's"

    base = object()
    made = []

    def make(path):
        made.append(path)
        return path.read_text()

    predictors = PersonalPredictors(database, root, base, make=make)
    assert predictors.for_user(alice.user_id) == "alice's"
    assert predictors.for_user(bob.user_id) == "bob's"
    assert predictors.for_user(alice.user_id) == "alice's" and len(made) == 2  # kept loaded
    carol = database.wardrobe("carol")
    assert predictors.for_user(carol.user_id) is base
    alice.rollback()
    assert predictors.for_user(alice.user_id) is base


def test_a_deleted_person_takes_their_model_files_along(database, tmp_path):
    root = tmp_path / "models"
    alice = PersonalModels(database.wardrobe("alice"), root)
    bob = PersonalModels(database.wardrobe("bob"), root)
    kept = _fake_model(bob)
    gone = _fake_model(alice)
    stray = bob.new_file()
    stray.write_text("a fine-tuning killed before it registered its file")
    with database.sessions.begin() as session:
        session.execute(delete(UserRow).where(UserRow.id == alice.user_id))
    assert remove_orphans(database, root, min_age_s=3600) == 1  # the stray file is too young
    assert not gone.path.exists() and not alice.folder.exists()
    assert kept.path.exists() and stray.exists()
    old = time.time() - 7200
    os.utime(stray, (old, old))
    assert remove_orphans(database, root) == 1 and not stray.exists() and kept.path.exists()
    assert bob.remove_all() == 1 and not bob.folder.exists() and bob.versions() == []


def test_default_model_dir_sits_beside_the_database(tmp_path):
    assert default_model_dir(f"sqlite:///{tmp_path}/w.sqlite") == tmp_path / "w-models"


def test_teach_needs_enough_photos_and_registers_a_version(database, tmp_path, tiny_base):
    wardrobe = database.wardrobe("alice")
    models = PersonalModels(wardrobe, tmp_path / "models")
    wardrobe_with_photos(wardrobe, tmp_path / "photos", 3)
    assert corrected_photos(wardrobe) == 3
    with pytest.raises(InvalidDataError, match="at least 4 photos with corrected items.*has 3"):
        teach(wardrobe, tiny_base, models=models, min_photos=4)
    seen = []
    result = teach(wardrobe, tiny_base, models=models, min_photos=3, minutes=1.0, max_steps=2,
                   progress=lambda f, m: seen.append(f))
    assert result.version is not None and result.version.version == 1
    assert result.version.active and result.version.photos == 3 and result.version.steps == 2
    assert result.version.path.is_file() and seen == sorted(seen) and seen[-1] == 1.0
    assert list(models.folder.iterdir()) == [result.version.path]


def test_cancelled_teaching_registers_nothing_and_leaves_no_file(database, tmp_path, tiny_base):
    wardrobe = database.wardrobe("alice")
    models = PersonalModels(wardrobe, tmp_path / "models")
    wardrobe_with_photos(wardrobe, tmp_path / "photos", 3)
    cancel = threading.Event()

    def progress(fraction, message):
        if "step" in message:
            cancel.set()

    result = teach(wardrobe, tiny_base, models=models, min_photos=3, minutes=1.0,
                   max_steps=20, progress=progress, cancel=cancel)
    assert result.version is None and result.finetune.cancelled
    assert models.versions() == [] and list(models.folder.iterdir()) == []


def test_a_job_killed_mid_way_ends_failed_with_no_half_written_model(database, tmp_path):
    """What a kill -9 during fine-tuning leaves: a running job row and an unregistered
    (possibly partial) file. The next start reports the job failed and removes the file."""
    wardrobe = database.wardrobe("alice")
    root = tmp_path / "models"
    models = PersonalModels(wardrobe, root)
    partial = models.new_file().with_suffix(".pt.tmp")
    partial.write_bytes(b"half a checkpoint")
    old = time.time() - 7200
    os.utime(partial, (old, old))
    with database.sessions.begin() as session:
        session.add(ModelJobRow(id="b" * 32, user_id=wardrobe.user_id, state="running",
                                progress=0.4, cancel_requested=False, minutes=5.0))
    jobs = TeachJobs(database, root, None, lambda uid: wardrobe, minutes=5.0)
    counts = jobs.recover()
    assert counts == {"interrupted_model_jobs": 1, "stray_model_files": 1}
    job = jobs.get("b" * 32, wardrobe.user_id)
    assert job["state"] == "failed" and "teach it again" in job["message"]
    assert job["finished_at"] is not None
    assert models.versions() == [] and not partial.exists()
    jobs.shutdown()


def test_recover_in_another_process_leaves_a_live_job_and_fails_it_once_its_owner_died(
        database, tmp_path, monkeypatch):
    """Two TeachJobs on one database stand for two service processes (``serve --workers``):
    the second one's start must not fail the job the first is running; once the first is gone
    (its lock descriptor closed, as the kernel closes a killed process's), it must."""
    import fashionkit.personal.finetune as finetune
    from fashionkit.personal.finetune import FinetuneResult

    wardrobe = database.wardrobe("alice")
    wardrobe_with_photos(wardrobe, tmp_path / "photos", 2)
    root = tmp_path / "models"
    training, release = threading.Event(), threading.Event()

    def slow_finetune(base, data, out, **kwargs):
        training.set()
        assert release.wait(30)
        return FinetuneResult(None, 0.1, 3, cancelled=True, photos=2)

    monkeypatch.setattr(finetune, "finetune_personal", slow_finetune)
    owner = TeachJobs(database, root, tmp_path / "base.pt", lambda uid: wardrobe, min_photos=2)
    other = TeachJobs(database, root, None, lambda uid: wardrobe)
    try:
        job = owner.start(wardrobe.user_id)
        assert training.wait(30)
        assert owner.lock_path(job["id"]).is_file()
        assert other.recover() == {"interrupted_model_jobs": 0, "stray_model_files": 0}
        assert other.get(job["id"], wardrobe.user_id)["state"] == "running"
        # The owner dies: its descriptor closes, the lock file stays behind.
        os.close(owner._held.pop(job["id"]))
        assert other.recover() == {"interrupted_model_jobs": 1, "stray_model_files": 0}
        failed = other.get(job["id"], wardrobe.user_id)
        assert failed["state"] == "failed" and "teach it again" in failed["message"]
        assert not owner.lock_path(job["id"]).exists()
    finally:
        release.set()
        owner.shutdown()
        other.shutdown()
    # What the stand-in for a dead process did after its death does not undo the failure.
    assert other.get(job["id"], wardrobe.user_id)["state"] == "failed"


def test_a_queued_job_belongs_to_the_process_that_accepted_it(database, tmp_path, monkeypatch):
    """A queued job waits in its process's pool: another process's recover leaves it while
    that process lives; after the owner stops, the queued job is reported failed."""
    import fashionkit.personal.finetune as finetune
    from fashionkit.personal.finetune import FinetuneResult

    alice, bob = database.wardrobe("alice"), database.wardrobe("bob")
    for w in (alice, bob):
        wardrobe_with_photos(w, tmp_path / f"photos-{w.user}", 2)
    wardrobes = {alice.user_id: alice, bob.user_id: bob}
    training, release = threading.Event(), threading.Event()

    def slow_finetune(base, data, out, **kwargs):
        training.set()
        assert release.wait(30)
        return FinetuneResult(None, 0.1, 3, cancelled=True, photos=2)

    monkeypatch.setattr(finetune, "finetune_personal", slow_finetune)
    root = tmp_path / "models"
    owner = TeachJobs(database, root, tmp_path / "base.pt", wardrobes.__getitem__, min_photos=2)
    other = TeachJobs(database, root, None, wardrobes.__getitem__)
    running = owner.start(alice.user_id)
    assert training.wait(30)
    queued = owner.start(bob.user_id)
    assert other.recover()["interrupted_model_jobs"] == 0
    assert other.get(queued["id"], bob.user_id)["state"] == "queued"
    owner.shutdown(wait=False)  # the queued job is dropped from the pool, its lock released
    release.set()
    owner.shutdown()  # waits for the running one, which stops unfinished
    assert other.get(running["id"], alice.user_id)["state"] == "failed"
    assert other.recover()["interrupted_model_jobs"] == 1
    assert other.get(queued["id"], bob.user_id)["state"] == "failed"
    other.shutdown()
