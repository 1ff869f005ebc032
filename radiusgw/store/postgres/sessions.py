"""Sessions from accounting, and admission against the session limits of 第14条2, in PostgreSQL.

The session rules are ``radiusgw.sessions``: here each event finds its key's latest row, takes
``state_of`` it, and does what ``TRANSITIONS`` says, building the row with the reference
model's own ``new_row``/``merged`` (nothing here restates a rule); the property test holds this
module to the model with the same random sequences as SQLite (tests/unit/test_sessions_rules.py).
The SQL that reads sessions (columns, the span's start, the usage sums) is SQLite's, shared.

Rules, in a fleet's terms:

- ``apply_events`` runs inside the caller's ``write_accounting`` transaction, so the accounting
  rows, the session changes and the node's journal position commit together. A session is
  owned by (NAS address, Acct-Session-Id), whichever node applies its records: the transaction
  first takes a transaction-scoped advisory lock per session key of the batch, in one statement
  and in sorted order (two nodes' batches cannot deadlock on them), so a Start applied by node A
  and a Stop applied by node B are applied one after the other to the same row. Then, per run of
  events between two Accounting-On/Off, one select reads the runs' rows, the rules are applied
  in Python, and the rows are written back by two statements whatever their number: one
  ``UPDATE`` joined to the changed rows as arrays (``unnest``, bound in binary: in text,
  psycopg's quoting of each element took more than the update), and one ``COPY`` of the new
  rows. ``node`` is the node that last applied a record of the row.
- Admission (``admit``) is exact across every worker of every node: one transaction takes a
  transaction-scoped advisory lock per realm with a realm or per-account limit and per LNS
  address with an LNS limit (sorted, in one statement), then, per request in order, counts
  live sessions plus unexpired reservations in one statement (one snapshot: a writer moving a
  reservation into a session is seen before or after, never half) and inserts the reservation.
  Advisory locks rather than ``SELECT ... FOR UPDATE`` on a per-realm row: realms live in the
  nodes' realm files, not in the database, so there is no row to lock until one would be
  created (and an LNS is one box across realms); the locks need none, cost no table writes,
  and do not block the accounting writers, who take none of them.
- A session's first record consumes the oldest unexpired reservation of its realm and user
  (preferring the same LNS), in the accounting transaction, as in SQLite (``SKIP LOCKED``: two
  nodes never both take one reservation). Not looked for while no reservation exists at all:
  the one a session would consume was committed before its Access-Accept left, so before the
  session's first record arrived, and the transaction's look sees it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg

from radiusgw.accounting import AccountingEvent
from radiusgw.domain import AdmissionRequest, AdmissionResult, SessionRow, UsageRow
from radiusgw.sessions import (
    CLOSED_BY_RESTART,
    CLOSED_BY_STALE,
    EVENT_OF_STATUS,
    STALE_FACTOR,
    TRANSITIONS,
    Event,
    Step,
    merged,
    month_bounds,
    month_of,
    new_row,
    state_of,
)
from radiusgw.store.sessions import (
    _COLUMNS,
    _END,
    _SPAN_START,
    _session_row,
    limited,
    refusal_of,
    usage_of,
)

Connection = psycopg.Connection[tuple[Any, ...]]
_LOW = 2**32 - 1  # RFC 2869 §5.1: the 32-bit counter; Gigawords are the count >> 32
_Key = tuple[str, str]

_WRITTEN = (
    "node, nas_address, acct_session_id, realm, username, lns, nas_ip_address, nas_identifier,"
    " framed_ip, start, last_update, stop, live, closed_by, input_gigawords, input_octets,"
    " output_gigawords, output_octets, session_time, interim_interval, terminate_cause"
)
# A run's rows go in two statements whatever its size (module docstring). Statements per row
# (``executemany``, pipelined) cost about 35 us of this process's CPU and 28 of the server's
# a record, against 19 and 14 (Start and Stop pairs in batches of 600: the commit's figures).
_COPY_NEW = f"COPY sessions ({_WRITTEN}) FROM STDIN"
# The types of _WRITTEN's columns, in order, then the row's id.
_TYPES = ("text",) * 9 + ("float8",) * 3 + ("boolean", "text") + ("bigint",) * 8
_FROM_ARRAYS = ", ".join(f"u.{column.strip()}" for column in _WRITTEN.split(","))
_UPDATE_MANY = (
    f"UPDATE sessions AS s SET ({_WRITTEN}) = ({_FROM_ARRAYS})"
    f" FROM unnest({', '.join(f'%b::{t}[]' for t in _TYPES)}) AS u({_WRITTEN}, id)"
    " WHERE s.id = u.id"
)
_LATEST = (
    f"SELECT DISTINCT ON (nas_address, acct_session_id) {_COLUMNS} FROM sessions"
    " WHERE (nas_address, acct_session_id) IN (SELECT * FROM unnest(%b::text[], %b::text[]))"
    " ORDER BY nas_address, acct_session_id, id DESC"
)
_RESTART_NAS = (
    "UPDATE sessions SET live = FALSE, stop = %s, closed_by = %s, node = %s"
    " WHERE nas_address = %s AND live AND start <= %s"
)
_CONSUME = (
    "DELETE FROM session_reservations WHERE id = (SELECT id FROM session_reservations"
    " WHERE realm = %s AND username = %s AND expires > %s"
    " ORDER BY lns IS DISTINCT FROM %s::text, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
)
_ANY_RESERVATION = "SELECT EXISTS (SELECT 1 FROM session_reservations)"
_LOCK = "SELECT pg_advisory_xact_lock(k) FROM unnest(%b::bigint[]) AS u(k)"


def lock_id(name: str) -> int:
    """A stable signed 64-bit advisory lock id for ``name`` (the same on every node)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def lock_all(conn: Connection, names: set[str]) -> None:
    """Take the advisory locks of ``names`` for the transaction, in one order for every node."""
    if names:
        conn.execute(_LOCK, (sorted(lock_id(name) for name in names),))


