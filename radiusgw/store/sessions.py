"""Sessions from accounting, and admission against the session limits of 第14条2, in SQLite.

Two tables in the gateway's database file, created here (``ensure_schema``) like the LNS health
table: ``sessions`` (live and closed sessions) and ``session_reservations`` (slots held from an
Access-Accept until the session's Start). ``SqliteStore.write_accounting`` parses its records with
``session_events`` and runs ``apply_events`` inside its transaction (both in
``radiusgw.store.session_events``, compiled), so the accounting rows and the session changes
they cause are committed together, durably, before any Accounting-Response goes out (RFC 2866
§2).

The session rules (what Start, Interim-Update, Stop, Accounting-On/Off and the stale timeout do
to a session), the session-time rule and the usage rule are ``radiusgw.sessions``: its
transition table is what the SQL here and in ``radiusgw.store.session_events`` implements, the
status constants there are read from it, and a property test holds the two to its reference
model (tests/unit/test_sessions_rules.py).
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

from radiusgw.domain import (
    AdmissionRequest,
    AdmissionResult,
    SessionRow,
    UsageRow,
)
from radiusgw.errors import StoreError
from radiusgw.sessions import (
    STALE_FACTOR,
    month_bounds,
    month_of,
)
from radiusgw.store.connection import (
    BUSY_TIMEOUT,
    SqliteConnection,
    connect_read_only,
    use_wal,
)
from radiusgw.store.session_events import _LOW, _STALE

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
    # The limits of 第14条2 count only live sessions by user and by LNS: these index those
    # alone (store schema 8), and by LNS only VPDN's. Over every session, the user index took
    # a random leaf of a tree that grows with the table for each Start and each Stop: 45-51 us
    # of the applier a record against 19-22 with 310,000 sessions kept; the group and proxy
    # sessions out of the LNS index, about 1 us more (the commits that made them so). A count
    # by LNS (``lns = ?``) implies ``lns IS NOT NULL``, so SQLite still takes the index.
    "CREATE INDEX IF NOT EXISTS sessions_live_user ON sessions (realm, username) WHERE live = 1",
    "CREATE INDEX IF NOT EXISTS sessions_live_lns ON sessions (lns)"
    " WHERE live = 1 AND lns IS NOT NULL",
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
# The session-time rule of the module docstring, the one statement of it: where a session's
# span begins. Exact (no end - (end - start) in floating point) when the NAS reported no time.
_END = "COALESCE(stop, last_update)"
_SPAN_START = f"(CASE WHEN session_time IS NULL THEN start ELSE {_END} - session_time END)"


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
