"""What a worker reads from the store every poll, read on a thread of its own.

Every ``cache_poll_interval`` a worker takes the account changes since the last one into its
cache (an account disabled on any node or by the CLI is refused from then on) and the LNS
health into its engine; every few seconds also each realm's traffic this month (第14条2: the
quota), the live sessions of each LNS (its ``max_sessions`` and the least-sessions balance)
and, for worker 0, the live sessions of realms over their quota (to disconnect them).

Account changes come from the store's change feed (a gap-free sequence number per change,
committed with the change), not from PostgreSQL's LISTEN/NOTIFY: the feed is the same on both
backends, and a worker that lost its connection for a while reads every change it missed when
it is back, where a notification sent meanwhile is gone. Polling it every second meets the
terms' one second; the PostgreSQL store also sends ``NOTIFY radiusgw_accounts`` with each
change, for a listener that may later shorten that delay.

With SQLite these are local reads; with a shared PostgreSQL each is a round trip, and a
database that stopped answering would hold the caller until its timeout. So ``StorePoll`` owns
a store object of its own and runs on a ``ResourceThread``; the event loop only awaits the
result (``Found``) and applies it, and keeps answering meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from radiusgw.config.model import Mode, Registry
from radiusgw.domain import Change, SessionRow
from radiusgw.modes.vpdn import Health
from radiusgw.server.lns_monitor import read_health
from radiusgw.store.backend import Backend


@dataclass(frozen=True, slots=True)
class Usage:
    reached: frozenset[str]  # realms at or over their monthly traffic quota
    lns_load: dict[tuple[str, int], int]  # (realm, LNS index) -> live sessions on that LNS
    live: dict[str, list[SessionRow]]  # realm over its quota -> its live sessions (if asked)


@dataclass(frozen=True, slots=True)
class Found:
    changes: list[Change]
    lns_health: dict[tuple[str, int], Health]
    usage: Usage | None  # None: not read this time


class StorePoll:
    """A store object used only by the poll's thread."""

    def __init__(self, store: Backend) -> None:
        self.store = store

    def close(self) -> None:
        self.store.close()

    def read(
        self, last_seq: int, registry: Registry, usage_at: float | None, live_sessions: bool
    ) -> Found:
        """The changes after ``last_seq`` and the LNS health; with ``usage_at`` (now) the
        usage too, and with ``live_sessions`` the live sessions of realms over their quota."""
        store = self.store
        changes = store.changes_since(last_seq)
        health = read_health(store, registry)
        usage = None if usage_at is None else self._usage(registry, usage_at, live_sessions)
        return Found(changes, health, usage)

    def _usage(self, registry: Registry, now: float, live_sessions: bool) -> Usage:
        store = self.store
        reached: set[str] = set()
        load: dict[tuple[str, int], int] = {}
        for realm in registry.realms.values():
            quota = realm.traffic_quota
            if quota is not None and store.month_octets(realm.name, now) >= quota:
                reached.add(realm.name)
            if realm.mode is Mode.VPDN:
                for index, lns in enumerate(realm.lns):
                    load[(realm.name, index)] = store.count_live(lns=lns.address, reserved_at=now)
        live = (
            {name: store.live_sessions(name) for name in sorted(reached)} if live_sessions else {}
        )
        return Usage(frozenset(reached), load, live)
