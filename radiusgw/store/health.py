"""LNS health as the probes last saw it, shared by every worker through the database.

One worker probes (``radiusgw.server.lns_monitor``) and records each LNS's state here; every
worker reads the table on its poll tick into its engine, so all workers answer from the same
view and the LNS are probed once, not once per worker. Operators read it with
``radiusgw lns status``, which opens it read-only: no table is made then, and a database no
server has run on yet has no LNS states.
"""

from __future__ import annotations

from pathlib import Path

from radiusgw.domain import LnsState
from radiusgw.store.connection import table_connection

_SCHEMA = """CREATE TABLE IF NOT EXISTS lns_health (
    realm TEXT NOT NULL,
    lns_index INTEGER NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    checked_at REAL NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (realm, lns_index)
)"""


class HealthTable:
    """One connection, owned by one thread, like every store object."""

    def __init__(self, db: Path | str, *, read_only: bool = False) -> None:
        self._conn, exists = table_connection(db, "lns_health", _SCHEMA, read_only=read_only)
        self._empty = not exists

    def record(
        self, realm: str, index: int, address: str, port: int, status: str, detail: str, now: float
    ) -> bool:
        """Store a probe's outcome; True when the status changed (or is new)."""
        row = self._conn.execute(
            "SELECT status, address, port, changed_at FROM lns_health"
            " WHERE realm = ? AND lns_index = ?",
            (realm, index),
        ).fetchone()
        changed = row is None or (row[0], row[1], row[2]) != (status, address, port)
        changed_at = now if changed else row[3]
        self._conn.execute(
            "INSERT OR REPLACE INTO lns_health VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (realm, index, address, port, status, detail, now, changed_at),
        )
        return changed

    def states(self) -> list[LnsState]:
        if self._empty:
            return []
        rows = self._conn.execute(
            "SELECT realm, lns_index, address, port, status, detail, checked_at, changed_at"
            " FROM lns_health ORDER BY realm, lns_index"
        ).fetchall()
        return [LnsState(*row) for row in rows]

    def close(self) -> None:
        self._conn.close()
