"""Sessions from accounting, and admission against the session limits of 第14条2, in SQLite.

Two tables in the gateway's database file, created here (``ensure_schema``) like the LNS health
table: ``sessions`` (live and closed sessions) and ``session_reservations`` (slots held from an
Access-Accept until the session's Start). ``SqliteStore.write_accounting`` parses its records with
``session_events`` and runs ``apply_events`` inside its transaction, so the accounting rows and
the session changes they cause are committed together, durably, before any Accounting-Response
goes out (RFC 2866 §2).

The session rules (what Start, Interim-Update, Stop, Accounting-On/Off and the stale timeout do
to a session), the session-time rule and the usage rule are ``radiusgw.sessions``: its
transition table is what the SQL here implements, the constants below are read from it, and a
property test holds this module to its reference model (tests/unit/test_sessions_rules.py).
Here, in SQLite's terms: octets are kept as Gigawords and the 32-bit counter in two columns
(``input_gigawords``, ``input_octets``), so every count is exact (the sum does not fit SQLite's
signed 64-bit integer) and a sum over many sessions is two sums that cannot overflow;
``session_time`` is NULL while the NAS has reported none; ``_SPAN_START`` states the
session-time rule, once, in SQL; nothing else here computes a session's time.

Admission rules (``SessionTable.admit``), exact across worker processes: one ``BEGIN IMMEDIATE``
transaction evaluates its requests in order, so SQLite's single write lock serialises every
process. A count is the live sessions plus the unexpired reservations of the realm, the realm's
user, or the LNS (by address, across realms: one box). An admitted request under a limit gets a
reservation, which the session's first record consumes in the write_accounting transaction (the
oldest one of that realm and user, preferring the same LNS); unconsumed ones expire after their
ttl and are deleted lazily. A request with no limit set is admitted without a reservation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from radiusgw.accounting import (
    EVENT_TYPES,
    AccountingError,
    AccountingEvent,
    from_record,
)
from radiusgw.domain import (
    AccountingRecord,
    AdmissionRequest,
    AdmissionResult,
    SessionRow,
    UsageRow,
)
from radiusgw.errors import StoreError
from radiusgw.sessions import (
    CLOSED_BY_RESTART,
    CLOSED_BY_STALE,
    CLOSED_BY_STOP,
    STALE_FACTOR,
    TRANSITIONS,
    Event,
    State,
    Step,
    Transition,
    month_bounds,
    month_of,
    statuses_where,
)
from radiusgw.store.connection import (
    BUSY_TIMEOUT,
    SqliteConnection,
    connect_read_only,
    use_wal,
)

_STOP, _RESTART, _STALE = CLOSED_BY_STOP, CLOSED_BY_RESTART, CLOSED_BY_STALE


def _only(types: frozenset[int]) -> int:
    (status,) = types  # the SQL below names one status type where the table names one
    return status


# The SQL below implements the transition table (radiusgw.sessions) and takes its status types
# from it; a table that said otherwise fails here, at import. The type that an existing row
# ignores (a duplicate Start); the one that makes a row stopped, new or not (a Stop); those
# that close every live session of their NAS that began at or before them (On/Off).
_START_TYPE = _only(statuses_where(State.LIVE, Transition(Step.IGNORE, State.LIVE)))
_STOP_TYPE = _only(statuses_where(State.ABSENT, Transition(Step.NEW, State.STOPPED)))
_RESTART_TYPES = statuses_where(State.LIVE, Transition(Step.CLOSE, State.CLOSED))
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

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY,
        nas_address TEXT NOT NULL,
        acct_session_id TEXT NOT NULL,
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        lns TEXT,
        nas_ip_address TEXT,
        nas_identifier TEXT,
        framed_ip TEXT,
        start REAL NOT NULL,
        last_update REAL NOT NULL,
        stop REAL,
        live INTEGER NOT NULL,
        closed_by TEXT,
        input_gigawords INTEGER NOT NULL,
        input_octets INTEGER NOT NULL,
        output_gigawords INTEGER NOT NULL,
        output_octets INTEGER NOT NULL,
        session_time INTEGER,
        interim_interval INTEGER,
        terminate_cause INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS sessions_key ON sessions (nas_address, acct_session_id)",
    "CREATE INDEX IF NOT EXISTS sessions_realm ON sessions (realm, live, stop)",
    "CREATE INDEX IF NOT EXISTS sessions_user ON sessions (realm, username, live)",
    "CREATE INDEX IF NOT EXISTS sessions_lns ON sessions (lns, live)",
    # Accounting-On/Off and expiry walk only live rows; the column never changes on an update.
    "CREATE INDEX IF NOT EXISTS sessions_live ON sessions (nas_address) WHERE live = 1",
    """CREATE TABLE IF NOT EXISTS session_reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        lns TEXT,
        created REAL NOT NULL,
        expires REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS reservations_user ON session_reservations (realm, username)",
    "CREATE INDEX IF NOT EXISTS reservations_lns ON session_reservations (lns)",
    "CREATE INDEX IF NOT EXISTS reservations_expires ON session_reservations (expires)",
)

