"""Issue 14.10: a damaged store drops the request (counted, a few log lines), never raises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radiusgw.domain import Account
from radiusgw.engine.droplog import STORE_ERROR_INTERVAL
from radiusgw.errors import StoreError
from radiusgw.store import AccountRow, SqliteStore, open_store
from tests.unit.engine.helpers import (
    ACME_NAS,
    LAC_D,
    Accounts,
    ListLog,
    ResolvingEngine,
    damage_accounts_table,
    engine,
    registry,
)
from tests.unit.engine.test_engine import NOW, pap_request


@pytest.fixture
def damaged(tmp_path: Path) -> Iterator[SqliteStore]:
    """A real store file whose accounts pages are junk (it held alice and 300 others)."""
    db = tmp_path / "gw.db"
    with open_store(db, Path(f"{db}.key")) as store:
        rows = [AccountRow("alice", "wonderland")]
        rows += [AccountRow(f"user{i}", f"pw{i}") for i in range(300)]
        store.import_accounts("acme.example", rows, max_accounts=None)
    damage_accounts_table(db)
    store = open_store(db, Path(f"{db}.key"))
    yield store
    store.close()


def test_the_damaged_file_fails_as_a_store_error(damaged: SqliteStore) -> None:
    with pytest.raises(StoreError, match="malformed"):
        damaged.get_account("acme.example", "alice")


def test_a_thousand_requests_against_a_damaged_store_are_dropped_counted_and_logged_once(
    damaged: SqliteStore,
) -> None:
    log = ListLog()
    eng = ResolvingEngine(registry(), damaged.get_account, log=log)
    requests = [
        pap_request("alice@acme.example", b"wonderland", b"acme-secret") for _ in range(999)
    ]
    requests.append(pap_request("x@auth.initech.example", b"pw", b"lac-secret"))  # VPDN, checked
    span = STORE_ERROR_INTERVAL * 0.99  # all within one interval: one line
    for i, req in enumerate(requests):
        nas = LAC_D if i == 999 else ACME_NAS
        assert eng.on_auth(req, nas, NOW + span * i / len(requests)) is None
    counters = eng.counters
    assert counters.dropped_store_error == 1000
    assert counters.access_requests == 1000
    assert counters.access_rejects == counters.access_accepts == counters.duplicates == 0
    errors = [e for e in log.events if e["event"] == "store-error"]
    assert len(errors) == 1
    assert errors[0]["level"] == "error" and "malformed" in errors[0]["error"]
    assert errors[0]["action"] == "dropped" and errors[0]["suppressed"] == 0
    assert not [e for e in log.events if e["event"] == "access-reject"]
    eng.drop_log.flush()  # the worker's periodic summary: what was held back
    (summary,) = [e for e in log.events if e["event"] == "drops-suppressed"]
    assert summary["store_error"] == summary["total"] == 999


def test_store_errors_are_logged_once_per_interval_with_the_count_held_back(
    damaged: SqliteStore,
) -> None:
    log = ListLog()
    eng = ResolvingEngine(registry(), damaged.get_account, log=log)
    for i in range(30):  # one a second for 30 s
        req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
        assert eng.on_auth(req, ACME_NAS, NOW + i) is None
    errors = [e for e in log.events if e["event"] == "store-error"]
    assert [e["suppressed"] for e in errors] == [0, 9, 9]


def test_a_retry_after_the_store_is_back_is_answered() -> None:
    """Nothing about the failed request is remembered: its retransmission is decided anew."""
    from radiusgw.radius.attributes import Code

    failing = True

    def fetch(realm: str, username: str) -> Account | None:
        if failing:
            raise StoreError("the database gw.db failed: database disk image is malformed")
        return Account(realm, username, "wonderland")

    eng = ResolvingEngine(registry(), fetch, log=ListLog())
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    failing = False
    answer = eng.on_auth(req, ACME_NAS, NOW + 1)
    assert isinstance(answer, bytes) and answer[0] == Code.ACCESS_ACCEPT


@pytest.mark.parametrize(
    "damaged_row",
    [
        Account("acme.example", "alice", "wonderland", framed_ip="10.0.0.300"),
        Account("acme.example", "alice", "wonderland", session_timeout=2**32),
    ],
)
def test_an_account_row_that_cannot_be_encoded_is_a_store_error(damaged_row: Account) -> None:
    eng, log = engine(Accounts(damaged_row))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    assert eng.counters.dropped_store_error == 1
    (error,) = [e for e in log.events if e["event"] == "store-error"]
    assert "account 'alice' of realm 'acme.example' holds a value" in error["error"]
