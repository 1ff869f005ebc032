"""``radiusgw accounting quarantine`` (radiusgw.cli): the records the store kept aside, on each
backend (tests/unit/conftest.py); a file that is not a database is SQLite's test."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from radiusgw.store.journal import Position
from tests.stores import REASON, refuse_accounting
from tests.unit.conftest import OpenCliDatabase
from tests.unit.test_cli_sessions import T0, assert_one_line_error, record, run

# What a NAS may put in a User-Name: a terminal escape, a tab, a line break, a bidi override.
HOSTILE = "eve\x1b[31m\tx\ny\u202e@acme.example"


@pytest.fixture
def db(cli_database: str, open_cli_database: OpenCliDatabase) -> str:
    store = open_cli_database()
    refuse_accounting(cli_database, "NEW.username LIKE 'eve%'")
    store.write_accounting(
        [
            record(1, "a1", "alice@acme.example", "acme.example", T0),
            record(1, "e1", HOSTILE, "acme.example", T0 + 1),
            replace(record(3, "e2", "eve", "", T0 + 2), realm=None),  # unrouted
        ],
        ("acct-1", Position(1, 100)),
    )
    return cli_database


def test_text_is_one_line_per_record_with_control_characters_escaped(backend: str, db: str) -> None:
    result = run("accounting", "quarantine", "--db", db)
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    fields = first.split("\t")
    assert fields[:8] == [
        "1",
        fields[1],  # when it was put aside: now
        "2025-03-31T23:00:01+00:00",
        "198.51.100.7",
        "acme.example",
        "eve\\x1b[31m\\tx\\ny\\u202e@acme.example",
        "e1",
        "1",
    ]
    why = "IntegrityConstraintViolation" if backend == "postgres" else "IntegrityError"
    assert fields[8:] == [
        f"{why}: {REASON}",
        record(1, "e1", HOSTILE, "", 0).packet.hex(),
    ]
    assert second.split("\t")[3:8] == ["198.51.100.7", "-", "eve", "e2", "3"]


def test_json_is_one_object_per_line(db: str) -> None:
    result = run("accounting", "quarantine", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["user"] for e in entries] == [HOSTILE, "eve"]
    assert entries[0]["packet"] == record(1, "e1", HOSTILE, "", 0).packet.hex()
    assert entries[0]["journal"] == "acct-1" and entries[1]["realm"] is None
    assert set(entries[0]) == {
        "id",
        "quarantined",
        "received",
        "nas_address",
        "realm",
        "user",
        "acct_session_id",
        "status_type",
        "reason",
        "packet",
        "journal",
    }


def test_nothing_kept_aside_says_so_on_stderr(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    path = cli_database
    open_cli_database().close()
    result = run("accounting", "quarantine", "--db", path)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "no accounting records are kept aside\n"


def test_a_missing_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    line = assert_one_line_error(run("accounting", "quarantine", "--db", tmp_path / "no.db"), 1)
    assert "does not exist" in line


def test_a_file_that_is_not_a_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE x (y)").connection.close()
    assert_one_line_error(run("accounting", "quarantine", "--db", path), 1)
