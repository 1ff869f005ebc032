"""radiusgw.engine.droplog: the bounds on drop log lines, without a clock."""

from __future__ import annotations

import logging
from typing import Any

from radiusgw.engine.droplog import BURST, RATE, STORE_ERROR_INTERVAL, DropLog, Recent
from tests.unit.engine.helpers import ListLog


def _dropped(log: ListLog) -> list[dict[str, Any]]:
    return [e for e in log.events if e["event"] == "dropped"]


def test_a_burst_is_written_then_a_few_lines_a_second() -> None:
    log = ListLog()
    drops = DropLog(log)
    for i in range(1000):  # 100 a second for 10 s
        drops.dropped("bad_authenticator", 100.0 + i / 100, client="x", reason="r")
    assert BURST + RATE * 10 - 1 <= len(_dropped(log)) <= BURST + RATE * 10
    drops.flush()
    (summary,) = [e for e in log.events if e["event"] == "drops-suppressed"]
    assert summary == {
        "level": "info",
        "event": "drops-suppressed",
        "total": 1000 - len(_dropped(log)),
        "bad_authenticator": 1000 - len(_dropped(log)),
    }


def test_the_summary_counts_by_reason_and_starts_again() -> None:
    log = ListLog()
    drops = DropLog(log, burst=1)
    for why in ("a", "b", "b", "c", "c", "c"):
        drops.dropped(why, 5.0, client="x", reason=why)
    drops.flush()
    drops.flush()
    summaries = [e for e in log.events if e["event"] == "drops-suppressed"]
    assert [(s["total"], s.get("a"), s["b"], s["c"]) for s in summaries] == [(5, None, 2, 3)]


def test_a_caller_without_a_clock_spends_the_tokens_left_and_refills_none() -> None:
    log = ListLog()
    drops = DropLog(log, burst=2)
    for _ in range(5):
        drops.dropped("oversized_answer", None, client="x", reason="r")
    assert len(_dropped(log)) == 2 and drops.held == {"oversized_answer": 3}


class FilteringLog(ListLog):
    """Shaped like structlog's filtering logger at level info."""

    def is_enabled_for(self, level: int) -> bool:
        return level >= logging.INFO


def test_debug_lines_a_logger_filters_spend_no_token_and_are_not_counted_held() -> None:
    log = FilteringLog()
    drops = DropLog(log, burst=1)
    for _ in range(10):
        drops.dropped("malformed", 1.0, debug=True, client="x", reason="malformed")
    drops.dropped("bad_authenticator", 1.0, client="x", reason="bad")
    assert [e["reason"] for e in _dropped(log)] == ["bad"]
    assert drops.held == {}


def test_store_errors_are_written_once_per_interval_each_held_one_counted_once() -> None:
    log = ListLog()
    drops = DropLog(log)
    for i in range(25):
        drops.store_error(float(i), error="malformed")
    errors = [e for e in log.events if e["event"] == "store-error"]
    assert [e["suppressed"] for e in errors] == [0, 9, 9]
    assert len(errors) == 25 // STORE_ERROR_INTERVAL + 1
    drops.flush()  # the 4 held since the last line
    (summary,) = [e for e in log.events if e["event"] == "drops-suppressed"]
    assert summary["store_error"] == 4
    drops.store_error(30.0, error="malformed")
    assert log.events[-1]["suppressed"] == 0  # counted in the summary already


def test_recent_names_a_key_once_per_interval() -> None:
    recent = Recent(60.0, 100)
    assert recent.first("a", 0.0)
    assert not recent.first("a", 59.0)
    assert recent.first("a", 60.0)


def test_recent_forgets_the_oldest_at_its_bound_never_all_at_once() -> None:
    recent = Recent(60.0, 1000)
    for i in range(12_000):  # a spoofed flood: each address new
        assert recent.first(f"10.0.{i >> 8}.{i & 255}", i / 1200)
        assert len(recent) <= 1000
    # The most recent thousand are still known: not named again.
    assert not any(recent.first(f"10.0.{i >> 8}.{i & 255}", 10.0) for i in range(11_000, 12_000))


def test_recent_forgets_what_is_past_the_interval_first() -> None:
    recent = Recent(60.0, 3)
    recent.first("old", 0.0)
    recent.first("b", 50.0)
    recent.first("c", 55.0)
    assert recent.first("d", 61.0)  # "old" expired: it goes, b and c stay
    assert not recent.first("b", 62.0) and not recent.first("c", 62.0)
