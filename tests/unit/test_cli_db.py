"""``radiusgw db migrate``: the schema reached on success, one sentence (and no password)
on failure, ``RADIUSGW_DB`` when ``--db`` is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from bench.postgres import PASSWORD_USER, free_port
from radiusgw.cli import cli
from radiusgw.store import open_store
from radiusgw.store.postgres.schema import SCHEMA_VERSION
from radiusgw.store.sqlite import SCHEMA_VERSION as SQLITE_VERSION


@pytest.mark.postgres
def test_migrate_reports_the_version_reached_and_again_changes_nothing(
    postgres_empty_url: str,
) -> None:
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli, ["db", "migrate", "--db", postgres_empty_url])
        assert result.exit_code == 0, result.output
        assert result.stdout == f"{postgres_empty_url}: schema version {SCHEMA_VERSION}\n"


@pytest.mark.postgres
def test_migrate_reads_the_database_from_the_environment(postgres_empty_url: str) -> None:
    result = CliRunner().invoke(cli, ["db", "migrate"], env={"RADIUSGW_DB": postgres_empty_url})
    assert result.exit_code == 0, result.output
    with psycopg.connect(postgres_empty_url) as conn:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    assert row == (SCHEMA_VERSION,)


@pytest.mark.postgres
def test_a_refused_password_is_one_sentence_without_the_password(
    postgres_server: object, postgres_empty_url: str
) -> None:
    wrong = postgres_empty_url.replace("//postgres@", f"//{PASSWORD_USER}:Wr0ng-S3cret@")
    # A real process: its stderr and its log lines are what an operator sees.
    result = subprocess.run(
        [sys.executable, "-m", "radiusgw", "db", "migrate"],
        env={**os.environ, "RADIUSGW_DB": wrong},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: cannot connect to postgresql://{PASSWORD_USER}:***@")
    assert "password authentication failed" in result.stderr
    assert result.stderr.count("\n") == 1  # one sentence, no traceback
    assert "Wr0ng-S3cret" not in result.stderr


def test_a_server_that_is_not_there_is_one_sentence() -> None:
    url = f"postgresql://gw:Secret-99@127.0.0.1:{free_port()}/radius"
    result = CliRunner().invoke(cli, ["db", "migrate", "--db", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot connect to {url.replace('Secret-99', '***')}")
    assert "Secret-99" not in result.output + result.stderr
    assert result.stderr.count("\n") == 1


def test_a_url_of_another_database_is_refused() -> None:
    result = CliRunner().invoke(cli, ["db", "migrate", "--db", "mysql://gw:pw123@h/radius"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: mysql://gw:***@h/radius is not a PostgreSQL URL "
        "(postgresql://user@host:port/dbname) nor an SQLite file path\n"
    )


def test_without_a_database_it_says_how_to_give_one() -> None:
    result = CliRunner().invoke(cli, ["db", "migrate"], env={"RADIUSGW_DB": ""})
    assert result.exit_code == 1
    assert "--db URL, or the environment variable RADIUSGW_DB" in result.stderr


def test_an_sqlite_file_is_migrated_too(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    open_store(db, tmp_path / "gw.db.key").close()
    result = CliRunner().invoke(cli, ["db", "migrate", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{db}: schema version {SQLITE_VERSION}\n"
    missing = CliRunner().invoke(cli, ["db", "migrate", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr
