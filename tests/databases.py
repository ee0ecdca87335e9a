"""The database a test runs on: a SQLite file in its temporary folder, or, when
``FASHIONKIT_TEST_POSTGRES`` names a PostgreSQL server (``postgresql+psycopg://user@host:port``),
a fresh database there, dropped afterwards.

The default suite runs on SQLite; the same tests run on PostgreSQL with, for example::

    FASHIONKIT_TEST_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:5432 \\
        pytest tests/service tests/wardrobe/test_migrations.py
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES = os.environ.get("FASHIONKIT_TEST_POSTGRES", "").rstrip("/")


@contextmanager
def fresh_database(tmp_path: Path, name: str = "w") -> Iterator[str]:
    if not POSTGRES:
        yield f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        return
    database = f"fashionkit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        yield f"{POSTGRES}/{database}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
