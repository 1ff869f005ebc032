"""The account store under test, once per backend: SQLite (a file) and PostgreSQL (marked).

- ``backend``: "sqlite" or "postgres" (the latter marked ``postgres``: it needs the server of
  ``postgres_server``, tests/conftest.py).
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
from radiusgw.store.postgres.accounts import PostgresAccountStore

AnyAccountStore = SqliteStore | PostgresAccountStore


class OpenAccounts(Protocol):
    def __call__(
        self, *, key_path: Path | None = None, clock: Callable[[], float] | None = None
    ) -> AnyAccountStore: ...


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "gw.db.key"


@pytest.fixture
def open_accounts(
    backend: str, tmp_path: Path, key_path: Path, request: pytest.FixtureRequest
) -> Iterator[OpenAccounts]:
    opened: list[AnyAccountStore] = []
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None

    def open_(
        *, key_path: Path | None = key_path, clock: Callable[[], float] | None = None
    ) -> AnyAccountStore:
        key = key_path if key_path is not None else tmp_path / "gw.db.key"
        extra = {} if clock is None else {"clock": clock}
        store: AnyAccountStore
        if url is None:
            store = SqliteStore(tmp_path / "gw.db", key, **extra)
        else:
            store = PostgresAccountStore(url, key, **extra)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def account_store(open_accounts: OpenAccounts) -> AnyAccountStore:
    return open_accounts()


def undo_version_5(conn: sqlite3.Connection) -> None:
    """Take an SQLite database back to what schema version 4 left (for migration tests)."""
    for column in ("calling_station_id", "reply", "failures", "failure_start", "locked_until"):
        conn.execute(f"ALTER TABLE accounts DROP COLUMN {column}")
