"""The figures the session table reports: octet counts as large as a NAS can report them, kept
exactly; session time by one rule however a session began and ended (on every backend); and
SQLite databases of the previous schema brought to these rules with their data.

Records go through ``Backend.write_accounting`` as the server's applier sends them, once per
backend (tests/unit/store/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from radiusgw.domain import UsageRow
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.store import open_store
from radiusgw.store.backend import Backend
from radiusgw.store.sessions import SessionTable
from radiusgw.store.sqlite import SCHEMA_VERSION
from tests.unit.store.conftest import undo_version_5
from tests.unit.store.test_sessions import INTERIM, NAS, REALM, START, STOP, T0, record, write

OTHER = "other.example"
TOP = 2**64 - 1  # RFC 2869 §5.1: 4294967295 Gigawords and 4294967295 octets
HALF = 2**63  # Acct-Input-Gigawords = 2147483648: one past SQLite's (and bigint's) largest

# -- octet counts --------------------------------------------------------------------------------


def test_counts_up_to_two_to_the_64_are_kept_and_reported_exactly(store: Backend) -> None:
    write(store, record(START, at=T0))
    write(store, record(INTERIM, at=T0 + 300, octets=(HALF + 5, 7), time=300))
    [live] = store.live_sessions()
    assert (live.input_octets, live.output_octets) == (HALF + 5, 7)
    write(store, record(STOP, at=T0 + 600, octets=(TOP, TOP), time=600))
    assert store.usage(REALM, "2025-03") == UsageRow(REALM, "2025-03", 1, 600, TOP, TOP)
    assert store.month_octets(REALM, T0) == 2 * TOP


def test_the_larger_count_wins_across_a_gigaword(store: Backend) -> None:
    # The 32-bit parts alone would say the late record is larger: the pair compares as the count.
    write(store, record(INTERIM, at=T0 + 600, octets=(2**32 + 5, 2**32 + 5), time=600))
    write(store, record(INTERIM, at=T0 + 300, octets=(10, 10), time=300))  # late, smaller
    [live] = store.live_sessions()
    assert (live.input_octets, live.output_octets) == (2**32 + 5, 2**32 + 5)
    write(store, record(INTERIM, at=T0 + 900, octets=(2**32 + 6, 3 * 2**32), time=900))
    [live] = store.live_sessions()
    assert (live.input_octets, live.output_octets) == (2**32 + 6, 3 * 2**32)


def test_large_counts_in_several_sessions_keep_usage_and_the_quota_exact(store: Backend) -> None:
    # Each below 2^63, but their sums are not: SQLite's SUM failed with "integer overflow".
    big = 2**62 + 2**61 + 12345
    write(
        store,
        record(INTERIM, sid="a", at=T0, octets=(big, big), time=60),
        record(INTERIM, sid="b", at=T0, octets=(big, big + 1), time=60, user="bob@acme.example"),
        record(STOP, sid="c", at=T0, octets=(HALF, 1), time=60, user="carol@acme.example"),
    )
    usage = store.usage(REALM, "2025-03")
    assert (usage.sessions, usage.input_octets, usage.output_octets) == (
        3,
        2 * big + HALF,
        2 * big + 2,
    )
    assert store.month_octets(REALM, T0) == 4 * big + HALF + 2
    assert store.month_octets(OTHER, T0) == 0


# -- session time: one rule (RFC 2866 §5.7) ----------------------------------------------------


def seconds(store: Backend, realm: str = REALM, month: str = "2025-03") -> int:
    return store.usage(realm, month).session_time_seconds


def test_a_stop_reporting_900_s_lasted_900_s_whenever_it_arrived(store: Backend) -> None:
    write(store, record(START, at=T0 + 1000))
    write(store, record(STOP, at=T0 + 1004, octets=(1, 1), time=900))
    assert seconds(store) == 900


def test_a_stop_without_its_start_counts_as_with_it(store: Backend) -> None:
    write(store, record(START, at=T0, realm=OTHER), record(STOP, at=T0 + 4, time=900, realm=OTHER))
    write(store, record(STOP, sid="alone", at=T0 + 4, time=900))
    assert seconds(store) == seconds(store, OTHER) == 900


def test_without_acct_session_time_the_arrival_times_tell(store: Backend) -> None:
    write(store, record(START, at=T0), record(STOP, at=T0 + 60))
    write(store, record(STOP, sid="alone", at=T0 + 100))  # one arrival: no time to tell
    assert seconds(store) == 60


def test_a_reported_zero_is_zero_and_not_missing(store: Backend) -> None:
    write(store, record(START, at=T0), record(STOP, at=T0 + 4, time=0))
    [row] = store.sessions()
    assert row.session_time == 0
    assert seconds(store) == 0


def test_a_live_session_lasted_what_its_last_interim_reported(store: Backend) -> None:
    write(store, record(START, at=T0 + 200), record(INTERIM, at=T0 + 300, time=280))
    [live] = store.live_sessions()
    assert live.session_time == 280
    assert seconds(store) == 280


def test_a_stale_or_restart_closure_keeps_the_reported_time(store: Backend) -> None:
    write(store, record(START, sid="stale", at=T0, interim=60))
    write(store, record(INTERIM, sid="stale", at=T0 + 100, time=300))
    assert len(store.expire_stale(T0 + 1000, default_interval=60)) == 1
    assert seconds(store) == 300
    write(store, record(START, sid="r", at=T0, realm=OTHER))
    write(store, record(INTERIM, sid="r", at=T0 + 100, time=100, realm=OTHER))
    write(store, record(AcctStatusType.ACCOUNTING_ON, sid=None, at=T0 + 500, realm=OTHER))
    assert store.live_sessions() == []
    assert seconds(store, OTHER) == 100


def test_reported_time_splits_across_months_where_the_session_ran(store: Backend) -> None:
    midnight = dt.datetime(2025, 4, 1, tzinfo=dt.UTC).timestamp()
    write(store, record(START, at=midnight - 300))  # the NAS says it began 600 s earlier still
    write(store, record(STOP, at=midnight + 600, octets=(5, 6), time=1500))
    assert store.usage(REALM, "2025-03") == UsageRow(REALM, "2025-03", 1, 900, 0, 0)
    assert store.usage(REALM, "2025-04") == UsageRow(REALM, "2025-04", 1, 600, 5, 6)


def test_a_session_reported_back_into_the_previous_month_counts_there(store: Backend) -> None:
    midnight = dt.datetime(2025, 4, 1, tzinfo=dt.UTC).timestamp()
    write(store, record(STOP, at=midnight + 100, time=400))  # its Start lost, in March
    assert seconds(store, month="2025-03") == 300
    assert seconds(store, month="2025-04") == 100


# -- the previous schema ---------------------------------------------------------------------

# The session table as schema version 3 made it: one column per count, session time 0 if absent.
_V3_SESSIONS = """CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, nas_address TEXT NOT NULL, acct_session_id TEXT NOT NULL,
    realm TEXT NOT NULL, username TEXT NOT NULL, lns TEXT, nas_ip_address TEXT,
    nas_identifier TEXT, framed_ip TEXT, start REAL NOT NULL, last_update REAL NOT NULL,
    stop REAL, live INTEGER NOT NULL, closed_by TEXT, input_octets INTEGER NOT NULL,
    output_octets INTEGER NOT NULL, session_time INTEGER NOT NULL, interim_interval INTEGER,
    terminate_cause INTEGER
)"""


def make_version_3(db: Path) -> None:
    """Turn the database at ``db`` into what version 3 left: old session rows, no quarantine."""
    with open_store(db, Path(f"{db}.key")):
        pass
    conn = sqlite3.connect(db)
    undo_version_5(conn)
    conn.execute("DROP TABLE sessions")
    conn.execute("DROP TABLE quarantine")
    conn.execute(_V3_SESSIONS)
    conn.execute("CREATE INDEX sessions_realm ON sessions (realm, live, stop)")
    rows = [  # a live session with a large count and a time; a closed one with none reported
        (1, NAS, "s1", REALM, "alice", T0, T0 + 300, None, 1, None, 5 * 2**32 + 7, 2**62, 300),
        (2, NAS, "s2", REALM, "bob", T0, T0 + 60, T0 + 60, 0, "stop", 10, 20, 0),
    ]
    conn.executemany(
        "INSERT INTO sessions (id, nas_address, acct_session_id, realm, username, start,"
        " last_update, stop, live, closed_by, input_octets, output_octets, session_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("opener", ["store", "session-table"])
def test_a_version_3_database_keeps_its_sessions_under_the_new_rules(
    tmp_path: Path, opener: str
) -> None:
    """SQLite only: its own schema migration (PostgreSQL's: test_postgres.py)."""
    db = tmp_path / "old.db"
    make_version_3(db)
    if opener == "store":  # the upgraded server opens it first...
        open_store(db, Path(f"{db}.key")).close()
    table = SessionTable(db)  # ...or an operator's command does
    try:
        [live] = table.live_sessions()
        assert (live.input_octets, live.output_octets, live.session_time) == (
            5 * 2**32 + 7,
            2**62,
            300,
        )
        # bob's 0 meant "none reported": his time comes from the arrival times, as before.
        assert table.usage(REALM, "2025-03") == UsageRow(
            REALM, "2025-03", 2, 300 + 60, 5 * 2**32 + 7 + 10, 2**62 + 20
        )
    finally:
        table.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT session_time FROM sessions ORDER BY id").fetchall() == [
            (300,),
            (None,),
        ]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"sessions_key", "sessions_realm", "sessions_live"} <= indexes
    finally:
        conn.close()
    with open_store(db, Path(f"{db}.key")) as store:  # and it takes records as a new one does
        store.write_accounting([record(INTERIM, sid="s1", at=T0 + 600, octets=(TOP, 1), time=600)])
    table = SessionTable(db)
    try:
        assert table.live_sessions()[0].input_octets == TOP
    finally:
        table.close()
