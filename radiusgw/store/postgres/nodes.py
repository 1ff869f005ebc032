"""The fleet's heartbeats in PostgreSQL's ``nodes`` table (``schema``): ``radiusgw fleet status``.

Functions over a psycopg connection (autocommit, as ``connection.connect`` opens it), for the
PostgreSQL backend to call from the thread that owns its connection. Each node writes its own
row by name (``--node``) every few seconds: an upsert, one statement, so a heartbeat never holds
a lock past itself and two nodes never touch one row. A node that stops writing keeps its last
row: ``fleet status`` shows it with its age, and only rows older than ``--within`` are left out.
"""

from __future__ import annotations

from typing import Any

import psycopg

from radiusgw.domain import NodeRow

Connection = psycopg.Connection[tuple[Any, ...]]

_UPSERT = (
    "INSERT INTO nodes (name, version, started, last_seen, journal_backlog, last_applied)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, started = EXCLUDED.started,"
    " last_seen = EXCLUDED.last_seen, journal_backlog = EXCLUDED.journal_backlog,"
    " last_applied = EXCLUDED.last_applied"
)
_SELECT = (
    "SELECT name, version, started, last_seen, journal_backlog, last_applied FROM nodes"
    " ORDER BY name"
)


def record_node(
    conn: Connection,
    name: str,
    version: str,
    started: float,
    journal_backlog: int,
    last_applied: float | None,
    now: float,
) -> None:
    """Write node ``name``'s heartbeat at ``now`` (unix seconds)."""
    conn.execute(_UPSERT, (name, version, started, now, journal_backlog, last_applied))


def nodes(conn: Connection) -> list[NodeRow]:
    """Every node's last heartbeat, by name."""
    return [NodeRow(*row) for row in conn.execute(_SELECT).fetchall()]
