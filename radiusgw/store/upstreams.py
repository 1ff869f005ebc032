"""The upstream RADIUS servers of proxy realms as the gateway sees them, for operators.

Each worker learns its upstreams' health from its own traffic and probes; it writes its view
here every few seconds and on every state change, so ``radiusgw proxy status`` shows the state,
since when, and the traffic of every customer server, per worker. That command opens it
read-only: no table is made then, and a database no server has run on yet has no rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from radiusgw.proxy.upstream import UpstreamStatus
from radiusgw.store.connection import table_connection

_SCHEMA = """CREATE TABLE IF NOT EXISTS upstream_status (
    worker INTEGER NOT NULL,
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
    PRIMARY KEY (worker, address, port, kind)
)"""


@dataclass(frozen=True, slots=True)
class UpstreamRow:
    worker: int
    address: str
    port: int
    kind: str
    state: str
    since: float  # unix time
    outstanding: int
    sent: int
    answered: int
    unanswered: int
    updated: float


class UpstreamTable:
    """One connection, owned by one thread."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        self._conn, exists = table_connection(db, "upstream_status", _SCHEMA, read_only=read_only)
        self._empty = not exists

    def publish(
        self, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic_now: float
    ) -> None:
        """Replace this worker's rows; ``since`` comes in loop time and is stored as unix time."""
        rows = [
            (
                worker,
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
            for s in statuses
        ]
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM upstream_status WHERE worker = ?", (worker,))
            self._conn.executemany(
                "INSERT INTO upstream_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def rows(self) -> list[UpstreamRow]:
        if self._empty:
            return []
        result = self._conn.execute(
            "SELECT * FROM upstream_status ORDER BY address, port, kind, worker"
        ).fetchall()
        return [UpstreamRow(*row) for row in result]

    def close(self) -> None:
        self._conn.close()
