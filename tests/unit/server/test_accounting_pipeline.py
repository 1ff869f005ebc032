"""The accounting path (radiusgw.server.accounting): an answer only once its record is synced,
and the event loop never waits for the disk meanwhile."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from radiusgw.engine.core import AccountingAnswer
from radiusgw.errors import StoreError
from radiusgw.server.accounting import AccountingPipeline, transactions
from radiusgw.server.settings import DEFAULT_TUNING, Tuning
from radiusgw.store import journal, open_store
from radiusgw.store.journal import JournalWriter, Position
from radiusgw.store.quarantine import QuarantineTable
from tests.unit.engine.helpers import ListLog
from tests.unit.store.test_journal import damage_byte, everything, record, tear, ten_records


class Disk:
    """``os.fdatasync`` as the journal sees it: held until released, or failing."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail = 0  # how many of the next syncs fail
        self.syncs = 0

    def fdatasync(self, fd: int) -> None:
        self.entered.set()
        assert self.release.wait(10), "the test never released the sync"
        self.syncs += 1
        if self.fail:
            self.fail -= 1
            raise OSError(5, "Input/output error")
        os.fdatasync(fd)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    held = Disk()

    class Os:
        def __getattr__(self, name: str) -> object:
            return held.fdatasync if name == "fdatasync" else getattr(os, name)

    monkeypatch.setattr(journal, "os", Os())
    yield held
    held.release.set()  # a sync still waiting must not outlive the test


def answer(n: int) -> AccountingAnswer:
    # The key as the engine makes it (source host, port, Identifier, authenticator): the port
    # says which record it is.
    key = ("192.0.2.1", n, n % 256, bytes(16))
    return AccountingAnswer(key=key, record=record(n), reply=b"reply", address=("192.0.2.1", n))


class Running:
    """A worker's pipeline on a real journal and store; answers and failures noted by key."""

    def __init__(
        self,
        tmp_path: Path,
        log: Any = None,
        tuning: Tuning = DEFAULT_TUNING,
        wrap: Callable[[Any], Any] = lambda store: store,
    ) -> None:
        """``wrap``: what the applier gets instead of the store it opens (a store that fails)."""
        self.written: list[int] = []
        self.failed: list[int] = []
        self.pipeline = AccountingPipeline(
            tmp_path / "journal",
            0,
            lambda: wrap(open_store(tmp_path / "gw.db", tmp_path / "gw.key")),
            asyncio.get_running_loop(),
            structlog.get_logger() if log is None else log,
            on_written=lambda batch: self.written.extend(a.key[1] for a in batch),
            on_failed=lambda batch, exc: self.failed.extend(a.key[1] for a in batch),
            tuning=tuning,
        )

    def journalled(self, tmp_path: Path) -> list[str | None]:
        return [r.session_id for r in everything(tmp_path / "journal", "acct-0")]


@pytest.fixture
def tuning() -> Tuning:
    return DEFAULT_TUNING


@pytest.fixture
async def running(tmp_path: Path, disk: Disk, tuning: Tuning) -> AsyncIterator[Running]:
    it = Running(tmp_path, tuning=tuning)
    it.pipeline.start()
    yield it
    disk.release.set()
    it.pipeline.stop()


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5)


@pytest.mark.parametrize("tuning", [Tuning(max_backlog=3)])
async def test_answers_wait_for_the_sync_and_the_loop_serves_meanwhile(
    tmp_path: Path, disk: Disk, running: Running
) -> None:
    pipeline = running.pipeline
    pipeline.submit(answer(1))
    await wait_for(disk.entered)  # the sync of record 1 is under way, and held
    served = 0
    for _ in range(20):  # the loop goes on: other callbacks run, more records come
        await asyncio.sleep(0.001)
        served += 1
    pipeline.submit(answer(2))
    pipeline.submit(answer(3))
    await asyncio.sleep(0.01)
    assert served == 20 and running.written == []  # nothing answered before it is durable
    # Records waiting for a stalled disk count against the backlog: the worker sheds load.
    assert pipeline.outstanding == 3 and pipeline.full
    disk.release.set()
    await pipeline.wait_idle()
    assert running.written == [1, 2, 3]  # 2 and 3 by the sync begun after they were written
    assert disk.syncs == 2 and running.failed == []
    assert pipeline.outstanding == 0 and not pipeline.full  # applied, with the store's help
    assert running.journalled(tmp_path) == ["s1", "s2", "s3"]


async def test_a_failed_sync_fails_what_it_covered_and_keeps_nothing_of_it(
    tmp_path: Path, disk: Disk, running: Running
) -> None:
    pipeline = running.pipeline
    disk.release.set()
    pipeline.submit(answer(1))
    await pipeline.wait_idle()
    assert running.written == [1]

    disk.release.clear()
    disk.entered.clear()
    disk.fail = 1
    pipeline.submit(answer(2))
    await wait_for(disk.entered)  # 2 is written, and its sync will fail
    pipeline.submit(answer(3))  # arrives meanwhile: waits, unwritten, for the next commit
    await asyncio.sleep(0.01)
    assert running.journalled(tmp_path) == ["s1", "s2"]
    disk.release.set()
    await pipeline.wait_idle()
    assert running.failed == [2] and running.written == [1, 3]
    # Only what a good sync covered is left: 2 was cut off (the NAS retries it).
    assert running.journalled(tmp_path) == ["s1", "s3"]


