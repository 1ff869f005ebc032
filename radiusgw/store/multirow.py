"""Multi-row statements: how the accounting applier hands SQLite many rows in one step.

sqlite3's ``executemany`` steps each row apart and hands the GIL back around every step. The
applier runs beside the worker's event loop, which holds the GIL between its system calls, so
at every row the applier waited for the loop: an applier thread inserting 40,000 rows in
batches of 50 beside a thread doing a UDP send and receive in a loop took 13.3-15.0 us a row
and 22,149-27,152 voluntary context switches with ``executemany``, 5.7-6.7 us and 4,673-4,920
with one statement per batch. The wait is worse than its CPU: it is spent holding the store's
write lock, which every worker's applier queues for (``SqliteStore._writers_lock``), and the
event loop hands the GIL back only at its next system call, up to a millisecond later.

A batch is cut into statements of up to ``MAX_ROWS`` rows, fewer if the rows' parameters would
pass the connection's limit (32,766 since SQLite 3.32, 999 before), then the rest's powers of
two, so that a handful of statement texts serve every batch size (sqlite3 keeps 128 prepared
per connection). 1,024 rows a statement instead of 32 session events and 128 accounting rows,
under a closed loop of Starts and Stops (``bench.profile --scenario acct --users 100000``, four
pairs): the write lock held 7.7 instead of 8.9 s in 10, 31,000-32,700 instead of 28,600-29,900
records/s answered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

MAX_ROWS = 1024


def sizes(total: int, largest: int) -> list[int]:
    """``total`` rows as statement sizes: full ones of ``largest`` (a power of two), then the
    rest's powers of two."""
    out = [largest] * (total // largest)
    rest = total % largest
    size = largest // 2
    while rest:
        if rest >= size:
            out.append(size)
            rest -= size
        size //= 2
    return out


def largest(conn: sqlite3.Connection, columns: int) -> int:
    """The most rows of ``columns`` parameters a statement on ``conn`` takes: ``MAX_ROWS`` or
    the largest power of two under the connection's parameter limit."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows = MAX_ROWS
    while rows > 1 and rows * columns > limit:
        rows //= 2
    return rows


class MultiRow:
    """One statement of the form ``head`` + ``rows`` row tuples of ``columns`` parameters +
    ``tail``, run over a batch's parameters laid end to end."""

    def __init__(self, head: str, columns: int, tail: str = "") -> None:
        self._head = head
        self._tail = tail
        self._columns = columns
        self._row = "(" + ", ".join(["?"] * columns) + ")"
        self._texts: dict[int, str] = {}

    def text(self, rows: int) -> str:
        text = self._texts.get(rows)
        if text is None:
            text = self._head + ", ".join([self._row] * rows) + self._tail
            self._texts[rows] = text
        return text

    def execute(self, conn: sqlite3.Connection, values: Sequence[object]) -> None:
        """Every row of ``values`` (``columns`` parameters each, in order), in as few
        statements as ``sizes`` makes."""
        columns = self._columns
        assert len(values) % columns == 0
        start = 0
        for rows in sizes(len(values) // columns, largest(conn, columns)):
            end = start + columns * rows
            conn.execute(self.text(rows), values[start:end])
            start = end
