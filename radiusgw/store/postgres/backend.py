"""The PostgreSQL ``Backend`` (``radiusgw.store.backend``): a fleet's shared store.

One ``PostgresBackend`` is one autocommit psycopg connection, owned by the thread that opened
it (as an SQLite backend is): the accounts (``accounts.PostgresAccountStore``, on the same
connection), the accounting with the node's journal positions and the quarantine, sessions and
admission (``sessions``), the proxy spool, LNS health and upstream status. It opens only a
database at this radiusgw's schema version (``schema.check_schema``, one sentence otherwise).

``node`` names this gateway in the rows where a node's identity matters: who received an
accounting record and last applied a session's record, journal positions per (node, journal),
the spool (each node replays only what it spooled), LNS health and upstream status as each node
sees them. ``lns_states`` shows, per LNS, the node's view checked most recently.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from radiusgw.domain import (
    AccountingRecord,
    AdmissionRequest,
    AdmissionResult,
    AuthLogBatch,
    AuthLogRow,
    LnsState,
    NodeRow,
    Quarantined,
    SessionRow,
    SpoolEntry,
    UpstreamRow,
    UsageRow,
)
from radiusgw.store import quarantine
from radiusgw.store.base import Accounts, AccountsThrough, accounting_values
from radiusgw.store.journal import Position
from radiusgw.store.postgres import authlog, nodes
from radiusgw.store.postgres.accounts import PostgresAccountStore
from radiusgw.store.postgres.connection import connect, translated
from radiusgw.store.postgres.schema import check_schema
from radiusgw.store.postgres.sessions import PostgresSessions, apply_events
from radiusgw.store.postgres.url import redacted
from radiusgw.store.session_events import session_events

if TYPE_CHECKING:
    from radiusgw.proxy.upstream import UpstreamStatus

_COPY_ACCOUNTING = (
    "COPY accounting (node, received, nas_address, realm, username, status_type, session_id,"
    " packet) FROM STDIN"
)
_QUARANTINE = (
    "INSERT INTO quarantine (node, quarantined, received, nas_address, realm, username,"
    " status_type, session_id, packet, reason, journal)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_QUARANTINED = (
    "SELECT id, quarantined, received, nas_address, realm, username, status_type, session_id,"
    " packet, reason, journal FROM quarantine ORDER BY id"
)


class _Refused(Exception):
    """A batch the database refused: rolled back, then applied apart (``quarantine``)."""


def refused(exc: BaseException) -> bool:
    """Whether ``exc``, raised applying records, refuses the data rather than the database:
    SQLSTATE classes 22 (data exception: a NUL in text, a number out of range) and 23 (a
    constraint), or a value psycopg cannot adapt."""
    return isinstance(
        exc, psycopg.DataError | psycopg.IntegrityError | OverflowError | ValueError | TypeError
    )


class PostgresBackend(AccountsThrough):
    """``Backend`` on a PostgreSQL database; see the module docstring."""

    def __init__(
        self,
        url: str,
        key_path: str | Path,
        *,
        read_only: bool = False,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.key_path = Path(key_path)
        self.node = socket.gethostname() if node is None else node
        self._read_only = read_only
        self._clock = clock
        self._connection = connect(url)
        self._accounts: PostgresAccountStore | None = None
        try:
            with translated(url):
                check_schema(self._connection, self.where)
            if not read_only:
                self.accounts  # noqa: B018 - opened now: a wrong key is refused on open
        except BaseException:
            self._connection.close()
            raise
        self._session_rules = PostgresSessions(self._connection, self.node)

    @property
    def _conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, opened anew first when the server dropped it (a restart, a cut
        network, a killed backend). The operation that found it broken has failed; the next
        one reconnects, so a node recovers with no operator action (issue 15.6). A server still
        down fails this operation too (``StoreError``), and the next tries again."""
        conn = self._connection
        if conn.broken:
            conn = connect(self.url)
            self._connection.close()
            self._connection = conn
            self._accounts = None  # both hold the connection: made again on it
            self._session_rules = PostgresSessions(conn, self.node)
        return conn

    @property
    def accounts(self) -> PostgresAccountStore:
        conn = self._conn  # first: a reconnect drops the accounts made on the old connection
        if self._accounts is None:
            self._accounts = PostgresAccountStore(
                self.url, self.key_path, read_only=self._read_only, clock=self._clock, conn=conn
            )
        return self._accounts

    @property
    def _sessions(self) -> PostgresSessions:
        self._conn  # noqa: B018 - reconnects first if the connection broke
        return self._session_rules

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts and their change feed: AccountsThrough, on this store ------------------------

    def _account_store(self) -> Accounts:
        return self.accounts

    # -- accounting ----------------------------------------------------------------------------

    def write_accounting(
        self, records: Sequence[AccountingRecord], journal: tuple[str, Position] | None = None
    ) -> list[Quarantined]:
        """``SqliteStore.write_accounting`` on PostgreSQL: the records, their session changes
        and this node's journal position in one transaction, committed before returning;
        records the database refuses are kept aside (``radiusgw.store.quarantine``)."""
        if not records and journal is None:
            return []
        events = session_events(records)  # parsed before the transaction
        try:
            with translated(self.url), self._conn.transaction():
                try:
                    self._insert_accounting(records, events)
                except Exception as exc:
                    if refused(exc):
                        raise _Refused from exc  # rolls back: applied apart below
                    raise
                self._record_position(journal)
            return []
        except _Refused:
            pass
        with translated(self.url), self._conn.transaction():
            left_out = quarantine.apply_apart(self._conn, records, self._insert_accounting, refused)
            kept = self._put_aside(left_out, None if journal is None else journal[0])
            self._record_position(journal)
        return kept

    def _insert_accounting(
        self, records: Sequence[AccountingRecord], events: Sequence[Any] | None = None
    ) -> None:
        if records:
            with self._conn.cursor() as cur, cur.copy(_COPY_ACCOUNTING) as copy:
                for r in records:
                    copy.write_row((self.node, *accounting_values(r)))
        apply_events(self._conn, self.node, session_events(records) if events is None else events)

    def _put_aside(
        self, left_out: Sequence[tuple[AccountingRecord, str]], journal: str | None
    ) -> list[Quarantined]:
        kept = []
        now = self._clock()
        for record, reason in left_out:
            entry = quarantine.entry_of(record, reason, journal, now)
            row = self._conn.execute(
                _QUARANTINE,
                (
                    self.node,
                    entry.quarantined,
                    entry.received,
                    entry.nas_address,
                    entry.realm,
                    entry.username,
                    entry.status_type,
                    entry.session_id,
                    entry.packet,
                    entry.reason,
                    entry.journal,
                ),
            ).fetchone()
            assert row is not None
            kept.append(replace(entry, id=int(row[0])))
        return kept

    def _record_position(self, journal: tuple[str, Position] | None) -> None:
        if journal is not None:
            name, (segment, offset) = journal
            self._conn.execute(
                "INSERT INTO journal_positions (node, name, segment, segment_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (node, name) DO UPDATE"
                " SET segment = excluded.segment, segment_offset = excluded.segment_offset",
                (self.node, name, segment, offset),
            )

    def journal_position(self, name: str) -> Position | None:
        """How far this node's journal ``name`` has been applied; None if never."""
        with translated(self.url):
            row = self._conn.execute(
                "SELECT segment, segment_offset FROM journal_positions"
                " WHERE node = %s AND name = %s",
                (self.node, name),
            ).fetchone()
        return None if row is None else Position(int(row[0]), int(row[1]))

    def count_accounting(self) -> int:
        """How many accounting records every node has applied (the quarantine apart)."""
        with translated(self.url):
            row = self._conn.execute("SELECT COUNT(*) FROM accounting").fetchone()
        return 0 if row is None else int(row[0])

    def quarantined(self) -> list[Quarantined]:
        """Every record kept aside by any node, oldest first."""
        with translated(self.url):
            rows = self._conn.execute(_QUARANTINED).fetchall()
        return [quarantine._entry(row) for row in rows]

    # -- sessions, admission and usage ---------------------------------------------------------

    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]:
        with translated(self.url):
            return self._sessions.admit(requests, now)

    def release(self, reservation_ids: Sequence[int]) -> int:
        with translated(self.url):
            return self._sessions.release(reservation_ids)

    def expire_stale(self, now: float, default_interval: float) -> list[SessionRow]:
        with translated(self.url):
            return self._sessions.expire_stale(now, default_interval)

    def live_sessions(self, realm: str | None = None) -> list[SessionRow]:
        with translated(self.url):
            return self._sessions.live_sessions(realm)

    def sessions(self, realm: str | None = None) -> list[SessionRow]:
        with translated(self.url):
            return self._sessions.sessions(realm)

    def count_live(
        self,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
        reserved_at: float | None = None,
    ) -> int:
        with translated(self.url):
            return self._sessions.count_live(
                realm=realm, username=username, lns=lns, reserved_at=reserved_at
            )

    def usage(self, realm: str, month: str) -> UsageRow:
        with translated(self.url):
            return self._sessions.usage(realm, month)

    def month_octets(self, realm: str, now: float) -> int:
        with translated(self.url):
            return self._sessions.month_octets(realm, now)

    # -- LNS health and upstream status --------------------------------------------------------

    def record_lns_health(
        self, realm: str, index: int, address: str, port: int, status: str, detail: str, now: float
    ) -> bool:
        """Store this node's probe outcome; True when its status changed (or is new)."""
        with translated(self.url), self._conn.transaction():
            row = self._conn.execute(
                "SELECT status, address, port, changed_at FROM lns_health"
                " WHERE node = %s AND realm = %s AND lns_index = %s FOR UPDATE",
                (self.node, realm, index),
            ).fetchone()
            changed = row is None or (row[0], row[1], row[2]) != (status, address, port)
            changed_at = now if changed or row is None else row[3]
            self._conn.execute(
                "INSERT INTO lns_health VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (node, realm, lns_index) DO UPDATE SET address = excluded.address,"
                " port = excluded.port, status = excluded.status, detail = excluded.detail,"
                " checked_at = excluded.checked_at, changed_at = excluded.changed_at",
                (self.node, realm, index, address, port, status, detail, now, changed_at),
            )
        return changed

    def lns_states(self) -> list[LnsState]:
        """Per LNS, the view of the node that checked it last."""
        with translated(self.url):
            rows = self._conn.execute(
                "SELECT DISTINCT ON (realm, lns_index) realm, lns_index, address, port, status,"
                " detail, checked_at, changed_at FROM lns_health"
                " ORDER BY realm, lns_index, checked_at DESC"
            ).fetchall()
        return [LnsState(*row) for row in rows]

    def publish_upstreams(
        self, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic_now: float
    ) -> None:
        """Replace this node's worker's rows; ``since`` comes in loop time, stored as unix time."""
        rows = {
            (s.realm, s.address, s.port, str(s.kind)): (
                self.node,
                worker,
                s.realm,
                s.address,
                s.port,
                str(s.kind),
                str(s.state),
                now - (monotonic_now - s.since),
                s.outstanding,
                s.sent,
                s.answered,
                s.unanswered,
                now,
            )
            for s in statuses
        }
        with translated(self.url), self._conn.transaction():
            self._conn.execute(
                "DELETE FROM upstream_status WHERE node = %s AND worker = %s", (self.node, worker)
            )
            if rows:
                with self._conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO upstream_status VALUES"
                        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        list(rows.values()),
                    )

    def upstream_rows(self) -> list[UpstreamRow]:
        """Every node's workers' rows, each naming its node."""
        with translated(self.url):
            rows = self._conn.execute(
                "SELECT worker, realm, address, port, kind, state, since, outstanding, sent,"
                " answered, unanswered, updated, node FROM upstream_status"
                " ORDER BY realm, address, port, kind, node, worker"
            ).fetchall()
        return [UpstreamRow(*row) for row in rows]

    # -- the proxy spool (this node's) ---------------------------------------------------------

    def spool_accounting(self, realm: str, packet: bytes, nas_address: str, received: float) -> int:
        return self.spool_accounting_many([(realm, packet, nas_address, received)])[0]

    def spool_accounting_many(self, entries: Sequence[tuple[str, bytes, str, float]]) -> list[int]:
        ids: list[int] = []
        if not entries:
            return ids
        with translated(self.url), self._conn.transaction():
            for realm, packet, nas_address, received in entries:
                row = self._conn.execute(
                    "INSERT INTO proxy_spool (node, realm, nas_address, received, packet)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (self.node, realm.lower(), nas_address, received, bytes(packet)),
                ).fetchone()
                assert row is not None
                ids.append(int(row[0]))
        return ids

    def spooled(self, realm: str, limit: int, *, after: int = 0) -> list[SpoolEntry]:
        with translated(self.url):
            rows = self._conn.execute(
                "SELECT id, realm, packet, nas_address, received FROM proxy_spool"
                " WHERE node = %s AND realm = %s AND id > %s ORDER BY id LIMIT %s",
                (self.node, realm.lower(), after, limit),
            ).fetchall()
        return [SpoolEntry(int(i), r, bytes(p), n, float(t)) for i, r, p, n, t in rows]

    def unspool(self, ids: Iterable[int]) -> int:
        values = [int(i) for i in ids]
        if not values:
            return 0
        with translated(self.url):
            cur = self._conn.execute("DELETE FROM proxy_spool WHERE id = ANY(%s)", (values,))
        return max(cur.rowcount, 0)

    # -- the fleet's heartbeats (radiusgw fleet status) ---------------------------------------

    def record_node(
        self,
        name: str,
        version: str,
        started: float,
        journal_backlog: int,
        last_applied: float | None,
        now: float,
    ) -> None:
        with translated(self.url):
            nodes.record_node(
                self._conn, name, version, started, journal_backlog, last_applied, now
            )

    def nodes(self) -> list[NodeRow]:
        with translated(self.url):
            return nodes.nodes(self._conn)

    # -- the authentication log (radiusgw.store.postgres.authlog) -----------------------------

    def write_auth_log(self, batches: Sequence[AuthLogBatch]) -> None:
        with translated(self.url):
            authlog.write(self._conn, batches)

    def auth_log(
        self,
        realm: str,
        *,
        user: str | None = None,
        since: float | None = None,
        until: float | None = None,
        result: str | None = None,
        limit: int | None = None,
    ) -> list[AuthLogRow]:
        with translated(self.url):
            return authlog.rows(
                self._conn, realm, user=user, since=since, until=until, result=result, limit=limit
            )

    def prune_auth_log(self, before: float) -> int:
        with translated(self.url):
            return authlog.prune(self._conn, before)

    def spool_counts(self) -> dict[str, int]:
        with translated(self.url):
            rows = self._conn.execute(
                "SELECT realm, COUNT(*) FROM proxy_spool WHERE node = %s GROUP BY realm",
                (self.node,),
            ).fetchall()
        return {r: int(n) for r, n in rows}


if TYPE_CHECKING:
    from radiusgw.store.backend import Backend

    _: type[Backend] = PostgresBackend  # mypy holds the class to the Protocol
