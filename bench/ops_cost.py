"""What the operations surface costs (issue 18): group PAP against the gateway with metrics and
the authentication log on, side by side with both off, in one run (``bench.run --ops-cost``).

Issue 18 asks that counting requests (the Prometheus metrics) and logging every login's outcome
(the authentication log) not slow the answers measurably; target: under 5 % of throughput.
Two gateways run through the whole section, each on its own copy of the run's database (the
log one writes must not land in the other's): "on" with ``--metrics-listen 127.0.0.1:0`` and
``--auth-log-days 90`` (the log's default), "off" with no metrics listener and
``--auth-log-days 0``. They take turns, A B per round, under the run's last shape and its
users, idle while the other is measured. The cost is the rate "on" loses, as a share of
"off"'s, from the means of the rounds.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.targets import verdict

TARGET_PCT = 5.0  # issue 18: "under 5 % of throughput"
AUTH_LOG_DAYS = 90  # the gateway's default --auth-log-days


@dataclass(frozen=True, slots=True)
class Variant:
    """One of the gateways run side by side: its key in the results, its words, its flags."""

    key: str
    title: str
    metrics: bool
    auth_log_days: int
    pure: bool = False  # run from a copy of the package without its compiled modules (pure.py)


VARIANTS = (
    Variant("on", f"metrics on, auth log on ({AUTH_LOG_DAYS} days)", True, AUTH_LOG_DAYS),
    Variant("off", "metrics off, auth log off (0 days)", False, 0),
)


def copy_database(db: Path, to: Path) -> Path:
    """A consistent copy of the SQLite file ``db`` (SQLite's backup, so a WAL's pages come
    too) and its password key beside it, at ``to``."""
    with (
        contextlib.closing(sqlite3.connect(db)) as source,
        contextlib.closing(sqlite3.connect(to)) as target,
    ):
        source.backup(target)
    shutil.copy2(f"{db}.key", f"{to}.key")  # its mode too: the gateway wants 0600
    return to


def section(shape: str, seconds: float, runs: dict[str, Any]) -> dict[str, Any]:
    """The report's section from the means of the rounds of each variant (by key)."""
    out: dict[str, Any] = {"shape": shape, "seconds": seconds, **runs}
    return out | judge(out)


def judge(section: dict[str, Any]) -> dict[str, Any]:
    """The cost in % of "off"'s rate, and the target met or not met by how much."""
    on, off = section["on"]["answered_per_s"], section["off"]["answered_per_s"]
    cost = 100 * (off - on) / max(off, 1e-9)
    met, words = verdict(cost, TARGET_PCT, at_most=True)
    return {"cost_pct": round(cost, 2), "met": met, "verdict": words}
