"""The fleet's shared store: PostgreSQL through synchronous psycopg 3.

``schema`` holds the versioned migrations (``radiusgw db migrate``) and the check a node makes
on start; ``connection`` opens a connection from a ``postgresql://`` URL and turns PostgreSQL's
errors into one sentence that never shows a password; ``accounts`` is the account half of the
``AccountStore`` Protocol. Importing this package imports psycopg: nothing in the engine may.
"""

from __future__ import annotations

from radiusgw.store.postgres.accounts import CHANNEL, PostgresAccountStore
from radiusgw.store.postgres.connection import connect, is_postgres_url, redacted
from radiusgw.store.postgres.schema import SCHEMA_VERSION, check_schema, migrate

__all__ = [
    "CHANNEL",
    "SCHEMA_VERSION",
    "PostgresAccountStore",
    "check_schema",
    "connect",
    "is_postgres_url",
    "migrate",
    "redacted",
]
