"""Live LNS health over real L2TP: probe every LNS of every VPDN realm, record what changed.

One task per LNS (realm, index, address, port) sets up a full L2TP tunnel with the realm's
tunnel secret every ``probe_interval`` seconds and tears it down (``lns_probe.probe_lns``). The
outcome goes to the shared ``lns_health`` table, and a change of state is logged at info. The
tasks follow the realm files: after a SIGHUP reload, probes of LNS that left are cancelled and
new ones start. Only one worker runs the monitor; every worker reads the table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from radiusgw.config.model import Lns, Mode, Registry
from radiusgw.modes.vpdn import Health
from radiusgw.server.lns_probe import ProbeStatus, probe_lns
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.store.backend import Backend

RECONCILE_INTERVAL = 1.0
MAX_PROBE_TIMEOUT = 7.0  # three tries at 1, 2, 4 s: a dead LNS leaves answers quickly

_HEALTH = {
    ProbeStatus.UP: Health.UP,
    ProbeStatus.DOWN: Health.DOWN,
    ProbeStatus.SECRET_MISMATCH: Health.SECRET_MISMATCH,
    ProbeStatus.ERROR: Health.DOWN,
}

Target = tuple[str, int, str, int]  # realm, LNS index, address, port


def probe_targets(registry: Registry) -> dict[Target, tuple[Lns, float]]:
    targets: dict[Target, tuple[Lns, float]] = {}
    for realm in registry.realms.values():
        if realm.mode is not Mode.VPDN or realm.probe_interval <= 0:
            continue
        for index, lns in enumerate(realm.lns):
            targets[(realm.name, index, lns.address, lns.port)] = (lns, realm.probe_interval)
    return targets


class LnsMonitor:
    def __init__(
        self,
        registry: Callable[[], Registry],
        table: ResourceThread[Backend],
        log: Any,
    ) -> None:
        self._registry = registry
        self._table = table
        self._log = log
        self._tasks: dict[Target, asyncio.Task[None]] = {}
        self._stopping = False

    async def run(self) -> None:
        try:
            while True:
                self._reconcile()
                await asyncio.sleep(RECONCILE_INTERVAL)
        finally:
            self._stopping = True  # a probe that missed its cancellation still ends its loop
            for task in self._tasks.values():
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks.values(), timeout=MAX_PROBE_TIMEOUT)
            await self._table.close()

    def _reconcile(self) -> None:
        wanted = probe_targets(self._registry())
        for target in list(self._tasks):
            if target not in wanted or self._tasks[target].done():
                self._tasks.pop(target).cancel()
        for target, (lns, interval) in wanted.items():
            if target not in self._tasks:
                self._tasks[target] = asyncio.create_task(
                    self._probe_forever(target, lns, interval)
                )

    async def _probe_forever(self, target: Target, lns: Lns, interval: float) -> None:
        realm, index, address, port = target
        timeout = min(MAX_PROBE_TIMEOUT, max(2.0, interval))
        while not self._stopping:
            result = await probe_lns(address, port, lns.secret, timeout=timeout)
            health = _HEALTH[result.status]
            if await self._table.call(
                _record,
                realm,
                index,
                address,
                port,
                health.value,
                result.detail,
                time.time(),
            ):
                self._log.info(
                    "lns-state",
                    realm=realm,
                    lns=address,
                    port=port,
                    status=health.value,
                    detail=result.detail,
                )
            await asyncio.sleep(interval)


def read_health(table: Backend, registry: Registry) -> dict[tuple[str, int], Health]:
    """The table as the engine reads it; rows of LNS no longer configured are ignored."""
    view: dict[tuple[str, int], Health] = {}
    for state in table.lns_states():
        realm = registry.realms.get(state.realm)
        if realm is None or state.index >= len(realm.lns):
            continue
        lns = realm.lns[state.index]
        if (lns.address, lns.port) == (state.address, state.port):
            view[(state.realm, state.index)] = Health(state.status)
    return view


def _record(
    store: Backend,
    realm: str,
    index: int,
    address: str,
    port: int,
    status: str,
    detail: str,
    now: float,
) -> bool:
    return store.record_lns_health(realm, index, address, port, status, detail, now)
