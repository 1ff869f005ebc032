"""The nodes' heartbeats in the SQLite file: the single-node half of ``radiusgw fleet status``.

Worker 0 of a running gateway writes its node's row every few seconds
(``radiusgw.server.heartbeat``): its version, since when it runs, its accounting journal's
backlog and when its applier last wrote. One SQLite file serves one node, so the table holds
one row in practice; it has the shape of PostgreSQL's ``nodes`` (``radiusgw.store.postgres.nodes``)
so that ``fleet status`` reads both alike. Like ``lns_health`` it is a side table made on first
write, not part of the versioned schema: it holds only the last few seconds' view. ``fleet
status`` opens it read-only: no table is made then, and a database no server has run on yet
has no nodes.
"""

from __future__ import annotations

from pathlib import Path

from radiusgw.domain import NodeRow
from radiusgw.store.connection import table_connection

_SCHEMA = """CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,
    journal_backlog INTEGER NOT NULL DEFAULT 0,
    last_applied REAL
)"""


class NodeTable:
    """One connection, owned by one thread, like every store object."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        self._conn, exists = table_connection(db, "nodes", _SCHEMA, read_only=read_only)
        self._empty = not exists

    def record(
        self,
        name: str,
        version: str,
        started: float,
        journal_backlog: int,
        last_applied: float | None,
        now: float,
    ) -> None:
        """Write ``name``'s heartbeat (one autocommitted statement: no lock held after it)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?)",
            (name, version, started, now, journal_backlog, last_applied),
        )

    def rows(self) -> list[NodeRow]:
        if self._empty:
            return []
        rows = self._conn.execute(
            "SELECT name, version, started, last_seen, journal_backlog, last_applied"
            " FROM nodes ORDER BY name"
        ).fetchall()
        return [NodeRow(*row) for row in rows]

    def close(self) -> None:
        self._conn.close()
