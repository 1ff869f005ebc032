"""Sessions and admission on PostgreSQL across nodes and workers (radiusgw.store.postgres).

The rules themselves are held to the model by tests/unit/test_sessions_rules.py; here, what
only a shared database adds: several backends (workers of several nodes) at once.
"""

from __future__ import annotations

import threading

import pytest

from radiusgw.domain import AdmissionRequest, AdmissionResult
from tests.unit.store.conftest import OpenDb
from tests.unit.store.test_sessions import INTERIM, NAS, REALM, START, STOP, T0, record

# open_db (tests/unit/store/conftest.py) on PostgreSQL only: open_db(node=...) is a worker of
# that node.
pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]


def test_twelve_workers_on_three_nodes_admit_exactly_the_realm_limit(open_db: OpenDb) -> None:
    workers = [open_db(node=f"node{i % 3}") for i in range(12)]
    barrier = threading.Barrier(len(workers))
    results: list[AdmissionResult] = [AdmissionResult(False)] * len(workers)

    def login(i: int) -> None:
        barrier.wait()
        request = AdmissionRequest(REALM, f"user{i}", realm_max=3, reservation_ttl=60)
        results[i] = workers[i].admit([request], T0)[0]

    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.admitted for r in results) == 3
    refused = {r.reason for r in results if not r.admitted}
    assert refused == {"realm session limit 3 reached (max_sessions)"}
    assert workers[0].count_live(realm=REALM, reserved_at=T0) == 3


def test_a_start_on_one_node_and_a_stop_on_another_close_one_session(open_db: OpenDb) -> None:
    a, b = open_db(node="a"), open_db(node="b")
    assert a.admit([AdmissionRequest(REALM, "alice", realm_max=1)], T0)[0].admitted
    assert a.write_accounting([record(START, at=T0 + 1)], ("acct", (1, 100))) == []
    assert not b.admit([AdmissionRequest(REALM, "bob", realm_max=1)], T0 + 2)[0].admitted
    assert b.write_accounting([record(STOP, at=T0 + 3, time=2)], ("acct", (7, 10))) == []
    [row] = a.sessions()
    assert (row.nas_address, row.closed_by, row.stop) == (NAS, "stop", T0 + 3)
    assert b.admit([AdmissionRequest(REALM, "bob", realm_max=1)], T0 + 4)[0].admitted
    # journal positions are per (node, journal)
    assert tuple(a.journal_position("acct") or ()) == (1, 100)
    assert tuple(b.journal_position("acct") or ()) == (7, 10)


def test_a_record_the_database_refuses_is_kept_aside_and_the_rest_applied(
    open_db: OpenDb,
) -> None:
    a = open_db(node="a")
    bad = record(START, sid="s\x00bad", at=T0)  # PostgreSQL's text holds no NUL
    kept = a.write_accounting([record(START, at=T0), bad, record(STOP, at=T0 + 5)], ("j", (1, 2)))
    assert len(kept) == 1 and kept[0].session_id == "s\\x00bad" and kept[0].journal == "j"
    assert [q.id for q in a.quarantined()] == [kept[0].id]
    [row] = a.sessions()
    assert row.closed_by == "stop"
    assert tuple(a.journal_position("j") or ()) == (1, 2)


def test_a_refused_change_to_a_known_session_is_kept_aside_and_the_rest_applied(
    open_db: OpenDb,
) -> None:
    """The refused value reaches only the UPDATE of the rows already stored (the rows go as
    arrays, in binary): the batch is applied apart, as when a new row is refused."""
    a = open_db(node="a")
    assert a.write_accounting([record(START, at=T0), record(START, sid="s2", at=T0)]) == []
    bad = record(INTERIM, at=T0 + 5, lns="192.0.2.\x001")
    kept = a.write_accounting([bad, record(STOP, sid="s2", at=T0 + 6)], ("j", (1, 2)))
    assert len(kept) == 1 and kept[0].session_id == "s1"
    rows = {row.acct_session_id: row for row in a.sessions()}
    assert rows["s1"].closed_by is None and rows["s1"].lns is None
    assert rows["s2"].closed_by == "stop"
