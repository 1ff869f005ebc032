"""The SQLite store (radiusgw.store.sqlite): accounts, the change log, accounting, the key."""

from __future__ import annotations

import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from radiusgw.errors import StoreError
from radiusgw.store import AccountingRecord, AccountRow, SqliteStore, multirow, open_store
from radiusgw.store import sqlite as sqlite_module

REALM = "acme.example"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = open_store(db, Path(f"{db}.key"))
    yield s
    s.close()


def _rows(n: int, start: int = 0, first_line: int = 2) -> list[AccountRow]:
    return [
        AccountRow(f"user{i}", f"secret-{i}", line=first_line + i - start)
        for i in range(start, start + n)
    ]


# -- opening -----------------------------------------------------------------------------------


def test_open_creates_schema_wal_and_private_files(db: Path, store: SqliteStore) -> None:
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{db}.key").stat().st_mode) == 0o600
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == sqlite_module.SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        raw.close()
    assert {"accounts", "account_changes", "accounting", "meta"} <= tables
    assert "accounting_realm_received" in indexes


def test_missing_database_is_refused_without_create(db: Path) -> None:
    with pytest.raises(StoreError, match=f"the database {db} does not exist"):
        open_store(db, Path(f"{db}.key"), create=False)
    assert not db.exists()


def test_a_file_that_is_not_a_database_is_refused(db: Path) -> None:
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        open_store(db, Path(f"{db}.key"))


def test_a_database_from_a_newer_version_is_refused(db: Path, store: SqliteStore) -> None:
    store.close()
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(db, Path(f"{db}.key"))


def _session_indexes(db: Path) -> dict[str, str]:
    raw = sqlite3.connect(db)
    try:
        rows = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'"
        ).fetchall()
    finally:
        raw.close()
    return {name: sql or "" for name, sql in rows}


def test_the_limits_count_live_sessions_from_indexes_of_live_sessions(
    db: Path, store: SqliteStore
) -> None:
    """Schema 8: what the limits of 第14条2 count, by user and by LNS, is indexed over live
    sessions alone, and the counts read those indexes (no walk of closed sessions)."""
    indexes = _session_indexes(db)
    assert "sessions_user" not in indexes and "sessions_lns" not in indexes
    assert indexes["sessions_live_user"].endswith("WHERE live = 1")
    assert indexes["sessions_live_lns"].endswith("WHERE live = 1 AND lns IS NOT NULL")
    raw = sqlite3.connect(db)
    try:
        for where, index in (
            ("realm = 'r' AND username = 'u' AND live = 1", "sessions_live_user"),
            ("lns = '192.0.2.1' AND live = 1", "sessions_live_lns"),
        ):
            plan = raw.execute(f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM sessions WHERE {where}")
            assert index in " ".join(str(row) for row in plan), where
    finally:
        raw.close()


def test_a_version_7_database_gets_the_live_session_indexes(db: Path, store: SqliteStore) -> None:
    store.close()
    raw = sqlite3.connect(db)
    raw.executescript(
        "DROP INDEX sessions_live_user; DROP INDEX sessions_live_lns;"
        " CREATE INDEX sessions_user ON sessions (realm, username, live);"
        " CREATE INDEX sessions_lns ON sessions (lns, live); PRAGMA user_version = 7;"
    )
    raw.close()
    open_store(db, Path(f"{db}.key")).close()
    indexes = _session_indexes(db)
    assert {"sessions_live_user", "sessions_live_lns"} <= indexes.keys()
    assert not {"sessions_user", "sessions_lns"} & indexes.keys()


def test_another_sqlite_database_is_refused(db: Path) -> None:
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE something (x)")
    raw.close()
    with pytest.raises(StoreError, match="SQLite database of something else"):
        open_store(db, Path(f"{db}.key"))


def test_the_clear_password_is_nowhere_in_the_database_files(db: Path, store: SqliteStore) -> None:
    password = "Zebra-Unicorn-42!"
    store.add_account(REALM, AccountRow("bob", password), max_accounts=None)
    store.import_accounts(REALM, [AccountRow("carol", password)], max_accounts=None)
    store.close()
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert files
    for path in files:
        assert password.encode() not in path.read_bytes(), path


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(db: Path, store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "bob-pw"), max_accounts=None)
    store.add_account(REALM, AccountRow("eve", "eve-pw"), max_accounts=None)
    raw = sqlite3.connect(db)
    with raw:
        bob = raw.execute("SELECT password FROM accounts WHERE username = 'bob'").fetchone()[0]
        raw.execute("UPDATE accounts SET password = ? WHERE username = 'eve'", (bob,))
    raw.close()
    with pytest.raises(
        StoreError, match=re.escape("account 'eve' in realm 'acme.example' cannot be")
    ):
        store.get_account(REALM, "eve")
    bob_account = store.get_account(REALM, "bob")
    assert bob_account is not None and bob_account.password == "bob-pw"