async def test_a_refused_record_is_kept_aside_and_the_rest_answered_and_applied(
    tmp_path: Path, disk: Disk
) -> None:
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        store._conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON accounting WHEN NEW.session_id = 's2'"
            " BEGIN SELECT RAISE(ABORT, 'refused here'); END"
        )
    log = ListLog()
    it = Running(tmp_path, log)
    it.pipeline.start()
    disk.release.set()
    try:
        for n in (1, 2, 3):
            it.pipeline.submit(answer(n))
        await it.pipeline.wait_idle()
    finally:
        it.pipeline.stop()
    assert it.written == [1, 2, 3] and it.failed == []  # acknowledged before it was applied
    assert it.pipeline.quarantined == 1 and it.pipeline.outstanding == 0
    [entry] = [e for e in log.events if e["event"] == "accounting-quarantined"]
    assert (entry["session_id"], entry["reason"], entry["journal"]) == (
        "s2",
        "IntegrityError: refused here",
        "acct-0",
    )
    table = QuarantineTable(tmp_path / "gw.db")
    assert [q.session_id for q in table.rows()] == ["s2"]
    table.close()
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        assert store.count_accounting() == 2
        end = everything_end(tmp_path / "journal")
        assert store.journal_position("acct-0") == end  # past the refused record too


def everything_end(directory: Path) -> Position:
    return [end for _, end in journal.read(directory, "acct-0", None)][-1]


