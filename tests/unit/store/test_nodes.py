"""The nodes' heartbeats (issue 15.7), on every backend (tests/unit/store/conftest.py): one row
per node with its latest heartbeat, read back as ``NodeRow``s by a reader of the database."""

from __future__ import annotations

from radiusgw.domain import NodeRow
from tests.unit.store.conftest import OpenDb


def test_one_row_per_node_with_its_latest_heartbeat(open_db: OpenDb) -> None:
    a, b = open_db(node="gw-a"), open_db(node="gw-b")
    a.record_node("gw-a", "1.0", 100.0, 5, None, 105.0)
    b.record_node("gw-b", "1.1", 90.0, 2, 99.0, 101.0)
    a.record_node("gw-a", "1.0", 100.0, 0, 109.5, 110.0)
    assert open_db(read_only=True).nodes() == [
        NodeRow("gw-a", "1.0", 100.0, 110.0, 0, 109.5),
        NodeRow("gw-b", "1.1", 90.0, 101.0, 2, 99.0),
    ]


def test_nodes_of_a_database_no_server_ran_on_is_empty(open_db: OpenDb) -> None:
    open_db().close()
    assert open_db(read_only=True).nodes() == []
