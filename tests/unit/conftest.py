"""The CLI's tests once per store backend, on tests/conftest.py's ``backend`` parametrisation.

- ``cli_database``: ``database`` (an SQLite file's path, or a migrated PostgreSQL URL) as an
  operator gives it to ``--db`` or ``RADIUSGW_DB``, with the test run from its own directory:
  a URL's password key is ``./radiusgw.key`` there (``Settings.key_path``), as on an operator's
  host; a file's stays beside the file.
- ``open_cli_database()``: a ``Backend`` on it with the key the CLI uses, closed at the end:
  what a gateway node would have written, or what the test reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from radiusgw.server.settings import Settings
from radiusgw.store.backend import Backend, open_backend

OpenCliDatabase = Callable[..., Backend]


@pytest.fixture
def cli_database(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return database


@pytest.fixture
def open_cli_database(cli_database: str) -> Iterator[OpenCliDatabase]:
    opened: list[Backend] = []

    def open_(*, node: str | None = None, read_only: bool = False) -> Backend:
        key = Settings(db=cli_database).key_path
        opened.append(open_backend(cli_database, key, read_only=read_only, node=node))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()
