"""The operators' view of the customer servers, per realm and worker, on every backend
(tests/unit/store/conftest.py): ``Backend.publish_upstreams`` and ``upstream_rows``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from radiusgw.proxy.upstream import Kind, ServerState, UpstreamStatus
from radiusgw.store.backend import Backend
from radiusgw.store.upstreams import UpstreamTable
from tests.unit.store.conftest import OpenDb


def status(realm: str, address: str = "203.0.113.20", sent: int = 1) -> UpstreamStatus:
    return UpstreamStatus(
        address=address,
        port=1812,
        kind=Kind.AUTH,
        state=ServerState.ALIVE,
        since=90.0,
        outstanding=0,
        sent=sent,
        answered=sent,
        unanswered=0,
        last_answer=None,
        probe=None,
        realm=realm,
    )


def test_two_realms_on_one_server_get_a_row_each_and_are_updated(store: Backend) -> None:
    store.publish_upstreams(0, [status("one.example"), status("two.example")], 1000.0, 100.0)
    store.publish_upstreams(
        0, [status("one.example", sent=5), status("two.example", sent=7)], 1005.0, 105.0
    )
    rows = store.upstream_rows()
    assert [(r.realm, r.address, r.port, r.kind, r.sent) for r in rows] == [
        ("one.example", "203.0.113.20", 1812, "auth", 5),
        ("two.example", "203.0.113.20", 1812, "auth", 7),
    ]
    assert rows[0].since == 1005.0 - (105.0 - 90.0)  # loop time to unix time


def test_one_port_listed_twice_in_a_realm_is_one_row(store: Backend) -> None:
    store.publish_upstreams(1, [status("one.example"), status("one.example")], 1000.0, 100.0)
    assert len(store.upstream_rows()) == 1


def test_a_worker_replaces_only_its_own_rows(open_db: OpenDb) -> None:
    store, reader = open_db(), open_db(read_only=True)
    store.publish_upstreams(0, [status("one.example")], 1000.0, 100.0)
    store.publish_upstreams(1, [status("one.example", sent=3)], 1000.0, 100.0)
    store.publish_upstreams(0, [], 1001.0, 101.0)  # worker 0's realm was removed by a reload
    assert [(r.worker, r.sent) for r in reader.upstream_rows()] == [(1, 3)]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_every_node_s_workers_are_listed_and_each_replaces_only_its_own(open_db: OpenDb) -> None:
    a, b = open_db(node="gw-a"), open_db(node="gw-b")
    a.publish_upstreams(0, [status("one.example", sent=2)], 1000.0, 100.0)
    b.publish_upstreams(0, [status("one.example", sent=9)], 1000.0, 100.0)
    a.publish_upstreams(0, [status("one.example", sent=4)], 1001.0, 101.0)
    assert sorted(r.sent for r in open_db(read_only=True).upstream_rows()) == [4, 9]


def test_a_table_of_the_first_schema_is_made_again(tmp_path: Path) -> None:
    """SQLite only: its own side table's migration."""
    db = tmp_path / "gw.db"
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE upstream_status (worker INTEGER NOT NULL, address TEXT NOT NULL,"
        " port INTEGER NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,"
        " outstanding INTEGER NOT NULL, sent INTEGER NOT NULL, answered INTEGER NOT NULL,"
        " unanswered INTEGER NOT NULL, updated REAL NOT NULL,"
        " PRIMARY KEY (worker, address, port, kind))"
    )
    conn.execute(
        "INSERT INTO upstream_status VALUES (0, '203.0.113.20', 1812, 'auth', 'dead', 1, 0, 0,"
        " 0, 0, 1)"
    )
    conn.commit()
    conn.close()
    table = UpstreamTable(db)
    assert table.rows() == []  # the old view is gone; the workers write theirs again
    table.publish(0, [status("one.example"), status("two.example")], 1000.0, 100.0)
    assert {r.realm for r in table.rows()} == {"one.example", "two.example"}
    table.close()
    UpstreamTable(db).close()  # opening the new shape again keeps it
