"""The upstream RADIUS servers of proxy realms as the gateway sees them, for operators.

Each worker learns its upstreams' health from its own traffic and probes; it writes its view
here every few seconds and on every state change, so ``radiusgw proxy status`` shows the state,
since when, and the traffic of every customer server, per worker.

A row is one realm's server port as one worker sees it: (worker, realm, address, port, kind).
Two realms may name the same customer server (one customer, two realms); the operator then
reads one line under each realm, with the same health. The first schema keyed rows without the
realm, so two such realms made every publish fail on its primary key and left the rows stale;
a table of that shape is dropped and made again (it holds nothing but the last few seconds'
view, which the workers write again at once).

``radiusgw proxy status`` opens it read-only: no table is made then, and a database no
server has run on yet has no rows (nor has one whose table still has the first shape).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from radiusgw.domain import UpstreamRow
from radiusgw.proxy.upstream import UpstreamStatus
from radiusgw.store.connection import connect_read_only, use_wal

_SCHEMA = """CREATE TABLE IF NOT EXISTS upstream_status (
    worker INTEGER NOT NULL,
    realm TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    outstanding INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    answered INTEGER NOT NULL,
    unanswered INTEGER NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (worker, realm, address, port, kind)
)"""


class UpstreamTable:
    """One connection, owned by one thread."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        if read_only:
            self._conn = connect_read_only(Path(db))
            self._empty = "realm" not in self._columns()
            return
        self._conn = sqlite3.connect(str(db), timeout=5.0, isolation_level=None)
        self._empty = False
        use_wal(self._conn)
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others then see it
            columns = self._columns()
            if columns and "realm" not in columns:
                self._conn.execute("DROP TABLE upstream_status")
            self._conn.execute(_SCHEMA)

    def _columns(self) -> list[str]:
        """The table's columns; none when it does not exist yet."""
        return [row[1] for row in self._conn.execute("PRAGMA table_info(upstream_status)")]

    def publish(
        self, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic_now: float
    ) -> None:
        """Replace this worker's rows; ``since`` comes in loop time and is stored as unix time."""
        rows = {
            (worker, s.realm, s.address, s.port, str(s.kind)): (
                worker,
                s.realm,
                s.address,
                s.port,
                str(s.kind),
                str(s.state),
                now - (monotonic_now - s.since),
                s.outstanding,
                s.sent,
                s.answered,
                s.unanswered,
                now,
            )
            # One row per key even if a realm lists one port twice (two servers on one
            # address sharing an acct_port): the same destination, the same health.
            for s in statuses
        }
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM upstream_status WHERE worker = ?", (worker,))
            self._conn.executemany(
                "INSERT INTO upstream_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                list(rows.values()),
            )

    def rows(self) -> list[UpstreamRow]:
        if self._empty:
            return []
        result = self._conn.execute(
            "SELECT * FROM upstream_status ORDER BY realm, address, port, kind, worker"
        ).fetchall()
        return [UpstreamRow(*row) for row in result]

    def close(self) -> None:
        self._conn.close()
