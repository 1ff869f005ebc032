"""What every SQLite-backed store object shares: its transactions and its error sentences.

One connection, owned by one thread, opened in autocommit mode (``isolation_level=None``), so
transactions are explicit: ``BEGIN IMMEDIATE`` takes the write lock before the first read, and
a writer never fails half-way on a lock upgrade. SQLite's errors become one ``StoreError``
sentence that names the file.

The commands that only read (``session list``, ``usage``, ``account list``, ``lns status``,
``proxy status``) open with ``connect_read_only``: SQLite's ``mode=ro``, so they create no file
and no table and never switch the journal mode, whatever file ``--db`` names.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
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


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    """A connection that can only read ``db_path``, a database radiusgw wrote.

    A missing file, a file that is not SQLite, and an SQLite database that radiusgw did not
    write (``user_version`` 0: an empty one, or another program's) are each one ``StoreError``
    sentence naming the file.
    """
    if not db_path.exists():
        raise StoreError(f"the database {db_path} does not exist")
    uri = f"file:{urllib.parse.quote(str(db_path.absolute()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(db_path, exc) from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # reads the header
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(db_path, exc) from None
    if version == 0:
        conn.close()
        raise StoreError(f"{db_path} is not a radiusgw database")
    return conn


def table_connection(
    db: Path | str, name: str, schema: str, *, read_only: bool
) -> tuple[sqlite3.Connection, bool]:
    """A connection for the one table ``name`` (created by ``schema``), and whether it exists.

    Read-only, a missing table is not created: no server has written one yet.
    """
    if read_only:
        conn = connect_read_only(Path(db))
        return conn, has_table(conn, name)
    conn = sqlite3.connect(str(db), timeout=BUSY_TIMEOUT, isolation_level=None)
    use_wal(conn)
    conn.execute(schema)
    return conn, True


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def store_error(db_path: Path, exc: sqlite3.Error) -> StoreError:
    """SQLite's error as one sentence naming the file."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"the database {db_path} stayed locked by another process for more than "
            f"{BUSY_TIMEOUT:g} s"
        )
    if "not a database" in text:
        return StoreError(f"{db_path} is not an SQLite database")
    return StoreError(f"the database {db_path} failed: {text}")


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
        return store_error(self.db_path, exc)
