"""``lns status`` and ``proxy status``, the escaping of text from peers (``printable``), and the
rule of every command that only reads: it opens the database read-only, creates and changes
nothing, and a file that is not its own is one sentence on stderr (radiusgw.store.connection).

What the status commands show, and every reader taking its database from ``RADIUSGW_DB``, is
tested once per backend (tests/unit/conftest.py); the files refused are SQLite's."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from radiusgw.cli import cli, printable
from radiusgw.domain import AccountRow
from radiusgw.proxy.upstream import ServerState
from radiusgw.store import open_store
from radiusgw.store.health import HealthTable
from radiusgw.store.upstreams import UpstreamTable
from tests.stores import refuse_accounting
from tests.unit.conftest import OpenCliDatabase
from tests.unit.store.test_upstreams import status
from tests.unit.test_cli_sessions import T0, record

READERS = [
    ("session", "list"),
    ("usage", "--realm", "acme.example", "--month", "2025-03"),
    ("account", "list", "acme.example"),
    ("lns", "status"),
    ("proxy", "status"),
]
ALL_READERS = [*READERS, ("accounting", "quarantine"), ("fleet", "status")]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_sentence(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("args", READERS)
def test_a_text_file_given_as_db_is_left_byte_for_byte(tmp_path: Path, args: tuple[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 200)
    before = files(tmp_path)
    line = one_sentence(run(*args, "--db", path))
    assert line == f"error: {path} is not an SQLite database"
    assert files(tmp_path) == before  # no -wal, no -shm, no key file


@pytest.mark.parametrize("args", READERS)
def test_an_sqlite_database_of_another_program_is_refused_unchanged(
    tmp_path: Path, args: tuple[str]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (name TEXT)")
    conn.close()
    before = files(tmp_path)
    line = one_sentence(run(*args, "--db", path))
    assert line == f"error: {path} is not a radiusgw database"
    assert files(tmp_path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


@pytest.mark.parametrize("args", READERS)
def test_an_empty_file_is_refused_unchanged(tmp_path: Path, args: tuple[str]) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    assert one_sentence(run(*args, "--db", path)) == f"error: {path} is not a radiusgw database"
    assert files(tmp_path) == {"empty.db": b""}


@pytest.mark.parametrize("args", READERS)
def test_a_missing_database_is_not_created(tmp_path: Path, args: tuple[str]) -> None:
    path = tmp_path / "absent.db"
    assert one_sentence(run(*args, "--db", path)) == f"error: the database {path} does not exist"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_postgresql_database_without_the_schema_is_refused_and_left_empty(
    postgres_empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a URL's key file would be
    for args in ALL_READERS:
        line = one_sentence(run(*args, "--db", postgres_empty_url))
        assert line == (
            f"error: the database {postgres_empty_url} has no radiusgw schema yet;"
            " run radiusgw db migrate --db URL"
        ), args
    with psycopg.connect(postgres_empty_url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == []
    assert list(tmp_path.iterdir()) == []  # no key file either


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("args", [("lns", "status"), ("proxy", "status")])
def test_status_of_a_database_no_server_ran_on_creates_no_table(
    tmp_path: Path, args: tuple[str]
) -> None:
    path = tmp_path / "gw.db"
    open_store(path, tmp_path / "gw.key").close()
    before = schema(path)
    result = run(*args, "--db", path)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert schema(path) == before


def test_a_database_of_an_older_radiusgw_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (realm TEXT, username TEXT)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    line = one_sentence(run("session", "list", "--db", path))
    assert line.startswith(f"error: the database {path} has schema version 1, written by an older")
    line = one_sentence(run("account", "list", "acme.example", "--db", path))
    assert line.startswith(f"error: the database {path} has schema version 1, written by an older")


def test_the_read_only_tables_read_what_a_server_wrote(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    open_store(path, tmp_path / "gw.key").close()
    writer = HealthTable(path)
    writer.record("vpn.example", 0, "192.0.2.10", 1701, "up", "", 100.0)
    writer.close()
    reader = HealthTable(path, read_only=True)
    assert [s.address for s in reader.states()] == ["192.0.2.10"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.record("vpn.example", 0, "192.0.2.10", 1701, "down", "", 101.0)
    reader.close()
    upstreams = UpstreamTable(path, read_only=True)
    assert upstreams.rows() == []
    upstreams.close()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("alice@example", "alice@example"),
        ("山田@例え.jp", "山田@例え.jp"),  # printable non-ASCII stays as it is
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("line\nforged\ttab\rcr", "line\\nforged\\ttab\\rcr"),
        ("nul\x00del\x7fcsi\x9b", "nul\\x00del\\x7fcsi\\x9b"),
        ("bidi\u202eevil\u2028", "bidi\\u202eevil\\u2028"),
        ("back\\slash", "back\\\\slash"),  # doubled, so that the escapes read one way only
        (42, "42"),
    ],
)
def test_printable_escapes_as_repr_does_without_the_quotes(raw: object, shown: str) -> None:
    assert printable(raw) == shown
    if isinstance(raw, str) and raw.isascii():
        assert shown == repr(raw)[1:-1]


def test_lns_status_text_escapes_the_reason_an_lns_gave(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    path = cli_database
    detail = "StopCCN: \x1b[2Jgo away\nvpn.example\t192.0.2.99:1701\tup"
    open_cli_database().record_lns_health(
        "vpn.example", 0, "192.0.2.10", 1701, "down", detail, 100.0
    )
    result = run("lns", "status", "--db", path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "vpn.example\t192.0.2.10:1701\tdown\t1970-01-01T00:01:40+00:00"
        "\tStopCCN: \\x1b[2Jgo away\\nvpn.example\\t192.0.2.99:1701\\tup\n"
    )
    as_json = run("lns", "status", "--db", path, "--format", "json")
    assert json.loads(as_json.stdout)["detail"] == detail


def test_lns_status_shows_the_latest_check_of_each_lns(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    # On PostgreSQL two nodes probe the same LNS: the one that checked last is shown.
    a, b = open_cli_database(node="gw-a"), open_cli_database(node="gw-b")
    a.record_lns_health("vpn.example", 0, "192.0.2.10", 1701, "up", "", 100.0)
    b.record_lns_health("vpn.example", 0, "192.0.2.10", 1701, "down", "no answer", 105.0)
    a.record_lns_health("vpn.example", 1, "192.0.2.11", 1701, "up", "", 101.0)
    result = run("lns", "status", "--db", cli_database, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(s["lns"], s["status"], s["detail"]) for s in shown] == [
        ("192.0.2.10:1701", "down", "no answer"),
        ("192.0.2.11:1701", "up", ""),
    ]


def test_proxy_status_lists_what_each_worker_published(
    backend: str, cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    store = open_cli_database(node="gw-a")
    node = "gw-a" if backend == "postgres" else "-"  # an SQLite file is one node's
    store.publish_upstreams(0, [status("globex.example", sent=4)], 1000.0, 100.0)
    store.publish_upstreams(1, [status("globex.example", sent=6)], 1000.0, 100.0)
    result = run("proxy", "status", "--db", cli_database)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"globex.example\t203.0.113.20:1812\tauth\talive\t1970-01-01T00:16:30+00:00\t{w}\t0\t{n}"
        f"\t{n}\t0\t{node}"
        for w, n in ((0, 4), (1, 6))
    ]
    as_json = run("proxy", "status", "--db", cli_database, "--format", "json")
    assert [json.loads(line)["worker"] for line in as_json.stdout.splitlines()] == [0, 1]


def test_every_reader_takes_the_database_from_radiusgw_db(
    cli_database: str, open_cli_database: OpenCliDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_cli_database(node="gw-a")
    store.add_account("acme.example", AccountRow("bob", "pw"), max_accounts=None)
    store.write_accounting([record(1, "a1", "alice@acme.example", "acme.example", T0)])
    refuse_accounting(cli_database, "NEW.username LIKE 'eve%'")
    store.write_accounting([record(1, "q1", "eve@acme.example", "acme.example", T0)])
    store.record_lns_health("vpn.example", 0, "192.0.2.10", 1701, "up", "", 100.0)
    store.publish_upstreams(0, [status("globex.example")], 1000.0, 100.0)
    store.record_node("gw-a", "9.9", 100.0, 0, None, time.time())
    for args in ALL_READERS:
        given = run(*args, "--db", cli_database)
        monkeypatch.setenv("RADIUSGW_DB", cli_database)
        from_env = run(*args)
        monkeypatch.delenv("RADIUSGW_DB")
        assert (given.exit_code, from_env.exit_code) == (0, 0), (args, from_env.output)
        assert given.stdout, args
        if args[0] == "fleet":  # the age moves on between the two runs
            assert from_env.stdout.split("\t")[0] == given.stdout.split("\t")[0] == "gw-a"
        else:
            assert from_env.stdout == given.stdout, args


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_proxy_status_of_a_fleet_names_the_node_of_each_worker(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    # Worker 0 of gw-a sees the server alive, worker 0 of gw-b sees it dead: which is which.
    dead = replace(status("globex.example"), state=ServerState.DEAD)
    open_cli_database(node="gw-a").publish_upstreams(0, [status("globex.example")], 1000.0, 100.0)
    open_cli_database(node="gw-b").publish_upstreams(0, [dead], 1000.0, 100.0)
    result = run("proxy", "status", "--db", cli_database, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["node"], r["worker"], r["state"]) for r in shown] == [
        ("gw-a", 0, "alive"),
        ("gw-b", 0, "dead"),
    ]
    text = run("proxy", "status", "--db", cli_database).stdout.splitlines()
    assert [line.rsplit("\t", 1)[1] for line in text] == ["gw-a", "gw-b"]
