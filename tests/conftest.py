"""Fixtures every test package may use: a real PostgreSQL (``bench/postgres.py``).

- ``postgres_server`` (session): the started ``PostgresServer``; stopped, by its postmaster's
  pid, when the session ends. Without PostgreSQL on the machine its tests fail loudly in CI
  (``CI=true``) and are skipped with the reason elsewhere; ``-m "not postgres"`` leaves them out.
- ``postgres_empty_url`` (function): the URL of a new, empty database of that server.
- ``postgres_url`` (function): the URL of a new database at this radiusgw's schema version
  (``radiusgw db migrate`` applied), copied from a template migrated once per session;
  ``postgres_urls`` (function) makes more of them, for a test that compares two databases.

Tests using them carry ``@pytest.mark.postgres``.

And the one parametrisation over the store backends (issue 15: "the existing store tests run
against both backends"), for the store's tests and the CLI's alike:

- ``backend``: "sqlite" or "postgres" (the latter marked ``postgres``).
- ``database``: what ``--db`` / ``open_backend`` takes for it: an SQLite file's path in the
  test's directory (not created yet), or the URL of a fresh migrated PostgreSQL database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.postgres import PostgresServer, PostgresUnavailable

_TEMPLATE = "radiusgw_migrated"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server: PostgresServer | None = None
    try:
        import psycopg  # noqa: F401  (a dependency: only its absence is news)

        server = PostgresServer()
        server.start()
        server.execute(f'CREATE DATABASE "{_TEMPLATE}" TEMPLATE template0')
        _migrate(server.url(_TEMPLATE))
    except (PostgresUnavailable, ImportError) as exc:
        if server is not None:
            server.stop()
        message = f"needs a real PostgreSQL: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_empty_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def postgres_urls(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(postgres_server.create_database(template=_TEMPLATE))
        return made[-1]

    yield make
    for url in made:
        postgres_server.drop_database(url)


@pytest.fixture
def postgres_url(postgres_urls: Callable[[], str]) -> str:
    return postgres_urls()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "gw.db")


def _migrate(url: str) -> None:
    from radiusgw.store.postgres.connection import connect
    from radiusgw.store.postgres.schema import migrate

    conn = connect(url)
    try:
        migrate(conn, url)
    finally:
        conn.close()
