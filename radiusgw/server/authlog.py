"""The authentication log's edge (issue 18.3): from the engine's list to the store, off the loop.

The engine appends one ``AuthLogEntry`` (a tuple of references) per Access-Request it answers,
to ``Engine.auth_log``. Every ``FLUSH_INTERVAL`` the worker swaps that list for an empty one and
hands what it took to a ``BatchThread`` of its own; that thread works out each row (the method
from the request's attributes, the Framed-IP-Address from the answer, the upstream as text) and
writes the batch in one transaction (``Backend.write_auth_log``). The loop only swaps a list.

Rules:
- Never in the way of an answer: one batch is in the thread at a time; what arrives meanwhile
  waits in memory, at most ``capacity`` entries. Past that the oldest are dropped and counted
  (``dropped``; ``auth-log-dropped`` logged at most once per ``DROP_LOG_INTERVAL``), as are the
  entries of a batch the store refused to take, which are tried again first, within the same
  bound. A failing store is logged once (``auth-log-write-failed``) and its recovery once.
- Retention: worker 0 deletes rows older than ``--auth-log-days`` at start and every
  ``PRUNE_INTERVAL`` (``prune``), on a ``ResourceThread``: never from the loop.
- At a drain, what was taken is written before the worker exits (within the drain timeout).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from socket import inet_ntoa
from typing import Any

from radiusgw.client.ids import show_destination
from radiusgw.domain import AuthLogRow
from radiusgw.engine.core import AuthLogEntry, Engine
from radiusgw.modes import group
from radiusgw.server.batches import BatchThread
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.store.backend import Backend

FLUSH_INTERVAL = 0.5  # seconds between two hand-offs: rows reach the store within about this
CAPACITY = 50_000  # entries one worker holds while the store is slow or away (memory bound)
DROP_LOG_INTERVAL = 60.0
PRUNE_INTERVAL = 3600.0
DAY = 86_400.0
_FRAMED_IP = 8  # RFC 2865 §5.8

Chunk = tuple[float, list[AuthLogEntry]]  # (when taken: the time of entries without one, ...)


def framed_ip(answer: bytes | None) -> str | None:
    """The Framed-IP-Address of an answer (RFC 2865 §5.8), walking its attributes once."""
    if not answer:
        return None
    i, end = 20, len(answer) - 1
    while i < end:
        length = answer[i + 1]
        if length < 2:
            return None
        if answer[i] == _FRAMED_IP and length == 6:
            return inet_ntoa(answer[i + 2 : i + 6])
        i += length
    return None


def rows_of(chunks: Sequence[Chunk], node: str, worker: int) -> list[AuthLogRow]:
    """The store's rows for the entries of ``chunks`` (on the auth-log thread)."""
    rows = []
    for taken, entries in chunks:
        for when, nas, realm, user, result, reason, packet, answer, lns, upstream in entries:
            method = group.choose(packet, packet.first_values()).name
            rows.append(
                AuthLogRow(
                    taken if when is None else when,
                    node,
                    worker,
                    nas,
                    realm,
                    user,
                    method,
                    result,
                    reason,
                    framed_ip(answer) if result == "accept" else None,
                    lns,
                    None if upstream is None else show_destination(upstream),
                )
            )
    return rows


class AuthLogWriter:
    """One worker's auth-log hand-off; see the module docstring. Call it from the loop."""

    def __init__(
        self,
        engine: Engine,
        open_store: Callable[[], Backend],
        loop: asyncio.AbstractEventLoop,
        log: Any,
        *,
        node: str,
        worker: int,
        capacity: int = CAPACITY,
    ) -> None:
        self.engine = engine
        self.log = log
        self.capacity = capacity
        self.dropped = 0
        self.written = 0
        self._pending: collections.deque[Chunk] = collections.deque()
        self._held = 0
        self._failing = False
        self._drop_logged = float("-inf")
        self._node = node
        self._worker = worker
        self._thread: BatchThread[Backend, list[Chunk]] = BatchThread(
            "auth-log", open_store, self._write, loop, self._done, self._failed, batch=1
        )
        engine.auth_log = []

    def start(self) -> None:
        self._thread.start()

    def _write(self, store: Backend, batch: list[list[Chunk]]) -> int:
        rows = rows_of([c for chunks in batch for c in chunks], self._node, self._worker)
        store.write_auth_log(rows)
        return len(rows)

    def flush(self, now: float) -> None:
        """Take the engine's entries; hand them to the thread if it is idle."""
        entries = self.engine.auth_log
        if entries:
            self.engine.auth_log = []
            self._pending.append((now, entries))
            self._held += len(entries)
            self._trim(now)
        if self._pending and not self._thread.outstanding:
            chunks = list(self._pending)
            self._pending.clear()
            self._held = 0
            self._thread.submit(chunks)

    def _trim(self, now: float) -> None:
        over = self._held - self.capacity
        if over <= 0:
            return
        self._held -= over
        self.dropped += over
        while over > 0:
            taken, entries = self._pending[0]
            if len(entries) <= over:
                self._pending.popleft()
                over -= len(entries)
            else:
                self._pending[0] = (taken, entries[over:])
                over = 0
        if now - self._drop_logged >= DROP_LOG_INTERVAL:
            self._drop_logged = now
            self.log.warning("auth-log-dropped", dropped=self.dropped, capacity=self.capacity)

    def _done(self, batch: list[list[Chunk]], written: Any) -> None:
        self.written += int(written)
        if self._failing:
            self._failing = False
            self.log.info("auth-log-write-resumed")

    def _failed(self, batch: list[list[Chunk]], exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            self.log.warning("auth-log-write-failed", error=str(exc))
        for chunks in reversed(batch):  # tried again first, within the bound
            for chunk in reversed(chunks):
                self._pending.appendleft(chunk)
                self._held += len(chunk[1])
        self._trim(time.time())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush(time.time())

    async def close(self, timeout: float) -> None:
        """Write what is left (within ``timeout`` seconds), then end the thread."""
        self.flush(time.time())
        try:
            async with asyncio.timeout(timeout):
                while self._pending or self._thread.outstanding:
                    await self._thread.wait_idle()
                    self.flush(time.time())
                    if self._failing:
                        break
        except TimeoutError:
            pass
        self.engine.auth_log = None
        self._thread.stop()


async def prune(days: int, thread: ResourceThread[Backend], log: Any) -> None:
    """Worker 0: delete rows older than ``days`` days, now and every ``PRUNE_INTERVAL``."""
    try:
        while True:
            try:
                deleted = await thread.call(_prune, time.time() - days * DAY)
            except Exception as exc:  # the database's trouble: the next round tries again
                log.warning("auth-log-prune-failed", error=str(exc))
            else:
                if deleted:
                    log.info("auth-log-pruned", rows=deleted, days=days)
            await asyncio.sleep(PRUNE_INTERVAL)
    finally:
        await thread.close()


def _prune(store: Backend, before: float) -> int:
    return store.prune_auth_log(before)
