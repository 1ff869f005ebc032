"""The SQLite store (radiusgw.store.sqlite): accounts, the change log, accounting, the key."""

from __future__ import annotations

import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from radiusgw.errors import AccountLimitError, StoreError
from radiusgw.store import Account, AccountingRecord, AccountRow, SqliteStore, open_store
from radiusgw.store import sqlite as sqlite_module
from radiusgw.store.secrets import load_key

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


def test_reopening_keeps_accounts(db: Path, store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    with open_store(db, Path(f"{db}.key")) as again:
        account = again.get_account(REALM, "bob")
    assert account is not None and account.password == "pw"


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


def test_another_sqlite_database_is_refused(db: Path) -> None:
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE something (x)")
    raw.close()
    with pytest.raises(StoreError, match="SQLite database of something else"):
        open_store(db, Path(f"{db}.key"))


def test_a_wrong_key_file_is_refused_on_open(db: Path, tmp_path: Path, store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    other_key = tmp_path / "other.key"
    load_key(other_key)
    with pytest.raises(StoreError, match="does not match the database"):
        open_store(db, other_key)


def test_a_missing_key_file_is_not_replaced_once_passwords_exist(
    db: Path, store: SqliteStore
) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    key = Path(f"{db}.key")
    key.unlink()
    with pytest.raises(StoreError, match="is missing"):
        open_store(db, key)
    assert not key.exists()


def test_a_key_file_readable_by_others_is_refused_on_open(db: Path, store: SqliteStore) -> None:
    store.close()
    Path(f"{db}.key").chmod(0o644)
    with pytest.raises(StoreError, match="group or other permissions"):
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


# -- accounts ----------------------------------------------------------------------------------


def test_add_then_get_returns_every_field(store: SqliteStore) -> None:
    row = AccountRow(
        "bob", "pw", framed_ip="192.0.2.5", session_timeout=3600, idle_timeout=600, class_=b"c1"
    )
    store.add_account(REALM, row, max_accounts=None)
    assert store.get_account(REALM, "bob") == Account(
        realm=REALM,
        username="bob",
        password="pw",
        enabled=True,
        framed_ip="192.0.2.5",
        session_timeout=3600,
        idle_timeout=600,
        class_=b"c1",
    )


def test_get_of_an_unknown_account_is_none(store: SqliteStore) -> None:
    assert store.get_account(REALM, "nobody") is None


def test_realm_is_case_insensitive_and_username_case_sensitive(store: SqliteStore) -> None:
    store.add_account("ACME.Example", AccountRow("Bob", "pw"), max_accounts=None)
    account = store.get_account("acme.EXAMPLE", "Bob")
    assert account is not None and account.realm == REALM
    assert store.get_account(REALM, "bob") is None


def test_non_ascii_usernames_and_passwords_round_trip(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("山田", "パスワード"), max_accounts=None)
    account = store.get_account(REALM, "山田")
    assert account is not None and account.password == "パスワード"


def test_duplicate_add_is_refused(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    with pytest.raises(
        StoreError, match=re.escape("account 'bob' already exists in realm 'acme.example'")
    ):
        store.add_account(REALM, AccountRow("bob", "other"), max_accounts=None)


def test_same_username_in_two_realms_is_two_accounts(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "a"), max_accounts=None)
    store.add_account("other.example", AccountRow("bob", "b"), max_accounts=None)
    assert store.count_accounts(REALM) == 1
    assert store.count_accounts("other.example") == 1


def test_list_is_sorted_and_per_realm(store: SqliteStore) -> None:
    for name in ("carol", "alice", "bob"):
        store.add_account(REALM, AccountRow(name, "pw"), max_accounts=None)
    store.add_account("other.example", AccountRow("zed", "pw"), max_accounts=None)
    assert [a.username for a in store.list_accounts(REALM)] == ["alice", "bob", "carol"]
    assert store.list_accounts("empty.example") == []


def test_disable_and_enable(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.set_enabled(REALM, "bob", False)
    account = store.get_account(REALM, "bob")
    assert account is not None and not account.enabled
    store.set_enabled(REALM, "bob", True)
    account = store.get_account(REALM, "bob")
    assert account is not None and account.enabled


def test_remove(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.remove_account(REALM, "bob")
    assert store.get_account(REALM, "bob") is None
    assert store.count_accounts(REALM) == 0


@pytest.mark.parametrize("operation", ["disable", "enable", "remove"])
def test_changing_a_missing_account_names_it(store: SqliteStore, operation: str) -> None:
    with pytest.raises(StoreError, match=re.escape("no account 'ghost' in realm 'acme.example'")):
        if operation == "remove":
            store.remove_account(REALM, "ghost")
        else:
            store.set_enabled(REALM, "ghost", operation == "enable")
    assert store.last_change() == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (AccountRow("bob", "pw", framed_ip="10.0.0.300"), "not an IPv4 address"),
        (AccountRow("bob", "pw", framed_ip="2001:db8::1"), "not an IPv4 address"),
        (AccountRow("bob", "pw", framed_ip="10.0.0.0/24"), "not an IPv4 address"),
        (AccountRow("", "pw"), "username is empty"),
        (AccountRow("bo\nb", "pw"), "control character"),
        (AccountRow("b" * 250, "pw"), "253 octets"),
        (AccountRow("bob", ""), "password of 'bob' is empty"),
        (AccountRow("bob", "p" * 129), "128 octets"),
        (AccountRow("bob", "pw", session_timeout=0), "session_timeout 0"),
        (AccountRow("bob", "pw", idle_timeout=2**32), "idle_timeout 4294967296"),
        (AccountRow("bob", "pw", class_=b""), "class of 'bob'"),
    ],
)
def test_unusable_rows_are_refused(store: SqliteStore, row: AccountRow, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.add_account(REALM, row, max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_refusals_never_contain_the_password(store: SqliteStore) -> None:
    with pytest.raises(StoreError) as info:
        store.add_account(REALM, AccountRow("bob", "Hunter2" * 20), max_accounts=None)
    assert "Hunter2" not in str(info.value)


# -- max_accounts (第7条) -----------------------------------------------------------------------


def test_add_beyond_max_accounts_names_the_limit(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("a", "pw"), max_accounts=2)
    store.add_account(REALM, AccountRow("b", "pw"), max_accounts=2)
    with pytest.raises(AccountLimitError) as info:
        store.add_account(REALM, AccountRow("c", "pw"), max_accounts=2)
    assert str(info.value) == (
        "realm 'acme.example' allows 2 accounts (max_accounts, 第7条); it has 2"
    )
    assert store.count_accounts(REALM) == 2


def test_max_accounts_counts_only_its_realm(store: SqliteStore) -> None:
    store.add_account("other.example", AccountRow("a", "pw"), max_accounts=None)
    store.add_account(REALM, AccountRow("a", "pw"), max_accounts=1)
    assert store.count_accounts(REALM) == 1


def test_import_beyond_max_accounts_names_the_limit_and_the_line(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("existing", "pw"), max_accounts=None)
    before = store.last_change()
    with pytest.raises(AccountLimitError) as info:
        store.import_accounts(REALM, _rows(5), max_accounts=3)
    message = str(info.value)
    # Rows at lines 2 and 3 fit beside the existing account; line 4 is the first that does not.
    assert message.startswith("line 4: ")
    assert "allows 3 accounts (max_accounts, 第7条)" in message
    assert "nothing was imported" in message
    assert store.count_accounts(REALM) == 1
    assert store.last_change() == before


def test_import_up_to_max_accounts_exactly_is_allowed(store: SqliteStore) -> None:
    assert store.import_accounts(REALM, _rows(3), max_accounts=3) == 3


def test_import_limit_is_checked_against_accounts_added_meanwhile(
    db: Path, store: SqliteStore
) -> None:
    # Another process adds an account after the import began counting: the check under the
    # write lock still holds the limit.
    other = open_store(db, Path(f"{db}.key"))

    def rows() -> Iterator[AccountRow]:
        yield AccountRow("a", "pw", line=2)
        other.add_account(REALM, AccountRow("late", "pw"), max_accounts=None)
        yield AccountRow("b", "pw", line=3)

    try:
        with pytest.raises(AccountLimitError, match=r"^line 3: .*allows 2 accounts"):
            store.import_accounts(REALM, rows(), max_accounts=2)
    finally:
        other.close()
    assert [a.username for a in store.list_accounts(REALM)] == ["late"]


# -- import ------------------------------------------------------------------------------------


def test_import_adds_every_row(store: SqliteStore) -> None:
    rows = [AccountRow("a", "pa", framed_ip="10.0.0.1"), AccountRow("b", "pb", session_timeout=60)]
    assert store.import_accounts(REALM, rows, max_accounts=None) == 2
    a = store.get_account(REALM, "a")
    b = store.get_account(REALM, "b")
    assert a is not None and (a.password, a.framed_ip) == ("pa", "10.0.0.1")
    assert b is not None and (b.password, b.session_timeout) == ("pb", 60)


def test_import_with_a_bad_row_changes_nothing_and_names_its_line(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("existing", "pw"), max_accounts=None)
    before = store.last_change()
    rows = [
        *_rows(3),
        AccountRow("bad", "pw", framed_ip="not-an-ip", line=5),
        *_rows(2, 10, first_line=6),
    ]
    with pytest.raises(StoreError) as info:
        store.import_accounts(REALM, rows, max_accounts=None)
    assert str(info.value).startswith("line 5: framed_ip 'not-an-ip' of 'bad'")
    assert "nothing was imported" in str(info.value)
    assert [a.username for a in store.list_accounts(REALM)] == ["existing"]
    assert store.last_change() == before


def test_import_of_a_username_twice_in_the_file_names_both_lines(store: SqliteStore) -> None:
    rows = [
        AccountRow("a", "pw", line=2),
        AccountRow("dup", "pw", line=3),
        AccountRow("dup", "pw2", line=4),
    ]
    with pytest.raises(StoreError, match=r"line 4: account 'dup' appears twice .*first at line 3"):
        store.import_accounts(REALM, rows, max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_import_of_an_existing_account_is_refused_whole(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("user1", "pw"), max_accounts=None)
    with pytest.raises(StoreError, match="line 3: account 'user1' already exists in realm"):
        store.import_accounts(REALM, _rows(3), max_accounts=None)
    assert store.count_accounts(REALM) == 1


def test_import_names_the_row_position_without_line_numbers(store: SqliteStore) -> None:
    rows = [AccountRow("a", "pw"), AccountRow("b", "")]
    with pytest.raises(StoreError, match=r"^row 2: the password of 'b' is empty"):
        store.import_accounts(REALM, rows, max_accounts=None)


def test_an_error_raised_by_the_row_source_rolls_back(store: SqliteStore) -> None:
    def rows() -> Iterator[AccountRow]:
        yield AccountRow("a", "pw")
        raise StoreError("line 3: has 4 fields; the header has 2")

    with pytest.raises(StoreError, match="line 3"):
        store.import_accounts(REALM, rows(), max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_import_of_nothing_adds_nothing(store: SqliteStore) -> None:
    assert store.import_accounts(REALM, [], max_accounts=0) == 0
    assert store.last_change() == 0


def test_import_reports_progress_up_to_the_total(store: SqliteStore) -> None:
    seen: list[int] = []
    total = sqlite_module.PROGRESS_EVERY * 2 + 7
    store.import_accounts(REALM, _rows(total), max_accounts=None, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == total
    assert len(seen) >= 3


def test_import_of_100000_rows(store: SqliteStore) -> None:
    rows = (
        AccountRow(f"user{i}", f"pw-{i}", framed_ip=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
        for i in range(100_000)
    )
    started = time.perf_counter()
    assert store.import_accounts(REALM, rows, max_accounts=100_000) == 100_000
    print(f"imported 100,000 accounts in {time.perf_counter() - started:.2f} s")
    assert store.count_accounts(REALM) == 100_000
    account = store.get_account(REALM, "user70000")
    assert account is not None
    assert (account.password, account.framed_ip) == ("pw-70000", "10.1.17.112")
    assert len(store.changes_since(0)) == 1


# -- the change log ----------------------------------------------------------------------------


def test_every_change_is_logged_in_order(store: SqliteStore) -> None:
    assert store.last_change() == 0
    assert store.changes_since(0) == []
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.set_enabled(REALM, "bob", False)
    store.set_enabled(REALM, "bob", True)
    store.import_accounts("Other.Example", _rows(3), max_accounts=None)
    store.remove_account(REALM, "bob")
    changes = store.changes_since(0)
    assert [c.seq for c in changes] == [1, 2, 3, 4, 5]
    assert [(c.realm, c.username) for c in changes] == [
        (REALM, "bob"),
        (REALM, "bob"),
        (REALM, "bob"),
        ("other.example", None),  # an import is one whole-realm change
        (REALM, "bob"),
    ]
    assert store.last_change() == 5
    assert [c.seq for c in store.changes_since(3)] == [4, 5]
    assert store.changes_since(5) == []


def test_refused_operations_log_no_change(store: SqliteStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=1)
    for attempt in (
        lambda: store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None),
        lambda: store.add_account(REALM, AccountRow("eve", "pw"), max_accounts=1),
        lambda: store.import_accounts(REALM, _rows(2), max_accounts=1),
    ):
        with pytest.raises(StoreError):
            attempt()
    assert store.last_change() == 1


def test_changes_older_than_an_hour_are_pruned_and_numbers_never_reused(db: Path) -> None:
    clock = Clock()
    with SqliteStore(db, Path(f"{db}.key"), clock=clock) as store:
        store.add_account(REALM, AccountRow("a", "pw"), max_accounts=None)
        store.add_account(REALM, AccountRow("b", "pw"), max_accounts=None)
        clock.now += sqlite_module.CHANGE_RETENTION + 1
        store.remove_account(REALM, "a")
        assert [c.seq for c in store.changes_since(0)] == [3]
        assert store.oldest_change() == 3
        clock.now += sqlite_module.CHANGE_RETENTION + 1
        store.remove_account(REALM, "b")
        assert [c.seq for c in store.changes_since(0)] == [4]
        assert store.last_change() == 4


def test_oldest_change_is_zero_without_changes(store: SqliteStore) -> None:
    assert store.oldest_change() == 0


# -- two connections ---------------------------------------------------------------------------


def test_two_stores_on_one_file_see_each_others_changes(db: Path, store: SqliteStore) -> None:
    with open_store(db, Path(f"{db}.key")) as other:
        seen = other.last_change()
        store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
        account = other.get_account(REALM, "bob")
        assert account is not None and account.password == "pw"
        other.set_enabled(REALM, "bob", False)
        account = store.get_account(REALM, "bob")
        assert account is not None and not account.enabled
        assert [(c.realm, c.username) for c in other.changes_since(seen)] == [
            (REALM, "bob"),
            (REALM, "bob"),
        ]


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
