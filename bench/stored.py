"""What a gateway's store kept while the load ran: an answered record is not yet a stored one.

The gateway answers an Accounting-Request once the record is in its fsync'd journal (RFC 2866
§2); its applier writes the store (the accounting row and the session table) after. Under a
closed loop at full rate the applier can fall behind. The rate the NAS sees is then not one the
store sustains: the backlog grows until the gateway sheds load (``Tuning.max_backlog``, 200,000
records a worker), and the session table that the limits and ``usage`` read is late by as much.
So for every accounting run of a gateway the bench reads its store's last record id just before
the load, just after it, and again until it stops moving; all of it before the load's NAS stop
the sessions they still hold (``servers.run_load``), whose records are not the run's:

- ``stored_per_s``: records stored while the load ran, per second of its run;
- ``stored_share``: of the records the run put in the store in the end, the share stored while
  it ran (1.0: the store kept up with the answers);
- ``left_at_end``: records answered but not yet stored when the load stopped;
- ``caught_up_s``: how long after the load the last of them was stored.

The load's run includes its warm-up, so ``stored_per_s`` is over the warm-up and the measured
seconds both; ``stored_share`` compares counts of the same run and has no such bias.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The accounting table of both stores has an id that only grows (SQLite's rowid; PostgreSQL's
# identity), and nothing deletes rows during a bench: its largest value counts the records.
_LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM accounting"
SETTLE_S = 60.0  # the longest wait for the store to catch up
POLL_S = 0.25
# Caught up once the id holds this long: a backlogged applier commits every 0.1 s, but one
# batch of a large backlog (2,000 journal commits) can take longer than a poll.
QUIET_S = 1.5

Counter = Callable[[], int]


def sqlite_counter(db: Path) -> Counter:
    """The gateway's SQLite store (read-only: the gateway's WAL lets a reader in beside it)."""

    def count() -> int:
        uri = f"file:{db}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
            return int(conn.execute(_LAST_ID).fetchone()[0])

    return count


def postgres_counter(url: str) -> Counter:
    """The gateway's PostgreSQL store."""

    def count() -> int:
        import psycopg  # the fleet's scenarios only

        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(_LAST_ID.encode()).fetchone()
            assert row is not None
            return int(row[0])

    return count


def measure(
    count: Counter,
    run: Callable[[Callable[[], None]], dict[str, Any]],
    *,
    settle: float = SETTLE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """``run(measured)`` (the load; its result) with the store's figures of the module
    docstring added. ``run`` calls ``measured()`` once its load is over, before anything else
    reaches the store (radload's NAS stopping their sessions: ``servers.run_load``)."""
    before, started = count(), clock()
    figures: dict[str, Any] = {}

    def measured() -> None:
        after, ended = count(), clock()
        last, last_at = after, ended
        while clock() - ended < settle and clock() - last_at < QUIET_S:
            sleep(POLL_S)
            now = count()
            if now != last:
                last, last_at = now, clock()
        seconds = max(ended - started, 1e-9)
        total = last - before
        figures["stored_per_s"] = round((after - before) / seconds, 1)
        figures["stored_share"] = round((after - before) / total, 3) if total > 0 else 1.0
        figures["left_at_end"] = last - after
        figures["caught_up_s"] = round(last_at - ended, 2)

    result = run(measured)
    if not figures:
        raise ValueError("the load never said that it was over")
    return {**result, **figures}


def sustained(figures: dict[str, Any]) -> float:
    """A server's accounting rate as its store kept it: answered/s times the share stored
    while answering (a server without that figure stores as it answers: FreeRADIUS's detail
    file and rlm_sql write before they answer)."""
    return float(figures["answered_per_s"]) * float(figures.get("stored_share", 1.0))


def stored_cell(figures: dict[str, Any]) -> str:
    """The report's words for the store's figures of one configuration."""
    if "stored_share" not in figures:
        return "before answering"
    share = 100 * figures["stored_share"]
    return (
        f"{share:.0f} %, {figures['left_at_end']:,} left, caught up "
        f"{figures['caught_up_s']:.1f} s later"
    )
