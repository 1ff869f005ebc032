"""Account protection and reply attributes in the store (issue 17.4, 17.5), on every backend:
the failure count and the lock decided in the store, ``unlock``, the change log, the
Calling-Station-Id list and the reply pairs kept per account; and the schema upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from radiusgw.domain import AccountRow, FailedLogin, Lockout
from radiusgw.errors import StoreError
from radiusgw.store import SqliteStore
from tests.unit.store.conftest import AnyAccountStore, OpenAccounts, undo_version_5

REALM = "acme.example"
T0 = 1_700_000_000.0


def failure(at: float, user: str = "alice", *, after: int = 3) -> FailedLogin:
    return FailedLogin(REALM, user, at, after, 60.0, 300.0)


@pytest.fixture
def store(account_store: AnyAccountStore) -> AnyAccountStore:
    account_store.add_account(REALM, AccountRow("alice", "pw"), max_accounts=None)
    account_store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
    return account_store


def test_the_nth_failure_within_the_window_locks_and_says_so_in_the_change_log(
    store: AnyAccountStore,
) -> None:
    before = store.last_change()
    assert store.record_failures([failure(T0), failure(T0 + 1)]) == []
    assert store.record_failures([failure(T0 + 2)]) == [Lockout(REALM, "alice", T0 + 302)]
    account = store.get_account(REALM, "alice")
    assert account is not None and account.locked_until == T0 + 302
    assert [(c.realm, c.username) for c in store.changes_since(before)] == [(REALM, "alice")]
    other = store.get_account(REALM, "bob")
    assert other is not None and other.locked_until is None


def test_failures_spread_over_more_than_the_window_do_not_lock(store: AnyAccountStore) -> None:
    assert store.record_failures([failure(T0), failure(T0 + 30)]) == []
    # The count began at T0; at T0 + 61 it has run out and this failure starts a new one.
    assert store.record_failures([failure(T0 + 61), failure(T0 + 62)]) == []
    assert store.record_failures([failure(T0 + 63)]) != []


def test_two_stores_count_one_account_together(
    store: AnyAccountStore, open_accounts: OpenAccounts
) -> None:
    other = open_accounts()  # a second worker, or a second node
    assert store.record_failures([failure(T0)]) == []
    assert other.record_failures([failure(T0 + 1)]) == []
    assert store.record_failures([failure(T0 + 2)]) == [Lockout(REALM, "alice", T0 + 302)]


def test_failures_while_locked_do_not_count_and_do_not_lock_again(
    store: AnyAccountStore,
) -> None:
    store.record_failures([failure(T0 + i) for i in range(3)])
    before = store.last_change()
    assert store.record_failures([failure(T0 + 10 + i) for i in range(5)]) == []
    assert store.changes_since(before) == []


def test_unlock_clears_the_lock_and_the_count_and_is_in_the_change_log(
    store: AnyAccountStore,
) -> None:
    store.record_failures([failure(T0 + i) for i in range(3)])
    before = store.last_change()
    store.unlock_account(REALM, "alice")
    account = store.get_account(REALM, "alice")
    assert account is not None and account.locked_until is None
    assert [c.username for c in store.changes_since(before)] == ["alice"]
    assert store.record_failures([failure(T0 + 4), failure(T0 + 5)]) == []  # counts anew


def test_unlock_of_a_missing_account_is_refused(store: AnyAccountStore) -> None:
    with pytest.raises(StoreError, match="no account 'carol'"):
        store.unlock_account(REALM, "carol")


def test_a_failure_of_an_account_that_is_gone_is_ignored(store: AnyAccountStore) -> None:
    assert store.record_failures([failure(T0, "carol", after=1)]) == []


def test_calling_station_ids_and_reply_pairs_are_kept_per_account(
    store: AnyAccountStore,
) -> None:
    row = AccountRow(
        "carol",
        "pw",
        calling_station_ids=("00-11-22-AA-BB-CC", "0312345678", "00-11-22-aa-bb-cc"),
        reply=(("Framed-Route", "192.0.2.0/24 0.0.0.0 1"), ("Cisco-AVPair", "ip:a=b")),
    )
    store.add_account(REALM, row, max_accounts=None)
    store.import_accounts(
        REALM, [AccountRow("dave", "pw", calling_station_ids=("X",))], max_accounts=None
    )
    carol = store.get_account(REALM, "carol")
    assert carol is not None
    assert carol.calling_station_ids == ("00-11-22-aa-bb-cc", "0312345678")  # lower, once
    assert carol.reply == row.reply
    dave = store.list_accounts(REALM)[3]
    assert (dave.calling_station_ids, dave.reply) == (("x",), ())


def test_an_empty_calling_station_id_is_refused(store: AnyAccountStore) -> None:
    with pytest.raises(StoreError, match="calling_station_id '' of 'carol'"):
        store.add_account(
            REALM, AccountRow("carol", "pw", calling_station_ids=("",)), max_accounts=None
        )


def test_a_version_4_database_is_upgraded_and_keeps_its_accounts(tmp_path: Path) -> None:
    db, key = tmp_path / "old.db", tmp_path / "old.db.key"
    with SqliteStore(db, key) as s:
        s.add_account(REALM, AccountRow("alice", "pw"), max_accounts=None)
    raw = sqlite3.connect(db)
    undo_version_5(raw)
    raw.execute("PRAGMA user_version = 4")
    raw.commit()
    raw.close()
    with SqliteStore(db, key) as s:
        account = s.get_account(REALM, "alice")
        assert account is not None and account.password == "pw"
        assert (account.calling_station_ids, account.reply, account.locked_until) == ((), (), None)
        assert s.record_failures([failure(T0, after=1)]) == [Lockout(REALM, "alice", T0 + 300)]
