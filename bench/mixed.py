"""Logins beside accounting: one server under both loads at once, open loop (``bench.run --mixed``).

A gateway serves logins and accounting together. What an operator must know is whether a burst
of accounting (a LAC's sessions ending together, a NAS replaying its backlog) slows logins down.
So two radloads run at the same time against one server, both open loop so that neither backs
off when the server is slow: group PAP at one fixed rate, accounting Start/Stop at another. The
same PAP rate alone, just before, is the baseline. Both servers get the same offered rates,
fractions of the lower of their own closed-loop rates, so neither is pushed past what it can do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import Load, run_load

# Of the lower closed-loop rate of the two servers. Accounting at 40 % is a heavy burst; PAP at
# 20 % leaves the server room for it, so a slower login is the accounting's doing.
AUTH_FRACTION = 0.2
ACCT_FRACTION = 0.4


@dataclass(frozen=True, slots=True)
class Rates:
    auth: int  # Access-Requests/s
    acct: int  # Accounting-Requests/s


def offered(pap_rates: list[float], acct_rates: list[float]) -> Rates:
    """The offered rates for both servers, from each server's closed-loop PAP and accounting."""
    return Rates(round(AUTH_FRACTION * min(pap_rates)), round(ACCT_FRACTION * min(acct_rates)))


def run_pair(radload: Path, auth: Load, acct: Load, label: str) -> dict[str, dict[str, Any]]:
    """Run both loads at the same time; radload's result for each, as "auth" and "acct"."""
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def run(key: str, load: Load) -> None:
        try:
            results[key] = run_load(radload, load, label=f"{label} {key}", progress=False)
        except BaseException as exc:  # raised below, in the caller's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(key, load), name=f"radload-{key}")
        for key, load in (("auth", auth), ("acct", acct))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
