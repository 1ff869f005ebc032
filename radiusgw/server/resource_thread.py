"""One blocking resource (a store connection) used from a thread of its own, awaited by the loop.

The event loop must never wait for the database. SQLite lets one writer at a time, and a
writer that finds the lock taken waits in SQLite's busy handler, which sleeps (1, 2, 5, 10 ...
100 ms) until the lock is free. Under accounting load every worker's applier holds that lock
ten times a second. A housekeeping write made from the loop (the upstream status every 5 s,
the LNS health after a probe, the stale-session sweep, the proxy spool's replay) therefore
stopped the worker for tens to hundreds of milliseconds. A watchdog thread on the loop's
heartbeat caught the upstream status write in the middle of the longest stalls (radload
accounting, 4 workers, 10 s: loop stalls of up to 340 and 545 ms before, 66 and 53 ms after).

So each such user gets a ``ResourceThread``. It opens its resource on its thread at the first
call (a ``sqlite3`` connection belongs to the thread that opened it), runs the calls in the
order they were made, and closes the resource there too. The thread carries ``name`` for the
OS (``radiusgw.server.batches.named_executor``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Concatenate, Generic, ParamSpec, TypeVar

from radiusgw.server.batches import Closable, named_executor

R = TypeVar("R", bound=Closable)
T = TypeVar("T")
P = ParamSpec("P")


class ResourceThread(Generic[R]):
    def __init__(self, name: str, open_resource: Callable[[], R]) -> None:
        self._open = open_resource
        self._resource: R | None = None
        self._executor = named_executor(name)

    async def call(
        self, operation: Callable[Concatenate[R, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation(resource, *args, **kwargs)`` on the resource's thread; its result or
        exception."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(self._run, operation, *args, **kwargs)
        )

    def _run(self, operation: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._resource is None:
            self._resource = self._open()
        return operation(self._resource, *args, **kwargs)

    async def close(self) -> None:
        """Close the resource (if it was opened) on its thread, then end the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._resource is not None:
            resource, self._resource = self._resource, None
            resource.close()
