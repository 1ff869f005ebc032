"""The PostgreSQL store's own rules: migrations, the schema check, limits and changes across
nodes (two connections are two nodes), and no password in any sentence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.postgres import PASSWORD, PASSWORD_USER
from radiusgw.errors import AccountLimitError, StoreError
from radiusgw.store import AccountRow
from radiusgw.store.postgres.accounts import CHANNEL, PostgresAccountStore
from radiusgw.store.postgres.connection import connect
from radiusgw.store.postgres.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    check_schema,
    migrate,
    schema_version,
)
from radiusgw.store.postgres.url import is_postgres_url, redacted

pytestmark = pytest.mark.postgres

REALM = "acme.example"


@pytest.fixture
def raw(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


# -- migrations --------------------------------------------------------------------------------


def test_migrate_creates_every_table_at_the_current_version(postgres_empty_url: str) -> None:
    with connect(postgres_empty_url) as conn:
        assert migrate(conn, "db") == SCHEMA_VERSION
        assert schema_version(conn) == SCHEMA_VERSION
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        check_schema(conn, "db")
    assert {
        "schema_version", "meta", "accounts", "account_changes", "account_change_counter",
        "accounting", "journal_positions", "quarantine", "proxy_spool", "sessions",
        "session_reservations", "lns_health", "upstream_status", "nodes",
    } <= tables  # fmt: skip


def test_migrate_again_changes_nothing(postgres_url: str) -> None:
    with connect(postgres_url) as conn:
        assert migrate(conn, "db") == SCHEMA_VERSION
        row = conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()
    assert row is not None and row[0] == SCHEMA_VERSION


def test_migrate_applies_only_the_missing_steps(postgres_empty_url: str) -> None:
    extra = ("CREATE TABLE later (x INTEGER)",)
    with connect(postgres_empty_url) as conn:
        assert migrate(conn, "db") == SCHEMA_VERSION
        assert migrate(conn, "db", migrations=(*MIGRATIONS, extra)) == SCHEMA_VERSION + 1
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert conn.execute("SELECT to_regclass('later') IS NOT NULL").fetchone() == (True,)
    assert versions == list(range(1, SCHEMA_VERSION + 2))


def test_the_limits_count_live_sessions_from_indexes_of_live_sessions(
    raw: psycopg.Connection[tuple[object, ...]],
) -> None:
    """Schema 4, as SQLite's 8: the indexes by user and by LNS hold live sessions alone."""
    rows = raw.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sessions'"
    ).fetchall()
    indexes = {str(name): str(definition) for name, definition in rows}
    assert not {"sessions_user", "sessions_lns"} & indexes.keys()
    assert indexes["sessions_live_user"].endswith("WHERE live")
    assert indexes["sessions_live_lns"].endswith("WHERE (live AND (lns IS NOT NULL))")


def test_a_failing_step_leaves_the_database_as_it_was(postgres_url: str) -> None:
    broken = ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL")
    with connect(postgres_url) as conn:
        with pytest.raises(psycopg.Error):
            migrate(conn, "db", migrations=(*MIGRATIONS, broken))
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


