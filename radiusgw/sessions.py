"""The session lifecycle from accounting, stated once: a transition table and a reference model.

Sans-I/O: no database here. ``TRANSITIONS`` says what each accounting event does to a session;
``SessionModel`` applies events to an in-memory session table by that table and computes usage.
Every store backend implements these rules in its own terms (SQL for SQLite,
``radiusgw.store.sessions``) and is held to them by a property test that drives the backend
and ``SessionModel`` with the same random event sequences (tests/unit/test_sessions_rules.py).

Session rules (records are taken in the order given; the NAS's counters are absolute):

- A session is keyed by (NAS source address, Acct-Session-Id); only records with a routed realm,
  a User-Name and an Acct-Session-Id count. A Start makes it live; an Interim-Update makes it live
  too when its Start was lost; a Stop closes it (``closed_by`` 'stop'), keeping the row for usage.
- Octets and session time only grow: every record takes the maximum of what is kept and what it
  says, so a duplicate or late record never counts twice (RFC 2866 §5.3-§5.4, RFC 2869 §5.1).
  Octets are kept as the NAS counts them, Gigawords and the 32-bit counter (RFC 2869 §5.1-§5.2),
  so every count up to 2^32 × 2^32 + 2^32 - 1 is exact. ``session_time`` is the largest
  Acct-Session-Time reported, None while the NAS has reported none.
- A duplicate Start changes nothing, nor does any record after the session's Stop: it is final.
- Accounting-On/Off (RFC 2866 §5.1: the NAS restarted) closes that NAS's live sessions that began
  at or before it ('nas-restart'). Afterwards the NAS may reuse an Acct-Session-Id: a record of
  that id dated after the restart starts a new session row.
- A stale timeout closes ('stale') a live session with no record for interim × ``STALE_FACTOR``
  seconds, the interim being its own Acct-Interim-Interval or the default; its stop is its last
  update. A later Interim-Update of it reopens it (the NAS says it is alive); a later Stop ends it
  properly.
- RFC 2867 tunnel status types are stored as accounting but do not change sessions: the LAC
  reports the user's session with Start/Interim/Stop as well, and counting both would double it.
- Details: a new row starts at its record's time, less the reported Acct-Session-Time unless the
  record is a Start; on a merge the LNS and Framed-IP keep the first value seen, the
  Acct-Interim-Interval the latest (0 means absent), Acct-Terminate-Cause comes from a Stop;
  NAS-IP-Address and NAS-Identifier are those of the record that made the row.

Session-time rule (RFC 2866 §5.7), the same for every session however it began and ended
(Start, Interim-Update, Stop, a Stop without Start, a NAS restart, a stale close): a session
lasted the Acct-Session-Time the NAS reported (the largest: it only grows), when it reported
one; otherwise its arrival times tell, from its start (its Start, or its first record) to its
end. Its end is the stop of a closed session or the last update of a live one, and its span is
the time it lasted up to that end: [end - Acct-Session-Time, end], or [start, end]. (A Stop
reporting 900 s 4 s after its Start lasted 900 s; a Stop whose Start was lost, the same.)
``span`` states it.

Usage rule (``usage``, ``month_octets``), months in UTC: a session belongs to a month when its
span meets it; its time in the month is the part of the span inside it. All of a session's
octets belong to the month its end falls in, so a session running across months counts its
octets where it ends (or, while live, where it was last reported).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from radiusgw.accounting import AccountingEvent
from radiusgw.domain import SessionRow, UsageRow
from radiusgw.radius.attributes import AcctStatusType

STALE_FACTOR = 3  # issue 5: no update for interim × 3 means the session is gone
CLOSED_BY_STOP, CLOSED_BY_RESTART, CLOSED_BY_STALE = "stop", "nas-restart", "stale"
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class Event(Enum):
    """What an accounting record is to a session (RFC 2866 §5.1 Acct-Status-Type), or a timeout."""

    START = "start"
    INTERIM = "interim-update"
    STOP = "stop"
    NAS_RESTART = "nas-restart"  # Accounting-On or Accounting-Off: the NAS's sessions ended
    STALE_TIMEOUT = "stale-timeout"  # no record for interim × STALE_FACTOR (not a record)


# RFC 2866 §5.1 and RFC 2869 §2.1 (Interim-Update); the tunnel types of RFC 2867 §4.1 are absent:
# they change no session (module rule).
EVENT_OF_STATUS: Mapping[int, Event] = {
    int(AcctStatusType.START): Event.START,
    int(AcctStatusType.INTERIM_UPDATE): Event.INTERIM,
    int(AcctStatusType.STOP): Event.STOP,
    int(AcctStatusType.ACCOUNTING_ON): Event.NAS_RESTART,
    int(AcctStatusType.ACCOUNTING_OFF): Event.NAS_RESTART,
}


class State(Enum):
    """A session as a record of its key finds it (the key's latest row, at the record's time)."""

    ABSENT = "absent"  # no row, or a NAS restart dated before the record ended the latest one
    LIVE = "live"
    SILENT = "silent"  # closed by the stale timeout, and the record is dated after that close
    CLOSED = "closed"  # closed by a NAS restart or the stale timeout dated at or after the record
    STOPPED = "stopped"  # a Stop ended it: final


class Step(Enum):
    """What the record does to the row."""

    NEW = "new"  # a new row from the record
    MERGE = "merge"  # counters grow, details fill in, as the module rules say
    IGNORE = "ignore"  # nothing changes
    CLOSE = "close"  # closed without a record's counters (NAS restart, stale timeout)


@dataclass(frozen=True, slots=True)
class Transition:
    step: Step
    to: State  # the state the row is in afterwards; CLOSED keeps the closed_by it had


_T = Transition
# The whole lifecycle. A pair that is absent does not happen: a NAS restart and a stale timeout
# act only on live sessions (a NAS restart only on those that began at or before it).
TRANSITIONS: Mapping[tuple[State, Event], Transition] = {
    (State.ABSENT, Event.START): _T(Step.NEW, State.LIVE),
    (State.ABSENT, Event.INTERIM): _T(Step.NEW, State.LIVE),  # its Start was lost
    (State.ABSENT, Event.STOP): _T(Step.NEW, State.STOPPED),  # its Start was lost: closed at once
    (State.LIVE, Event.START): _T(Step.IGNORE, State.LIVE),  # a duplicate Start
    (State.LIVE, Event.INTERIM): _T(Step.MERGE, State.LIVE),
    (State.LIVE, Event.STOP): _T(Step.MERGE, State.STOPPED),
    (State.LIVE, Event.NAS_RESTART): _T(Step.CLOSE, State.CLOSED),  # closed_by 'nas-restart'
    (State.LIVE, Event.STALE_TIMEOUT): _T(Step.CLOSE, State.CLOSED),  # closed_by 'stale'
    (State.SILENT, Event.START): _T(Step.IGNORE, State.SILENT),
    (State.SILENT, Event.INTERIM): _T(Step.MERGE, State.LIVE),  # the NAS says it is alive
    (State.SILENT, Event.STOP): _T(Step.MERGE, State.STOPPED),
    (State.CLOSED, Event.START): _T(Step.IGNORE, State.CLOSED),
    (State.CLOSED, Event.INTERIM): _T(Step.MERGE, State.CLOSED),  # a late record: counts only
    (State.CLOSED, Event.STOP): _T(Step.MERGE, State.STOPPED),
    (State.STOPPED, Event.START): _T(Step.IGNORE, State.STOPPED),
    (State.STOPPED, Event.INTERIM): _T(Step.IGNORE, State.STOPPED),
    (State.STOPPED, Event.STOP): _T(Step.IGNORE, State.STOPPED),
}


def state_of(row: SessionRow | None, event_time: float) -> State:
    """The state in which a record dated ``event_time`` finds its key's latest ``row``."""
    if row is None:
        return State.ABSENT
    if row.closed_by is None:
        return State.LIVE
    if row.closed_by == CLOSED_BY_STOP:
        return State.STOPPED
    stop = row.stop if row.stop is not None else row.last_update
    if row.closed_by == CLOSED_BY_RESTART:
        return State.ABSENT if stop < event_time else State.CLOSED
    return State.SILENT if event_time > stop else State.CLOSED