_COLUMNS = (
    "id, realm, username, acct_session_id, nas_address, nas_ip_address, nas_identifier, lns,"
    " framed_ip, start, last_update, stop, input_gigawords, input_octets, output_gigawords,"
    " output_octets, session_time, interim_interval, terminate_cause, closed_by"
)
_INSERT = (
    "INSERT INTO sessions (id, nas_address, acct_session_id, realm, username, lns,"
    " nas_ip_address, nas_identifier, framed_ip, start, last_update, stop, live, closed_by,"
    " input_gigawords, input_octets, output_gigawords, output_octets, session_time,"
    " interim_interval, terminate_cause)"
)
# The session-time rule of the module docstring, the one statement of it: where a session's
# span begins. Exact (no end - (end - start) in floating point) when the NAS reported no time.
_END = "COALESCE(stop, last_update)"
_SPAN_START = f"(CASE WHEN session_time IS NULL THEN start ELSE {_END} - session_time END)"
# One statement (``_UPSERT``) per session event, on the accounting writer's hot path, where
# the cost is sqlite3's per-row step and per-parameter binding rather than SQLite's b-trees:
# so one statement, not an insert and an update, and 17 parameters (``_params``), numbered:
# ?1 status, ?2 nas_address, ?3 acct_session_id, ?4 realm, ?5 username, ?6 lns,
# ?7 nas_ip_address, ?8 nas_identifier, ?9 framed_ip, ?10 event time, ?11 input_octets and
# ?12 output_octets (the low 32 bits), ?13 session_time (-1 if absent), ?14 interim_interval,
# ?15 terminate_cause, ?16 input_gigawords, ?17 output_gigawords.
# None is never bound: sqlite3 binds it only after a failed adapter look-up, several times the
# cost of an int. An absent value is bound as 0 (``_NONE``; SQL never finds an integer equal
# to a text, and an interim of 0 means absent too) or, for a session time or a terminate
# cause, as -1 (the attributes are unsigned), and NULLIF turns it back into NULL.
_NONE = 0
_LOW = 2**32 - 1  # RFC 2869 §5.1: Acct-Input-Octets is the count modulo 2^32


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
# Start was lost makes it closed at once).
_ROW_ID = (
    f"(SELECT CASE WHEN NOT COALESCE(closed_by IS '{_RESTART}' AND stop < ?10, 1) THEN id END"
    " FROM sessions WHERE nas_address = ?2 AND acct_session_id = ?3 ORDER BY id DESC LIMIT 1)"
)
# Merging, unless the row is final (stopped) or the event a duplicate Start: counters take
# the maximum; details keep the first value seen, the interim the latest; a Stop closes it; an
# Interim-Update after its stale closure reopens it. Every right-hand side reads the row as it
# was; ``excluded`` is the row the event would have made.
_REOPEN = (
    f"(excluded.closed_by IS NULL AND closed_by IS '{_STALE}' AND excluded.last_update > stop)"
)
_UPSERT = (
    f"{_INSERT} VALUES ({_ROW_ID}, ?2, ?3, ?4, ?5, NULLIF(?6, 0), NULLIF(?7, 0), NULLIF(?8, 0),"
    f" NULLIF(?9, 0), CASE ?1 WHEN {_START_TYPE} THEN ?10 ELSE ?10 - MAX(?13, 0) END, ?10,"
    f" CASE ?1 WHEN {_STOP_TYPE} THEN ?10 END, ?1 <> {_STOP_TYPE},"
    f" CASE ?1 WHEN {_STOP_TYPE} THEN '{_STOP}' END, ?16, ?11, ?17, ?12, NULLIF(?13, -1),"
    f" NULLIF(?14, 0), CASE ?1 WHEN {_STOP_TYPE} THEN NULLIF(?15, -1) END)"
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
    f" WHERE ?1 <> {_START_TYPE} AND closed_by IS NOT '{_STOP}'"
)
_RESTART_NAS = (
    "UPDATE sessions SET live = 0, stop = ?, closed_by = ?"
    " WHERE nas_address = ? AND live = 1 AND start <= ?"
)
_CONSUME = (
    "DELETE FROM session_reservations WHERE id = (SELECT id FROM session_reservations"
    " WHERE realm = ? AND username = ? AND expires > ?"
    " ORDER BY lns IS NOT NULLIF(?, 0), id LIMIT 1)"
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes if missing (each statement is idempotent)."""
    for statement in SCHEMA:
        conn.execute(statement)


def migrate_to_v4(conn: sqlite3.Connection) -> None:
    """Schema version 4, inside the store's migration transaction: octets as (Gigawords,
    32-bit count) and ``session_time`` NULL when none was reported (module rules).

    SQLite cannot change a column's constraints in place, so the table is copied into its new
    shape (``ensure_schema`` then makes the new indexes). Its counts all fit in a signed 64-bit
    integer (no larger one could be stored), so they split exactly; a session time of 0 was
    also what "none reported" looked like, and becomes NULL.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    if not columns or "input_gigawords" in columns:
        return  # a new database: ``ensure_schema`` creates the table as it is now
    conn.execute(SCHEMA[0].replace("sessions (", "sessions_v4 (", 1))
    kept = (
        "id, nas_address, acct_session_id, realm, username, lns, nas_ip_address,"
        " nas_identifier, framed_ip, start, last_update, stop, live, closed_by"
    )
    conn.execute(
        f"INSERT INTO sessions_v4 ({kept}, input_gigawords, input_octets, output_gigawords,"
        " output_octets, session_time, interim_interval, terminate_cause)"
        f" SELECT {kept}, input_octets >> 32, input_octets & {_LOW}, output_octets >> 32,"
        f" output_octets & {_LOW}, NULLIF(session_time, 0), interim_interval, terminate_cause"
        " FROM sessions"
    )
    conn.execute("DROP TABLE sessions")
    conn.execute("ALTER TABLE sessions_v4 RENAME TO sessions")
    ensure_schema(conn)


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
    session key and none is an Accounting-On/Off, and a run is one ``executemany`` of
    ``_UPSERT``, which takes its events in order as one by one would. Distinct keys let the
    run's new rows name the events that made them, which then consume their reservations.
    """
    if not events:
        return 0
    # Read under the caller's write lock: no reservation can appear before the commit.
    consume = conn.execute("SELECT EXISTS (SELECT 1 FROM session_reservations)").fetchone()[0]
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
    if not consume:
        conn.executemany(_UPSERT, [_params(event) for event in run])
        return
    # SQLite gives a new row the largest id + 1 (below 2**63 - 1: ~9e18 sessions), so the rows
    # after the largest are the run's new sessions, in event order; no two events of a run
    # share a key, so each row names the event that made it.
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()[0]
    conn.executemany(_UPSERT, [_params(event) for event in run])
    made = {(event.nas_address, event.session_id): event for event in run}
    new = conn.execute(
        "SELECT nas_address, acct_session_id FROM sessions WHERE id > ? ORDER BY id", (last,)
    )
    taken = [made[key] for key in new.fetchall()]
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


def limited(r: AdmissionRequest) -> bool:
    """Whether any limit applies to ``r``: one with none is admitted without a reservation."""
    return not (
        r.realm_max is None and r.account_max is None and (r.lns is None or r.lns_max is None)
    )


def refusal_of(r: AdmissionRequest, count: Callable[..., int]) -> AdmissionResult | None:
    """The refusal of ``r`` by the admission rules of the module docstring, None if it is
    admitted; ``count(realm=, username=, lns=)`` counts live sessions plus unexpired
    reservations (any backend's, inside its serialised transaction)."""
    if not limited(r):
        return None
    realm = r.realm.lower()
    if r.realm_max is not None and count(realm=realm) >= r.realm_max:
        return AdmissionResult(False, f"realm session limit {r.realm_max} reached (max_sessions)")
    if r.account_max is not None:
        n = count(realm=realm, username=r.username)
        if n >= r.account_max:
            noun = "session" if n == 1 else "sessions"
            return AdmissionResult(False, f"user already has {n} {noun} (max_sessions_per_account)")
    if r.lns is not None and r.lns_max is not None and count(lns=r.lns) >= r.lns_max:
        return AdmissionResult(
            False, f"LNS {r.lns} is full (max_sessions {r.lns_max})", lns_full=True
        )
    return None


def usage_of(realm: str, month: str, rows: Iterable[Sequence[Any]]) -> UsageRow:
    """The usage rule (radiusgw.sessions) over rows of (span start, end, input_gigawords,
    input_octets, output_gigawords, output_octets) of the sessions whose span meets ``month``."""
    first, after = month_bounds(month)
    sessions = seconds = octets_in = octets_out = 0
    for start, end, in_giga, in_low, out_giga, out_low in rows:
        sessions += 1
        seconds += max(0, int(min(end, after) - max(start, first)))
        if end < after:
            octets_in += in_giga << 32 | in_low
            octets_out += out_giga << 32 | out_low
    return UsageRow(realm, month, sessions, seconds, octets_in, octets_out)


def _session_row(row: Sequence[Any]) -> SessionRow:
    """A ``SessionRow`` of a row of ``_COLUMNS``: each count made whole from its two columns."""
    (i, realm, user, sid, nas, nas_ip, nas_id, lns, framed_ip, start, last, stop) = row[:12]
    in_giga, in_low, out_giga, out_low, seconds, interim, cause, closed_by = row[12:]
    return SessionRow(
        i, realm, user, sid, nas, nas_ip, nas_id, lns, framed_ip, start, last, stop,
        in_giga << 32 | in_low, out_giga << 32 | out_low, seconds, interim, cause, closed_by,
    )  # fmt: skip


class SessionTable(SqliteConnection):
    """Admission, expiry and queries on their own connection, owned by one thread.

    ``synchronous=NORMAL`` here: in WAL mode a commit still survives a killed process, and what
    a power cut could lose is only reservations (they expire anyway) and stale closures (made
    again on the next run). The session changes that come from accounting are committed by the
    store's ``synchronous=FULL`` connection inside ``write_accounting``.
    """

    def __init__(self, db_path: Path | str, *, read_only: bool = False) -> None:
        """``read_only``: for the commands that only read (``connect_read_only``)."""
        if read_only:
            self.db_path = Path(db_path)
            self._conn = connect_read_only(self.db_path)
            # (Imported here: the store's module imports this one.)
            from radiusgw.store.sqlite import check_version

            try:
                check_version(self._conn, self.db_path)
            except StoreError:
                self._conn.close()
                raise
            return
        self._connect(db_path)
        try:
            with self._translated():
                use_wal(self._conn)
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
                if self._conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    # The store creates and versions the file; tables made here first would
                    # make it refuse the file as "a database of something else".
                    raise StoreError(f"{self.db_path} is not a radiusgw database")
                # A file of an older radiusgw, read before the upgraded server opened it.
                # (Imported here: the store's module imports this one.)
                from radiusgw.store.sqlite import migrate

                migrate(self._conn, self.db_path)
                ensure_schema(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    # -- admission ----------------------------------------------------------------------------

    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]:
        """Decide ``requests`` in order in one write transaction; see the module docstring."""
        with self._transaction():
            self._conn.execute("DELETE FROM session_reservations WHERE expires <= ?", (now,))
            return [self._admit(request, now) for request in requests]

    def _admit(self, r: AdmissionRequest, now: float) -> AdmissionResult:
        realm = r.realm.lower()
        refusal = refusal_of(r, lambda **where: self._count(now, **where))
        if refusal is not None:
            return refusal
        if not limited(r):
            return AdmissionResult(True)
        cur = self._conn.execute(
            "INSERT INTO session_reservations (realm, username, lns, created, expires)"
            " VALUES (?, ?, ?, ?, ?)",
            (realm, r.username, r.lns, now, now + r.reservation_ttl),
        )
        return AdmissionResult(True, reservation_id=cur.lastrowid)

    def release(self, reservation_ids: Sequence[int]) -> int:
        """Give back reservations whose Access-Accept was never sent; how many there were."""
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "DELETE FROM session_reservations WHERE id = ?", [(i,) for i in reservation_ids]
            )
            return self._conn.total_changes - before

    def _count(
        self,
        reserved_at: float | None,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
    ) -> int:
        """Live sessions, plus reservations unexpired at ``reserved_at`` unless it is None."""
        where: list[str] = []
        args: list[object] = []
        for column, value in (("realm", realm), ("username", username), ("lns", lns)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = " AND ".join(where) or "1"
        n = self._conn.execute(f"SELECT COUNT(*) FROM sessions WHERE {sql} AND live = 1", args)
        total = int(n.fetchone()[0])
        if reserved_at is not None:
            n = self._conn.execute(
                f"SELECT COUNT(*) FROM session_reservations WHERE {sql} AND expires > ?",
                [*args, reserved_at],
            )
            total += int(n.fetchone()[0])
        return total

    # -- expiry -------------------------------------------------------------------------------

    def expire_stale(
        self, now: float, default_interval: float, factor: float = STALE_FACTOR
    ) -> list[SessionRow]:
        """Close live sessions silent for interim × factor seconds; the rows as now closed."""
        with self._transaction():
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE live = 1"
                " AND last_update + ? * COALESCE(interim_interval, ?) < ?",
                (factor, default_interval, now),
            ).fetchall()
            self._conn.executemany(
                "UPDATE sessions SET live = 0, stop = last_update, closed_by = ? WHERE id = ?",
                [(_STALE, row[0]) for row in rows],
            )
        closed = (_session_row(row) for row in rows)
        return [replace(r, stop=r.last_update, closed_by=_STALE) for r in closed]

    # -- queries ------------------------------------------------------------------------------

    def live_sessions(self, realm: str | None = None) -> list[SessionRow]:
        """Live sessions (of ``realm``), oldest first."""
        where = "live = 1" if realm is None else "realm = ? AND live = 1"
        args = () if realm is None else (realm.lower(),)
        with self._translated():
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE {where} ORDER BY start, id", args
            ).fetchall()
        return [_session_row(row) for row in rows]

    def sessions(self, realm: str | None = None) -> list[SessionRow]:
        """Every session (of ``realm``), live and closed, in the order they were made."""
        where = "1" if realm is None else "realm = ?"
        args = () if realm is None else (realm.lower(),)
        with self._translated():
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM sessions WHERE {where} ORDER BY id", args
            ).fetchall()
        return [_session_row(row) for row in rows]

    def count_live(
        self,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
        reserved_at: float | None = None,
    ) -> int:
        """Live sessions matching every filter given.

        With ``reserved_at``, the reservations unexpired at that time count too: what admission
        counts, and what a least-sessions balancer should see.
        """
        with self._translated():
            return self._count(
                reserved_at,
                realm=None if realm is None else realm.lower(),
                username=username,
                lns=lns,
            )

    def usage(self, realm: str, month: str) -> UsageRow:
        """Sessions, time and octets of ``realm`` in ``month`` ('YYYY-MM', UTC): module rule."""
        first, after = month_bounds(month)
        realm = realm.lower()
        # Two selects, one per index range of (realm, live, stop); each row's octets whole.
        columns = (
            f"{_SPAN_START}, {_END}, input_gigawords, input_octets, output_gigawords,"
            " output_octets FROM sessions"
        )
        with self._translated():
            rows = self._conn.execute(
                f"SELECT {columns} WHERE realm = ? AND live = 0 AND stop >= ?"
                f" AND {_SPAN_START} < ? UNION ALL SELECT {columns}"
                f" WHERE realm = ? AND live = 1 AND last_update >= ? AND {_SPAN_START} < ?",
                (realm, first, after, realm, first, after),
            ).fetchall()
        return usage_of(realm, month, rows)

    def month_octets(self, realm: str, now: float) -> int:
        """Input plus output octets of ``realm`` in the month of ``now``: the traffic quota's."""
        first, after = month_bounds(month_of(now))
        with self._translated():
            # Two sums that cannot overflow: a row adds below 2^33 to each (module rule).
            giga, low = self._conn.execute(
                "SELECT COALESCE(SUM(input_gigawords + output_gigawords), 0),"
                " COALESCE(SUM(input_octets + output_octets), 0) FROM sessions"
                " WHERE realm = ? AND ((live = 0 AND stop >= ? AND stop < ?)"
                " OR (live = 1 AND last_update >= ? AND last_update < ?))",
                (realm.lower(), first, after, first, after),
            ).fetchone()
        return int(giga) * 2**32 + int(low)
