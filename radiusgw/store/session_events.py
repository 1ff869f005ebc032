"""Session events applied to SQLite's session table: the accounting applier's hot path.

``SqliteStore.write_accounting`` parses its records with ``session_events`` and runs
``apply_events`` inside its transaction (``radiusgw.store.sessions`` has the table, its rules
and admission). One statement (``_UPSERT``) for up to 1,024 events, its parameters bound without
a None.
Compiled with mypyc (``make compiled``): interpreted, this glue was about a seventh of the
applier's samples under accounting with 100,000 users (``_PyEval_EvalFrameDefault``, perf).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from radiusgw.accounting import (
    EVENT_TYPES,
    AccountingError,
    AccountingEvent,
    from_record,
)
from radiusgw.domain import AccountingRecord
from radiusgw.sessions import (
    CLOSED_BY_RESTART,
    CLOSED_BY_STALE,
    CLOSED_BY_STOP,
    TRANSITIONS,
    Event,
    State,
    Step,
    Transition,
    statuses_where,
)
from radiusgw.store.multirow import MultiRow

_STOP: Final = CLOSED_BY_STOP
_RESTART: Final = CLOSED_BY_RESTART
_STALE: Final = CLOSED_BY_STALE


def _only(types: frozenset[int]) -> int:
    (status,) = types  # the SQL below names one status type where the table names one
    return status


# The SQL below implements the transition table (radiusgw.sessions) and takes its status types
# from it; a table that said otherwise fails here, at import. The type that an existing row
# ignores (a duplicate Start); the one that makes a row stopped, new or not (a Stop); those
# that close every live session of their NAS that began at or before them (On/Off).
_START_TYPE: Final = _only(statuses_where(State.LIVE, Transition(Step.IGNORE, State.LIVE)))
_STOP_TYPE: Final = _only(statuses_where(State.ABSENT, Transition(Step.NEW, State.STOPPED)))
_RESTART_TYPES: Final = statuses_where(State.LIVE, Transition(Step.CLOSE, State.CLOSED))
# ``_UPSERT``'s other choices: a stopped row is final; any other row a Stop stops; an
# Interim-Update reopens a SILENT row (``_REOPEN``) and only counts on a CLOSED one.
assert statuses_where(State.STOPPED, Transition(Step.IGNORE, State.STOPPED)) == (
    statuses_where(State.ABSENT, Transition(Step.NEW, State.LIVE)) | {_START_TYPE, _STOP_TYPE}
)
assert all(
    TRANSITIONS[(state, Event.STOP)] == Transition(Step.MERGE, State.STOPPED)
    for state in (State.LIVE, State.SILENT, State.CLOSED)
)
assert TRANSITIONS[(State.SILENT, Event.INTERIM)] == Transition(Step.MERGE, State.LIVE)
assert TRANSITIONS[(State.CLOSED, Event.INTERIM)] == Transition(Step.MERGE, State.CLOSED)

_INSERT: Final = (
    "INSERT INTO sessions (id, nas_address, acct_session_id, realm, username, lns,"
    " nas_ip_address, nas_identifier, framed_ip, start, last_update, stop, live, closed_by,"
    " input_gigawords, input_octets, output_gigawords, output_octets, session_time,"
    " interim_interval, terminate_cause)"
)

# The events of a run (``apply_events``) go in as multi-row statements of ``_UPSERT``
# (radiusgw.store.multirow): one step per statement, not per event, since each step hands the
# GIL back and waits for the event loop to return it, holding the store's write lock. The cost
# is then sqlite3's per-parameter binding and SQLite's b-trees. An event's 17 parameters
# (``_params``) are the columns of one row of VALUES: column1 status, column2 nas_address,
# column3 acct_session_id, column4 realm, column5 username, column6 lns, column7
# nas_ip_address, column8 nas_identifier, column9 framed_ip, column10 event time, column11
# input_octets and column12 output_octets (the low 32 bits), column13 session_time (-1 if
# absent), column14 interim_interval, column15 terminate_cause, column16 input_gigawords,
# column17 output_gigawords.
# None is never bound: sqlite3 binds it only after a failed adapter look-up, several times the
# cost of an int. An absent value is bound as 0 (``_NONE``; SQL never finds an integer equal
# to a text, and an interim of 0 means absent too) or, for a session time or a terminate
# cause, as -1 (the attributes are unsigned), and NULLIF turns it back into NULL.
_COLUMNS: Final = 17
_NONE: Final = 0
_LOW: Final = 2**32 - 1  # RFC 2869 §5.1: Acct-Input-Octets is the count modulo 2^32


def _grow(column: str) -> str:
    """SET ``column`` and its gigawords to the larger of the kept and the reported count: the
    pair compares as the count does, the 32-bit part being below 2^32 (module rule)."""
    giga = column.replace("_octets", "_gigawords")
    larger = f"({giga}, {column}) < (excluded.{giga}, excluded.{column})"
    return (
        f"{giga} = CASE WHEN {larger} THEN excluded.{giga} ELSE {giga} END,"
        f" {column} = CASE WHEN {larger} THEN excluded.{column} ELSE {column} END"
    )


# The event merges into its key's latest row, unless there is none or a NAS restart closed
# it before the event: then the row id is NULL and the event inserts a new row (a Stop whose
# Start was lost makes it closed at once). SQLite reads the whole SELECT before it inserts
# (it reads the table it writes), which is why a run's events have distinct keys.
_ROW_ID: Final = (
    f"(SELECT CASE WHEN NOT COALESCE(closed_by IS '{_RESTART}' AND stop < v.column10, 1)"
    " THEN id END FROM sessions"
    " WHERE nas_address = v.column2 AND acct_session_id = v.column3 ORDER BY id DESC LIMIT 1)"
)
# A Start of a key that has a row is a duplicate: the SELECT leaves it out. Merging, unless the
# row is final (stopped): counters take the maximum; details keep the first value seen, the
# interim the latest; a Stop closes it; an Interim-Update after its stale closure reopens it.
# Every right-hand side reads the row as it was; ``excluded`` is the row the event would have
# made.
_REOPEN: Final = (
    f"(excluded.closed_by IS NULL AND closed_by IS '{_STALE}' AND excluded.last_update > stop)"
)
_UPSERT: Final = MultiRow(
    f"{_INSERT} SELECT e.row_id, e.column2, e.column3, e.column4, e.column5,"
    " NULLIF(e.column6, 0), NULLIF(e.column7, 0), NULLIF(e.column8, 0), NULLIF(e.column9, 0),"
    f" CASE e.column1 WHEN {_START_TYPE} THEN e.column10 ELSE e.column10 - MAX(e.column13, 0)"
    f" END, e.column10, CASE e.column1 WHEN {_STOP_TYPE} THEN e.column10 END,"
    f" e.column1 <> {_STOP_TYPE}, CASE e.column1 WHEN {_STOP_TYPE} THEN '{_STOP}' END,"
    " e.column16, e.column11, e.column17, e.column12, NULLIF(e.column13, -1),"
    f" NULLIF(e.column14, 0), CASE e.column1 WHEN {_STOP_TYPE} THEN NULLIF(e.column15, -1) END"
    f" FROM (SELECT {_ROW_ID} AS row_id, v.* FROM (VALUES ",
    columns=_COLUMNS,
    tail=f") AS v) AS e WHERE e.column1 <> {_START_TYPE} OR e.row_id IS NULL"
    f" ON CONFLICT (id) DO UPDATE SET {_grow('input_octets')}, {_grow('output_octets')},"
    " session_time = CASE WHEN session_time IS NULL OR excluded.session_time > session_time"
    " THEN excluded.session_time ELSE session_time END,"
    " last_update = MAX(last_update, excluded.last_update),"
    " interim_interval = COALESCE(excluded.interim_interval, interim_interval),"
    " lns = COALESCE(lns, excluded.lns), framed_ip = COALESCE(framed_ip, excluded.framed_ip),"
    " terminate_cause = COALESCE(excluded.terminate_cause, terminate_cause),"
    f" live = CASE WHEN excluded.closed_by IS NOT NULL THEN 0 WHEN {_REOPEN} THEN 1 ELSE live END,"
    " stop = CASE WHEN excluded.closed_by IS NOT NULL THEN excluded.last_update"
    f" WHEN {_REOPEN} THEN NULL ELSE stop END,"
    " closed_by = CASE WHEN excluded.closed_by IS NOT NULL THEN excluded.closed_by"
    f" WHEN {_REOPEN} THEN NULL ELSE closed_by END"
    f" WHERE closed_by IS NOT '{_STOP}'",
)
_RESTART_NAS: Final = (
    "UPDATE sessions SET live = 0, stop = ?, closed_by = ?"
    " WHERE nas_address = ? AND live = 1 AND start <= ?"
)
_CONSUME: Final = (
    "DELETE FROM session_reservations WHERE id = (SELECT id FROM session_reservations"
    " WHERE realm = ? AND username = ? AND expires > ?"
    " ORDER BY lns IS NOT NULLIF(?, 0), id LIMIT 1)"
)


def session_events(records: Sequence[AccountingRecord]) -> list[AccountingEvent]:
    """The events of ``records`` that the session rules use, in order; the rest are skipped.

    A record carries its event when the engine parsed it on receipt; one without is decoded
    here, before the caller takes the write lock, so that the lock is held only for the SQL.
    A skipped record (garbage, no status type, a type that does not concern sessions) is
    stored by the caller all the same.
    """
    events = []
    for record in records:
        if record.status_type not in EVENT_TYPES:
            continue  # cheap: decided before the datagram is decoded again
        event = record.event
        if event is None:
            try:
                event = from_record(record)
            except AccountingError:
                continue
        events.append(event)
    return events


def apply_events(conn: sqlite3.Connection, events: Sequence[AccountingEvent]) -> int:
    """Apply events inside the caller's transaction as if one by one, in order; how many the
    rules used.

    Without a round trip per event: the events are cut into runs in which no two share a
    session key and none is an Accounting-On/Off, and a run goes in as ``_UPSERT``'s multi-row
    statements, which take its events as one by one would: no event of a run reads what
    another one writes. Distinct keys let the run's new rows name the events that made them,
    which then consume their reservations.
    """
    if not events:
        return 0
    # Read under the caller's write lock: no reservation can appear before the commit.
    consume = bool(conn.execute("SELECT EXISTS (SELECT 1 FROM session_reservations)").fetchone()[0])
    run: list[AccountingEvent] = []
    keys: set[tuple[str, str]] = set()
    used = 0
    for event in events:
        if event.status in _RESTART_TYPES:
            _apply_run(conn, run, consume)
            run.clear()
            keys.clear()
            time = event.event_time
            conn.execute(_RESTART_NAS, (time, _RESTART, event.nas_address, time))
            used += 1
        elif (
            event.session_id is not None and event.realm is not None and event.username is not None
        ):
            key = (event.nas_address, event.session_id)
            if key in keys:
                _apply_run(conn, run, consume)
                run.clear()
                keys.clear()
            keys.add(key)
            run.append(event)
            used += 1
    _apply_run(conn, run, consume)
    return used


def _apply_run(conn: sqlite3.Connection, run: Sequence[AccountingEvent], consume: bool) -> None:
    """Session events of distinct keys, none a NAS restart: see ``apply_events``."""
    if not run:
        return
    values: list[object] = []
    for event in run:
        values += _params(event)
    if not consume:
        _UPSERT.execute(conn, values)
        return
    # SQLite gives a new row the largest id + 1 (below 2**63 - 1: ~9e18 sessions), so the rows
    # after the largest are the run's new sessions; no two events of a run share a key, so
    # each row names the event that made it.
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0]
    _UPSERT.execute(conn, values)
    new = set(
        conn.execute("SELECT nas_address, acct_session_id FROM sessions WHERE id > ?", (last,))
    )
    taken = [event for event in run if (event.nas_address, event.session_id) in new]
    conn.executemany(  # each new session takes a slot, in event order
        _CONSUME, [(e.realm, e.username, e.received, _text_param(e.lns)) for e in taken]
    )


def _params(event: AccountingEvent) -> tuple[object, ...]:
    """The parameters of ``_UPSERT`` for one session event; no None among them."""
    cause = event.terminate_cause
    seconds = event.session_time
    octets_in = event.input_octets
    octets_out = event.output_octets
    return (
        int(event.status),
        event.nas_address,
        event.session_id,
        event.realm,
        event.username,
        _text_param(event.lns),
        _text_param(event.nas_ip_address),
        _text_param(event.nas_identifier),
        _text_param(event.framed_ip),
        event.event_time,
        octets_in & _LOW,
        octets_out & _LOW,
        -1 if seconds is None else seconds,
        event.interim_interval or _NONE,
        -1 if cause is None else cause,
        octets_in >> 32,
        octets_out >> 32,
    )


def _text_param(text: str | None) -> str | int:
    """A text to bind, ``_NONE`` for None (see ``_UPSERT``)."""
    return _NONE if text is None else text
