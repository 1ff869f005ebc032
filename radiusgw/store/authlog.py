"""The authentication log's SQLite file, and the columns both backends share (issue 18.3).

One row per Access-Request answered (``radiusgw.domain.AuthLogRow``), written in batches by each
worker's writer process (``radiusgw.server.authlog_writer``), read by ``radiusgw authlog`` and
the API, and pruned by worker 0's writer past ``--auth-log-days``. Every read names a realm (a
contract sees only its own, 第5条).

Rules:
- Its own file, ``<db>.authlog`` (``path_of``), not a table of the store's file. SQLite has one
  writer at a time per file: in the store's file a batch of log rows held the lock that the
  accounting applier and the session admissions wait for. The log's writer runs at a low CPU
  priority, so it may hold its lock long on a busy machine; in a file of its own that delays
  nobody. (PostgreSQL locks rows, and keeps one row per answer in its schema: version 3.)
- Rows are stored in chunks: one SQLite row per realm per batch, holding that batch's rows of
  the realm (``zlib`` of ``marshal``), with the realm and the first and last time as columns,
  indexed. A log row is written at the full answer rate, and one SQLite row with its index
  entries cost 8-14 us each (measured: 30,000 rows, 12 columns, one or two indexes), a chunk
  about 1 us a row. A read selects the realm's chunks that overlap the time asked for and
  filters their rows; retention deletes whole chunks, and rewrites the few that straddle the
  cut, so that no row older than the cut stays and no newer one goes.
- ``marshal`` because the writer and the readers are this program, and a damaged chunk (a
  damaged file) is a ``StoreError`` naming the file and the chunk, never a crash.
- Its own connection with ``synchronous=NORMAL``: in WAL mode a commit survives a killed
  process; what a power cut can lose is the last batch of log rows, never accounting (which is
  committed with FULL in the store's file).
- The file's ``user_version`` is ``VERSION``; the table is made when a writer first opens it.
  The store's schema version 7 moved the rows of the table version 6 had kept in the store's
  file into this one (``move_from_store``).
- Realms are stored lower-cased, as routed; a query's realm is lower-cased too.
- Read-only (the CLI), a missing file has no rows.
"""

from __future__ import annotations

import marshal
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Final, cast

from radiusgw.domain import AuthLogRow, AuthLogValues
from radiusgw.errors import StoreError
from radiusgw.store.connection import (
    BUSY_TIMEOUT,
    SqliteConnection,
    connect_read_only,
    has_table,
    use_wal,
)

VERSION: Final = 1
SUFFIX: Final = ".authlog"

RESULTS: Final[tuple[str, ...]] = ("accept", "reject", "challenge")
COLUMNS: Final = (
    "time, node, worker, nas, realm, username, method, result, reason, framed_ip, lns, upstream"
)
SCHEMA: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS auth_log_chunks (
        id INTEGER PRIMARY KEY,
        realm TEXT,
        first REAL NOT NULL,
        last REAL NOT NULL,
        rows INTEGER NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS auth_log_chunks_realm ON auth_log_chunks (realm, last)",
    "CREATE INDEX IF NOT EXISTS auth_log_chunks_last ON auth_log_chunks (last)",
)
_INSERT_CHUNK: Final = (
    "INSERT INTO auth_log_chunks (realm, first, last, rows, body) VALUES (?, ?, ?, ?, ?)"
)
CHUNK_ROWS: Final = 10_000  # rows of one realm per chunk, at most (a batch is about half a second)
_FIELDS: Final = len(AuthLogRow._fields)


def path_of(db: Path | str) -> Path:
    """The auth log's file beside the store's SQLite file ``db``."""
    return Path(f"{db}{SUFFIX}")


def create(conn: sqlite3.Connection) -> None:
    """Make the table in an auth-log file (nothing if it is there)."""
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {VERSION}")