def apply_events(conn: Connection, node: str, events: Sequence[AccountingEvent]) -> int:
    """Apply events inside the caller's transaction as if one by one, in order; how many the
    rules used (module docstring)."""
    run: list[tuple[AccountingEvent, Event]] = []
    used = 0
    lock_all(
        conn,
        {
            f"radiusgw.session:{e.nas_address}\x1f{e.session_id}"
            for e in events
            if e.session_id is not None and e.realm is not None and e.username is not None
        },
    )
    # A reservation to consume is seen, if there is one (module docstring).
    consume = conn.execute(_ANY_RESERVATION).fetchone() == (True,)
    for event in events:
        kind = EVENT_OF_STATUS.get(int(event.status))
        if kind is None:
            continue  # a tunnel type (RFC 2867): stored, no session change
        if kind is Event.NAS_RESTART:
            _apply_run(conn, node, run, consume)
            run = []
            time = event.event_time
            conn.execute(_RESTART_NAS, (time, CLOSED_BY_RESTART, node, event.nas_address, time))
            used += 1
        elif (
            event.session_id is not None and event.realm is not None and event.username is not None
        ):
            run.append((event, kind))
            used += 1
    _apply_run(conn, node, run, consume)
    return used


def _apply_run(
    conn: Connection, node: str, run: Sequence[tuple[AccountingEvent, Event]], consume: bool
) -> None:
    """Session events, none a NAS restart: see the module docstring. ``consume``: whether any
    reservation exists for their new sessions to consume."""
    if not run:
        return
    keys = sorted({(e.nas_address, str(e.session_id)) for e, _ in run})
    latest: dict[_Key, SessionRow] = {}
    for values in conn.execute(_LATEST, ([k[0] for k in keys], [k[1] for k in keys])):
        row = _session_row(values)
        latest[(row.nas_address, row.acct_session_id)] = row
    made: dict[_Key, int] = {}  # key -> index in ``new`` of the row this run made
    new: list[SessionRow] = []
    changed: dict[int, SessionRow] = {}  # id -> an existing row as changed
    taken: list[AccountingEvent] = []  # the events that made a row: they consume reservations
    for event, kind in run:
        key = (event.nas_address, str(event.session_id))
        found = latest.get(key)
        transition = TRANSITIONS[(state_of(found, event.event_time), kind)]
        if transition.step is Step.NEW:
            row = new_row(0, event, kind)
            made[key] = len(new)
            new.append(row)
            taken.append(event)
        elif transition.step is Step.MERGE:
            assert found is not None
            row = merged(found, event, transition.to)
            if key in made:
                new[made[key]] = row
            else:
                changed[row.id] = row
        else:
            continue
        latest[key] = row
    with conn.cursor() as cur:
        if changed:  # first: a row closed here frees its key's live slot (sessions_live_key)
            rows = [(*_values(node, r), r.id) for r in changed.values()]
            cur.execute(_UPDATE_MANY, [list(column) for column in zip(*rows, strict=True)])
        if new:  # in event order: ids follow it
            with cur.copy(_COPY_NEW) as copy:
                for r in new:
                    copy.write_row(_values(node, r))
        if taken and consume:
            cur.executemany(_CONSUME, [(e.realm, e.username, e.received, e.lns) for e in taken])


def _values(node: str, r: SessionRow) -> tuple[object, ...]:
    return (
        node, r.nas_address, r.acct_session_id, r.realm, r.username, r.lns, r.nas_ip_address,
        r.nas_identifier, r.framed_ip, r.start, r.last_update, r.stop, r.closed_by is None,
        r.closed_by, r.input_octets >> 32, r.input_octets & _LOW, r.output_octets >> 32,
        r.output_octets & _LOW, r.session_time, r.interim_interval, r.terminate_cause,
    )  # fmt: skip


