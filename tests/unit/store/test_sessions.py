"""Sessions from accounting and admission against session limits, on every backend.

Each test runs once per backend (SQLite, PostgreSQL: tests/unit/store/conftest.py) through the
``Backend`` the server opens. Records go through ``write_accounting``, as the server's
accounting writer sends them, so every test also proves the hook: the session change commits
with the accounting row. The few tests of SQLite's own ``SessionTable`` say why in their
docstring.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psycopg
import pytest

from radiusgw.domain import AdmissionRequest, AdmissionResult, UsageRow
from radiusgw.errors import StoreError
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import Packet, encode, integer
from radiusgw.sessions import month_bounds, month_of
from radiusgw.store import AccountingRecord, open_store
from radiusgw.store import sqlite as sqlite_module
from radiusgw.store.backend import Backend, open_backend
from radiusgw.store.postgres import backend as postgres_module
from radiusgw.store.sessions import SessionTable

REALM = "acme.example"
NAS = "198.51.100.7"
OTHER_NAS = "198.51.100.8"
LNS = "192.0.2.10"
T0 = dt.datetime(2025, 3, 10, tzinfo=dt.UTC).timestamp()

START = AcctStatusType.START
INTERIM = AcctStatusType.INTERIM_UPDATE
STOP = AcctStatusType.STOP


def record(
    status: int,
    *,
    sid: str | None = "s1",
    user: str = "alice@acme.example",
    nas: str = NAS,
    at: float = T0,
    octets: tuple[int, int] = (0, 0),
    time: int | None = None,
    interim: int | None = None,
    lns: str | None = None,
    delay: int = 0,
    realm: str | None = REALM,
) -> AccountingRecord:
    """An Accounting-Request as the engine hands it to the writer."""
    attrs: list[tuple[int, bytes]] = [
        (Attr.ACCT_STATUS_TYPE, integer(status)),
        (Attr.USER_NAME, user.encode()),
        (Attr.ACCT_INPUT_OCTETS, integer(octets[0] % 2**32)),
        (Attr.ACCT_INPUT_GIGAWORDS, integer(octets[0] // 2**32)),
        (Attr.ACCT_OUTPUT_OCTETS, integer(octets[1] % 2**32)),
        (Attr.ACCT_OUTPUT_GIGAWORDS, integer(octets[1] // 2**32)),
        (Attr.ACCT_DELAY_TIME, integer(delay)),
    ]
    if sid is not None:
        attrs.append((Attr.ACCT_SESSION_ID, sid.encode()))
    if time is not None:
        attrs.append((Attr.ACCT_SESSION_TIME, integer(time)))
    if interim is not None:
        attrs.append((Attr.ACCT_INTERIM_INTERVAL, integer(interim)))
    if lns is not None:
        attrs.append((Attr.TUNNEL_SERVER_ENDPOINT, b"\x01" + lns.encode()))
    raw = encode(Packet(Code.ACCOUNTING_REQUEST, 1, bytes(16), tuple(attrs)))
    return AccountingRecord(at, nas, realm, user, status, sid, raw)


def write(store: Backend, *records: AccountingRecord) -> None:
    assert store.write_accounting(list(records)) == []


def reservations(store: Backend, at: float = T0) -> int:
    """The reservations unexpired at ``at``: what a count with them adds to one without."""
    return store.count_live(reserved_at=at) - store.count_live()


def limit(n: int | None = None, **kw: Any) -> AdmissionRequest:
    fields: dict[str, Any] = {"realm": REALM, "username": "alice", "realm_max": n}
    fields.update(kw)
    return AdmissionRequest(**fields)


# -- the lifecycle -----------------------------------------------------------------------------


def test_start_interim_stop_lifecycle(store: Backend) -> None:
    write(store, record(START, at=T0, lns=LNS, interim=300))
    [live] = store.live_sessions()
    assert (live.realm, live.username, live.acct_session_id, live.nas_address) == (
        REALM,
        "alice",
        "s1",
        NAS,
    )
    assert (live.lns, live.start, live.stop, live.closed_by) == (LNS, T0, None, None)
    assert live.interim_interval == 300

    write(store, record(INTERIM, at=T0 + 300, octets=(5 * 2**32 + 7, 900), time=300))
    [live] = store.live_sessions(REALM)
    assert (live.input_octets, live.output_octets) == (5 * 2**32 + 7, 900)
    assert (live.session_time, live.last_update, live.start) == (300, T0 + 300, T0)

    write(store, record(STOP, at=T0 + 600, octets=(6 * 2**32, 1000), time=600))
    assert store.live_sessions() == []
    assert store.count_live(realm=REALM) == 0
    usage = store.usage(REALM, "2025-03")
    assert usage == UsageRow(REALM, "2025-03", 1, 600, 6 * 2**32, 1000)
    assert store.expire_stale(T0 + 10**6, 300) == []  # a closed session never expires
    assert store.count_accounting() == 3


def test_acct_delay_time_dates_the_event_back(store: Backend) -> None:
    write(store, record(START, at=T0 + 30, delay=30))
    assert store.live_sessions()[0].start == T0


def test_duplicate_start_changes_nothing(store: Backend) -> None:
    write(store, record(START, at=T0, interim=300))
    before = store.sessions()
    write(store, record(START, at=T0 + 3, interim=300))  # a retransmission, dedup window past
    assert store.sessions() == before


def test_duplicate_stop_changes_nothing(store: Backend) -> None:
    write(store, record(START, at=T0), record(STOP, at=T0 + 60, octets=(10, 20), time=60))
    before = store.sessions()
    write(store, record(STOP, at=T0 + 65, octets=(10, 20), time=60))
    assert store.sessions() == before


def test_counters_only_grow_and_a_late_interim_does_not_reopen(store: Backend) -> None:
    write(
        store,
        record(START, at=T0),
        record(INTERIM, at=T0 + 600, octets=(500, 600), time=600),
        record(INTERIM, at=T0 + 300, octets=(200, 300), time=300),  # out of order
    )
    [live] = store.live_sessions()
    assert (live.input_octets, live.output_octets, live.session_time) == (500, 600, 600)
    assert live.last_update == T0 + 600
    write(store, record(STOP, at=T0 + 900, octets=(800, 900), time=900))
    write(store, record(INTERIM, at=T0 + 600, octets=(500, 600), time=600))  # late copy
    assert store.live_sessions() == []
    assert store.usage(REALM, "2025-03").input_octets == 800


def test_interim_without_start_creates_the_session(store: Backend) -> None:
    write(store, record(INTERIM, at=T0 + 1000, octets=(1, 2), time=400))
    [live] = store.live_sessions()
    assert (live.start, live.last_update, live.session_time) == (T0 + 600, T0 + 1000, 400)
    write(store, record(START, at=T0 + 600))  # the lost Start, finally: nothing changes
    assert store.live_sessions() == [live]


def test_stop_without_start_is_kept_closed(store: Backend) -> None:
    write(store, record(STOP, at=T0 + 100, octets=(3, 4), time=100))
    write(store, record(START, at=T0))  # arrives after its Stop (another worker): no session
    assert store.live_sessions() == []
    assert store.usage(REALM, "2025-03") == UsageRow(REALM, "2025-03", 1, 100, 3, 4)


def test_records_without_realm_or_session_id_are_stored_but_make_no_session(store: Backend) -> None:
    write(
        store,
        record(START, realm=None),
        record(START, sid=None, user="bob@acme.example"),
        record(AcctStatusType.TUNNEL_LINK_START, sid="t1", lns=LNS),
        AccountingRecord(T0, NAS, REALM, None, 1, "x", b"garbage"),
    )
    assert store.count_accounting() == 4
    assert store.live_sessions() == []


def test_accounting_on_closes_only_that_nas_sessions(store: Backend) -> None:
    write(
        store,
        record(START, sid="a", at=T0),
        record(START, sid="b", at=T0, user="bob@acme.example"),
        record(START, sid="a", at=T0, nas=OTHER_NAS),
    )
    write(store, record(AcctStatusType.ACCOUNTING_ON, sid=None, at=T0 + 50))
    [left] = store.live_sessions()
    assert (left.nas_address, left.acct_session_id) == (OTHER_NAS, "a")
    write(store, record(AcctStatusType.ACCOUNTING_OFF, sid=None, nas=OTHER_NAS, at=T0 + 60))
    assert store.live_sessions() == []


def test_accounting_on_spares_sessions_that_began_after_it(store: Backend) -> None:
    # Out of order across workers: the new Start was written before the restart's record.
    write(store, record(START, sid="new", at=T0 + 100))
    write(store, record(AcctStatusType.ACCOUNTING_ON, sid=None, at=T0 + 50))
    assert [s.acct_session_id for s in store.live_sessions()] == ["new"]


def test_a_session_id_reused_after_a_nas_restart_is_a_new_session(store: Backend) -> None:
    write(store, record(START, sid="1", at=T0, octets=(0, 0)))
    write(store, record(AcctStatusType.ACCOUNTING_ON, sid=None, at=T0 + 50))
    write(store, record(START, sid="1", at=T0 + 60))
    [live] = store.live_sessions()
    assert live.start == T0 + 60
    assert len(store.sessions()) == 2


# -- stale sessions ----------------------------------------------------------------------------


def test_stale_expiry_uses_the_sessions_own_interval(store: Backend) -> None:
    write(store, record(START, sid="own", at=T0, interim=60))
    write(store, record(START, sid="default", at=T0, user="bob@acme.example"))
    assert store.expire_stale(T0 + 180, default_interval=600) == []  # 60 × 3 is not yet past
    [gone] = store.expire_stale(T0 + 181, default_interval=600)
    assert (gone.acct_session_id, gone.closed_by, gone.stop) == ("own", "stale", T0)
    assert store.expire_stale(T0 + 1800, default_interval=600) == []
    [gone] = store.expire_stale(T0 + 1801, default_interval=600)
    assert gone.acct_session_id == "default"
    assert store.live_sessions() == []


def test_stale_expiry_factor_is_configurable(tmp_path: Path) -> None:
    """SQLite only: the factor is a ``SessionTable`` parameter (a Backend uses STALE_FACTOR)."""
    db = tmp_path / "gw.db"
    with open_store(db, Path(f"{db}.key")) as store:
        store.write_accounting([record(START, at=T0)])
    table = SessionTable(db)
    try:
        assert table.expire_stale(T0 + 101, default_interval=100, factor=2) == []
        assert len(table.expire_stale(T0 + 201, default_interval=100, factor=2)) == 1
    finally:
        table.close()


def test_an_interim_after_stale_expiry_reopens_and_a_stop_ends_it(store: Backend) -> None:
    write(store, record(START, at=T0, interim=60))
    assert len(store.expire_stale(T0 + 1000, default_interval=60)) == 1
    write(store, record(INTERIM, at=T0 + 1100, octets=(9, 9), time=1100))
    assert [s.input_octets for s in store.live_sessions()] == [9]
    write(store, record(STOP, at=T0 + 1200, octets=(10, 10), time=1200))
    assert store.live_sessions() == []
    assert store.usage(REALM, "2025-03").session_time_seconds == 1200


# -- usage -------------------------------------------------------------------------------------


def test_usage_over_a_month_boundary(store: Backend) -> None:
    midnight = dt.datetime(2025, 4, 1, tzinfo=dt.UTC).timestamp()
    write(
        store,
        record(START, sid="across", at=midnight - 3600),
        record(STOP, sid="across", at=midnight + 1800, octets=(100, 200), time=5400),
        record(START, sid="march", at=midnight - 7200, user="bob@acme.example"),
        record(STOP, sid="march", at=midnight - 7000, octets=(1, 2), time=200),
    )
    march = store.usage(REALM, "2025-03")
    april = store.usage(REALM, "2025-04")
    # Both sessions were up in March; only the one that ended there brings its octets.
    assert march == UsageRow(REALM, "2025-03", 2, 3600 + 200, 1, 2)
    assert april == UsageRow(REALM, "2025-04", 1, 1800, 100, 200)
    assert store.usage(REALM, "2025-05").sessions == 0
    assert store.usage("other.example", "2025-03").sessions == 0


def test_a_live_session_counts_in_the_month_of_its_last_update(store: Backend) -> None:
    midnight = dt.datetime(2025, 4, 1, tzinfo=dt.UTC).timestamp()
    write(store, record(START, at=midnight - 100))
    write(store, record(INTERIM, at=midnight + 50, octets=(7, 8), time=150))
    assert store.usage(REALM, "2025-03") == UsageRow(REALM, "2025-03", 1, 100, 0, 0)
    assert store.usage(REALM, "2025-04") == UsageRow(REALM, "2025-04", 1, 50, 7, 8)
    assert store.month_octets(REALM, midnight + 10) == 15
    assert store.month_octets(REALM, midnight - 10) == 0


def test_month_octets_sums_the_realm_in_the_month_of_now(store: Backend) -> None:
    write(
        store,
        record(START, sid="a", at=T0),
        record(STOP, sid="a", at=T0 + 10, octets=(2**32, 5)),
        record(INTERIM, sid="b", at=T0 + 20, octets=(10, 20), user="bob@acme.example"),
        record(STOP, sid="c", at=T0, octets=(1000, 1000), realm="other.example"),
    )
    assert store.month_octets(REALM, T0) == 2**32 + 5 + 30
    assert store.month_octets("ACME.example", T0) == 2**32 + 35


@pytest.mark.parametrize("month", ["2025-3", "2025-13", "2025-00", "25-03", "2025-03-01", ""])
def test_month_bounds_rejects_what_is_not_yyyy_mm(month: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds(month)


def test_month_bounds_and_month_of_in_utc() -> None:
    first, after = month_bounds("2024-12")
    assert first == dt.datetime(2024, 12, 1, tzinfo=dt.UTC).timestamp()
    assert after == dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
    assert month_of(after - 0.5) == "2024-12"
    assert month_of(after) == "2025-01"


# -- the store hook ----------------------------------------------------------------------------


def test_one_batch_changes_sessions_as_its_records_one_by_one(
    new_database: Callable[[], str], key_path: Path
) -> None:
    # Repeated keys, a NAS restart between, a reservation to consume: every cut of the set-wise
    # write (apply_events) must agree with the records written one at a time.
    records = [
        record(START, sid="a", at=T0, lns=LNS),
        record(INTERIM, sid="b", at=T0 + 5, octets=(5, 5), time=5),
        record(INTERIM, sid="a", at=T0 + 10, octets=(10, 20), time=10, interim=60),
        record(AcctStatusType.ACCOUNTING_ON, sid=None, at=T0 + 20),
        record(INTERIM, sid="a", at=T0 + 15, octets=(15, 25), time=15),  # dated before it
        record(START, sid="a", at=T0 + 30, user="bob@acme.example"),  # the id reused after it
        record(STOP, sid="a", at=T0 + 90, octets=(7, 8), time=60, user="bob@acme.example"),
        record(START, sid="a", at=T0 + 95),  # after the final Stop: nothing
        record(STOP, sid="c", at=T0 + 40, octets=(1, 2), time=40),  # its Start lost
        record(START, sid="c", at=T0),
    ]
    tables = []
    for batches in ([records], [[r] for r in records]):
        store = open_backend(new_database(), key_path)
        try:
            store.admit([limit(5, username="bob")], T0)
            for batch in batches:
                write(store, *batch)
            tables.append((store.sessions(), reservations(store)))
        finally:
            store.close()
    assert tables[0] == tables[1]
    assert len(tables[0][0]) == 4 and tables[0][1] == 0


def test_runs_longer_than_one_statement_apply_every_event(store: Backend) -> None:
    # 2,500 sessions a batch: more than one multi-row statement (radiusgw.store.multirow), some
    # consuming a reservation, the second batch stopping the first one's and starting others.
    count = 2_500
    store.admit([limit(None, username=f"u{n}", account_max=1) for n in range(0, count, 7)], T0)
    starts = [record(START, sid=f"a{n}", user=f"u{n}@acme.example", at=T0) for n in range(count)]
    write(store, *starts)
    assert reservations(store) == 0  # each taken by its Start
    stops = [
        record(STOP, sid=f"a{n}", user=f"u{n}@acme.example", at=T0 + 60, octets=(n, 2 * n), time=60)
        for n in range(count)
    ]
    more = [record(START, sid=f"b{n}", user=f"u{n}@acme.example", at=T0 + 61) for n in range(count)]
    write(store, *stops, *more)
    rows = {row.acct_session_id: row for row in store.sessions()}
    assert len(rows) == 2 * count
    assert {row.acct_session_id for row in store.live_sessions()} == {f"b{n}" for n in range(count)}
    for n in range(count):
        stopped = rows[f"a{n}"]
        assert (stopped.closed_by, stopped.stop) == ("stop", T0 + 60)
        assert (stopped.input_octets, stopped.output_octets, stopped.session_time) == (n, 2 * n, 60)


def test_session_changes_roll_back_with_their_accounting(
    backend: str, store: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session changes are applied, then the database fails: nothing of the batch stays.
    module: Any = postgres_module if backend == "postgres" else sqlite_module
    error = psycopg.OperationalError if backend == "postgres" else sqlite3.OperationalError
    real = module.apply_events

    def apply_then_fail(*args: Any) -> int:
        real(*args)
        raise error("disk I/O error")

    monkeypatch.setattr(module, "apply_events", apply_then_fail)
    with pytest.raises(StoreError, match="disk I/O error"):
        write(store, record(START))
    assert store.count_accounting() == 0
    assert store.sessions() == []


def test_session_table_refuses_a_file_the_store_never_set_up(tmp_path: Path) -> None:
    """SQLite only: a file that is not the store's (PostgreSQL's: test_postgres.py)."""
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(StoreError, match="is not a radiusgw database"):
        SessionTable(tmp_path / "empty.db")
    (tmp_path / "text.db").write_text("not a database, just text" * 100)
    with pytest.raises(StoreError, match="is not an SQLite database"):
        SessionTable(tmp_path / "text.db")


# -- admission ---------------------------------------------------------------------------------


def test_realm_limit_admits_exactly_n_then_refuses_with_the_reason(store: Backend) -> None:
    results = store.admit([limit(3, username=f"u{i}") for i in range(4)], T0)
    assert [r.admitted for r in results] == [True, True, True, False]
    assert results[3] == AdmissionResult(False, "realm session limit 3 reached (max_sessions)")
    assert len({r.reservation_id for r in results[:3]}) == 3
    assert store.admit([limit(3, username="late")], T0 + 1)[0].reason == (
        "realm session limit 3 reached (max_sessions)"
    )
    assert store.admit([limit(3, realm="other.example")], T0)[0].admitted


def test_a_stop_frees_a_slot(store: Backend) -> None:
    for i in range(2):
        assert store.admit([limit(2, username=f"u{i}")], T0)[0].admitted
        write(store, record(START, sid=f"s{i}", user=f"u{i}@acme.example", at=T0))
    assert not store.admit([limit(2, username="u9")], T0 + 1)[0].admitted
    write(store, record(STOP, sid="s0", user="u0@acme.example", at=T0 + 2))
    assert store.admit([limit(2, username="u9")], T0 + 3)[0].admitted


def test_a_start_consumes_its_reservation(store: Backend) -> None:
    store.admit([limit(5)], T0)
    assert store.count_live(realm=REALM, reserved_at=T0) == 1
    assert store.count_live(realm=REALM) == 0
    write(store, record(START, at=T0 + 1))
    assert store.count_live(realm=REALM, reserved_at=T0 + 1) == 1  # not 2
    assert store.count_live(realm=REALM) == 1
    assert reservations(store) == 0


def test_a_start_prefers_the_reservation_of_its_lns(store: Backend) -> None:
    first, second = store.admit([limit(5, lns="192.0.2.1"), limit(5, lns=LNS)], T0)
    assert first.reservation_id is not None and second.reservation_id is not None
    write(store, record(START, at=T0 + 1, lns=LNS))
    assert store.release([second.reservation_id]) == 0  # consumed
    assert store.release([first.reservation_id]) == 1  # left


def test_an_interim_without_start_consumes_a_reservation(store: Backend) -> None:
    store.admit([limit(5)], T0)
    write(store, record(INTERIM, at=T0 + 10, time=5))
    assert reservations(store) == 0


def test_per_account_limit_is_simultaneous_use(store: Backend) -> None:
    assert store.admit([limit(account_max=1)], T0)[0].admitted
    refused = store.admit([limit(account_max=1)], T0)[0]
    assert refused == AdmissionResult(
        False, "user already has 1 session (max_sessions_per_account)"
    )
    assert store.admit([limit(account_max=1, username="bob")], T0)[0].admitted
    write(store, record(START, at=T0), record(START, sid="s2", at=T0))  # the NAS let two in
    assert store.admit([limit(account_max=2)], T0)[0].reason == (
        "user already has 2 sessions (max_sessions_per_account)"
    )


def test_per_lns_limit_counts_across_realms(store: Backend) -> None:
    write(store, record(START, at=T0, lns=LNS, realm="other.example", user="x@other.example"))
    assert store.admit([limit(lns=LNS, lns_max=2)], T0)[0].admitted
    refused = store.admit([limit(lns=LNS, lns_max=2, username="bob")], T0)[0]
    assert refused == AdmissionResult(False, f"LNS {LNS} is full (max_sessions 2)", lns_full=True)
    assert store.admit([limit(lns="192.0.2.11", lns_max=2)], T0)[0].admitted
    assert store.count_live(lns=LNS) == 1
    assert store.count_live(lns=LNS, reserved_at=T0) == 2


def test_reservations_expire_after_their_ttl(store: Backend) -> None:
    assert store.admit([limit(1, reservation_ttl=30)], T0)[0].admitted
    assert not store.admit([limit(1)], T0 + 29.9)[0].admitted
    assert store.count_live(realm=REALM, reserved_at=T0 + 30) == 0
    assert store.admit([limit(1)], T0 + 30)[0].admitted
    # The expired one was deleted on the way: counted at T0 it would still be unexpired.
    assert store.count_live(realm=REALM, reserved_at=T0) == 1


def test_release_gives_a_slot_back(store: Backend) -> None:
    [result] = store.admit([limit(1)], T0)
    assert result.reservation_id is not None
    assert store.release([result.reservation_id]) == 1
    assert store.release([result.reservation_id]) == 0
    assert store.admit([limit(1)], T0)[0].admitted


def test_no_limit_admits_without_a_reservation(store: Backend) -> None:
    assert store.admit([limit(), limit(lns=LNS)], T0) == [AdmissionResult(True)] * 2
    assert reservations(store) == 0


# -- exact across workers ----------------------------------------------------------------------
#
# Each worker walks the same realms in the same order, asking for one slot of a realm limited
# to one, so every realm is a fresh race at the limit. Counting outside one write transaction
# lets two workers both see 0 and both be admitted: these tests then fail.

RACE_REALMS = 150


def _race(db: str, key: str, worker: int) -> list[str]:
    """The realms this worker was admitted to."""
    store = open_backend(db, key)
    try:
        won = []
        for r in range(RACE_REALMS):
            realm = f"r{r}.example"
            request = AdmissionRequest(realm, f"w{worker}", realm_max=1, reservation_ttl=600)
            if store.admit([request], T0)[0].admitted:
                won.append(realm)
        return won
    finally:
        store.close()


def _race_process(db: str, key: str, worker: int, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(_race(db, key, worker))


def _assert_one_per_realm(store: Backend, winners: list[list[str]]) -> None:
    admitted = sorted(realm for won in winners for realm in won)
    assert admitted == sorted(f"r{r}.example" for r in range(RACE_REALMS))
    assert reservations(store) == RACE_REALMS


def test_threads_admitting_at_once_never_exceed_a_limit(
    database: str, key_path: Path, store: Backend
) -> None:
    barrier = threading.Barrier(2)
    winners: list[list[str]] = [[], []]

    def run(worker: int) -> None:
        barrier.wait()
        winners[worker] = _race(database, str(key_path), worker)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_one_per_realm(store, winners)


def test_processes_admitting_at_once_never_exceed_a_limit(
    database: str, key_path: Path, store: Backend
) -> None:
    ctx = get_context("spawn")  # no fork of a threaded pytest process
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_race_process, args=(database, str(key_path), w, barrier, results))
        for w in range(3)
    ]
    for p in workers:
        p.start()
    winners = [results.get(timeout=60) for _ in workers]
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    _assert_one_per_realm(store, winners)


LIMIT = 25


def _admit_and_start(db: str, key: str, worker: int, attempts: int) -> int:
    """A gateway worker: admit, then let each admitted user's Start through the writer."""
    store = open_backend(db, key)
    admitted = 0
    try:
        for i in range(attempts):
            user = f"w{worker}-{i}"
            if store.admit([limit(LIMIT, username=user)], T0 + i)[0].admitted:
                admitted += 1
                write(store, record(START, sid=f"{worker}-{i}", user=f"{user}@{REALM}", at=T0 + i))
    finally:
        store.close()
    return admitted


def test_workers_admitting_and_starting_hold_the_limit_and_consume_every_reservation(
    database: str, key_path: Path, store: Backend
) -> None:
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        counts = list(
            pool.map(_admit_and_start, [database] * 2, [str(key_path)] * 2, [0, 1], [30, 30])
        )
    assert sum(counts) == LIMIT
    assert store.count_live(realm=REALM) == LIMIT  # every admitted one started
    assert store.count_live(realm=REALM, reserved_at=T0) == LIMIT  # and none counts twice
    assert reservations(store) == 0