def move_from_store(conn: sqlite3.Connection) -> None:
    """Store schema step 7, inside the store's migration transaction: copy the rows of the
    store file's ``auth_log`` (version 6) into the auth-log file, then drop that table.

    The copy commits first, in the other file; were the store's transaction then to fail, a
    second try would copy the rows again, so a file that has chunks already gets none."""
    main = conn.execute("PRAGMA database_list").fetchone()[2]
    rows = [AuthLogRow(*r) for r in conn.execute(f"SELECT {COLUMNS} FROM auth_log ORDER BY id")]
    if rows and main:
        target = sqlite3.connect(str(path_of(main)), timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            use_wal(target)
            target.execute("BEGIN IMMEDIATE")
            create(target)
            if target.execute("SELECT 1 FROM auth_log_chunks LIMIT 1").fetchone() is None:
                insert_chunks(target, rows)
            target.execute("COMMIT")
        finally:
            target.close()
    conn.execute("DROP TABLE auth_log")


def insert_chunks(conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Store ``rows`` (``AuthLogValues`` or ``AuthLogRow``) as chunks, one per realm
    (``CHUNK_ROWS`` at most), in their order.

    Typed as tuples of objects, not ``AuthLogValues``: compiled, a fixed-length tuple is
    unboxed into its twelve fields when read from the list and boxed again when appended, and
    this runs once per answer the gateway gave."""
    by_realm: dict[object, list[tuple[object, ...]]] = {}
    for r in rows:
        row = r if type(r) is tuple else tuple(r)  # marshal takes no AuthLogRow, a subclass
        group = by_realm.get(row[4])
        if group is None:
            group = by_realm[row[4]] = []
        group.append(row)
    for mixed in [k for k in by_realm if isinstance(k, str) and not k.islower()]:
        # the engine gives realms as routed, lower-cased: this is for other callers' rows
        lower = mixed.lower()
        by_realm.setdefault(lower, []).extend(
            (*row[:4], lower, *row[5:]) for row in by_realm.pop(mixed)
        )
    chunks = []
    for realm, group in by_realm.items():
        for i in range(0, len(group), CHUNK_ROWS):
            part = group[i : i + CHUNK_ROWS]
            first = last = cast(float, part[0][0])
            for row in part:
                when = cast(float, row[0])
                if when < first:
                    first = when
                elif when > last:
                    last = when
            body = zlib.compress(marshal.dumps(part), 1)
            chunks.append((realm, first, last, len(part), body))
    conn.executemany(_INSERT_CHUNK, chunks)


def unpack(path: Path, chunk_id: int, body: bytes) -> list[AuthLogRow]:
    """A chunk's rows; ``StoreError`` naming the file and the chunk when it is damaged."""
    try:
        rows = marshal.loads(zlib.decompress(body))
    except (zlib.error, EOFError, ValueError, TypeError):
        rows = None
    if not isinstance(rows, list) or not all(
        isinstance(r, tuple) and len(r) == _FIELDS and isinstance(r[0], float) for r in rows
    ):
        raise StoreError(f"{path}: authentication log chunk {chunk_id} is damaged")
    return [AuthLogRow(*r) for r in rows]


class AuthLogTable(SqliteConnection):
    """One connection, owned by one thread, like every store object."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        """The log beside the store's file ``db``."""
        path = path_of(db)
        self._read_only = read_only
        if read_only:  # opened at the first read that finds the file (a writer may make it later)
            self.db_path = path
            self._conn = sqlite3.connect(":memory:")
            self._empty = True
            return
        self._connect(path)
        self._empty = False
        with self._translated():
            use_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if self._conn.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                with self._transaction():
                    create(self._conn)

    def write(self, rows: Sequence[AuthLogValues]) -> None:
        """Append ``rows`` in one transaction."""
        if not rows:
            return
        with self._transaction():
            insert_chunks(self._conn, rows)

    def rows(
        self,
        realm: str,
        *,
        user: str | None = None,
        since: float | None = None,
        until: float | None = None,
        result: str | None = None,
        limit: int | None = None,
    ) -> list[AuthLogRow]:
        """``realm``'s rows, oldest first (in the order written among equal times), with the
        filters given (``since`` inclusive, ``until`` exclusive)."""
        if self._empty and not self._open_for_reading():
            return []
        sql = "SELECT id, body FROM auth_log_chunks WHERE realm = ?"
        params: list[object] = [realm.lower()]
        if since is not None:
            sql += " AND last >= ?"
            params.append(since)
        if until is not None:
            sql += " AND first < ?"
            params.append(until)
        with self._translated():
            chunks = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        found = [
            r
            for chunk_id, body in chunks
            for r in unpack(self.db_path, chunk_id, body)
            if (user is None or r.username == user)
            and (since is None or r.time >= since)
            and (until is None or r.time < until)
            and (result is None or r.result == result)
        ]
        found.sort(key=_time)  # stable: the written order among equal times
        return found if limit is None else found[: max(0, int(limit))]

    def _open_for_reading(self) -> bool:
        """Read-only: open the file once a writer has made it; whether it has the table."""
        if not self._read_only or not self.db_path.exists():
            return False
        conn = connect_read_only(self.db_path)
        if not has_table(conn, "auth_log_chunks"):
            conn.close()
            return False
        self._conn.close()
        self._conn, self._empty = conn, False
        return True

    def prune(self, before: float) -> int:
        """Delete the rows older than ``before``; how many. Chunks wholly older go; the few
        that straddle ``before`` are written again with their newer rows only."""
        with self._transaction():
            deleted = self._conn.execute(
                "SELECT coalesce(sum(rows), 0) FROM auth_log_chunks WHERE last < ?", (before,)
            ).fetchone()[0]
            self._conn.execute("DELETE FROM auth_log_chunks WHERE last < ?", (before,))
            straddling = self._conn.execute(
                "SELECT id, body FROM auth_log_chunks WHERE first < ? AND last >= ?",
                (before, before),
            ).fetchall()
            for chunk_id, body in straddling:
                rows = unpack(self.db_path, chunk_id, body)
                kept = [r for r in rows if r.time >= before]
                deleted += len(rows) - len(kept)
                self._conn.execute("DELETE FROM auth_log_chunks WHERE id = ?", (chunk_id,))
                insert_chunks(self._conn, kept)
        return int(deleted)

    def close(self) -> None:
        self._conn.close()


def _time(row: AuthLogRow) -> float:
    return row.time
