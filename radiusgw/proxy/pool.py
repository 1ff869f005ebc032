"""Which upstream of a realm takes the next request: the realm's ``pool`` policy over health.

- ``failover``: the first ALIVE server in the order of the realm file; when none is ALIVE, the first
  SUSPECT one (better an unsure server than no answer); DEAD servers never.
- ``load-balance``: among the ALIVE servers (else the SUSPECT ones) the one with the fewest
  requests outstanding; ties go in turn, so an idle pool is used round robin.

A request that has already tried a server (no answer, then failover) passes it in ``exclude``:
one request visits each server of its pool at most once. One ``Pool`` per (realm, kind); the
``Upstream`` objects are shared by every pool naming the same server.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from radiusgw.config.model import PoolPolicy as Policy
from radiusgw.config.model import UpstreamServer
from radiusgw.proxy.upstream import ServerState, Upstream

_ALIVE: Final = ServerState.ALIVE
_SUSPECT: Final = ServerState.SUSPECT


class Pool:
    __slots__ = ("_turn", "policy", "servers", "upstreams")

    def __init__(
        self, servers: tuple[UpstreamServer, ...], policy: Policy, upstreams: tuple[Upstream, ...]
    ) -> None:
        self.servers = servers  # as configured: a reload with other servers builds a new Pool
        self.policy = policy
        self.upstreams = upstreams
        self._turn = 0  # load-balance: where the next tie-break starts

    @property
    def up(self) -> bool:
        """Some server may still answer (not every one is DEAD)."""
        return any(u.state is not ServerState.DEAD for u in self.upstreams)

    def select(self, exclude: Collection[Upstream] = ()) -> Upstream | None:
        """The server for the next try, or None when every candidate is DEAD or excluded."""
        if self.policy is Policy.FAILOVER:
            return self._first(_ALIVE, exclude) or self._first(_SUSPECT, exclude)
        return self._least(_ALIVE, exclude) or self._least(_SUSPECT, exclude)

    def _first(self, state: ServerState, exclude: Collection[Upstream]) -> Upstream | None:
        for upstream in self.upstreams:
            if upstream.state is state and upstream not in exclude:
                return upstream
        return None

    def _least(self, state: ServerState, exclude: Collection[Upstream]) -> Upstream | None:
        upstreams = self.upstreams
        count = len(upstreams)
        best: Upstream | None = None
        best_index = 0
        # Scan from the turn onwards, keeping the first of equals: ties rotate.
        for offset in range(count):
            index = (self._turn + offset) % count
            candidate = upstreams[index]
            if candidate.state is not state or candidate in exclude:
                continue
            if best is None or candidate.outstanding < best.outstanding:
                best, best_index = candidate, index
        if best is not None:
            self._turn = (best_index + 1) % count
        return best
