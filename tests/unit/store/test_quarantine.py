"""Records the store refuses are kept aside (radiusgw.store.quarantine): never their neighbours,
never the journal position, never a start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from radiusgw.errors import StoreError
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.store import SqliteStore, journal
from radiusgw.store import sqlite as sqlite_module
from radiusgw.store.journal import JournalWriter, Position
from radiusgw.store.quarantine import Quarantined, QuarantineTable, refused
from radiusgw.store.sessions import SessionTable
from tests.unit.store.test_sessions import INTERIM, NAS, START, STOP, T0, db, record, store
from tests.unit.store.test_sessions_apply import event_record

__all__ = ["db", "store"]  # fixtures, used by name

POISON = "poison"


def refuse(db: Path, session_id: str = POISON) -> None:
    """Make the store refuse the records of ``session_id``, as it refuses a value it cannot take."""
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON accounting"
        f" WHEN NEW.session_id = '{session_id}' BEGIN SELECT RAISE(ABORT, 'refused here'); END"
    )
    conn.commit()
    conn.close()


def kept_aside(db: Path) -> list[Quarantined]:
    table = QuarantineTable(db)
    try:
        return table.rows()
    finally:
        table.close()


def sessions(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT acct_session_id, live FROM sessions ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_refused_record_is_kept_aside_and_its_neighbours_applied_in_order(
    db: Path, store: SqliteStore
) -> None:
    refuse(db)
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
    assert sessions(db) == [("a", 0), ("b", 1), ("c", 1)]
    assert store.journal_position("acct-0") == Position(3, 999)  # past the refused one too
    assert kept_aside(db) == [kept]
    assert (kept.nas_address, kept.session_id, kept.packet, kept.journal) == (
        NAS,
        POISON,
        poison.packet,
        "acct-0",
    )
    assert kept.reason == "IntegrityError: refused here"
    assert kept.received == T0 + 1 and kept.status_type == START


def test_several_refused_records_anywhere_in_a_large_batch(db: Path, store: SqliteStore) -> None:
    refuse(db)
    batch = [
        record(START, sid=POISON if i % 300 in (0, 7) else f"s{i}", at=T0 + i) for i in range(2000)
    ]
    kept = store.write_accounting(batch)
    assert [q.received for q in kept] == [r.received for r in batch if r.session_id == POISON]
    assert store.count_accounting() == 2000 - len(kept)
    assert len(sessions(db)) == 2000 - len(kept)


def test_a_value_beyond_what_sqlite_binds_is_refused_alone(db: Path, store: SqliteStore) -> None:
    # Acct-Session-Time is 32 bits on the wire (RFC 2866 §5.7); an event built otherwise is not.
    wild = event_record(AcctStatusType.INTERIM_UPDATE, session_id="wild", session_time=2**70)
    [kept] = store.write_accounting([event_record(AcctStatusType.START), wild])
    assert kept.session_id == "wild" and kept.reason.startswith("OverflowError")
    assert store.count_accounting() == 1


def test_a_locked_database_is_not_the_records_fault(
    db: Path, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT", 0.1)
    store.close()
    writer = sqlite_module.SqliteStore(db, Path(f"{db}.key"))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            writer.write_accounting([record(START)], ("acct-0", Position(1, 10)))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert kept_aside(db) == [] and writer.journal_position("acct-0") is None
    assert writer.write_accounting([record(START)]) == []  # and applied once it is free
    assert writer.count_accounting() == 1
    writer.close()


def test_what_counts_as_a_refusal() -> None:
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


def test_a_replay_keeps_a_refused_record_aside_and_starts(tmp_path: Path, db: Path) -> None:
    directory = tmp_path / "journal"
    JournalWriter(directory, "acct-0").append(
        [record(START, sid="a", at=T0), record(START, sid=POISON), record(STOP, sid="a", time=5)]
    )
    SqliteStore(db, Path(f"{db}.key")).close()
    refuse(db)
    for attempt in range(2):  # the second start finds nothing more to do
        with SqliteStore(db, Path(f"{db}.key")) as store:
            done = journal.replay(store, directory, "acct-0")
            assert store.count_accounting() == 2
        assert done.records == (3 if attempt == 0 else 0)
        assert [q.session_id for q in done.quarantined] == ([POISON] if attempt == 0 else [])
    assert [q.session_id for q in kept_aside(db)] == [POISON]
    table = SessionTable(db)
    try:
        assert table.live_sessions() == []  # a's Stop, behind the refused record, was applied
    finally:
        table.close()