def test_a_database_locked_too_long_is_a_store_error(
    db: Path, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT", 0.1)
    other = open_store(db, Path(f"{db}.key"))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            other.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        other.close()
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)  # usable again


# -- accounting --------------------------------------------------------------------------------


def _record(i: int) -> AccountingRecord:
    return AccountingRecord(
        received=1_700_000_000.0 + i,
        nas_address="198.51.100.7",
        realm="ACME.example",
        username=f"user{i}",
        status_type=1,
        session_id=f"sess-{i}",
        packet=bytes([4, i & 255]) + b"\x00" * 18,
    )


def test_write_accounting_persists_across_reopen(db: Path, store: SqliteStore) -> None:
    store.write_accounting([_record(i) for i in range(50)])
    store.write_accounting([])
    store.close()
    with open_store(db, Path(f"{db}.key")) as again:
        assert again.count_accounting() == 50
    raw = sqlite3.connect(db)
    try:
        rows = raw.execute(
            "SELECT received, nas_address, realm, username, status_type, session_id, packet"
            " FROM accounting ORDER BY id"
        ).fetchall()
    finally:
        raw.close()
    assert rows[7] == (
        1_700_000_007.0,
        "198.51.100.7",
        REALM,
        "user7",
        1,
        "sess-7",
        _record(7).packet,
    )


@pytest.mark.parametrize("total", [1, 127, 128, 129, 300, 1000, 1025, 3000])
def test_a_batch_goes_in_as_few_statements_every_record_once_in_order(
    db: Path, store: SqliteStore, total: int
) -> None:
    sizes = multirow.sizes(total, multirow.MAX_ROWS)
    assert sum(sizes) == total and max(sizes) <= multirow.MAX_ROWS
    assert len(set(sizes)) <= 11  # a handful of statement texts, whatever the batch
    store.write_accounting([_record(i) for i in range(total)])
    raw = sqlite3.connect(db)
    try:
        users = [u for (u,) in raw.execute("SELECT username FROM accounting ORDER BY id")]
    finally:
        raw.close()
    assert users == [f"user{i}" for i in range(total)]


def test_write_accounting_keeps_records_without_realm_or_user(store: SqliteStore) -> None:
    record = AccountingRecord(1.0, "203.0.113.1", None, None, None, None, b"\x04")
    store.write_accounting([record])
    assert store.count_accounting() == 1


def test_write_accounting_is_all_or_nothing(store: SqliteStore) -> None:
    bad = AccountingRecord(1.0, None, None, None, None, None, b"")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.write_accounting([_record(1), bad])
    assert store.count_accounting() == 0


def test_stores_opened_at_once_on_a_new_file_agree_on_schema_and_key(db: Path) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_and_add(i: int) -> None:
        try:
            barrier.wait()
            with open_store(db, Path(f"{db}.key")) as s:
                s.add_account(REALM, AccountRow(f"user{i}", f"pw{i}"), max_accounts=None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_store(db, Path(f"{db}.key")) as s:
        assert [a.password for a in s.list_accounts(REALM)] == [f"pw{i}" for i in range(8)]
    assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []
