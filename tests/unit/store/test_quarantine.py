"""Records the store refuses are kept aside (radiusgw.store.quarantine): never their neighbours,
never the journal position, never a start. On every backend (tests/unit/store/conftest.py),
but for the tests of what SQLite itself calls a refusal, which say so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from radiusgw.errors import StoreError
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.store import journal
from radiusgw.store import sqlite as sqlite_module
from radiusgw.store.backend import Backend
from radiusgw.store.journal import JournalWriter, Position
from radiusgw.store.postgres.backend import refused as pg_refused
from radiusgw.store.quarantine import QuarantineTable, refused
from tests.stores import REASON, refuse_accounting
from tests.unit.store.conftest import OpenDb
from tests.unit.store.test_sessions import INTERIM, NAS, START, STOP, T0, record
from tests.unit.store.test_sessions_apply import event_record

POISON = "poison"


def refuse(database: str) -> None:
    """Make the store refuse the records of session POISON, as it refuses what it cannot take."""
    refuse_accounting(database, f"NEW.session_id = '{POISON}'")


def sessions(store: Backend) -> list[tuple[str, bool]]:
    """Each session's id and whether it is live, oldest first."""
    return [(r.acct_session_id, r.closed_by is None) for r in store.sessions()]


def test_a_refused_record_is_kept_aside_and_its_neighbours_applied_in_order(
    backend: str, database: str, store: Backend
) -> None:
    refuse(database)
    poison = record(START, sid=POISON, at=T0 + 1)
    batch = [
        record(START, sid="a", at=T0),
        poison,
        record(START, sid="b", at=T0 + 2),
        record(STOP, sid="a", at=T0 + 3, time=3),  # after the refused one: still applied, in order
        record(INTERIM, sid="c", at=T0 + 4, time=4),
    ]
    [kept] = store.write_accounting(batch, ("acct-0", Position(3, 999)))
    assert store.count_accounting() == 4
    assert sessions(store) == [("a", False), ("b", True), ("c", True)]
    assert store.journal_position("acct-0") == Position(3, 999)  # past the refused one too
    assert store.quarantined() == [kept]
    assert (kept.nas_address, kept.session_id, kept.packet, kept.journal) == (
        NAS,
        POISON,
        poison.packet,
        "acct-0",
    )
    # one line: the class as the driver names it and the database's message, no CONTEXT lines
    why = "IntegrityConstraintViolation" if backend == "postgres" else "IntegrityError"
    assert kept.reason == f"{why}: {REASON}"
    assert kept.received == T0 + 1 and kept.status_type == START


def test_several_refused_records_anywhere_in_a_large_batch(database: str, store: Backend) -> None:
    refuse(database)
    batch = [
        record(START, sid=POISON if i % 300 in (0, 7) else f"s{i}", at=T0 + i) for i in range(2000)
    ]
    kept = store.write_accounting(batch)
    assert [q.received for q in kept] == [r.received for r in batch if r.session_id == POISON]
    assert store.count_accounting() == 2000 - len(kept)
    assert len(store.sessions()) == 2000 - len(kept)


def test_a_value_beyond_what_the_database_takes_is_refused_alone(
    backend: str, store: Backend
) -> None:
    # Acct-Session-Time is 32 bits on the wire (RFC 2866 §5.7); an event built otherwise is not.
    # SQLite cannot bind it; PostgreSQL's bigint is out of range (SQLSTATE 22003).
    wild = event_record(AcctStatusType.INTERIM_UPDATE, session_id="wild", session_time=2**70)
    [kept] = store.write_accounting([event_record(AcctStatusType.START), wild])
    why = "NumericValueOutOfRange" if backend == "postgres" else "OverflowError"
    assert kept.session_id == "wild" and kept.reason.startswith(why)
    assert store.count_accounting() == 1


def test_a_locked_database_is_not_the_records_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: its write lock held by another connection."""
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT", 0.1)
    db = tmp_path / "gw.db"
    writer = sqlite_module.SqliteStore(db, Path(f"{db}.key"))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            writer.write_accounting([record(START)], ("acct-0", Position(1, 10)))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert writer.journal_position("acct-0") is None
    aside = QuarantineTable(db)
    assert aside.rows() == []
    aside.close()
    assert writer.write_accounting([record(START)]) == []  # and applied once it is free
    assert writer.count_accounting() == 1
    writer.close()


def test_what_counts_as_a_refusal() -> None:
    """SQLite's errors (PostgreSQL's: the next test)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    with pytest.raises(sqlite3.IntegrityError) as constraint:
        conn.execute("INSERT INTO t VALUES (NULL)")
    with pytest.raises(sqlite3.OperationalError) as missing:
        conn.execute("INSERT INTO nowhere VALUES (1)")
    with pytest.raises(OverflowError) as overflow:
        conn.execute("INSERT INTO t VALUES (?)", (2**63,))
    conn.close()
    assert refused(constraint.value) and refused(overflow.value)
    assert not refused(missing.value)  # SQL this version does not match: the database's trouble
    assert not refused(sqlite3.OperationalError("database is locked"))
    assert not refused(OSError(28, "No space left on device"))


@pytest.mark.postgres
def test_what_counts_as_a_refusal_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL's errors: SQLSTATE classes 22 and 23 refuse the data, the rest is the
    database's trouble (radiusgw.store.postgres.backend.refused)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (x BIGINT NOT NULL, s TEXT)")
        with pytest.raises(psycopg.IntegrityError) as constraint:
            conn.execute("INSERT INTO t VALUES (NULL, '')")
        with pytest.raises(psycopg.DataError) as out_of_range:
            conn.execute("INSERT INTO t VALUES (%s, '')", (2**70,))
        with pytest.raises(psycopg.DataError) as nul:
            conn.execute("INSERT INTO t VALUES (1, %s)", ("a\x00b",))
        with pytest.raises(psycopg.ProgrammingError) as missing:
            conn.execute("INSERT INTO nowhere VALUES (1)")
    assert all(pg_refused(e.value) for e in (constraint, out_of_range, nul))
    assert not pg_refused(missing.value)  # SQL this version does not match
    assert not pg_refused(psycopg.OperationalError("server closed the connection"))
    assert not pg_refused(OSError(28, "No space left on device"))


def test_a_replay_keeps_a_refused_record_aside_and_starts(
    tmp_path: Path, database: str, open_db: OpenDb
) -> None:
    directory = tmp_path / "journal"
    JournalWriter(directory, "acct-0").append(
        [record(START, sid="a", at=T0), record(START, sid=POISON), record(STOP, sid="a", time=5)]
    )
    open_db().close()
    refuse(database)
    for attempt in range(2):  # the second start finds nothing more to do
        store = open_db()
        done = journal.replay(store, directory, "acct-0")
        assert store.count_accounting() == 2
        store.close()
        assert done.records == (3 if attempt == 0 else 0)
        assert [q.session_id for q in done.quarantined] == ([POISON] if attempt == 0 else [])
    reader = open_db(read_only=True)
    assert [q.session_id for q in reader.quarantined()] == [POISON]
    assert reader.live_sessions() == []  # a's Stop, behind the refused record, was applied
