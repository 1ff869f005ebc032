"""The proxy accounting spool: durable, ordered, by id, on every backend (tests/unit/store/
conftest.py); on PostgreSQL each node's own. SQLite's file settings and its migration from
schema version 1 are SQLite's tests, and say so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from radiusgw.domain import SpoolEntry
from radiusgw.store import AccountRow, SqliteStore, open_store
from radiusgw.store import sqlite as sqlite_module
from radiusgw.store.backend import Backend
from tests.unit.store.conftest import OpenDb, undo_version_5

REALM = "globex.example"


def packet(n: int) -> bytes:
    return bytes((4, n % 256, 0, 20)) + n.to_bytes(16, "big")


def test_spooled_entries_survive_a_reopen(open_db: OpenDb, store: Backend) -> None:
    first = store.spool_accounting(REALM, packet(1), "198.51.100.9", 1000.5)
    store.close()
    again = open_db()
    assert again.spooled(REALM, 10) == [SpoolEntry(first, REALM, packet(1), "198.51.100.9", 1000.5)]


def test_spooled_returns_the_oldest_first_with_limit_and_cursor(store: Backend) -> None:
    ids = [store.spool_accounting(REALM, packet(i), "nas", 1000.0 + i) for i in range(5)]
    assert ids == sorted(ids)
    assert [e.packet for e in store.spooled(REALM, 3)] == [packet(0), packet(1), packet(2)]
    assert [e.id for e in store.spooled(REALM, 10, after=ids[2])] == ids[3:]


def test_spool_is_per_realm_and_realm_names_are_case_insensitive(store: Backend) -> None:
    store.spool_accounting("Globex.Example", packet(1), "nas", 1.0)
    store.spool_accounting("other.example", packet(2), "nas", 2.0)
    [entry] = store.spooled("GLOBEX.example", 10)
    assert entry.realm == REALM and entry.packet == packet(1)
    assert store.spool_counts() == {REALM: 1, "other.example": 1}


def test_unspool_removes_exactly_the_delivered_entries(store: Backend) -> None:
    ids = store.spool_accounting_many([(REALM, packet(i), "nas", float(i)) for i in range(4)])
    assert store.unspool([ids[0], ids[2], 999_999]) == 2
    assert [e.id for e in store.spooled(REALM, 10)] == [ids[1], ids[3]]
    assert store.unspool([]) == 0


def test_batch_spooling_keeps_the_given_order(store: Backend) -> None:
    assert store.spool_accounting_many([]) == []
    ids = store.spool_accounting_many([(REALM, packet(i), "nas", 5.0) for i in range(50)])
    assert len(set(ids)) == 50 and ids == sorted(ids)
    assert [e.packet for e in store.spooled(REALM, 100)] == [packet(i) for i in range(50)]


def test_ids_are_never_reused_after_the_spool_is_emptied(open_db: OpenDb, store: Backend) -> None:
    last = store.spool_accounting(REALM, packet(1), "nas", 1.0)
    store.unspool([last])
    store.close()
    assert open_db().spool_accounting(REALM, packet(2), "nas", 2.0) > last


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_each_node_replays_only_what_it_spooled(open_db: OpenDb) -> None:
    a, b = open_db(node="gw-a"), open_db(node="gw-b")
    mine = a.spool_accounting(REALM, packet(1), "nas", 1.0)
    theirs = b.spool_accounting(REALM, packet(2), "nas", 2.0)
    assert [e.id for e in a.spooled(REALM, 10)] == [mine]
    assert [e.id for e in b.spooled(REALM, 10)] == [theirs]
    assert a.spool_counts() == b.spool_counts() == {REALM: 1}
    assert open_db(node="gw-a").spooled(REALM, 10)[0].packet == packet(1)  # a restarted gw-a


def test_spool_writes_are_durable_like_accounting(tmp_path: Path) -> None:
    """SQLite only: its file setting. synchronous=FULL: committed means on disk (第12条:
    accounting is never lost)."""
    with SqliteStore(tmp_path / "gw.db", tmp_path / "gw.db.key") as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_version_1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    """SQLite only: its own schema migration (PostgreSQL's: test_postgres.py)."""
    db = tmp_path / "gw.db"
    with open_store(db, Path(f"{db}.key")) as s:
        s.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    raw = sqlite3.connect(db)  # make it what version 1 left behind
    undo_version_5(raw)
    raw.execute("DROP TABLE proxy_spool")
    raw.execute("DROP TABLE journal_positions")
    raw.execute("DROP TABLE quarantine")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    with open_store(db, Path(f"{db}.key")) as s:
        account = s.get_account(REALM, "bob")
        assert account is not None and account.password == "pw"
        entry = s.spool_accounting(REALM, packet(1), "nas", 1.0)
        assert [e.id for e in s.spooled(REALM, 1)] == [entry]
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 8
    finally:
        raw.close()
