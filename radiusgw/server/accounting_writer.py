"""Durable accounting with group commit: a thread that writes batches, then lets replies go.

RFC 2866 §2: the server answers an Accounting-Request only once the record is safely kept.
Each record goes into a queue; the writer thread takes everything queued (up to ``batch``),
writes it in one transaction with one fsync (SQLite WAL, synchronous=FULL), and hands the
batch back to the event loop, which then sends the Accounting-Responses. Under load one fsync
covers hundreds of records, so durability does not cost the rate.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

from radiusgw.engine import AccountingAnswer
from radiusgw.store.base import AccountStore

_STOP = object()


class AccountingWriter:
    def __init__(
        self,
        open_store: Callable[[], AccountStore],
        loop: asyncio.AbstractEventLoop,
        on_written: Callable[[list[AccountingAnswer]], None],
        on_failed: Callable[[list[AccountingAnswer], BaseException], None],
        *,
        batch: int = 2000,
    ) -> None:
        self._open_store = open_store
        self._loop = loop
        self._on_written = on_written
        self._on_failed = on_failed
        self._batch = batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="accounting-writer", daemon=True)
        self.outstanding = 0  # records queued or being written: what a drain waits for
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def submit(self, answer: AccountingAnswer) -> None:
        self.outstanding += 1
        self._idle.clear()
        self._queue.put(answer)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        store = self._open_store()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                batch: list[AccountingAnswer] = [item]
                stop = False
                while len(batch) < self._batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)
                try:
                    store.write_accounting([a.record for a in batch])
                except BaseException as exc:  # disk full, locked: no answer, the NAS retries
                    self._loop.call_soon_threadsafe(self._failed, batch, exc)
                else:
                    self._loop.call_soon_threadsafe(self._written, batch)
                if stop:
                    return
        finally:
            store.close()

    def _written(self, batch: list[AccountingAnswer]) -> None:
        self._on_written(batch)
        self._settle(len(batch))

    def _failed(self, batch: list[AccountingAnswer], exc: BaseException) -> None:
        self._on_failed(batch, exc)
        self._settle(len(batch))

    def _settle(self, count: int) -> None:
        self.outstanding -= count
        if self.outstanding == 0:
            self._idle.set()
