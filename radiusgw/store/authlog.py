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
  the realm, with the realm and the first and last time as columns, indexed. A log row is
  written at the full answer rate, and one SQLite row with its index entries cost 8-14 us each
  (measured: 30,000 rows, 12 columns, one or two indexes). A read selects the realm's chunks
  that overlap the time asked for and filters their rows; retention deletes whole chunks, and
  rewrites the few that straddle the cut, so that no row older than the cut stays and no newer
  one goes.
- A chunk is one worker's hand-off for one realm (``radiusgw.server.authlog``), kept as the
  engine recorded it (``radiusgw.authlog_records``: the least and greatest time, the count, and
  the records' octets). Its body is Zstandard (level 1) of ``marshal`` of ``(node, worker,
  taken, records)``, the records as they are: writing costs no work per answer. Zstandard, not
  zlib: the compression is most of the writer's work, paid at the full answer rate on the
  cores that answer; on 10,000 PAP answers zlib level 1 took 0.27 us an answer and Zstandard
  level 1 0.12 us, for the same size (about 10 octets an answer). Bodies written with zlib
  (before) are still read: a Zstandard frame starts with its magic number (RFC 8878 §3.1.1).
  The raw values become text when read (``rows_of``: the Framed-IP's four octets, a time of
  None as ``taken``). Bodies of the layouts before are still read: a list of row tuples, and
  ``marshal`` of the engine's flat list (``radiusgw.authlog_records.values_of``).
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
import socket
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import zstandard

from radiusgw.authlog_records import RecordError, pack, values_of
from radiusgw.client.ids import show_destination
from radiusgw.domain import (
    AUTH_LOG_FIELDS,
    AuthLogBatch,
    AuthLogRow,
    AuthLogValues,
)
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
CHUNK_ROWS: Final = 10_000  # rows per chunk when rows are made into chunks again (``batches_of``)
_FIELDS: Final = len(AuthLogRow._fields)
_ZSTD_LEVEL: Final = 1  # level 3: 0.18 us an answer for 8.5 octets, against 0.12 us for 10
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"  # RFC 8878 §3.1.1, little-endian 0xFD2FB528


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
                for batch in batches_of(rows):
                    insert_chunks(target, batch)
            target.execute("COMMIT")
        finally:
            target.close()
    conn.execute("DROP TABLE auth_log")


def insert_chunks(
    conn: sqlite3.Connection,
    batch: AuthLogBatch,
    compressor: zstandard.ZstdCompressor | None = None,
) -> None:
    """Store ``batch`` as one chunk per realm, each as packed: no work per answer. A writer
    passes its own ``compressor``: making one took about 30 us, as long as compressing a
    250-answer chunk (one owner at a time: a compressor is not to be shared by threads)."""
    node, worker, taken, entries = batch
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    chunks = []
    for realm, (first, last, count, values) in entries.items():
        body = compressor.compress(marshal.dumps((node, worker, taken, values)))
        chunks.append((realm, first, last, count, body))
    conn.executemany(_INSERT_CHUNK, chunks)


def _address(value: object) -> str | None:
    """A Framed-IP as recorded (four octets) or as text (a row written again)."""
    if isinstance(value, bytes):
        return socket.inet_ntoa(value)  # OSError if not four: a damaged chunk
    return value if isinstance(value, str) else None


def _destination(value: object) -> str | None:
    """An upstream as recorded ((host, port)) or as text (a row written again)."""
    if isinstance(value, tuple):
        return show_destination((value[0], value[1]))
    return value if isinstance(value, str) else None


def rows_of(batch: AuthLogBatch) -> list[AuthLogValues]:
    """A batch's rows, realm by realm, each with its text made (``AuthLogRow``'s order)."""
    return [
        row
        for realm, packed in batch.entries.items()
        for row in _rows(batch.node, batch.worker, batch.taken, realm, values_of(packed[3]))
    ]


def _rows(
    node: str, worker: int, taken: float, realm: str | None, values: list[Any]
) -> list[AuthLogValues]:
    rows: list[AuthLogValues] = []
    append = rows.append
    fields = AUTH_LOG_FIELDS
    for i in range(0, len(values), fields):
        when = values[i]
        append(
            (
                taken if when is None else when,
                node,
                worker,
                values[i + 1],
                realm,
                values[i + 2],
                values[i + 3],
                values[i + 4],
                values[i + 5],
                _address(values[i + 6]),
                values[i + 7],
                _destination(values[i + 8]),
            )
        )
    return rows


