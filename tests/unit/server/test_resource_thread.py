"""ResourceThread (radiusgw.server.resource_thread): a SQLite connection used off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from radiusgw.server.resource_thread import ResourceThread


class Table:
    """A real sqlite3 connection; it refuses any thread but the one that opened it."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(str(db), timeout=5.0, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        self.opened_on = threading.get_ident()
        self.closed_on: int | None = None

    def add(self, value: int) -> int:
        self.conn.execute("INSERT INTO t VALUES (?)", (value,))
        return threading.get_ident()

    def values(self) -> list[int]:
        return [v for (v,) in self.conn.execute("SELECT v FROM t ORDER BY rowid")]

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def close(self) -> None:
        self.closed_on = threading.get_ident()
        self.conn.close()


async def test_calls_run_in_order_on_the_thread_that_opened_the_resource(tmp_path: Path) -> None:
    opened: list[Table] = []

    def open_table() -> Table:
        opened.append(Table(tmp_path / "t.db"))
        return opened[-1]

    worker = ResourceThread("test-resource", open_table)
    assert not opened  # opened at the first call, not before
    threads = await asyncio.gather(*(worker.call(Table.add, n) for n in range(20)))
    assert await worker.call(Table.values) == list(range(20))
    (table,) = opened
    assert set(threads) == {table.opened_on} != {threading.get_ident()}
    with pytest.raises(ValueError, match="said so"):
        await worker.call(Table.fail, "said so")
    assert await worker.call(Table.add, 20) == table.opened_on  # still usable after an error
    await worker.close()
    assert table.closed_on == table.opened_on


async def test_a_write_waiting_for_the_lock_leaves_the_loop_serving(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    Table(db).close()
    holder = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, holding the write lock
    worker = ResourceThread("test-resource", lambda: Table(db))
    write = asyncio.create_task(worker.call(Table.add, 1))
    for _ in range(5):  # the loop goes on while the write waits in SQLite's busy handler
        await asyncio.sleep(0.02)
    assert not write.done()
    holder.execute("COMMIT")  # released only because the loop ran
    await write
    assert await worker.call(Table.values) == [1]
    await worker.close()
    holder.close()


async def test_close_without_a_call_opens_nothing() -> None:
    def never() -> Table:
        raise AssertionError("opened")

    await ResourceThread("test-resource", never).close()
