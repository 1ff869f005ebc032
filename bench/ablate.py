"""``python -m bench.ablate NAMES ARGS...``: the gateway with named costs taken out, to weigh them.

An experiment for the engineer, never the product: ``NAMES`` (comma-separated) switch off work
the gateway must do, then ``ARGS`` run as ``radiusgw ARGS`` in this process (its workers fork
from it, so they inherit the change). ``python -m bench.profile --ablate`` and
``python -m bench.run --ablate`` start the gateway this way and say so in their reports.

It answers "what does this part cost under load", which a profile of the whole cannot: the
fdatasync of the accounting journal blocks the loop for a millisecond or more per batch, and
the applier's SQLite transaction competes for the GIL and the CPU, so neither shows its full
weight as samples of its own.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable, Sequence

from radiusgw import cli
from radiusgw.domain import AccountingRecord
from radiusgw.store import journal
from radiusgw.store.journal import Position
from radiusgw.store.sqlite import SqliteStore

ABLATIONS = {
    "journal-sync": (
        "the accounting journal is written but not fdatasync'd, so an acknowledged record"
        " can be lost in a power cut (RFC 2866 §2 lets a server answer only once it is kept)"
    ),
    "store-writes": (
        "the accounting applier writes nothing to SQLite: no accounting rows and no session"
        " table, so no session list, no usage and no session limits"
    ),
}


class AblationError(ValueError):
    """An unknown ablation name; ``str()`` lists the known ones."""


class _OsWithoutSync(types.ModuleType):
    """The ``os`` module as the journal sees it, with ``fdatasync`` doing nothing."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def fdatasync(fd: int) -> None:
        del fd


def _write_nothing(
    self: SqliteStore,
    records: Sequence[AccountingRecord],
    journal_position: tuple[str, Position] | None = None,
) -> None:
    del self, records, journal_position


def parse(names: str) -> list[str]:
    """The ablation names of a comma-separated list; ``AblationError`` for an unknown one."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ABLATIONS))
    if unknown:
        raise AblationError(
            f"unknown ablation {', '.join(unknown)}; known: {', '.join(sorted(ABLATIONS))}"
        )
    return chosen


def install(names: Iterable[str]) -> None:
    """Switch off the named work in this process (and the workers it forks afterwards)."""
    for name in names:
        if name == "journal-sync":
            journal.os = _OsWithoutSync("os")
        elif name == "store-writes":
            SqliteStore.write_accounting = _write_nothing
        else:
            raise AblationError(f"unknown ablation {name}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit(f"usage: python -m bench.ablate {'|'.join(sorted(ABLATIONS))}[,...] ARGS...")
    try:
        install(parse(args[0]))
    except AblationError as exc:
        sys.exit(f"python -m bench.ablate: {exc}")
    sys.argv = ["radiusgw", *args[1:]]
    cli.main()


if __name__ == "__main__":
    main()
