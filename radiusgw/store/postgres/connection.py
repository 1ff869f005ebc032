"""Opening a PostgreSQL connection from a URL, and PostgreSQL's errors as one sentence.

Rules:

- ``--db`` (or ``RADIUSGW_DB``) names PostgreSQL with a ``postgresql://`` or ``postgres://`` URL
  (libpq's URI form: ``postgresql://user[:password]@host[:port]/dbname[?param=value]``). Any
  other ``scheme://`` is refused by name; a plain path is SQLite's.
- A password in the URL never reaches an output or a log: every sentence names the database by
  ``redacted(url)`` and has the password cut out of whatever libpq said. Operators should prefer
  ``RADIUSGW_DB``, ``PGPASSWORD`` or ``~/.pgpass``, which ``ps`` does not show.
- Connections are synchronous psycopg 3, in autocommit mode: a transaction is always explicit
  (``conn.transaction()``), as SQLite's ``BEGIN IMMEDIATE`` is in ``radiusgw.store.connection``.
  A store runs on worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from radiusgw.errors import StoreError
from radiusgw.store.postgres.url import redacted, secrets_of

CONNECT_TIMEOUT = 10  # seconds; libpq's connect_timeout (its default waits forever)
APPLICATION_NAME = "radiusgw"  # shown in pg_stat_activity


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to ``url``; StoreError (one sentence, no password) if none."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=APPLICATION_NAME,
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {redacted(url)}: {reason(exc, url)}") from None


def reason(exc: BaseException, url: str) -> str:
    """What went wrong, in one line, with no password in it.

    libpq's connection errors span lines ('connection to server at ... failed: FATAL: ...'):
    the last server's complaint is the useful part.
    """
    text = " ".join(str(exc).split())
    if "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    text = text.removeprefix("FATAL:").strip() or type(exc).__name__
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text


@contextmanager
def translated(url: str) -> Iterator[None]:
    """PostgreSQL's errors inside the block become one StoreError sentence naming the database."""
    try:
        yield
    except psycopg.Error as exc:
        raise StoreError(f"the database {redacted(url)} failed: {reason(exc, url)}") from None
