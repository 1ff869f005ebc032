"""Multi-row statements: how the accounting applier hands SQLite many rows in one step.

sqlite3's ``executemany`` steps each row apart and hands the GIL back around every step. The
applier runs beside the worker's event loop, which holds the GIL between its system calls, so
at every row the applier waited for the loop: an applier thread inserting 40,000 rows in
batches of 50 beside a thread doing a UDP send and receive in a loop took 13.3-15.0 us a row
and 22,149-27,152 voluntary context switches with ``executemany``, 5.7-6.7 us and 4,673-4,920
with one statement per batch. The wait is worse than its CPU: it is spent holding the store's
write lock, which every worker's applier queues for (``SqliteStore._writers_lock``).

A batch is cut into statements of up to ``largest`` rows, then the rest's powers of two, so
that a handful of statement texts serve every batch size (sqlite3 keeps 128 prepared per
connection). ``largest`` times the columns stays under 999 parameters, the limit of SQLite
before 3.32.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

MAX_PARAMETERS = 999


def sizes(total: int, largest: int) -> list[int]:
    """``total`` rows as statement sizes: full ones of ``largest``, then the rest's powers of
    two (``largest`` is one)."""
    out = [largest] * (total // largest)
    rest = total % largest
    size = largest // 2
    while rest:
        if rest >= size:
            out.append(size)
            rest -= size
        size //= 2
    return out


class MultiRow:
    """One statement of the form ``head`` + ``rows`` row tuples of ``columns`` parameters +
    ``tail``, run over a batch's parameters laid end to end."""

    def __init__(self, head: str, columns: int, largest: int, tail: str = "") -> None:
        assert largest & (largest - 1) == 0, "a power of two"
        assert largest * columns <= MAX_PARAMETERS
        self._head = head
        self._tail = tail
        self._columns = columns
        self._largest = largest
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
        for rows in sizes(len(values) // columns, self._largest):
            end = start + columns * rows
            conn.execute(self.text(rows), values[start:end])
            start = end
