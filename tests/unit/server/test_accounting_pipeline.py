"""The accounting path (radiusgw.server.accounting): an answer only once its record is synced,
and the event loop never waits for the disk meanwhile."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from radiusgw.engine.core import AccountingAnswer
from radiusgw.server import accounting
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.store import journal, open_store
from tests.unit.store.test_journal import everything, record


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
    return AccountingAnswer(key=n, record=record(n), reply=b"reply", address=("192.0.2.1", n))


class Running:
    """A worker's pipeline on a real journal and store; answers and failures noted by key."""

    def __init__(self, tmp_path: Path) -> None:
        self.written: list[int] = []
        self.failed: list[int] = []
        self.pipeline = AccountingPipeline(
            tmp_path / "journal",
            0,
            lambda: open_store(tmp_path / "gw.db", tmp_path / "gw.key"),
            asyncio.get_running_loop(),
            structlog.get_logger(),
            on_written=lambda batch: self.written.extend(a.key for a in batch),
            on_failed=lambda batch, exc: self.failed.extend(a.key for a in batch),
        )

    def journalled(self, tmp_path: Path) -> list[str | None]:
        return [r.session_id for r in everything(tmp_path / "journal", "acct-0")]


@pytest.fixture
async def running(tmp_path: Path, disk: Disk) -> AsyncIterator[Running]:
    it = Running(tmp_path)
    it.pipeline.start()
    yield it
    disk.release.set()
    it.pipeline.stop()


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 5)


async def test_answers_wait_for_the_sync_and_the_loop_serves_meanwhile(
    tmp_path: Path, disk: Disk, running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounting, "MAX_BACKLOG", 3)
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
