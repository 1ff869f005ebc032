"""The SQLite ``Backend`` (``radiusgw.store.backend``): the embedded default, one file.

A thin object over the SQLite classes that keep their own rules (``radiusgw.store.sqlite``:
accounts, accounting, the spool; ``radiusgw.store.sessions``: sessions and admission;
``radiusgw.store.health``, ``radiusgw.store.upstreams``, ``radiusgw.store.quarantine``). Each
is its own connection, opened on first use by the thread that owns this object, so a thread
that only admits opens no account store, and ``session list`` needs no key file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from radiusgw.sessions import STALE_FACTOR
from radiusgw.store.authlog import AuthLogTable
from radiusgw.store.base import Accounts, AccountsThrough
from radiusgw.store.health import HealthTable
from radiusgw.store.nodes import NodeTable
from radiusgw.store.quarantine import QuarantineTable
from radiusgw.store.sessions import SessionTable
from radiusgw.store.sqlite import SqliteStore
from radiusgw.store.upstreams import UpstreamTable

if TYPE_CHECKING:
    from radiusgw.proxy.upstream import UpstreamStatus
    from radiusgw.store.journal import Position

_PREFIXES = ("sqlite://", "sqlite:")


def open_sqlite(
    url_or_path: str | Path,
    key_path: Path,
    create: bool,
    read_only: bool,
    *,
    node: str | None = None,
) -> SqliteBackend:
    """The registry's opener: a plain path, ``sqlite:PATH`` or ``sqlite://PATH``.

    ``node`` is not needed: one SQLite file serves one node (its heartbeat names itself).
    """
    text = str(url_or_path)
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            return SqliteBackend(text[len(prefix) :], key_path, create=create, read_only=read_only)
    return SqliteBackend(url_or_path, key_path, create=create, read_only=read_only)


class SqliteBackend(AccountsThrough):
    """``Backend`` on one SQLite file; owned by one thread."""

    def __init__(
        self,
        db_path: str | Path,
        key_path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.db_path = Path(db_path)
        self.key_path = Path(key_path)
        self._create = create
        self._read_only = read_only
        self._store: SqliteStore | None = None
        self._sessions: SessionTable | None = None
        self._health: HealthTable | None = None
        self._upstreams: UpstreamTable | None = None
        self._quarantine: QuarantineTable | None = None
        self._nodes: NodeTable | None = None
        self._auth_log: AuthLogTable | None = None
        if not read_only:
            # Opened at once: it creates and migrates the file the other tables live in, and a
            # wrong key is refused on open, not at the first login.
            self._store = SqliteStore(self.db_path, self.key_path, create=create)

    # -- the parts, opened on first use --------------------------------------------------------

    @property
    def store(self) -> SqliteStore:
        if self._store is None:
            self._store = SqliteStore(
                self.db_path, self.key_path, create=self._create, read_only=self._read_only
            )
        return self._store

    @property
    def session_table(self) -> SessionTable:
        if self._sessions is None:
            self._sessions = SessionTable(self.db_path, read_only=self._read_only)
        return self._sessions

    @property
    def health_table(self) -> HealthTable:
        if self._health is None:
            self._health = HealthTable(self.db_path, read_only=self._read_only)
        return self._health

    @property
    def upstream_table(self) -> UpstreamTable:
        if self._upstreams is None:
            self._upstreams = UpstreamTable(self.db_path, read_only=self._read_only)
        return self._upstreams

    @property
    def node_table(self) -> NodeTable:
        if self._nodes is None:
            self._nodes = NodeTable(self.db_path, read_only=self._read_only)
        return self._nodes

    @property
    def auth_log_table(self) -> AuthLogTable:
        if self._auth_log is None:
            self._auth_log = AuthLogTable(self.db_path, read_only=self._read_only)
        return self._auth_log

    def close(self) -> None:
        parts = (
            self._auth_log,
            self._store,
            self._sessions,
            self._health,
            self._upstreams,
            self._quarantine,
            self._nodes,
        )
        for part in parts:
            if part is not None:
                part.close()
        self._store = self._sessions = self._health = self._upstreams = self._quarantine = None
        self._nodes = self._auth_log = None

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts and their change feed: AccountsThrough, on this store ------------------------

    def _account_store(self) -> Accounts:
        return self.store

    # -- accounting ----------------------------------------------------------------------------

    def write_accounting(
        self, records: Sequence[AccountingRecord], journal: tuple[str, Position] | None = None
    ) -> list[Quarantined]:
        return self.store.write_accounting(records, journal)

    def journal_position(self, name: str) -> Position | None:
        return self.store.journal_position(name)

    def count_accounting(self) -> int:
        return self.store.count_accounting()

    def quarantined(self) -> list[Quarantined]:
        if self._quarantine is None:
            self._quarantine = QuarantineTable(self.db_path)
        return self._quarantine.rows()

    # -- sessions, admission and usage ---------------------------------------------------------

    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]:
        return self.session_table.admit(requests, now)

    def release(self, reservation_ids: Sequence[int]) -> int:
        return self.session_table.release(reservation_ids)

    def expire_stale(self, now: float, default_interval: float) -> list[SessionRow]:
        return self.session_table.expire_stale(now, default_interval, STALE_FACTOR)

    def live_sessions(self, realm: str | None = None) -> list[SessionRow]:
        return self.session_table.live_sessions(realm)

    def sessions(self, realm: str | None = None) -> list[SessionRow]:
        return self.session_table.sessions(realm)

    def count_live(
        self,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
        reserved_at: float | None = None,
    ) -> int:
        return self.session_table.count_live(
            realm=realm, username=username, lns=lns, reserved_at=reserved_at
        )

    def usage(self, realm: str, month: str) -> UsageRow:
        return self.session_table.usage(realm, month)

    def month_octets(self, realm: str, now: float) -> int:
        return self.session_table.month_octets(realm, now)

    # -- LNS health and upstream status --------------------------------------------------------

    def record_lns_health(
        self, realm: str, index: int, address: str, port: int, status: str, detail: str, now: float
    ) -> bool:
        return self.health_table.record(realm, index, address, port, status, detail, now)

    def lns_states(self) -> list[LnsState]:
        return self.health_table.states()

    def publish_upstreams(
        self, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic_now: float
    ) -> None:
        self.upstream_table.publish(worker, statuses, now, monotonic_now)

    def upstream_rows(self) -> list[UpstreamRow]:
        return self.upstream_table.rows()

    # -- the fleet -----------------------------------------------------------------------------

    def record_node(
        self,
        name: str,
        version: str,
        started: float,
        journal_backlog: int,
        last_applied: float | None,
        now: float,
    ) -> None:
        self.node_table.record(name, version, started, journal_backlog, last_applied, now)

    def nodes(self) -> list[NodeRow]:
        return self.node_table.rows()

    # -- the authentication log ----------------------------------------------------------------

    def write_auth_log(self, batches: Sequence[AuthLogBatch]) -> None:
        self.auth_log_table.write(batches)

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
        return self.auth_log_table.rows(
            realm, user=user, since=since, until=until, result=result, limit=limit
        )

    def prune_auth_log(self, before: float) -> int:
        return self.auth_log_table.prune(before)

    # -- the proxy spool -----------------------------------------------------------------------

    def spool_accounting(self, realm: str, packet: bytes, nas_address: str, received: float) -> int:
        return self.store.spool_accounting(realm, packet, nas_address, received)

    def spool_accounting_many(self, entries: Sequence[tuple[str, bytes, str, float]]) -> list[int]:
        return self.store.spool_accounting_many(entries)

    def spooled(self, realm: str, limit: int, *, after: int = 0) -> list[SpoolEntry]:
        return self.store.spooled(realm, limit, after=after)

    def unspool(self, ids: Iterable[int]) -> int:
        return self.store.unspool(ids)

    def spool_counts(self) -> dict[str, int]:
        return self.store.spool_counts()


if TYPE_CHECKING:
    from radiusgw.store.backend import Backend

    _: type[Backend] = SqliteBackend  # mypy holds the class to the Protocol
