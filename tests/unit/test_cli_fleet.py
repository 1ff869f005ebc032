"""Issue 15: ``--db`` keeps a PostgreSQL URL whole (and what lives beside the database moves
for one), ``serve --node``, and ``radiusgw fleet status`` (once per backend:
tests/unit/conftest.py)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import radiusgw.server
from radiusgw.cli import cli
from radiusgw.server.settings import Settings
from radiusgw.store.backend import Backend, open_backend
from tests.unit.conftest import OpenCliDatabase

URL = "postgresql://radiusgw:S3cret@127.0.0.1:5432/fleet"


def run(*args: object, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    seen: list[Settings] = []
    monkeypatch.setattr(radiusgw.server, "serve", lambda settings: seen.append(settings) or 0)
    return seen


# -- 15.1: --db is a string --------------------------------------------------------------------


def test_serve_keeps_a_postgresql_url_whole_from_the_flag_and_the_environment(
    served: list[Settings],
) -> None:
    assert run("serve", "--db", URL).exit_code == 0
    assert served[-1].db == URL
    assert run("serve", env={"RADIUSGW_DB": URL}).exit_code == 0
    assert served[-1].db == URL


def test_a_url_keeps_its_key_and_journal_in_the_working_directory_unless_told() -> None:
    settings = Settings(db=URL)
    assert settings.key_path == Path("./radiusgw.key")
    assert settings.journal_dir == Path("./radiusgw.journal")
    told = Settings(db=URL, key_file=Path("/etc/k"), journal=Path("/var/j"))
    assert (told.key_path, told.journal_dir) == (Path("/etc/k"), Path("/var/j"))


def test_an_sqlite_path_keeps_its_key_and_journal_beside_it(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "gw.db"))
    assert settings.key_path == tmp_path / "gw.db.key"
    assert settings.journal_dir == tmp_path / "gw.db.journal"


def test_serve_takes_journal_dir_and_key_file(served: list[Settings], tmp_path: Path) -> None:
    args = ("--db", URL, "--journal-dir", tmp_path / "j", "--key-file", tmp_path / "k")
    assert run("serve", *args).exit_code == 0
    assert served[-1].journal_dir == tmp_path / "j"
    assert served[-1].key_path == tmp_path / "k"


def test_an_unknown_scheme_names_the_database_without_its_password() -> None:
    result = run("session", "list", "--db", "mysql://root:S3cret@db/x")
    assert result.exit_code == 1
    assert "S3cret" not in result.output
    assert "mysql://root:***@db/x" in result.output


# -- 15.5: --node ------------------------------------------------------------------------------


def test_serve_names_the_node_by_the_host_name_unless_told(served: list[Settings]) -> None:
    assert run("serve").exit_code == 0
    assert served[-1].node == socket.gethostname()
    assert run("serve", "--node", "gw-tokyo-1").exit_code == 0
    assert served[-1].node == "gw-tokyo-1"


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 256])
def test_serve_refuses_a_node_name_that_is_not_one_printable_line(
    served: list[Settings], name: str
) -> None:
    result = run("serve", "--node", name)
    assert result.exit_code == 2
    assert served == []


def test_open_backend_takes_the_node(tmp_path: Path) -> None:
    open_backend(tmp_path / "gw.db", tmp_path / "k", node="gw-a").close()


# -- 15.7: fleet status ------------------------------------------------------------------------


def _heartbeats(store: Backend, *rows: tuple[str, float, float | None]) -> None:
    for name, seen, applied in rows:
        store.record_node(name, "9.9", seen - 60, 3, applied, seen)


def test_fleet_status_lists_the_nodes_that_wrote_recently(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    db = cli_database
    now = time.time()
    _heartbeats(
        open_cli_database(),
        ("gw-a", now - 2, now - 3),
        ("gw-old", now - 3600, None),
        ("g\x1bb", now, None),
    )
    result = run("fleet", "status", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["g\\x1bb", "gw-a"]  # escaped, by name
    fields = lines[1].split("\t")
    assert fields[1] == "9.9" and fields[4] == "3"
    assert 1.0 <= float(fields[3]) < 60  # the age in seconds
    assert lines[0].split("\t")[5] == "-"  # never applied
    listed = run("fleet", "status", "--db", db, "--format", "json", "--within", "7200")
    objects = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [o["node"] for o in objects] == ["g\x1bb", "gw-a", "gw-old"]
    assert objects[2]["last_applied"] == "-" and objects[2]["journal_backlog"] == 3


def test_fleet_status_of_a_database_no_node_wrote_says_so(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    db = cli_database
    open_cli_database().close()
    result = run("fleet", "status", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no node wrote in the last 300 s" in result.stderr


def test_fleet_status_of_a_missing_database_is_one_sentence(tmp_path: Path) -> None:
    result = run("fleet", "status", "--db", tmp_path / "none.db")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "does not exist" in result.output
    assert not (tmp_path / "none.db").exists()
