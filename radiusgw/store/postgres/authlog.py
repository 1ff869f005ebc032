"""The authentication log in PostgreSQL's ``auth_log`` table (``schema`` version 3; issue 18.3).

Functions over a psycopg connection (autocommit), for the PostgreSQL backend to call from the
thread that owns its connection; the rules are ``radiusgw.store.authlog``'s. A batch is written
with COPY in one transaction: every node's workers append, none updates, so writers never wait
for each other's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from radiusgw.domain import AuthLogBatch, AuthLogRow
from radiusgw.store.authlog import COLUMNS, rows_of

Connection = psycopg.Connection[tuple[Any, ...]]

SCHEMA = (
    """CREATE TABLE auth_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
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


def write(conn: Connection, batches: Sequence[AuthLogBatch]) -> None:
    """Append ``batches`` in one transaction, one COPY."""
    rows = [row for batch in batches for row in rows_of(batch)]
    if not rows:
        return
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(f"COPY auth_log ({COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def rows(
    conn: Connection,
    realm: str,
    *,
    user: str | None = None,
    since: float | None = None,
    until: float | None = None,
    result: str | None = None,
    limit: int | None = None,
) -> list[AuthLogRow]:
    """``realm``'s rows, oldest first, with the filters given (``since`` inclusive, ``until``
    exclusive)."""
    where = ["realm = %s"]
    params: list[object] = [realm.lower()]
    for clause, value in (
        ("username = %s", user),
        ("time >= %s", since),
        ("time < %s", until),
        ("result = %s", result),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = f"SELECT {COLUMNS} FROM auth_log WHERE {' AND '.join(where)} ORDER BY time, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [AuthLogRow(*row) for row in conn.execute(sql.encode(), params).fetchall()]


def prune(conn: Connection, before: float) -> int:
    cur = conn.execute("DELETE FROM auth_log WHERE time < %s", (before,))
    return max(cur.rowcount, 0)