async def test_the_start_up_replay_logs_what_it_skipped_and_applies_the_rest(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journal"
    first, starts = ten_records(directory)
    damage_byte(first, starts[2] + 40)  # record 3 of 10
    JournalWriter(directory, "acct-0").append([record(11), record(12)])
    second = journal.segments(directory, "acct-0")[1][1]
    tear(second, 5)  # its last write torn by a crash
    log = ListLog()
    it = Running(tmp_path, log)
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        assert it.pipeline.replay(store) == 10
        assert store.count_accounting() == 10
    it.pipeline.start()
    it.pipeline.stop()
    told = [e for e in log.events if e["event"].startswith("journal-")]
    assert told == [
        {
            "level": "error",
            "event": "journal-damaged",
            "segment": str(first),
            "offset": starts[2],
            "skipped": starts[3] - starts[2],
        },
        {
            "level": "warning",
            "event": "journal-truncated",
            "segment": str(second),
            "offset": len(journal.encode([record(11)])),
            "bytes": len(journal.encode([record(12)])) - 5,
        },
    ]


async def test_a_database_restored_without_its_journal_keeps_the_new_writes(
    tmp_path: Path, disk: Disk
) -> None:
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        store.write_accounting([record(1)], ("acct-0", Position(57, 4096)))
    it = Running(tmp_path)  # no journal directory: its writer opens segment 1
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        it.pipeline.replay(store)
    [(segment, path)] = journal.segments(tmp_path / "journal", "acct-0")
    assert segment == 58 and path.exists()  # the replay left the writer's segment alone
    it.pipeline.start()
    disk.release.set()
    try:
        it.pipeline.submit(answer(2))
        await it.pipeline.wait_idle()
    finally:
        it.pipeline.stop()
    assert it.written == [2] and it.journalled(tmp_path) == ["s2"]  # durable where it was put
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as store:
        assert store.count_accounting() == 2
        end = journal.written_end(path.read_bytes())
        assert store.journal_position("acct-0") == Position(58, end)


@pytest.mark.parametrize("tuning", [Tuning(pause_backlog=4)])
async def test_a_worker_stops_reading_while_the_applier_is_behind_and_reads_again_after(
    tmp_path: Path, disk: Disk, running: Running
) -> None:
    """Flow control: the applier queues behind another writer (the writers' lock held here),
    so the backlog grows to ``pause_backlog`` and the worker is asked to stop reading; once
    the applier has caught up, to read again."""
    pipeline = running.pipeline
    paces: list[bool] = []
    pipeline.on_pace = paces.append
    lock = os.open(tmp_path / "gw.db.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    disk.release.set()
    try:
        for n in (1, 2, 3):
            pipeline.submit(answer(n))
        while running.written != [1, 2, 3]:
            await asyncio.sleep(0.001)
        assert paces == [] and not pipeline.paused  # 3 behind: reading on
        pipeline.submit(answer(4))
        while running.written != [1, 2, 3, 4]:
            await asyncio.sleep(0.001)
        assert paces == [False] and pipeline.paused and pipeline.pauses == 1
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    await pipeline.wait_idle()
    assert paces == [False, True] and not pipeline.paused and pipeline.backlog == 0


class DownStore:
    """The real store, whose accounting transactions fail while ``down`` is set (the database
    unreachable, as a PostgreSQL node would be)."""

    def __init__(self, store: Any, down: threading.Event) -> None:
        self._store = store
        self._down = down

    def write_accounting(self, *args: Any, **kw: Any) -> Any:
        if self._down.is_set():
            raise StoreError("the database is down")
        return self._store.write_accounting(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_paused_worker_reads_again_once_the_store_fails_the_journal_absorbs(
    tmp_path: Path, disk: Disk
) -> None:
    """Behind because the database is down, not slow: the worker reads on, and the journal
    keeps what comes (up to ``max_backlog``)."""
    down = threading.Event()
    down.set()
    tuning = Tuning(pause_backlog=1, retry_interval=0.05)
    it = Running(tmp_path, tuning=tuning, wrap=lambda store: DownStore(store, down))
    paces: list[bool] = []
    it.pipeline.on_pace = paces.append
    it.pipeline.start()
    disk.release.set()
    try:
        it.pipeline.submit(answer(1))
        for _ in range(1000):
            if paces == [False, True]:
                break
            await asyncio.sleep(0.005)
        assert paces == [False, True] and it.pipeline.failing and not it.pipeline.paused
        assert it.written == [1]  # acknowledged from the journal all the same
        down.clear()
        await it.pipeline.wait_idle()
        assert it.pipeline.backlog == 0 and not it.pipeline.failing
    finally:
        it.pipeline.stop()


class CountingStore(DownStore):
    """``DownStore`` that notes the size of each accounting transaction it commits."""

    def __init__(self, store: Any, down: threading.Event) -> None:
        super().__init__(store, down)
        self.transactions: list[int] = []

    def write_accounting(self, records: Any, *args: Any, **kw: Any) -> Any:
        kept = super().write_accounting(records, *args, **kw)
        self.transactions.append(len(records))
        return kept


async def test_an_outages_backlog_goes_to_the_store_in_bounded_transactions_in_order(
    tmp_path: Path, disk: Disk
) -> None:
    """What the journal absorbed while the store was down is applied in transactions of at
    most ``apply_max_records`` (one loop iteration's batch is never cut), every record once."""
    down = threading.Event()
    down.set()
    tuning = Tuning(retry_interval=0.05, apply_max_records=3, apply_interval=0.2)
    stores: list[CountingStore] = []

    def wrap(store: Any) -> CountingStore:
        stores.append(CountingStore(store, down))
        return stores[-1]

    it = Running(tmp_path, tuning=tuning, wrap=wrap)
    it.pipeline.start()
    disk.release.set()
    try:
        it.pipeline.submit(answer(1))  # the batch the applier holds while the store is down
        while not it.pipeline.failing:
            await asyncio.sleep(0.001)
        for n in range(2, 12):  # one loop iteration each: queued behind it
            it.pipeline.submit(answer(n))
            while it.written[-1] != n:
                await asyncio.sleep(0.001)
        down.clear()
        await it.pipeline.wait_idle()
    finally:
        it.pipeline.stop()
    (store,) = stores
    assert store.transactions[0] == 1 and max(store.transactions) == 3
    assert sum(store.transactions) == 11
    with open_store(tmp_path / "gw.db", tmp_path / "gw.key") as check:
        assert check.count_accounting() == 11


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="raising it takes root"
)
async def test_the_applier_runs_its_tunings_levels_above_the_event_loop(
    tmp_path: Path, disk: Disk
) -> None:
    """On SQLite every worker's applier queues for the one holding the write lock: that one
    must not wait for the CPU behind the event loops (``Tuning.applier_priority``)."""
    log = ListLog()
    it = Running(tmp_path, log=log)
    it.pipeline.start()
    disk.release.set()
    try:
        it.pipeline.submit(answer(1))
        await it.pipeline.wait_idle()  # applied: the applier's thread is running
        (applier,) = [t for t in threading.enumerate() if t.name == "acct-applier"]
        assert applier.native_id is not None
        loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert os.getpriority(os.PRIO_PROCESS, applier.native_id) == max(
            -20, loop_nice - DEFAULT_TUNING.applier_priority
        )
    finally:
        it.pipeline.stop()
    assert DEFAULT_TUNING.applier_priority == 10
    assert not [e for e in log.events if e["event"] == "applier-priority-refused"]


def test_transactions_cut_a_batch_in_order_never_inside_an_item() -> None:
    position = Position(1, 0)
    batch = [([record(n) for n in range(size)], position) for size in (2, 1, 5, 1, 1)]
    parts = list(transactions(batch, 3))
    assert [[len(records) for records, _ in part] for part in parts] == [[2, 1], [5], [1, 1]]
    assert [item for part in parts for item in part] == batch
