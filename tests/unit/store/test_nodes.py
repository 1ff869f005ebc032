"""The nodes' heartbeats (issue 15.7): the SQLite side table and PostgreSQL's ``nodes``, read
back as the same ``NodeRow``s, through the functions the PostgreSQL backend calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.domain import NodeRow
from radiusgw.store.backend import open_backend
from radiusgw.store.postgres import nodes as pg_nodes
from radiusgw.store.postgres.connection import connect


def test_sqlite_backend_keeps_one_row_per_node_with_its_latest_heartbeat(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    store = open_backend(db, tmp_path / "gw.db.key")
    try:
        store.record_node("gw-a", "1.0", 100.0, 5, None, 105.0)
        store.record_node("gw-a", "1.0", 100.0, 0, 109.5, 110.0)
        store.record_node("gw-b", "1.1", 90.0, 2, 99.0, 101.0)
    finally:
        store.close()
    reader = open_backend(db, tmp_path / "gw.db.key", read_only=True)
    try:
        assert reader.nodes() == [
            NodeRow("gw-a", "1.0", 100.0, 110.0, 0, 109.5),
            NodeRow("gw-b", "1.1", 90.0, 101.0, 2, 99.0),
        ]
    finally:
        reader.close()


def test_sqlite_read_only_nodes_of_a_database_no_server_ran_on_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    open_backend(db, tmp_path / "k").close()
    reader = open_backend(db, tmp_path / "k", read_only=True)
    try:
        assert reader.nodes() == []
    finally:
        reader.close()


@pytest.mark.postgres
def test_postgres_nodes_upsert_one_row_per_node_and_read_back(postgres_url: str) -> None:
    conn = connect(postgres_url)
    try:
        pg_nodes.record_node(conn, "gw-a", "1.0", 100.0, 5, None, 105.0)
        pg_nodes.record_node(conn, "gw-b", "1.1", 90.0, 2, 99.0, 101.0)
        pg_nodes.record_node(conn, "gw-a", "1.0", 100.0, 0, 109.5, 110.0)
        assert pg_nodes.nodes(conn) == [
            NodeRow("gw-a", "1.0", 100.0, 110.0, 0, 109.5),
            NodeRow("gw-b", "1.1", 90.0, 101.0, 2, 99.0),
        ]
    finally:
        conn.close()
