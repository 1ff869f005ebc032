"""Multi-row statements (radiusgw.store.multirow): every row once, in order, in statements that
stay under the connection's parameter limit, whatever it is."""

from __future__ import annotations

import sqlite3

import pytest

from radiusgw.store.multirow import MAX_ROWS, MultiRow, largest, sizes


@pytest.mark.parametrize("total", [0, 1, 31, 32, 33, 1023, 1024, 1025, 5000])
def test_sizes_cover_the_batch_with_a_handful_of_statement_texts(total: int) -> None:
    cut = sizes(total, 32)
    assert sum(cut) == total
    assert all(size & (size - 1) == 0 and size <= 32 for size in cut)
    assert len(set(cut)) <= 6


def test_the_largest_statement_follows_the_connections_parameter_limit() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        if conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) >= 17 * MAX_ROWS:
            assert largest(conn, 17) == MAX_ROWS
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
        assert (largest(conn, 17), largest(conn, 7)) == (32, 128)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 5)
        assert largest(conn, 7) == 1  # one row always goes, and SQLite then says why not
    finally:
        conn.close()


@pytest.mark.parametrize("limit", [999, 32766])
def test_every_row_goes_in_once_in_order_under_the_limit(limit: int) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        conn.execute("CREATE TABLE t (n INTEGER, word TEXT, square INTEGER)")
        insert = MultiRow("INSERT INTO t (n, word, square) VALUES ", columns=3)
        values: list[object] = []
        for n in range(2500):
            values += (n, f"w{n}", n * n)
        insert.execute(conn, values)
        rows = conn.execute("SELECT n, word, square FROM t ORDER BY rowid").fetchall()
        assert rows == [(n, f"w{n}", n * n) for n in range(2500)]
    finally:
        conn.close()