def test_two_nodes_migrating_at_once_apply_each_step_once(postgres_empty_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with connect(postgres_empty_url) as conn:
                barrier.wait()
                migrate(conn, "db")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with connect(postgres_empty_url) as conn:
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
    assert sorted(r[0] for r in rows) == list(range(1, SCHEMA_VERSION + 1))


def test_a_database_of_something_else_is_not_migrated(postgres_empty_url: str) -> None:
    with connect(postgres_empty_url) as conn:
        conn.execute("CREATE TABLE theirs (x INTEGER)")
        with pytest.raises(StoreError, match="holds tables of something else"):
            migrate(conn, "db")


# -- the check a node makes on start ------------------------------------------------------------


def test_an_empty_database_is_refused_with_the_command_to_run(
    postgres_empty_url: str, tmp_path: Path
) -> None:
    with pytest.raises(StoreError) as info:
        PostgresAccountStore(postgres_empty_url, tmp_path / "k")
    assert str(info.value) == (
        f"the database {postgres_empty_url} has no radiusgw schema yet; "
        "run radiusgw db migrate --db URL"
    )


def test_a_newer_schema_is_refused(
    postgres_url: str, raw: psycopg.Connection, tmp_path: Path
) -> None:  # type: ignore[type-arg]
    raw.execute("INSERT INTO schema_version (version, radiusgw) VALUES (99, '9.9')")
    with pytest.raises(StoreError, match="schema version 99, written by a newer radiusgw"):
        PostgresAccountStore(postgres_url, tmp_path / "k")


def test_an_older_schema_is_refused_with_the_command_to_run(postgres_url: str) -> None:
    with (
        connect(postgres_url) as conn,
        pytest.raises(
            StoreError, match="written by an older radiusgw; run radiusgw db migrate --db URL"
        ),
    ):
        check_schema(conn, "db", expected=SCHEMA_VERSION + 1)


# -- across nodes ------------------------------------------------------------------------------


def test_max_accounts_holds_when_nodes_add_at_once(postgres_url: str, tmp_path: Path) -> None:
    key = tmp_path / "k"
    PostgresAccountStore(postgres_url, key).close()  # seals the key check once
    barrier = threading.Barrier(8)
    added: list[str] = []
    refused: list[BaseException] = []

    def node(i: int) -> None:
        with PostgresAccountStore(postgres_url, key) as store:
            barrier.wait()
            try:
                store.add_account(REALM, AccountRow(f"user{i}", "pw"), max_accounts=3)
                added.append(f"user{i}")
            except AccountLimitError as exc:
                refused.append(exc)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(added), len(refused)) == (3, 5)
    with PostgresAccountStore(postgres_url, key) as store:
        assert sorted(a.username for a in store.list_accounts(REALM)) == sorted(added)
        assert [c.seq for c in store.changes_since(0)] == [1, 2, 3]


def test_a_change_is_notified_with_its_number_when_it_commits(
    postgres_url: str, tmp_path: Path
) -> None:
    with (
        psycopg.connect(postgres_url, autocommit=True) as listener,
        PostgresAccountStore(postgres_url, tmp_path / "k") as store,
    ):
        listener.execute(f"LISTEN {CHANNEL}")
        store.add_account(REALM, AccountRow("bob", "pw"), max_accounts=None)
        store.set_enabled(REALM, "bob", False)
        with pytest.raises(StoreError):
            store.remove_account(REALM, "ghost")  # rolled back: nothing is notified
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
        assert payloads == ["1", "2"]
        assert list(listener.notifies(timeout=0.2)) == []


# -- URLs and passwords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://gw:s3cret@db.example:5432/radius",
            "postgresql://gw:***@db.example:5432/radius",
        ),
        ("postgres://gw@db.example/radius", "postgres://gw@db.example/radius"),
        ("postgresql://gw@h/radius?password=s3cret", "postgresql://gw@h/radius?password=***"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert is_postgres_url(url)
    assert redacted(url) == shown


def test_a_path_is_sqlite_and_another_scheme_is_refused() -> None:
    assert not is_postgres_url("/var/lib/radiusgw/gw.db")
    with pytest.raises(StoreError, match=r"mysql://gw:\*\*\*@h/x is not a PostgreSQL URL"):
        is_postgres_url("mysql://gw:s3cret@h/x")


def test_a_wrong_password_is_one_sentence_without_it(
    postgres_url: str,
    raw: psycopg.Connection,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    wrong = postgres_url.replace("//postgres@", f"//{PASSWORD_USER}:Wr0ng-S3cret@")
    with pytest.raises(StoreError) as info:
        PostgresAccountStore(wrong, tmp_path / "k")
    message = str(info.value)
    assert message.startswith(f"cannot connect to postgresql://{PASSWORD_USER}:***@127.0.0.1:")
    assert "password authentication failed" in message
    assert "Wr0ng-S3cret" not in message
    right = wrong.replace("Wr0ng-S3cret", PASSWORD)
    with pytest.raises(StoreError, match=r"failed: permission denied for table schema_version"):
        PostgresAccountStore(right, tmp_path / "k")  # connected: only the tables are not its own
