"""PostgreSQL URLs: which ``--db`` values name PostgreSQL, and how messages name them.

No psycopg here: the CLI and the server tell a URL from an SQLite path without loading the
driver. A password in a URL never reaches an output or a log: messages name the database by
``redacted(url)``, and cut ``secrets_of(url)`` out of whatever libpq said.
"""

from __future__ import annotations

import urllib.parse

from radiusgw.errors import StoreError

SCHEMES = ("postgresql", "postgres")


def is_postgres_url(db: str) -> bool:
    """Whether ``db`` names PostgreSQL; StoreError if it is a URL of anything else."""
    scheme, sep, _rest = db.partition("://")
    if not sep:
        return False  # a path: SQLite
    if scheme.lower() in SCHEMES:
        return True
    raise StoreError(
        f"{redacted(db)} is not a PostgreSQL URL (postgresql://user@host:port/dbname) "
        "nor an SQLite file path"
    )


def redacted(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: how messages name a database."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return "the database URL"  # unparsable: say nothing of what it holds
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "password" for k, _ in query):
        query = [(k, "***" if k == "password" else v) for k, v in query]
        parts = parts._replace(query=urllib.parse.urlencode(query, safe="*"))
    if password is None:
        return urllib.parse.urlunsplit(parts)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def secrets_of(url: str) -> list[str]:
    """The password(s) in ``url``, as typed and percent-decoded, to cut out of any message."""
    found: list[str] = []
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            found += [parts.password, urllib.parse.unquote(parts.password)]
        for key, value in urllib.parse.parse_qsl(parts.query):
            if key == "password" and value:
                found += [value, urllib.parse.quote(value)]
    except ValueError:
        pass
    return [s for s in found if s]
