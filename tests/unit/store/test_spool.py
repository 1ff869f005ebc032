"""The proxy accounting spool of the SQLite store (schema version 2): durable, ordered, by id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from radiusgw.domain import SpoolEntry
from radiusgw.store import AccountRow, SqliteStore, open_store
from radiusgw.store import sqlite as sqlite_module

REALM = "globex.example"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = open_store(db, Path(f"{db}.key"))
    yield s
    s.close()


def packet(n: int) -> bytes:
    return bytes((4, n % 256, 0, 20)) + n.to_bytes(16, "big")


def test_spooled_entries_survive_a_reopen(db: Path, store: SqliteStore) -> None:
    first = store.spool_accounting(REALM, packet(1), "198.51.100.9", 1000.5)
    store.close()
    with open_store(db, Path(f"{db}.key")) as again:
        assert again.spooled(REALM, 10) == [
            SpoolEntry(first, REALM, packet(1), "198.51.100.9", 1000.5)
        ]


def test_spooled_returns_the_oldest_first_with_limit_and_cursor(store: SqliteStore) -> None:
    ids = [store.spool_accounting(REALM, packet(i), "nas", 1000.0 + i) for i in range(5)]
    assert ids == sorted(ids)
    assert [e.packet for e in store.spooled(REALM, 3)] == [packet(0), packet(1), packet(2)]
    assert [e.id for e in store.spooled(REALM, 10, after=ids[2])] == ids[3:]


def test_spool_is_per_realm_and_realm_names_are_case_insensitive(store: SqliteStore) -> None:
    store.spool_accounting("Globex.Example", packet(1), "nas", 1.0)
    store.spool_accounting("other.example", packet(2), "nas", 2.0)
    [entry] = store.spooled("GLOBEX.example", 10)
    assert entry.realm == REALM and entry.packet == packet(1)
    assert store.spool_counts() == {REALM: 1, "other.example": 1}


def test_unspool_removes_exactly_the_delivered_entries(store: SqliteStore) -> None:
    ids = store.spool_accounting_many([(REALM, packet(i), "nas", float(i)) for i in range(4)])
    assert store.unspool([ids[0], ids[2], 999_999]) == 2
    assert [e.id for e in store.spooled(REALM, 10)] == [ids[1], ids[3]]
    assert store.unspool([]) == 0


def test_batch_spooling_keeps_the_given_order(store: SqliteStore) -> None:
    assert store.spool_accounting_many([]) == []
    ids = store.spool_accounting_many([(REALM, packet(i), "nas", 5.0) for i in range(50)])
    assert len(set(ids)) == 50 and ids == sorted(ids)
    assert [e.packet for e in store.spooled(REALM, 100)] == [packet(i) for i in range(50)]


def test_ids_are_never_reused_after_the_spool_is_emptied(db: Path, store: SqliteStore) -> None:
    last = store.spool_accounting(REALM, packet(1), "nas", 1.0)
    store.unspool([last])
    store.close()
    with open_store(db, Path(f"{db}.key")) as again:
        assert again.spool_accounting(REALM, packet(2), "nas", 2.0) > last


def test_spool_writes_are_durable_like_accounting(store: SqliteStore) -> None:
    # synchronous=FULL: committed means on disk (第12条: accounting is never lost).
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_version_1_database_is_migrated_and_keeps_its_data(db: Path) -> None:
    with open_store(db, Path(f"{db}.key")) as s:
        s.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    raw = sqlite3.connect(db)  # make it what version 1 left behind
    raw.execute("DROP TABLE proxy_spool")
    raw.execute("DROP TABLE journal_positions")
    raw.execute("DROP TABLE quarantine")
    raw.execute("DROP TABLE auth_log")
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
        assert raw.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION == 5
    finally:
        raw.close()
