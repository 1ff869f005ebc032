"""``radiusgw db migrate``: bring a database named by ``--db`` to this version's schema.

A ``postgresql://`` URL is migrated by ``radiusgw.store.postgres.schema`` (psycopg is imported
only then); an SQLite path is upgraded as ``SqliteStore`` upgrades it on open, without creating
a key file. Errors are one ``StoreError`` sentence naming the database without its password.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def migrate_database(db: str) -> tuple[str, int]:
    """Migrate ``db``; return how it is named in messages and the schema version reached."""
    from radiusgw.store.postgres.url import is_postgres_url

    if is_postgres_url(db):
        return _migrate_postgres(db)
    return _migrate_sqlite(Path(db))


def _migrate_postgres(url: str) -> tuple[str, int]:
    from radiusgw.store.postgres.connection import connect, translated
    from radiusgw.store.postgres.schema import migrate
    from radiusgw.store.postgres.url import redacted

    where = redacted(url)
    conn = connect(url)
    try:
        with translated(url):
            return where, migrate(conn, where)
    finally:
        conn.close()


def _migrate_sqlite(path: Path) -> tuple[str, int]:
    from radiusgw.errors import StoreError
    from radiusgw.store.connection import store_error, use_wal
    from radiusgw.store.sessions import ensure_schema
    from radiusgw.store.sqlite import SCHEMA_VERSION, migrate

    if not path.exists():
        raise StoreError(f"the database {path} does not exist")
    try:
        conn = sqlite3.connect(str(path), isolation_level=None)
        try:
            use_wal(conn)
            migrate(conn, path)
            ensure_schema(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise store_error(path, exc) from None
    return str(path), SCHEMA_VERSION
