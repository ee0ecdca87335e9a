"""Schema migrations, run programmatically (the scripts ship inside the package).

:func:`upgrade` brings any database — empty, or created by an older fashionkit — to the newest
revision; :class:`~fashionkit.wardrobe.database.Wardrobe` calls it when it opens a store.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

__all__ = ["upgrade", "downgrade", "current_revision", "head_revision"]


def _config() -> Config:
    config = Config()
    location = resources.files("fashionkit.wardrobe").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    return config


# Key of the PostgreSQL advisory lock migrations take (any constant shared by all versions).
_MIGRATION_LOCK = 0x6661736B  # "fask"


def _run(engine: Engine, action, revision: str) -> None:
    """Run ``action`` in one transaction that no other migration of the database runs beside:
    processes started together (``serve --workers``, several machines) migrate one after
    another, and the later ones find nothing left to do."""
    config = _config()
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch migrations copy and drop tables; with foreign keys enforced SQLite would
            # cascade those drops into child rows. The pragma is a no-op inside a transaction,
            # so it is set before alembic begins one.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            # The writer lock before alembic reads the revision (pysqlite would begin lazily).
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            # Held until the transaction ends.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        try:
            action(config, revision)
            connection.commit()
        finally:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (default the newest)."""
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``"base"`` removes every table)."""
    _run(engine, command.downgrade, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head
