"""Account and accounting storage: the ``AccountStore`` Protocol and its SQLite default.

``open_store`` is how the CLI and the server get a store; each thread that needs one opens its own
(an SQLite connection belongs to one thread).
"""

from __future__ import annotations

from pathlib import Path

from radiusgw.domain import Account, AccountingRecord, AccountRow, Change
from radiusgw.store.base import AccountStore
from radiusgw.store.secrets import PasswordCipher
from radiusgw.store.sqlite import SqliteStore

__all__ = [
    "Account",
    "AccountRow",
    "AccountStore",
    "AccountingRecord",
    "Change",
    "PasswordCipher",
    "SqliteStore",
    "open_store",
]


def open_store(
    db_path: Path | str, key_path: Path | str, *, create: bool = True, read_only: bool = False
) -> SqliteStore:
    """Open the SQLite store at ``db_path`` with its password key at ``key_path``.

    ``create=False`` refuses a database file that does not exist yet; ``read_only`` also
    creates, migrates and writes nothing (the commands that only read).
    """
    return SqliteStore(db_path, key_path, create=create, read_only=read_only)
