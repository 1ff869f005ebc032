"""The authentication log in the SQLite file, and the query both backends share (issue 18.3).

One row per Access-Request answered (``radiusgw.domain.AuthLogRow``), written in batches by each
worker's auth-log thread (``radiusgw.server.authlog``), read by ``radiusgw authlog`` and the
API, and pruned by worker 0 past ``--auth-log-days``. The table is part of the versioned schema
(SQLite version 5, PostgreSQL version 2), indexed by (realm, time): every read names a realm
(a contract sees only its own, 第5条), and retention deletes by time.

Rules:
- Its own connection with ``synchronous=NORMAL``: in WAL mode a commit survives a killed
  process; what a power cut can lose is the last batch of log rows, never accounting (which is
  committed with FULL on the store's connection).
- Realms are stored lower-cased, as routed; a query's realm is lower-cased too.
- Read-only (the CLI), a database no radiusgw of this version has opened has no rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from radiusgw.domain import AuthLogRow
from radiusgw.store.connection import SqliteConnection, connect_read_only, has_table, use_wal

RESULTS = ("accept", "reject", "challenge")
COLUMNS = (
    "time, node, worker, nas, realm, username, method, result, reason, framed_ip, lns, upstream"
)
SCHEMA = (
    """CREATE TABLE auth_log (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        node TEXT NOT NULL,
        worker INTEGER NOT NULL,
        nas TEXT NOT NULL,
        realm TEXT,
        username TEXT NOT NULL,
        method TEXT NOT NULL,
        result TEXT NOT NULL,
        reason TEXT NOT NULL,
        framed_ip TEXT,
        lns TEXT,
        upstream TEXT
    )""",
    "CREATE INDEX auth_log_realm_time ON auth_log (realm, time)",
    "CREATE INDEX auth_log_time ON auth_log (time)",
)


def select(
    realm: str,
    *,
    user: str | None = None,
    since: float | None = None,
    until: float | None = None,
    result: str | None = None,
    limit: int | None = None,
    mark: str = "?",
) -> tuple[str, list[object]]:
    """The SELECT of ``realm``'s rows, oldest first, with the filters given (``since``
    inclusive, ``until`` exclusive; ``mark``: the driver's placeholder)."""
    where = [f"realm = {mark}"]
    params: list[object] = [realm.lower()]
    for clause, value in (
        (f"username = {mark}", user),
        (f"time >= {mark}", since),
        (f"time < {mark}", until),
        (f"result = {mark}", result),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = f"SELECT {COLUMNS} FROM auth_log WHERE {' AND '.join(where)} ORDER BY time, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def lowered(rows: Sequence[AuthLogRow]) -> list[AuthLogRow]:
    """The rows with their realm lower-cased (the engine gives it as routed: already so)."""
    return [
        r if r.realm is None or r.realm.islower() else r._replace(realm=r.realm.lower())
        for r in rows
    ]


class AuthLogTable(SqliteConnection):
    """One connection, owned by one thread, like every store object."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        if read_only:
            self.db_path = Path(db)
            self._conn = connect_read_only(self.db_path)
            self._empty = not has_table(self._conn, "auth_log")
            return
        self._connect(db)
        self._empty = False
        with self._translated():
            use_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def write(self, rows: Sequence[AuthLogRow]) -> None:
        """Append ``rows`` in one transaction."""
        if not rows:
            return
        with self._transaction():
            self._conn.executemany(
                f"INSERT INTO auth_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                lowered(rows),
            )

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
        if self._empty:
            return []
        sql, params = select(realm, user=user, since=since, until=until, result=result, limit=limit)
        with self._translated():
            return [AuthLogRow(*row) for row in self._conn.execute(sql, params).fetchall()]

    def prune(self, before: float) -> int:
        """Delete the rows older than ``before``; how many."""
        with self._translated():
            cur = self._conn.execute("DELETE FROM auth_log WHERE time < ?", (before,))
        return max(cur.rowcount, 0)

    def close(self) -> None:
        self._conn.close()