def statuses_where(state: State, transition: Transition) -> frozenset[int]:
    """The Acct-Status-Type values whose event takes a session in ``state`` by ``transition``:
    what a backend's SQL reads from the table instead of naming the types itself."""
    return frozenset(
        status
        for status, event in EVENT_OF_STATUS.items()
        if TRANSITIONS.get((state, event)) == transition
    )


def span(row: SessionRow) -> tuple[float, float]:
    """[start, end] of the time a session lasted: the session-time rule of the module docstring."""
    end = row.stop if row.stop is not None else row.last_update
    start = row.start if row.session_time is None else end - row.session_time
    return start, end


def month_bounds(month: str) -> tuple[float, float]:
    """The unix times [start, end) of a 'YYYY-MM' month in UTC; ``ValueError`` if malformed."""
    match = _MONTH.fullmatch(month)
    if match is None:
        raise ValueError(f"{month!r} is not a month as YYYY-MM")
    year, number = int(match[1]), int(match[2])
    first = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    after = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return first.timestamp(), after.timestamp()


def month_of(now: float) -> str:
    """The 'YYYY-MM' (UTC) that the unix time ``now`` falls in."""
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m")


def _keyed(event: AccountingEvent) -> bool:
    return event.session_id is not None and event.realm is not None and event.username is not None


