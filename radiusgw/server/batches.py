"""Blocking store work in its own thread, in batches, with the results handed back to the loop.

Its users, one rule each:
- the accounting journal's sync (``radiusgw.server.accounting``): the batches the loop encoded
  go to the journal in one write and one fdatasync, everything queued while the last one ran
  (group commit), and are answered once it returns.
- the accounting applier (``radiusgw.server.accounting``): the records the journal already
  made durable go to the store with the journal position, everything queued in one transaction
  (group commit: under load one commit covers hundreds of records).
- admission (第14条2): accepts that wait for a session slot are decided in one transaction per
  batch; the store makes the counts exact across workers and nodes (SQLite's write lock,
  PostgreSQL's advisory locks).
- account look-ups (``radiusgw.server.decisions``): the accounts a worker's cache misses.

The event loop never blocks on the database: it only queues items and receives callbacks.

Each thread gives its name to the OS too (Linux ``prctl(PR_SET_NAME)``; Python 3.11 does not),
so that ``top -H``, ``ps -L`` and ``bench.profile`` tell the accounting applier from admission
and from the event loop, instead of showing every thread as "python".
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

from radiusgw.server import signals

_STOP = object()
_PR_SET_NAME = 15  # linux/prctl.h; the name is cut to 15 octets

T = TypeVar("T")


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux; elsewhere nothing happens).

    Every thread the server starts calls this first, so it also keeps SIGHUP, SIGTERM and
    SIGINT off the thread: only the event loop's thread takes them, and only while it has
    handlers for them (``radiusgw.server.signals``).
    """
    signals.hold()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def raise_priority(levels: int) -> str | None:
    """Run the calling thread ``levels`` nice levels above the one it has; None when done,
    else why not.

    Linux keeps a nice value per thread (``setpriority`` on the thread's id). Raising it takes
    CAP_SYS_NICE, or an RLIMIT_NICE that allows the new value (systemd: ``LimitNICE=``); a
    thread refused keeps running as it was.
    """
    if levels <= 0:
        return None
    if not sys.platform.startswith("linux"):
        return "thread priorities are Linux's only"
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, max(-20, now - levels))
    except OSError as exc:
        return f"{exc.strerror}: needs CAP_SYS_NICE or RLIMIT_NICE (systemd: LimitNICE=)"
    return None


def named_executor(name: str) -> ThreadPoolExecutor:
    """An executor of one thread, called ``name`` in Python and for the OS."""
    return ThreadPoolExecutor(
        1, thread_name_prefix=name, initializer=name_os_thread, initargs=(name,)
    )


class Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=Closable)


class BatchThread(Generic[S, T]):
    def __init__(
        self,
        name: str,
        open_resource: Callable[[], S],
        process: Callable[[S, list[T]], Any],
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[list[T], Any], None],
        on_failed: Callable[[list[T], BaseException], None],
        *,
        batch: int = 2000,
    ) -> None:
        self._open = open_resource
        self._process = process
        self._loop = loop
        self._on_done = on_done
        self._on_failed = on_failed
        self._batch = batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.outstanding = 0  # items queued or in work: what a drain waits for
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T) -> None:
        self.outstanding += 1
        self._idle.clear()
        self._queue.put(item)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        name_os_thread(self._thread.name)
        resource = self._open()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                batch: list[T] = [item]
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
                    result = self._process(resource, batch)
                except BaseException as exc:  # disk full, locked: the caller decides
                    self._loop.call_soon_threadsafe(self._failed, batch, exc)
                else:
                    self._loop.call_soon_threadsafe(self._done, batch, result)
                if stop:
                    return
        finally:
            resource.close()

    def _done(self, batch: list[T], result: Any) -> None:
        try:
            self._on_done(batch, result)
        finally:
            self._settle(len(batch))

    def _failed(self, batch: list[T], exc: BaseException) -> None:
        try:
            self._on_failed(batch, exc)
        finally:
            self._settle(len(batch))

    def _settle(self, count: int) -> None:
        self.outstanding -= count
        if self.outstanding == 0:
            self._idle.set()