class PostgresSessions:
    """Admission, expiry and queries on a ``PostgresBackend``'s connection (one thread's)."""

    def __init__(self, conn: Connection, node: str) -> None:
        self._conn = conn
        self.node = node

    # -- admission ----------------------------------------------------------------------------

    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]:
        """Decide ``requests`` in order in one transaction; see the module docstring."""
        names: set[str] = set()
        for r in requests:
            if r.realm_max is not None or r.account_max is not None:
                names.add(f"radiusgw.admit.realm:{r.realm.lower()}")
            if r.lns is not None and r.lns_max is not None:
                names.add(f"radiusgw.admit.lns:{r.lns}")
        with self._conn.transaction():
            lock_all(self._conn, names)
            self._conn.execute("DELETE FROM session_reservations WHERE expires <= %s", (now,))
            return [self._admit(r, now) for r in requests]

    def _admit(self, r: AdmissionRequest, now: float) -> AdmissionResult:
        refusal = refusal_of(r, lambda **where: self._count(now, **where))
        if refusal is not None:
            return refusal
        if not limited(r):
            return AdmissionResult(True)
        row = self._conn.execute(
            "INSERT INTO session_reservations (node, realm, username, lns, created, expires)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (self.node, r.realm.lower(), r.username, r.lns, now, now + r.reservation_ttl),
        ).fetchone()
        assert row is not None
        return AdmissionResult(True, reservation_id=int(row[0]))

    def release(self, reservation_ids: Sequence[int]) -> int:
        """Give back reservations whose Access-Accept was never sent; how many there were."""
        cur = self._conn.execute(
            "DELETE FROM session_reservations WHERE id = ANY(%s)",
            ([int(i) for i in reservation_ids],),
        )
        return max(cur.rowcount, 0)

    def _count(
        self,
        reserved_at: float | None,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
    ) -> int:
        """Live sessions, plus reservations unexpired at ``reserved_at`` unless it is None: one
        statement, so one snapshot."""
        where: list[str] = []
        args: list[object] = []
        for column, value in (("realm", realm), ("username", username), ("lns", lns)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        sql = " AND ".join(where) or "TRUE"
        query = f"SELECT (SELECT COUNT(*) FROM sessions WHERE {sql} AND live)"
        if reserved_at is not None:
            query += f" + (SELECT COUNT(*) FROM session_reservations WHERE {sql} AND expires > %s)"
            args = [*args, *args, reserved_at]
        row = self._conn.execute(query, args).fetchone()
        return 0 if row is None else int(row[0])

    # -- expiry -------------------------------------------------------------------------------

    def expire_stale(
        self, now: float, default_interval: float, factor: float = STALE_FACTOR
    ) -> list[SessionRow]:
        """Close live sessions silent for interim × factor seconds; the rows as now closed."""
        rows = self._conn.execute(
            "UPDATE sessions SET live = FALSE, stop = last_update, closed_by = %s, node = %s"
            " WHERE live AND last_update + %s * COALESCE(interim_interval, %s) < %s"
            f" RETURNING {_COLUMNS}",
            (CLOSED_BY_STALE, self.node, factor, default_interval, now),
        ).fetchall()
        return [_session_row(row) for row in rows]

    # -- queries ------------------------------------------------------------------------------

    def live_sessions(self, realm: str | None = None) -> list[SessionRow]:
        where = "live" if realm is None else "realm = %s AND live"
        args = () if realm is None else (realm.lower(),)
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE {where} ORDER BY start, id", args
        ).fetchall()
        return [_session_row(row) for row in rows]

    def sessions(self, realm: str | None = None) -> list[SessionRow]:
        where = "TRUE" if realm is None else "realm = %s"
        args = () if realm is None else (realm.lower(),)
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
        return self._count(
            reserved_at,
            realm=None if realm is None else realm.lower(),
            username=username,
            lns=lns,
        )

    def usage(self, realm: str, month: str) -> UsageRow:
        first, after = month_bounds(month)
        realm = realm.lower()
        rows = self._conn.execute(
            f"SELECT {_SPAN_START}, {_END}, input_gigawords, input_octets, output_gigawords,"
            " output_octets FROM sessions WHERE realm = %s"
            f" AND {_END} >= %s AND {_SPAN_START} < %s",
            (realm, first, after),
        ).fetchall()
        return usage_of(realm, month, rows)

    def month_octets(self, realm: str, now: float) -> int:
        first, after = month_bounds(month_of(now))
        row = self._conn.execute(
            "SELECT COALESCE(SUM(input_gigawords + output_gigawords), 0),"
            " COALESCE(SUM(input_octets + output_octets), 0) FROM sessions"
            f" WHERE realm = %s AND {_END} >= %s AND {_END} < %s",
            (realm.lower(), first, after),
        ).fetchone()
        assert row is not None
        return int(row[0]) * 2**32 + int(row[1])