def batches_of(rows: Iterable[AuthLogRow]) -> list[AuthLogBatch]:
    """Rows made again into batches, one per node and worker (a migration's rows, or the rows
    of a chunk that retention cuts), ``CHUNK_ROWS`` rows at most per realm, their values as
    text, each row's time its own."""
    lists: dict[tuple[str, int], dict[str | None, list[Any]]] = {}
    for r in rows:
        entries = lists.setdefault((r.node, r.worker), {})
        realm = r.realm if r.realm is None else r.realm.lower()
        entries.setdefault(realm, []).extend(
            (r.time, r.nas, r.username, r.method, r.result, r.reason, r.framed_ip, r.lns,
             r.upstream)
        )  # fmt: skip
    step = CHUNK_ROWS * AUTH_LOG_FIELDS
    batches = []
    for (node, worker), entries in lists.items():
        longest = max(len(values) for values in entries.values())
        for i in range(0, longest, step):
            part = {
                realm: pack(values[i : i + step], 0.0)
                for realm, values in entries.items()
                if i < len(values)
            }
            batches.append(AuthLogBatch(node, worker, 0.0, part))
    return batches


def _decompress(body: bytes) -> bytes:
    """A chunk's body: Zstandard, or zlib as written before (module docstring)."""
    if body.startswith(_ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().decompress(body)
    return zlib.decompress(body)


def unpack(path: Path, chunk_id: int, realm: str | None, body: bytes) -> list[AuthLogRow]:
    """The rows of ``realm``'s chunk; ``StoreError`` naming the file and the chunk when it is
    damaged."""
    try:
        content = marshal.loads(_decompress(body))
    except (zlib.error, zstandard.ZstdError, EOFError, ValueError, TypeError):
        content = None
    if isinstance(content, list):  # the first layout: a tuple per row
        if all(
            isinstance(r, tuple) and len(r) == _FIELDS and isinstance(r[0], float) for r in content
        ):
            return [AuthLogRow(*r) for r in content]
    elif (
        isinstance(content, tuple)
        and len(content) == 4
        and isinstance(content[0], str)
        and isinstance(content[1], int)
        and isinstance(content[2], float)
        and isinstance(content[3], bytes)
    ):
        node, worker, taken, packed = content
        try:
            values: list[Any] | None = values_of(packed)
        except RecordError:
            values = None
        if values is not None and all(
            t is None or isinstance(t, float) for t in values[0::AUTH_LOG_FIELDS]
        ):
            try:
                return [AuthLogRow(*r) for r in _rows(node, worker, taken, realm, values)]
            except (OSError, TypeError, IndexError):  # a Framed-IP not of four octets, and such
                pass
    raise StoreError(f"{path}: authentication log chunk {chunk_id} is damaged")


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
        self._compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        with self._translated():
            use_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if self._conn.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                with self._transaction():
                    create(self._conn)

    def write(self, batches: Sequence[AuthLogBatch]) -> None:
        """Append ``batches`` in one transaction."""
        batches = [batch for batch in batches if batch.entries]
        if not batches:
            return
        with self._transaction():
            for batch in batches:
                insert_chunks(self._conn, batch, self._compressor)

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
        sql = "SELECT id, realm, body FROM auth_log_chunks WHERE realm = ?"
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
            for chunk_id, chunk_realm, body in chunks
            for r in unpack(self.db_path, chunk_id, chunk_realm, body)
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
                "SELECT id, realm, body FROM auth_log_chunks WHERE first < ? AND last >= ?",
                (before, before),
            ).fetchall()
            for chunk_id, realm, body in straddling:
                rows = unpack(self.db_path, chunk_id, realm, body)
                kept = [r for r in rows if r.time >= before]
                deleted += len(rows) - len(kept)
                self._conn.execute("DELETE FROM auth_log_chunks WHERE id = ?", (chunk_id,))
                for batch in batches_of(kept):
                    insert_chunks(self._conn, batch)
        return int(deleted)

    def close(self) -> None:
        self._conn.close()


def _time(row: AuthLogRow) -> float:
    return row.time
