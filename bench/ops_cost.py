"""What the operations surface costs (issue 18): group PAP against the gateway with metrics and
the authentication log on, side by side with both off, in one run (``bench.run --ops-cost``);
and each part alone, so that the report says where the cost sits.

Issue 18 asks that counting requests (the Prometheus metrics) and logging every login's outcome
(the authentication log) not slow the answers measurably; target: under 5 % of throughput.
Four gateways run through the whole section, each on its own copy of the run's database (the
log one writes must not land in another's): "on" with ``--metrics-listen 127.0.0.1:0`` and
``--auth-log-days 90`` (the log's default), "off" with no metrics listener and
``--auth-log-days 0``, "metrics" and "log" with one of the two. They take turns, one after
another per round and in the reverse order the next round, under the run's last shape and its
users, idle while another is measured. "on" and "off" run back to back in every round (first
and second, then third and fourth), so that each round's pair meets the same spell of the
machine.
The cost is the median over the rounds of each round's own cost ("on" against "off" of the same
round), and each part's likewise against that round's "off". Why not the means of the rates:
on this shared machine one configuration's rate moves by 20 % within minutes, more than the
5 % being measured, and a round that meets such a move on one side carries the mean with it
(one run gave 22.9, 24.3, 22.0 and -2.9 % round by round, another 13.2, -26.5, 5.0 and 4.6 %).
A pair run back to back cancels the slow drift, and the median leaves out the round that a
burst of the machine took one side of. The cost from the means is reported beside it, and so is
every round's.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import statistics
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


# In the order they run in odd rounds (even rounds: reversed): "on" and "off" back to back.
VARIANTS = (
    Variant("on", f"metrics on, auth log on ({AUTH_LOG_DAYS} days)", True, AUTH_LOG_DAYS),
    Variant("off", "metrics off, auth log off (0 days)", False, 0),
    Variant("metrics", "metrics on, auth log off (0 days)", True, 0),
    Variant("log", f"metrics off, auth log on ({AUTH_LOG_DAYS} days)", False, AUTH_LOG_DAYS),
)
PARTS = {"metrics": "metrics alone", "log": "the auth log alone"}  # each one's own cost


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
    """The cost in % of "off"'s rate: the median of the rounds' own (module docstring), judged
    against the target; with the cost from the means of the rounds (``mean_pct``), each round's
    (``round_pct``) and each part's where its variant ran (``part_pct``, medians likewise)."""

    def by_round(key: str) -> list[float]:
        return [
            100 * (o["answered_per_s"] - n["answered_per_s"]) / max(o["answered_per_s"], 1e-9)
            for n, o in zip(section[key]["rounds"], section["off"]["rounds"], strict=True)
        ]

    def cost_of(key: str) -> float:
        return round(statistics.median(by_round(key)), 2)

    off = section["off"]["answered_per_s"]
    cost = cost_of("on")
    met, words = verdict(cost, TARGET_PCT, at_most=True)
    return {
        "cost_pct": cost,
        "mean_pct": round(100 * (off - section["on"]["answered_per_s"]) / max(off, 1e-9), 2),
        "met": met,
        "verdict": words,
        "part_pct": {key: cost_of(key) for key in PARTS if key in section},
        "round_pct": [round(pct, 1) for pct in by_round("on")],
    }
