"""The fleet's shared store: PostgreSQL through synchronous psycopg 3.

``url`` tells a ``postgresql://`` URL from an SQLite path and names it without its password (no
psycopg); ``connection`` opens a connection and turns PostgreSQL's errors into one sentence;
``schema`` holds the versioned migrations (``radiusgw db migrate``) and the check a node makes
on start; ``accounts`` is the account half of the ``AccountStore`` Protocol. This package's
``__init__`` imports nothing, so that ``url`` can be used without loading psycopg.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radiusgw.store.postgres.backend import PostgresBackend


def open_postgres(
    url: str | Path, key_path: Path, create: bool, read_only: bool, *, node: str | None = None
) -> PostgresBackend:
    """The registry's opener (``radiusgw.store.backend``) of ``postgresql://`` URLs.

    ``create`` changes nothing: a node never creates the schema (``radiusgw db migrate`` does),
    and one that is missing is refused in one sentence. psycopg is imported here, not before.
    """
    from radiusgw.store.postgres.backend import PostgresBackend

    return PostgresBackend(str(url), key_path, read_only=read_only, node=node)
