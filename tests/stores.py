"""Helpers for the tests that run once per store backend (``backend``, ``database``:
tests/conftest.py): what no ``Backend`` method can do, done per backend in one place.

``refuse_accounting(database, condition)`` makes the database refuse the accounting records
that match ``condition`` (SQL on ``NEW``, the same text for both: ``NEW.session_id = 'x'``),
as it refuses a value it cannot take: a trigger raising a constraint error (SQLite's
``RAISE(ABORT)``, PostgreSQL's SQLSTATE 23000). It injects the fault; the tests check what
follows through the ``Backend`` only.

``empty_sessions(database)`` empties the accounting, the sessions and the reservations and
restarts their ids: a fresh start for each example of a property test, cheaper than a new
database.
"""

from __future__ import annotations

import sqlite3

from radiusgw.store.backend import scheme_of

REASON = "refused here"  # the trigger's message, which the kept-aside record's reason carries


def refuse_accounting(database: str, condition: str) -> None:
    if scheme_of(database) == "sqlite":
        conn = sqlite3.connect(database)
        try:
            conn.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON accounting WHEN {condition}"
                f" BEGIN SELECT RAISE(ABORT, '{REASON}'); END"
            )
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(database, autocommit=True) as pg:
        pg.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF {condition} THEN RAISE EXCEPTION '{REASON}'"
            " USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$".encode()
        )
        pg.execute(
            b"CREATE TRIGGER refuse BEFORE INSERT ON accounting"
            b" FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def empty_sessions(database: str) -> None:
    tables = ("accounting", "sessions", "session_reservations")
    if scheme_of(database) == "sqlite":
        conn = sqlite3.connect(database)
        try:
            for table in tables:
                conn.execute(f"DELETE FROM {table}")
            conn.execute(f"DELETE FROM sqlite_sequence WHERE name IN {tables}")
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(database, autocommit=True) as pg:
        pg.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY".encode())
