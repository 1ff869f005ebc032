"""Accounts and their change log, the same on every backend (SQLite, PostgreSQL): the
``AccountStore`` account half. Each test runs once per backend (tests/unit/store/conftest.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from radiusgw.errors import AccountLimitError, StoreError
from radiusgw.store import Account, AccountRow
from radiusgw.store import account_rows as rows_module
from radiusgw.store.secrets import load_key
from tests.unit.store.conftest import AnyAccountStore, OpenAccounts

REALM = "acme.example"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(account_store: AnyAccountStore) -> AnyAccountStore:
    return account_store


def _rows(n: int, start: int = 0, first_line: int = 2) -> list[AccountRow]:
    return [
        AccountRow(f"user{i}", f"secret-{i}", line=first_line + i - start)
        for i in range(start, start + n)
    ]


# -- opening -----------------------------------------------------------------------------------


def test_reopening_keeps_accounts(open_accounts: OpenAccounts, store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    with open_accounts() as again:
        account = again.get_account(REALM, "bob")
    assert account is not None and account.password == "pw"


def test_a_wrong_key_file_is_refused_on_open(
    open_accounts: OpenAccounts, tmp_path: Path, store: AnyAccountStore
) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    other_key = tmp_path / "other.key"
    load_key(other_key)
    with pytest.raises(StoreError, match="does not match the database"):
        open_accounts(key_path=other_key)


def test_a_missing_key_file_is_not_replaced_once_passwords_exist(
    open_accounts: OpenAccounts, key_path: Path, store: AnyAccountStore
) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.close()
    key = key_path
    key.unlink()
    with pytest.raises(StoreError, match="is missing"):
        open_accounts(key_path=key)
    assert not key.exists()


def test_a_key_file_readable_by_others_is_refused_on_open(
    open_accounts: OpenAccounts, key_path: Path, store: AnyAccountStore
) -> None:
    store.close()
    key_path.chmod(0o644)
    with pytest.raises(StoreError, match="group or other permissions"):
        open_accounts()


# -- accounts ----------------------------------------------------------------------------------


def test_add_then_get_returns_every_field(store: AnyAccountStore) -> None:
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


def test_get_of_an_unknown_account_is_none(store: AnyAccountStore) -> None:
    assert store.get_account(REALM, "nobody") is None


def test_realm_is_case_insensitive_and_username_case_sensitive(store: AnyAccountStore) -> None:
    store.add_account("ACME.Example", AccountRow("Bob", "pw"), max_accounts=None)
    account = store.get_account("acme.EXAMPLE", "Bob")
    assert account is not None and account.realm == REALM
    assert store.get_account(REALM, "bob") is None


def test_non_ascii_usernames_and_passwords_round_trip(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("山田", "パスワード"), max_accounts=None)
    account = store.get_account(REALM, "山田")
    assert account is not None and account.password == "パスワード"


def test_duplicate_add_is_refused(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    with pytest.raises(
        StoreError, match=re.escape("account 'bob' already exists in realm 'acme.example'")
    ):
        store.add_account(REALM, AccountRow("bob", "other"), max_accounts=None)


def test_same_username_in_two_realms_is_two_accounts(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "a"), max_accounts=None)
    store.add_account("other.example", AccountRow("bob", "b"), max_accounts=None)
    assert store.count_accounts(REALM) == 1
    assert store.count_accounts("other.example") == 1


def test_list_is_sorted_and_per_realm(store: AnyAccountStore) -> None:
    for name in ("carol", "alice", "bob"):
        store.add_account(REALM, AccountRow(name, "pw"), max_accounts=None)
    store.add_account("other.example", AccountRow("zed", "pw"), max_accounts=None)
    assert [a.username for a in store.list_accounts(REALM)] == ["alice", "bob", "carol"]
    assert store.list_accounts("empty.example") == []


def test_disable_and_enable(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.set_enabled(REALM, "bob", False)
    account = store.get_account(REALM, "bob")
    assert account is not None and not account.enabled
    store.set_enabled(REALM, "bob", True)
    account = store.get_account(REALM, "bob")
    assert account is not None and account.enabled


def test_remove(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    store.remove_account(REALM, "bob")
    assert store.get_account(REALM, "bob") is None
    assert store.count_accounts(REALM) == 0


@pytest.mark.parametrize("operation", ["disable", "enable", "remove"])
def test_changing_a_missing_account_names_it(store: AnyAccountStore, operation: str) -> None:
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
def test_unusable_rows_are_refused(store: AnyAccountStore, row: AccountRow, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.add_account(REALM, row, max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_refusals_never_contain_the_password(store: AnyAccountStore) -> None:
    with pytest.raises(StoreError) as info:
        store.add_account(REALM, AccountRow("bob", "Hunter2" * 20), max_accounts=None)
    assert "Hunter2" not in str(info.value)


# -- max_accounts (第7条) -----------------------------------------------------------------------


def test_add_beyond_max_accounts_names_the_limit(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("a", "pw"), max_accounts=2)
    store.add_account(REALM, AccountRow("b", "pw"), max_accounts=2)
    with pytest.raises(AccountLimitError) as info:
        store.add_account(REALM, AccountRow("c", "pw"), max_accounts=2)
    assert str(info.value) == (
        "realm 'acme.example' allows 2 accounts (max_accounts, 第7条); it has 2"
    )
    assert store.count_accounts(REALM) == 2


def test_max_accounts_counts_only_its_realm(store: AnyAccountStore) -> None:
    store.add_account("other.example", AccountRow("a", "pw"), max_accounts=None)
    store.add_account(REALM, AccountRow("a", "pw"), max_accounts=1)
    assert store.count_accounts(REALM) == 1


def test_import_beyond_max_accounts_names_the_limit_and_the_line(store: AnyAccountStore) -> None:
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


def test_import_up_to_max_accounts_exactly_is_allowed(store: AnyAccountStore) -> None:
    assert store.import_accounts(REALM, _rows(3), max_accounts=3) == 3


def test_import_limit_is_checked_against_accounts_added_meanwhile(
    open_accounts: OpenAccounts, store: AnyAccountStore
) -> None:
    # Another process (or node) adds an account after the import began counting: the check under the
    # write lock still holds the limit.
    other = open_accounts()

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


def test_import_adds_every_row(store: AnyAccountStore) -> None:
    rows = [AccountRow("a", "pa", framed_ip="10.0.0.1"), AccountRow("b", "pb", session_timeout=60)]
    assert store.import_accounts(REALM, rows, max_accounts=None) == 2
    a = store.get_account(REALM, "a")
    b = store.get_account(REALM, "b")
    assert a is not None and (a.password, a.framed_ip) == ("pa", "10.0.0.1")
    assert b is not None and (b.password, b.session_timeout) == ("pb", 60)


def test_import_with_a_bad_row_changes_nothing_and_names_its_line(store: AnyAccountStore) -> None:
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


def test_import_of_a_username_twice_in_the_file_names_both_lines(store: AnyAccountStore) -> None:
    rows = [
        AccountRow("a", "pw", line=2),
        AccountRow("dup", "pw", line=3),
        AccountRow("dup", "pw2", line=4),
    ]
    with pytest.raises(StoreError, match=r"line 4: account 'dup' appears twice .*first at line 3"):
        store.import_accounts(REALM, rows, max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_import_of_an_existing_account_is_refused_whole(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("user1", "pw"), max_accounts=None)
    with pytest.raises(StoreError, match="line 3: account 'user1' already exists in realm"):
        store.import_accounts(REALM, _rows(3), max_accounts=None)
    assert store.count_accounts(REALM) == 1


def test_import_names_the_row_position_without_line_numbers(store: AnyAccountStore) -> None:
    rows = [AccountRow("a", "pw"), AccountRow("b", "")]
    with pytest.raises(StoreError, match=r"^row 2: the password of 'b' is empty"):
        store.import_accounts(REALM, rows, max_accounts=None)


def test_an_error_raised_by_the_row_source_rolls_back(store: AnyAccountStore) -> None:
    def rows() -> Iterator[AccountRow]:
        yield AccountRow("a", "pw")
        raise StoreError("line 3: has 4 fields; the header has 2")

    with pytest.raises(StoreError, match="line 3"):
        store.import_accounts(REALM, rows(), max_accounts=None)
    assert store.count_accounts(REALM) == 0


def test_import_of_nothing_adds_nothing(store: AnyAccountStore) -> None:
    assert store.import_accounts(REALM, [], max_accounts=0) == 0
    assert store.last_change() == 0


def test_import_reports_progress_up_to_the_total(store: AnyAccountStore) -> None:
    seen: list[int] = []
    total = rows_module.PROGRESS_EVERY * 2 + 7
    store.import_accounts(REALM, _rows(total), max_accounts=None, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == total
    assert len(seen) >= 3


def test_import_of_100000_rows(store: AnyAccountStore) -> None:
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


def test_every_change_is_logged_in_order(store: AnyAccountStore) -> None:
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


def test_refused_operations_log_no_change(store: AnyAccountStore) -> None:
    store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=1)
    for attempt in (
        lambda: store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None),
        lambda: store.add_account(REALM, AccountRow("eve", "pw"), max_accounts=1),
        lambda: store.import_accounts(REALM, _rows(2), max_accounts=1),
    ):
        with pytest.raises(StoreError):
            attempt()
    assert store.last_change() == 1


def test_changes_older_than_an_hour_are_pruned_and_numbers_never_reused(
    open_accounts: OpenAccounts,
) -> None:
    clock = Clock()
    with open_accounts(clock=clock) as store:
        store.add_account(REALM, AccountRow("a", "pw"), max_accounts=None)
        store.add_account(REALM, AccountRow("b", "pw"), max_accounts=None)
        clock.now += rows_module.CHANGE_RETENTION + 1
        store.remove_account(REALM, "a")
        assert [c.seq for c in store.changes_since(0)] == [3]
        assert store.oldest_change() == 3
        clock.now += rows_module.CHANGE_RETENTION + 1
        store.remove_account(REALM, "b")
        assert [c.seq for c in store.changes_since(0)] == [4]
        assert store.last_change() == 4


def test_oldest_change_is_zero_without_changes(store: AnyAccountStore) -> None:
    assert store.oldest_change() == 0


# -- two connections ---------------------------------------------------------------------------


def test_two_stores_on_one_database_see_each_others_changes(
    open_accounts: OpenAccounts, store: AnyAccountStore
) -> None:
    with open_accounts() as other:
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
