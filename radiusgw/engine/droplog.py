"""The log lines about dropped requests: bounded per worker, whatever arrives.

Every ``dropped`` line a worker writes (an unregistered source, a bad authenticator, a
malformed datagram, an answer too long to send ...) takes a token from one bucket: ``RATE``
lines a second, ``BURST`` at once. A line without a token is not written but counted under its
reason, and ``flush`` (the worker calls it every ``SUMMARY_INTERVAL`` seconds) writes one
``drops-suppressed`` line with those counts. A bound per source address alone is no bound:
12,000 spoofed addresses made 38,984 lines in 10 s (issue 14.12).

Two kinds of line are limited per key as well: an unregistered source is named at most once a
minute (``Recent``, whose memory is bounded by forgetting its oldest entries, never all at
once), and a failing store at most once per ``STORE_ERROR_INTERVAL``.

Counters (``radiusgw.engine.counters``) still count every drop; this module decides only what
is written. Sans-I/O: times come in as ``now``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Final

RATE: Final = 5.0  # dropped lines a second, per worker
BURST: Final = 10.0  # lines written at once after a quiet spell
SUMMARY_INTERVAL: Final = 10.0  # seconds between drops-suppressed lines (while there is something)
STORE_ERROR_INTERVAL: Final = 10.0  # seconds between store-error lines


class Recent:
    """Keys seen within ``interval`` seconds, oldest first, at most ``limit`` of them."""

    __slots__ = ("_seen", "interval", "limit")

    def __init__(self, interval: float, limit: int) -> None:
        self.interval = interval
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first(self, key: str, now: float) -> bool:
        """True (and ``key`` remembered as seen ``now``) unless it was seen within the interval."""
        seen = self._seen
        last = seen.get(key)
        if last is not None and now - last < self.interval:
            return False
        # The oldest go first: those past the interval, and at the bound the oldest of all.
        # Forgetting everything at the bound instead let a spoofed flood be named again in full.
        while seen:
            oldest = next(iter(seen.values()))
            if now - oldest < self.interval and len(seen) < self.limit:
                break
            seen.popitem(last=False)
        seen.pop(key, None)
        seen[key] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)


class DropLog:
    """One worker's ``dropped``, ``store-error`` and ``drops-suppressed`` lines."""

    __slots__ = ("_debug", "_last", "_log", "_store_error_at", "_tokens", "burst", "held", "rate")

    def __init__(self, log: Any, *, rate: float = RATE, burst: float = BURST) -> None:
        self._log = log
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None
        self._store_error_at: float | None = None
        self.held: dict[str, int] = {}  # lines not written since the last summary, by reason
        # Debug lines the logger filters out must not spend tokens the info lines need.
        enabled = getattr(log, "is_enabled_for", None)
        self._debug = enabled is None or bool(enabled(logging.DEBUG))

    def _token(self, now: float | None) -> bool:
        """Take a token. ``now`` None (a caller without a clock): no refill, only the rest."""
        if now is not None:
            if self._last is not None and now > self._last:
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def dropped(self, why: str, now: float | None, *, debug: bool = False, **fields: Any) -> None:
        """A ``dropped`` line with ``fields`` (client, reason ...), or one more held under
        ``why`` (the counter's name without ``dropped_``)."""
        if debug and not self._debug:
            return
        if self._token(now):
            (self._log.debug if debug else self._log.info)("dropped", **fields)
        else:
            self.held[why] = self.held.get(why, 0) + 1

    def store_error(self, now: float, **fields: Any) -> None:
        """A ``store-error`` line at most once per ``STORE_ERROR_INTERVAL``. Each line held
        back is counted once: in the next ``store-error`` line (``suppressed``) or in the
        next summary, whichever comes first."""
        last = self._store_error_at
        if last is not None and 0 <= now - last < STORE_ERROR_INTERVAL:
            self.held["store_error"] = self.held.get("store_error", 0) + 1
            return
        self._store_error_at = now
        self._log.error("store-error", suppressed=self.held.pop("store_error", 0), **fields)

    def flush(self) -> None:
        """The ``drops-suppressed`` line: what was held back since the last one, by reason."""
        if self.held:
            held, self.held = self.held, {}
            self._log.info("drops-suppressed", total=sum(held.values()), **held)
