"""A worker's accounting path: the journal answers, the store follows (RFC 2866 §2).

- The event loop gathers the requests of one loop iteration and encodes them as one batch for
  this worker's journal (``radiusgw.store.journal``). A thread of its own (``journal-sync``)
  writes the batches waiting, all in one write, and fdatasyncs (``JournalWriter.commit``);
  when it returns they are durable and their Accounting-Responses go out. Batches encoded
  meanwhile wait for the next commit, which starts at once: group commit. The loop never waits
  for the disk, so Access-Requests on the same loop do not either: with the fdatasync on the
  loop, 8,000 accounting records/s beside 10,000 PAP/s took PAP's p99 from 0.86 to 50 ms
  (fdatasync took about 1.5 ms under load, and the disk stalled for 60-210 ms now and then).
  Nor does it write: on the loop, a write() into the segment that a sync was flushing took
  24 µs on average and up to 5 ms (6,000 records/s beside 9,000 PAP/s for 10 s: 17-34 writes
  over 1 ms per worker). Nothing here is shared with the other workers, so their commits run
  side by side. (An earlier journal thread that encoded as well was slower:
  every batch handed the GIL back and forth.)
- The applier thread takes whatever is queued as one batch and writes it to the store
  (accounting rows, sessions, the journal position) in one transaction (SQLite: under the
  writers' lock), at most every ``Tuning.apply_interval`` (0.1 s); a batch of more than
  ``Tuning.apply_max_records`` (an outage's backlog) in several, in order (``transactions``).
  It runs ``Tuning.applier_priority`` nice levels above the event loop, since on SQLite every
  worker's applier queues for the holder of one write lock, which must not wait for the CPU.
  The session table therefore follows the acknowledgements by up to that and one
  transaction. Limits stay exact: a new session's Start consumes the reservation its
  Access-Accept made (第14条2), so a late Start never frees a slot; a late Stop only keeps
  one taken a moment longer. Within a worker,
  ``after_applied`` orders an admission after every record this worker has acknowledged (a
  user who logs out and in again through the same worker always finds the slot free). While
  the applier's transactions fail (the database is down) that order cannot be kept, and
  admissions go ahead at once: they fail too, and the realm's ``on_store_down`` decides
  (``radiusgw.server.decisions``).

A failed store transaction (the database locked by a long operator command, a full disk) is
retried every ``Tuning.retry_interval`` seconds, holding the batches behind it: a later position
must never be recorded past a batch that is not in the store. Stopped meanwhile, the worker
leaves them in the journal, and the next start applies them. A record the store refuses (a
value it cannot take) would fail every retry: the store keeps it aside instead, in the
transaction that applies its neighbours (``radiusgw.store.quarantine``), and it is logged
(``accounting-quarantined``) and counted (``quarantined``); the start-up replay does the same,
and logs each stretch of a journal it had to skip (``journal-damaged``, ``journal-truncated``).

Flow control, two bounds. While the applier works but is ``Tuning.pause_backlog`` records
behind (about a second of one worker's full rate), ``on_pace(False)`` asks the worker to stop
reading Accounting-Requests, and ``on_pace(True)`` to read again once it is half as far behind:
the NAS waits, not the session table. Without it, a closed loop at full rate left the appliers
too little CPU: the gateway answered 16,891 records/s and stored 11,108/s while answering (the
rest caught up 1.8 s after the load; ``bench/stored.py``), so under a load that lasts the
backlog would have grown until the second bound. While the applier's transactions fail (the
database is down) the worker reads on and the journal absorbs what comes: when the applier is
``Tuning.max_backlog`` records behind, new requests are dropped unanswered (the NAS retries
later), so a slow or absent store bounds memory instead of exhausting it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from radiusgw.domain import AccountingRecord, Quarantined
from radiusgw.engine import AccountingAnswer
from radiusgw.server.batches import BatchThread, raise_priority
from radiusgw.server.settings import DEFAULT_TUNING, Tuning
from radiusgw.store import journal
from radiusgw.store.backend import Backend
from radiusgw.store.journal import JournalWriter, Position

_NAME = re.compile(r"acct-(\d+)")

Applied = tuple[list[AccountingRecord], Position]
Encoded = tuple[list[AccountingAnswer], bytes]


def transactions(batch: list[Applied], max_records: int) -> Iterator[list[Applied]]:
    """``batch`` cut, in order, into runs of at most ``max_records`` records (a run holds one
    item at least, whatever its size): one store transaction each (``Tuning.apply_max_records``)."""
    part: list[Applied] = []
    count = 0
    for item in batch:
        if part and count + len(item[0]) > max_records:
            yield part
            part, count = [], 0
        part.append(item)
        count += len(item[0])
    if part:
        yield part


def _commit(writer: JournalWriter, batch: list[Encoded]) -> list[Position]:
    """The journal-sync thread's step: every batch queued, in one write and one fdatasync."""
    return writer.commit([encoded for _, encoded in batch])


