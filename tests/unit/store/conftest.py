"""The store under test, once per backend: SQLite (a file) and PostgreSQL (marked).

``backend`` ("sqlite" or "postgres") and ``database`` (the file's path or the database's URL)
are tests/conftest.py's, shared with the CLI's tests.

- ``open_db(node=None, read_only=False)``: opens a ``Backend`` on ``database`` through
  ``open_backend``, as the server and the CLI do: a reopen, another worker, or (``node``) a
  worker of another node of a fleet. Each is closed at the end of the test.
- ``store``: the first such ``Backend``.
- ``new_database()``: another, fresh database of the same backend (two stores side by side).
- ``open_accounts(key_path=None, clock=None)``: opens another store on the same database (the
  same SQLite file, or the same PostgreSQL database): a second process, a reopen, or a second
  node. ``key_path`` defaults to the database's key file.
- ``account_store``: the first such store, closed at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from radiusgw.store import SqliteStore
from radiusgw.store.backend import Backend, open_backend
from radiusgw.store.postgres.accounts import PostgresAccountStore

AnyAccountStore = SqliteStore | PostgresAccountStore


class OpenAccounts(Protocol):
    def __call__(
        self, *, key_path: Path | None = None, clock: Callable[[], float] | None = None
    ) -> AnyAccountStore: ...


class OpenDb(Protocol):
    def __call__(self, *, node: str | None = None, read_only: bool = False) -> Backend: ...


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "gw.db.key"


@pytest.fixture
def open_db(database: str, key_path: Path) -> Iterator[OpenDb]:
    opened: list[Backend] = []

    def open_(*, node: str | None = None, read_only: bool = False) -> Backend:
        opened.append(open_backend(database, key_path, read_only=read_only, node=node))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_db: OpenDb) -> Backend:
    return open_db()


@pytest.fixture
def new_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], str]:
    if backend == "postgres":
        make: Callable[[], str] = request.getfixturevalue("postgres_urls")
        return make
    paths = iter(range(1, 1_000_000))
    return lambda: str(tmp_path / f"other-{next(paths)}.db")


@pytest.fixture
def open_accounts(
    backend: str, database: str, tmp_path: Path, key_path: Path
) -> Iterator[OpenAccounts]:
    opened: list[AnyAccountStore] = []

    def open_(
        *, key_path: Path | None = key_path, clock: Callable[[], float] | None = None
    ) -> AnyAccountStore:
        key = key_path if key_path is not None else tmp_path / "gw.db.key"
        extra = {} if clock is None else {"clock": clock}
        store: AnyAccountStore
        if backend == "sqlite":
            store = SqliteStore(database, key, **extra)
        else:
            store = PostgresAccountStore(database, key, **extra)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def account_store(open_accounts: OpenAccounts) -> AnyAccountStore:
    return open_accounts()


def undo_version_5(conn: sqlite3.Connection) -> None:
    """Take an SQLite database back to what schema version 4 left (for migration tests): no
    authentication log (version 6), no protection columns (version 5)."""
    conn.execute("DROP TABLE IF EXISTS auth_log")
    for column in ("calling_station_id", "reply", "failures", "failure_start", "locked_until"):
        conn.execute(f"ALTER TABLE accounts DROP COLUMN {column}")
