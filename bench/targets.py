"""Issue 19's targets (item 5), judged from one run's results: each a ratio, per shape.

Every target is a ratio of two figures measured in the same run under the same shape
(bench/run.py ``--shape``): the gateway's answered/s over FreeRADIUS's, or, for the tail, the
gateway's p99 over FreeRADIUS's when both are offered 80 % of FreeRADIUS's closed-loop rate in
open loop. A target is met, or not met by how much (in the ratio's units and as a share of the
target); one the run did not measure says why. Nothing here is typed in by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench import stored

# The open-loop duration the tail target asks for; a shorter run is reported as such.
P99_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RatioTarget:
    """``numerator`` / ``denominator`` at least ``wanted``; each a (scenario key, side)."""

    name: str
    numerator: tuple[str, str]
    denominator: tuple[str, str]
    wanted: float
    # Accounting: the rates the stores kept (bench/stored.py), since the target asks every
    # answered record in the session table, not the rate the NAS saw.
    sustained: bool = False


RATIO_TARGETS = (
    RatioTarget("group PAP", ("pap", "gateway"), ("pap", "freeradius"), 1.5),
    RatioTarget("group CHAP", ("chap", "gateway"), ("chap", "freeradius"), 1.5),
    RatioTarget("group MS-CHAPv2", ("mschapv2", "gateway"), ("mschapv2", "freeradius"), 1.5),
    RatioTarget("VPDN, 2 LNS", ("vpdn", "gateway"), ("vpdn", "freeradius"), 1.5),
    RatioTarget("proxy", ("proxy", "gateway"), ("proxy", "freeradius"), 1.2),
    RatioTarget(
        "accounting: gateway SQLite / FreeRADIUS detail file, sustained",
        ("acct", "gateway"),
        ("acct", "freeradius"),
        0.8,
        sustained=True,
    ),
    RatioTarget(
        "accounting: gateway SQLite / FreeRADIUS rlm_sql PostgreSQL, sustained",
        ("acct", "gateway"),
        ("acct-pg", "freeradius"),
        8.0,
        sustained=True,
    ),
    RatioTarget(
        "accounting: gateway PostgreSQL / FreeRADIUS rlm_sql PostgreSQL, sustained",
        ("acct-pg", "gateway"),
        ("acct-pg", "freeradius"),
        4.0,
        sustained=True,
    ),
)


def verdict(measured: float, wanted: float, *, at_most: bool = False) -> tuple[bool, str]:
    """(met, the words): "met", or "not met by X (Y %)" with X in the ratio's units."""
    short = measured - wanted if at_most else wanted - measured
    if short <= 0:
        return True, "met"
    return False, f"**not met** by {short:.2f} ({100 * short / wanted:.0f} %)"


def _rows_by_shape(results: dict[str, Any]) -> dict[str | None, dict[str, dict[str, Any]]]:
    """shape -> scenario key -> row, in the order the run measured them."""
    shapes: dict[str | None, dict[str, dict[str, Any]]] = {}
    for row in results.get("scenarios", []):
        shapes.setdefault(row.get("shape"), {})[row["key"]] = row
    return shapes


def _ratio(rows: dict[str, dict[str, Any]], target: RatioTarget) -> dict[str, Any]:
    cells: dict[str, Any] = {"target": target.name, "wanted": f"≥ {target.wanted:g}"}
    figures = []
    for key, side in (target.numerator, target.denominator):
        row = rows.get(key)
        if row is None:
            cells.update(measured="", met=None, verdict=f"not measured (no {key} run)")
            return cells
        if not row["available"]:
            why = "; ".join(f"{k}: {v}" for k, v in row.get("reasons", {}).items())
            cells.update(measured="", met=None, verdict=f"not measured ({key}: {why})")
            return cells
        figures.append(
            stored.sustained(row[side]) if target.sustained else float(row[side]["answered_per_s"])
        )
    ratio = figures[0] / max(figures[1], 1e-9)
    met, words = verdict(ratio, target.wanted)
    cells.update(measured=f"{ratio:.2f}", met=met, verdict=words)
    return cells


def _tail(
    shape: str | None, key: str, title: str, runs: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The p99 target of one scenario, from its open-loop runs at 80 % of FreeRADIUS's rate:
    the gateway's (``basis`` "freeradius") and FreeRADIUS's own first one."""
    mine = [r for r in runs if r.get("shape") == shape and r["scenario"] == key]
    gateway = next((r for r in mine if r.get("basis") == "freeradius"), None)
    peer = next(
        (r for r in mine if r["server"] == "freeradius" and "basis" not in r),
        None,
    )
    if gateway is None or peer is None:
        return None
    from bench.report import lost  # bench.report renders this module's tables

    ratio = gateway["p99_ms"] / max(peer["p99_ms"], 1e-9)
    met, words = verdict(ratio, 1.0, at_most=True)
    dropped = lost(gateway)
    if dropped:
        over = "" if met else "; p99 " + words.replace("**not met** by", "over by")
        # A request the load tool could not send (every Identifier of its source port in
        # flight, RFC 2865 §3) is no server's drop, but a NAS would have had to hold it: still
        # not met, and said apart from the unanswered ones.
        skipped = int(gateway.get("skipped", 0))
        unsent = f", {skipped} of them never sent (no free Identifier)" if skipped else ""
        met, words = False, f"**not met**: {dropped} lost{unsent}{over}"
    seconds = gateway.get("duration_s", 0.0)
    if seconds < P99_SECONDS - 1:
        words += f" (in {seconds:.0f} s, not {P99_SECONDS:.0f})"
    return {
        "target": f"{title}: p99 at 80 % of FreeRADIUS's rate, open loop, nothing lost",
        "wanted": "≤ 1",
        "measured": f"{ratio:.2f} ({gateway['p99_ms']:.2f} / {peer['p99_ms']:.2f} ms, "
        f"lost {dropped})",
        "met": met and not dropped,
        "verdict": words,
    }


def evaluate(results: dict[str, Any]) -> dict[str | None, list[dict[str, Any]]]:
    """shape -> its targets, each {target, wanted, measured, met (None: not measured),
    verdict}."""
    runs = results.get("open_loop", [])
    judged: dict[str | None, list[dict[str, Any]]] = {}
    for shape, rows in _rows_by_shape(results).items():
        found = [_ratio(rows, t) for t in RATIO_TARGETS]
        for key, row in rows.items():
            tail = _tail(shape, key, row["title"], runs) if row["available"] else None
            if tail is not None:
                found.append(tail)
        judged[shape] = found
    return judged