def _ignore(reading: bool) -> None:
    """``on_pace`` of a pipeline nobody reads for (tests, the replay)."""


def journal_name(index: int) -> str:
    return f"acct-{index}"


class AccountingPipeline:
    def __init__(
        self,
        directory: Path,
        index: int,
        open_store: Callable[[], Backend],
        loop: asyncio.AbstractEventLoop,
        log: Any,
        on_written: Callable[[list[AccountingAnswer]], None],
        on_failed: Callable[[list[AccountingAnswer], BaseException], None],
        *,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        """``tuning``: the backlog bound, the applier's pace and retry, and the two experiments
        (``journal_sync``, ``store_writes``: ``bench/ablate.py``)."""
        self.directory = directory
        self._max_backlog = tuning.max_backlog
        self._pause_backlog = tuning.pause_backlog
        self.on_pace: Callable[[bool], None] = _ignore  # the worker's: read (True) or not
        self.paused = False  # asked the worker to stop reading (flow control)
        self.pauses = 0  # times it did
        self._retry_interval = tuning.retry_interval
        self._apply_interval = tuning.apply_interval
        self._apply_max_records = tuning.apply_max_records
        self._store_writes = tuning.store_writes
        self.name = journal_name(index)
        self._log = log
        self._on_written = on_written
        self.backlog = 0  # records journalled, not yet applied
        self.last_applied: float | None = None  # unix time the applier last committed
        self._unanswered = 0  # records encoded for the journal, waiting for a commit
        self._acknowledged = 0  # records journalled since start
        self._applied_count = 0  # of those, records in the store
        self.quarantined = 0  # records the store refused and kept aside, replay included
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._stopping = threading.Event()
        self._pruned_below = 0
        self.failing = False  # the applier's last transaction failed (set on its thread)
        # Opened at once: a journal that cannot be written stops the worker at start, with the
        # reason, instead of failing its first Accounting-Request.
        self._journal = JournalWriter(directory, self.name, sync=tuning.journal_sync)
        self._loop = loop
        self._on_failed = on_failed
        self._pending: list[AccountingAnswer] = []
        # Group commit: what the loop encodes while a commit is under way waits in the
        # thread's queue, and the next commit takes all of it.
        self._syncer: BatchThread[JournalWriter, Encoded] = BatchThread(
            "journal-sync",
            lambda: self._journal,
            _commit,
            loop,
            self._synced,
            self._sync_failed,
        )
        self._open_store = open_store
        self._applier_priority = tuning.applier_priority
        self.applier: BatchThread[Backend, Applied] = BatchThread(
            "acct-applier",
            self._open_applier_store,
            self._apply,
            loop,
            self._applied,
            self._apply_failed,
        )

    def replay(self, store: Backend, adopt_from: int | None = None) -> int:
        """Apply this worker's journal (and, with ``adopt_from``, the journals of worker
        indexes from there up: a previous run had more workers); before serving. How many
        records; what had to be skipped or kept aside is logged."""
        done = [journal.replay(store, self.directory, self.name, self._journal)]
        if adopt_from is not None:
            for name in journal.names(self.directory):
                match = _NAME.fullmatch(name)
                if match is not None and int(match[1]) >= adopt_from:
                    done.append(journal.replay(store, self.directory, name))
        for replayed in done:
            for damage in replayed.damage:
                if damage.truncated:  # a torn write: never acknowledged (journal docstring)
                    self._log.warning(
                        "journal-truncated",
                        segment=str(damage.path),
                        offset=damage.offset,
                        bytes=damage.skipped,
                    )
                else:
                    self._log.error(
                        "journal-damaged",
                        segment=str(damage.path),
                        offset=damage.offset,
                        skipped=damage.skipped,
                    )
            self._quarantined(replayed.quarantined)
        return sum(replayed.records for replayed in done)

    def start(self) -> None:
        self._syncer.start()
        self.applier.start()

    @property
    def full(self) -> bool:
        # Unanswered records count too: while the disk stalls the loop goes on reading, and
        # without them memory would grow with the stall instead of shedding load.
        return self.backlog + self._unanswered >= self._max_backlog

    def submit(self, answer: AccountingAnswer) -> None:
        """Journal ``answer``'s record at the end of this loop iteration, then answer it."""
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(answer)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._unanswered += len(batch)
        self._syncer.submit((batch, journal.encode([a.record for a in batch])))

    def _synced(self, synced: list[Encoded], positions: list[Position]) -> None:
        """On the loop: answer what the commit covered."""
        if self._stopping.is_set():
            return  # durable but unanswered: the NAS retries, and the next start applies it
        for (batch, _), position in zip(synced, positions, strict=True):
            self._acknowledge(batch, position)

    def _sync_failed(self, synced: list[Encoded], exc: BaseException) -> None:
        """On the loop: nothing of these is in the journal (``JournalWriter.commit``); what was
        encoded meanwhile is not written yet, and goes in the next commit."""
        if self._stopping.is_set():
            return
        for batch, _ in synced:
            self._fail(batch, exc)

    def _fail(self, batch: list[AccountingAnswer], exc: BaseException) -> None:
        self._unanswered -= len(batch)
        self._on_failed(batch, exc)  # nothing acknowledged: the NAS retries

    def _acknowledge(self, batch: list[AccountingAnswer], position: Position) -> None:
        self._unanswered -= len(batch)
        records = [a.record for a in batch]
        self._on_written(batch)
        self.backlog += len(records)
        self._acknowledged += len(records)
        self.applier.submit((records, position))
        self._pace()

    def _pace(self) -> None:
        """Flow control (module docstring): on the loop, after the backlog changed."""
        behind = self.backlog + self._unanswered
        if self.paused:
            if self.failing or behind <= self._pause_backlog // 2:
                self.paused = False
                self.on_pace(True)
        elif not self.failing and behind >= self._pause_backlog:
            self.paused = True
            self.pauses += 1
            self.on_pace(False)

    def after_applied(self, then: Callable[[], None]) -> None:
        """Call ``then`` once every record acknowledged so far is in the store (now if so)."""
        if self._applied_count >= self._acknowledged or self.failing:
            then()
        else:
            self._waiting.append((self._acknowledged, then))

    def _release(self) -> None:
        waiting = self._waiting
        while waiting and waiting[0][0] <= self._applied_count:
            waiting.popleft()[1]()

    @property
    def outstanding(self) -> int:
        return len(self._pending) + self._unanswered + self.backlog

    async def wait_idle(self) -> None:
        while self._pending:
            await asyncio.sleep(0.001)  # the scheduled flush
        await self._syncer.wait_idle()
        await self.applier.wait_idle()

    def stop(self) -> None:
        self._stopping.set()
        # A commit under way ends before its file is closed: the thread closes it, last.
        self._syncer.stop()
        self.applier.stop()

    # -- the applier (its thread, then the event loop) ---------------------------------------

    def _open_applier_store(self) -> Backend:
        """The applier's first step on its thread: its priority (``Tuning.applier_priority``),
        then its store connection."""
        refused = raise_priority(self._applier_priority)
        if refused is not None:
            self._log.warning(
                "applier-priority-refused",
                levels=self._applier_priority,
                reason=refused,
                effect="the applier runs at the event loops' priority",
            )
        return self._open_store()

    def _apply(self, store: Backend, batch: list[Applied]) -> Position:
        started = time.monotonic()
        for part in transactions(batch, self._apply_max_records):
            self._write(store, [r for records, _ in part for r in records], part[-1][1])
        position = batch[-1][1]
        if position.segment > self._pruned_below:
            # Applied durably (synchronous=FULL) up to this segment: the older ones go.
            journal.prune(self.directory, self.name, position.segment)
            self._pruned_below = position.segment
        if self._apply_interval:  # what arrives meanwhile waits in the queue: the next batch
            time.sleep(max(0.0, started + self._apply_interval - time.monotonic()))
        return position

    def _write(self, store: Backend, records: list[AccountingRecord], position: Position) -> None:
        """One transaction: ``records`` and the journal position after them, tried until the
        store takes them (a later position must never be recorded past them)."""
        while True:
            try:
                kept_aside = (
                    store.write_accounting(records, (self.name, position))
                    if self._store_writes
                    else []
                )
                self.failing = False
                break
            except Exception as exc:  # the database's trouble, or a fault of ours: never skip
                if self._stopping.is_set():
                    raise
                if not self.failing:  # a paused worker reads on: the journal absorbs
                    self.failing = True
                    self._loop.call_soon_threadsafe(self._pace)
                self._log.error(
                    "accounting-apply-failed",
                    records=len(records),
                    error=str(exc),
                    retry_s=self._retry_interval,
                )
                if self._stopping.wait(self._retry_interval):
                    raise
        if kept_aside:
            self._quarantined(kept_aside)

    def _quarantined(self, kept_aside: list[Quarantined]) -> None:
        """Log and count records the store kept aside (its thread, or before serving)."""
        self.quarantined += len(kept_aside)
        for entry in kept_aside:
            self._log.error(
                "accounting-quarantined",
                id=entry.id,
                nas=entry.nas_address,
                realm=entry.realm,
                user=entry.username,
                session_id=entry.session_id,
                reason=entry.reason,
                journal=entry.journal,
            )

    def _applied(self, batch: list[Applied], _position: Position) -> None:
        count = sum(len(records) for records, _ in batch)
        self.backlog -= count
        self._applied_count += count
        self.last_applied = time.time()
        self._release()
        self._pace()

    def _apply_failed(self, batch: list[Applied], exc: BaseException) -> None:
        count = sum(len(records) for records, _ in batch)
        self.backlog -= count
        self._applied_count += count  # stopping: waiters go ahead rather than hang
        self._release()
        self._pace()
        self._log.error(
            "accounting-apply-stopped",
            records=sum(len(records) for records, _ in batch),
            error=str(exc),
            kept=f"in the journal {self.directory}; applied at the next start",
        )
