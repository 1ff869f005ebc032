"""The node's heartbeat: who serves, since when, how far its accounting is behind (issue 15.7).

Worker 0 writes its node's row (``Backend.record_node``) at start and every
``HEARTBEAT_INTERVAL`` seconds after, on a ``ResourceThread`` of its own: the event loop never
waits for the database, and a database that is slow or gone delays only the next heartbeat.
``radiusgw fleet status`` lists the rows; a node whose row grows old has stopped (or lost
the database).

The backlog is worker 0's accounting pipeline's (records journalled and acknowledged, not yet in
the store) and the last-applied time is when its applier last committed: with ``--workers 1``
that is the node's; with more, worker 0 stands for the others, which share its database.
A failed write is logged once (``heartbeat-failed``) and its recovery once (``heartbeat-resumed``),
not every interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from radiusgw import __version__
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.store.backend import Backend

HEARTBEAT_INTERVAL = 5.0  # seconds between two rows; fleet status calls a node stale at 3x this


class Heartbeat:
    def __init__(
        self,
        node: str,
        thread: ResourceThread[Backend],
        status: Callable[[], tuple[int, float | None]],
        log: Any,
        *,
        interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        """``status()`` gives (journal backlog, last applied unix time or None), on the loop."""
        self.node = node
        self.started = time.time()
        self._thread = thread
        self._status = status
        self._log = log
        self._interval = interval
        self._failing = False

    async def beat(self) -> None:
        """Write one row now; a failure is logged (once), never raised."""
        backlog, last_applied = self._status()
        try:
            await self._thread.call(
                _record, self.node, self.started, backlog, last_applied, time.time()
            )
        except Exception as exc:  # the database's trouble: the next beat tries again
            if not self._failing:
                self._log.warning("heartbeat-failed", error=str(exc))
            self._failing = True
            return
        if self._failing:
            self._log.info("heartbeat-resumed")
        self._failing = False

    async def run(self) -> None:
        try:
            while True:
                await self.beat()
                await asyncio.sleep(self._interval)
        finally:
            await self._thread.close()


def _record(
    store: Backend,
    node: str,
    started: float,
    backlog: int,
    last_applied: float | None,
    now: float,
) -> None:
    store.record_node(node, __version__, started, backlog, last_applied, now)