class SessionModel:
    """The reference implementation: the rules applied one event at a time to rows in memory.

    Slow and plain on purpose: it is what a backend is compared with, not what runs.
    """

    def __init__(self) -> None:
        self._rows: list[SessionRow] = []
        self._latest: dict[tuple[str, str], int] = {}  # key -> index of its latest row

    def apply(self, events: Iterable[AccountingEvent]) -> None:
        for event in events:
            self.apply_one(event)

    def apply_one(self, event: AccountingEvent) -> None:
        kind = EVENT_OF_STATUS.get(int(event.status))
        if kind is None:
            return  # a tunnel type (RFC 2867): stored, no session change
        time = event.event_time
        if kind is Event.NAS_RESTART:
            for i, other in enumerate(self._rows):
                live = other.closed_by is None
                if live and other.nas_address == event.nas_address and other.start <= time:
                    self._close(i, CLOSED_BY_RESTART, time, kind)
            return
        if not _keyed(event):
            return
        assert event.session_id is not None  # for mypy: _keyed
        key = (event.nas_address, event.session_id)
        index = self._latest.get(key)
        row = None if index is None else self._rows[index]
        state = state_of(row, time)
        transition = TRANSITIONS[(state, kind)]
        if transition.step is Step.NEW:
            self._latest[key] = len(self._rows)
            self._rows.append(new_row(len(self._rows) + 1, event, kind))
        elif transition.step is Step.MERGE:
            assert row is not None and index is not None
            self._rows[index] = merged(row, event, transition.to)

    def expire_stale(
        self, now: float, default_interval: float, factor: float = STALE_FACTOR
    ) -> list[SessionRow]:
        """Close the live sessions silent for interim × factor seconds; the rows as now closed."""
        closed = []
        for i, row in enumerate(self._rows):
            interval = (
                row.interim_interval if row.interim_interval is not None else default_interval
            )
            if row.closed_by is None and row.last_update + factor * interval < now:
                closed.append(self._close(i, CLOSED_BY_STALE, row.last_update, Event.STALE_TIMEOUT))
        return closed

    def _close(self, index: int, closed_by: str, stop: float, event: Event) -> SessionRow:
        row = self._rows[index]
        transition = TRANSITIONS[(State.LIVE, event)]
        assert transition.step is Step.CLOSE
        row = replace(row, stop=stop, closed_by=closed_by)
        self._rows[index] = row
        return row

    def rows(self) -> list[SessionRow]:
        """Every session, live and closed, in the order they were made."""
        return list(self._rows)

    def usage(self, realm: str, month: str) -> UsageRow:
        first, after = month_bounds(month)
        realm = realm.lower()
        sessions = seconds = octets_in = octets_out = 0
        for row in self._rows:
            start, end = span(row)
            if row.realm != realm or end < first or start >= after:
                continue
            sessions += 1
            seconds += max(0, int(min(end, after) - max(start, first)))
            if end < after:
                octets_in += row.input_octets
                octets_out += row.output_octets
        return UsageRow(realm, month, sessions, seconds, octets_in, octets_out)

    def month_octets(self, realm: str, now: float) -> int:
        first, after = month_bounds(month_of(now))
        return sum(
            row.input_octets + row.output_octets
            for row in self._rows
            if row.realm == realm.lower() and first <= span(row)[1] < after
        )


def new_row(id_: int, e: AccountingEvent, kind: Event) -> SessionRow:
    stopped = kind is Event.STOP
    time = e.event_time
    assert e.realm is not None and e.username is not None and e.session_id is not None
    return SessionRow(
        id=id_,
        realm=e.realm,
        username=e.username,
        acct_session_id=e.session_id,
        nas_address=e.nas_address,
        nas_ip_address=e.nas_ip_address,
        nas_identifier=e.nas_identifier,
        lns=e.lns,
        framed_ip=e.framed_ip,
        start=time if kind is Event.START else time - (e.session_time or 0),
        last_update=time,
        stop=time if stopped else None,
        input_octets=e.input_octets,
        output_octets=e.output_octets,
        session_time=e.session_time,
        interim_interval=e.interim_interval or None,
        terminate_cause=e.terminate_cause if stopped else None,
        closed_by=CLOSED_BY_STOP if stopped else None,
    )


def merged(row: SessionRow, e: AccountingEvent, to: State) -> SessionRow:
    time = e.event_time
    seconds = row.session_time
    if e.session_time is not None and (seconds is None or e.session_time > seconds):
        seconds = e.session_time
    stop, closed_by = row.stop, row.closed_by
    if to is State.STOPPED:
        stop, closed_by = time, CLOSED_BY_STOP
    elif to is State.LIVE:  # live already, or reopened (SILENT -> LIVE)
        stop, closed_by = None, None
    return replace(
        row,
        input_octets=max(row.input_octets, e.input_octets),
        output_octets=max(row.output_octets, e.output_octets),
        session_time=seconds,
        last_update=max(row.last_update, time),
        interim_interval=e.interim_interval or row.interim_interval,
        lns=row.lns if row.lns is not None else e.lns,
        framed_ip=row.framed_ip if row.framed_ip is not None else e.framed_ip,
        terminate_cause=(
            e.terminate_cause
            if to is State.STOPPED and e.terminate_cause is not None
            else row.terminate_cause
        ),
        stop=stop,
        closed_by=closed_by,
    )
