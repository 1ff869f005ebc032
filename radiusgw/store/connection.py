"""What every SQLite-backed store object shares: its transactions and its error sentences.

One connection, owned by one thread, opened in autocommit mode (``isolation_level=None``), so
transactions are explicit: ``BEGIN IMMEDIATE`` takes the write lock before the first read, and
a writer never fails half-way on a lock upgrade. SQLite's errors become one ``StoreError``
sentence that names the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from radiusgw.errors import StoreError

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another process's transaction to finish


def use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (a property of the file: once set, it stays).

    Switching a new file to WAL takes an exclusive lock, and a connection that races another
    one's switch can get "database is locked" at once, without SQLite's busy handler waiting:
    8 stores opened at the same moment on a new file failed so about one time in fifteen. So
    the switch is tried again, every 10 ms, for up to ``BUSY_TIMEOUT``.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteConnection:
    """Mixin: the subclass sets ``db_path`` and ``_conn``."""

    db_path: Path
    _conn: sqlite3.Connection

    def _connect(self, db_path: Path | str) -> None:
        """Open ``db_path`` as this object's connection, in autocommit mode."""
        self.db_path = Path(db_path)
        try:
            self._conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._translated():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the database {self.db_path} stayed locked by another process for more than "
                f"{BUSY_TIMEOUT:g} s"
            )
        if "not a database" in text:
            return StoreError(f"{self.db_path} is not an SQLite database")
        return StoreError(f"the database {self.db_path} failed: {text}")
