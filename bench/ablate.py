"""``python -m bench.ablate NAMES ARGS...``: the gateway with named costs taken out, to weigh them.

An experiment for the engineer, never the product: ``NAMES`` (comma-separated) switch off work
or a choice of the gateway's, then ``ARGS`` run as ``radiusgw ARGS`` in this process. Each name
is a field of the server's ``Tuning`` (``radiusgw.server.settings``: ``journal_sync``,
``store_writes``, ``applier_priority``) set to its "off" value (``FIELDS``) and handed to the
command (``radiusgw.cli.main(tuning)``), so ``serve`` builds its ``Settings`` with it and every
worker builds its journal writer and accounting applier from it.
``serve`` has no flag for them: only a caller in the same process can. ``python -m
bench.profile --ablate`` and ``python -m bench.run --ablate`` start the gateway this way and say
so in their reports.

It answers "what does this part cost under load", which a profile of the whole cannot: the
fdatasync of the accounting journal blocks the loop for a millisecond or more per batch, and
the applier's SQLite transaction competes for the GIL and the CPU, so neither shows its full
weight as samples of its own.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from typing import Any

from radiusgw import cli
from radiusgw.server.settings import DEFAULT_TUNING, Tuning

ABLATIONS = {
    "journal-sync": (
        "the accounting journal is written but not fdatasync'd, so an acknowledged record"
        " can be lost in a power cut (RFC 2866 §2 lets a server answer only once it is kept)"
    ),
    "store-writes": (
        "the accounting applier writes nothing to SQLite: no accounting rows and no session"
        " table, so no session list, no usage and no session limits"
    ),
    "applier-priority": "the accounting applier runs at the event loops' priority, not above it",
}


# The ``Tuning`` field each name sets, and to what.
FIELDS: dict[str, tuple[str, object]] = {
    "journal-sync": ("journal_sync", False),
    "store-writes": ("store_writes", False),
    "applier-priority": ("applier_priority", 0),
}


class AblationError(ValueError):
    """An unknown ablation name; ``str()`` lists the known ones."""


def parse(names: str) -> list[str]:
    """The ablation names of a comma-separated list; ``AblationError`` for an unknown one."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ABLATIONS))
    if unknown:
        raise AblationError(
            f"unknown ablation {', '.join(unknown)}; known: {', '.join(sorted(ABLATIONS))}"
        )
    return chosen


def tuning(names: Iterable[str]) -> Tuning:
    """The server's knobs with the named work switched off."""
    off: dict[str, Any] = {}
    for name in names:
        if name not in FIELDS:
            raise AblationError(f"unknown ablation {name}")
        field, value = FIELDS[name]
        off[field] = value
    return dataclasses.replace(DEFAULT_TUNING, **off)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit(f"usage: python -m bench.ablate {'|'.join(sorted(ABLATIONS))}[,...] ARGS...")
    try:
        ablated = tuning(parse(args[0]))
    except AblationError as exc:
        sys.exit(f"python -m bench.ablate: {exc}")
    sys.argv = ["radiusgw", *args[1:]]
    cli.main(ablated)


if __name__ == "__main__":
    main()
