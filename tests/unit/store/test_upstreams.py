"""radiusgw.store.upstreams: the operators' view of the customer servers, per realm and worker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from radiusgw.proxy.upstream import Kind, ServerState, UpstreamStatus
from radiusgw.store.upstreams import UpstreamTable


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


def test_two_realms_on_one_server_get_a_row_each_and_are_updated(tmp_path: Path) -> None:
    table = UpstreamTable(tmp_path / "gw.db")
    table.publish(0, [status("one.example"), status("two.example")], 1000.0, 100.0)
    table.publish(0, [status("one.example", sent=5), status("two.example", sent=7)], 1005.0, 105.0)
    rows = table.rows()
    assert [(r.realm, r.address, r.port, r.kind, r.sent) for r in rows] == [
        ("one.example", "203.0.113.20", 1812, "auth", 5),
        ("two.example", "203.0.113.20", 1812, "auth", 7),
    ]
    assert rows[0].since == 1005.0 - (105.0 - 90.0)  # loop time to unix time
    table.close()


def test_one_port_listed_twice_in_a_realm_is_one_row(tmp_path: Path) -> None:
    table = UpstreamTable(tmp_path / "gw.db")
    table.publish(1, [status("one.example"), status("one.example")], 1000.0, 100.0)
    assert len(table.rows()) == 1
    table.close()


def test_a_table_of_the_first_schema_is_made_again(tmp_path: Path) -> None:
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
