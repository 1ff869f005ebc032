"""The one store boundary: the ``Backend`` Protocol, and ``open_backend`` that opens one from a
URL through a registry of backends by scheme.

Everything the server and the CLI read or write goes through a ``Backend``: accounts and their
change feed, the accounting records (with the journal position they were applied up to),
sessions and admission, usage, LNS health, upstream status, the proxy spool and the records kept
aside. It takes and gives the plain records of ``radiusgw.domain``; the session rules it follows
are ``radiusgw.sessions``.

A backend object belongs to the thread that opened it (an SQLite connection does); each thread
that needs the store opens its own with ``open_backend``.

The registry (aioquic's congestion-control registry and uvicorn's name maps are the model) maps
a URL scheme to the module that opens it, imported only when a URL of its scheme is opened, so
that nothing above the store imports a driver: a plain path or ``sqlite:PATH`` is the embedded
SQLite file, ``postgresql://user@host:port/dbname`` the shared PostgreSQL database (issue 15).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

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
    UpstreamRow,
    UsageRow,
)
from radiusgw.errors import StoreError
from radiusgw.store.base import AccountStore, SpoolStore
from radiusgw.store.postgres.url import redacted

if TYPE_CHECKING:
    from radiusgw.proxy.upstream import UpstreamStatus
    from radiusgw.store.journal import Position


class Backend(AccountStore, SpoolStore, Protocol):
    """A store as the server and the CLI use it; see the module docstring.

    Besides what it inherits: the accounts and their change feed (``AccountStore``: add,
    import, get, list, count, enable/disable, remove, ``last_change``, ``changes_since``) and
    the proxy spool (``SpoolStore``: at-least-once store-and-forward, ``radiusgw.proxy.spool``).
    """

    # -- accounting, applied with its journal position; what was refused -------------------
    def write_accounting(
        self, records: Sequence[AccountingRecord], journal: tuple[str, Position] | None = None
    ) -> list[Quarantined]: ...
    def journal_position(self, name: str) -> Position | None: ...
    def count_accounting(self) -> int: ...
    def quarantined(self) -> list[Quarantined]: ...

    # -- sessions, admission and usage (the rules: radiusgw.sessions) ------------------------
    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]: ...
    def release(self, reservation_ids: Sequence[int]) -> int: ...
    def expire_stale(self, now: float, default_interval: float) -> list[SessionRow]: ...
    def live_sessions(self, realm: str | None = None) -> list[SessionRow]: ...
    def sessions(self, realm: str | None = None) -> list[SessionRow]: ...
    def count_live(
        self,
        *,
        realm: str | None = None,
        username: str | None = None,
        lns: str | None = None,
        reserved_at: float | None = None,
    ) -> int: ...
    def usage(self, realm: str, month: str) -> UsageRow: ...
    def month_octets(self, realm: str, now: float) -> int: ...

    # -- LNS health and upstream status ------------------------------------------------------
    def record_lns_health(
        self, realm: str, index: int, address: str, port: int, status: str, detail: str, now: float
    ) -> bool: ...
    def lns_states(self) -> list[LnsState]: ...
    def publish_upstreams(
        self, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic_now: float
    ) -> None: ...
    def upstream_rows(self) -> list[UpstreamRow]: ...

    # -- the fleet: each node's heartbeat (radiusgw fleet status) ----------------------------
    def record_node(
        self,
        name: str,
        version: str,
        started: float,
        journal_backlog: int,
        last_applied: float | None,
        now: float,
    ) -> None: ...
    def nodes(self) -> list[NodeRow]: ...

    # -- the authentication log (radiusgw.store.authlog; issue 18.3) -------------------------
    def write_auth_log(self, batches: Sequence[AuthLogBatch]) -> None: ...  # one transaction
    def auth_log(
        self,
        realm: str,
        *,
        user: str | None = None,
        since: float | None = None,
        until: float | None = None,
        result: str | None = None,
        limit: int | None = None,
    ) -> list[AuthLogRow]: ...
    def prune_auth_log(self, before: float) -> int: ...

    def close(self) -> None: ...


class Opener(Protocol):
    """Opens a backend: the URL or path as given, the password key's path, create, read_only,
    and the node's name (``--node``; None for the CLI), which a shared database records."""

    def __call__(
        self,
        url_or_path: str | Path,
        key_path: Path,
        create: bool,
        read_only: bool,
        *,
        node: str | None = None,
    ) -> Backend: ...


# scheme -> "module:function" of its opener, imported on first use (no driver before then).
_OPENERS: dict[str, str] = {
    "sqlite": "radiusgw.store.sqlite_backend:open_sqlite",
    "postgresql": "radiusgw.store.postgres:open_postgres",
}


def register_backend(scheme: str, opener: str) -> None:
    """Name the opener (``"module:function"``) of URLs of ``scheme``; the last one named wins."""
    _OPENERS[scheme] = opener


def scheme_of(url_or_path: str | Path) -> str:
    """The registry's name for ``url_or_path``: its URL scheme, 'sqlite' for a plain path."""
    text = str(url_or_path)
    scheme, colon, _ = text.partition(":")
    if not colon or not scheme.isalpha() or len(scheme) < 2:
        return "sqlite"  # a path (one letter before a colon would be a Windows drive)
    return "postgresql" if scheme.lower() == "postgres" else scheme.lower()


def display_name(url_or_path: str | Path) -> str:
    """How logs and messages name a database: a path as it is, a URL without its password."""
    return str(url_or_path) if scheme_of(url_or_path) == "sqlite" else redacted(str(url_or_path))


def open_backend(
    url_or_path: str | Path,
    key_path: str | Path,
    *,
    create: bool = True,
    read_only: bool = False,
    node: str | None = None,
) -> Backend:
    """Open the store that ``url_or_path`` names, with its password key at ``key_path``.

    ``create=False`` refuses a store that does not exist yet; ``read_only`` creates, migrates
    and writes nothing (the commands that only read); ``node`` is the gateway's ``--node``
    (None for the CLI). An unknown scheme, or one whose module is not installed, is one
    ``StoreError`` sentence, naming the database without its password.
    """
    scheme = scheme_of(url_or_path)
    target = _OPENERS.get(scheme)
    if target is None:
        known = ", ".join(sorted(_OPENERS))
        shown = display_name(url_or_path)
        raise StoreError(f"the database {shown} has an unknown scheme {scheme!r} ({known})")
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        opener: Opener = getattr(module, function)
    except (ImportError, AttributeError) as exc:
        raise StoreError(
            f"the {scheme} backend is not available in this installation ({exc})"
        ) from None
    return opener(url_or_path, Path(key_path), create, read_only, node=node)
