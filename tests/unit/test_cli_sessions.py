"""``radiusgw session list`` and ``radiusgw usage`` (radiusgw.cli) over a store with accounting.

Each test of what they read runs once per backend (tests/unit/conftest.py). On PostgreSQL the
accounting is applied by two gateway nodes, gw-a and gw-b, a session's Start by one and its
Stop by the other (issue 15.7: any node, or an operator host with only the CLI, reports the
whole fleet); on SQLite, one file, by one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from radiusgw.cli import cli
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import Packet, encode, integer
from radiusgw.store import AccountingRecord
from tests.unit.conftest import OpenCliDatabase

T0 = dt.datetime(2025, 3, 31, 23, 0, tzinfo=dt.UTC).timestamp()


def record(
    status: int, sid: str, user: str, realm: str, at: float, *extra: tuple[int, bytes]
) -> AccountingRecord:
    attrs = (
        (Attr.ACCT_STATUS_TYPE, integer(status)),
        (Attr.USER_NAME, user.encode()),
        (Attr.ACCT_SESSION_ID, sid.encode()),
        *extra,
    )
    raw = encode(Packet(Code.ACCOUNTING_REQUEST, 1, bytes(16), attrs))
    return AccountingRecord(at, "198.51.100.7", realm, user, status, sid, raw)


@pytest.fixture
def db(cli_database: str, open_cli_database: OpenCliDatabase) -> str:
    octets = ((Attr.ACCT_INPUT_OCTETS, integer(1000)), (Attr.ACCT_OUTPUT_OCTETS, integer(2000)))
    node_a, node_b = open_cli_database(node="gw-a"), open_cli_database(node="gw-b")
    kept = node_a.write_accounting(
        [
            record(1, "a1", "alice@acme.example", "acme.example", T0),
            record(1, "c1", "carol@acme.example", "acme.example", T0 - 3600),
        ]
    )
    kept += node_b.write_accounting(
        [
            record(
                3,
                "a1",
                "alice@acme.example",
                "acme.example",
                T0 + 600,
                *octets,
                (Attr.ACCT_SESSION_TIME, integer(600)),
            ),
            record(
                1,
                "v1",
                "bob@vpn.initech.example",
                "vpn.initech.example",
                T0 + 60,
                (Attr.TUNNEL_SERVER_ENDPOINT, b"\x01192.0.2.10"),
            ),
            record(
                AcctStatusType.STOP,
                "c1",
                "carol@acme.example",
                "acme.example",
                T0 + 5400,  # 00:30 on 1 April
                *octets,
                (Attr.ACCT_SESSION_TIME, integer(9000)),
            ),
        ]
    )
    assert kept == []
    return cli_database


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def test_session_list_text_has_one_live_session_per_line(db: str) -> None:
    result = run("session", "list", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "alice\tacme.example\ta1\t198.51.100.7\t-\t2025-03-31T23:00:00+00:00\t1000\t2000",
        "bob\tvpn.initech.example\tv1\t198.51.100.7\t192.0.2.10\t2025-03-31T23:01:00+00:00\t0\t0",
    ]


def test_session_list_text_escapes_what_the_nas_sent(
    db: str, open_cli_database: OpenCliDatabase
) -> None:
    # An ESC sequence that would clear the screen, a newline that would forge a line, an OSC
    # that would retitle the terminal, all from the NAS's accounting.
    user = "mallory\x1b[2J\nroot@acme.example"
    sid = "s\x1b]0;owned\x07"
    endpoint = (Attr.TUNNEL_SERVER_ENDPOINT, b"\x01192.0.2.10\x1b[0m")
    with open_cli_database() as store:
        store.write_accounting([record(1, sid, user, "acme.example", T0 + 120, endpoint)])
    result = run("session", "list", "--realm", "acme.example", "--db", db)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert result.stdout.splitlines()[1] == (
        "mallory\\x1b[2J\\nroot\tacme.example\ts\\x1b]0;owned\\x07\t198.51.100.7"
        "\t192.0.2.10\\x1b[0m\t2025-03-31T23:02:00+00:00\t0\t0"
    )
    as_json = run("session", "list", "--realm", "acme.example", "--db", db, "--format", "json")
    assert json.loads(as_json.stdout.splitlines()[1])["acct_session_id"] == sid


def test_session_list_json_is_one_object_per_line_and_filters_by_realm(db: str) -> None:
    result = run(
        "session", "list", "--realm", "VPN.initech.example", "--db", db, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    session = json.loads(line)
    assert session["user"] == "bob"
    assert session["realm"] == "vpn.initech.example"
    assert session["acct_session_id"] == "v1"
    assert session["nas_address"] == "198.51.100.7"
    assert session["lns"] == "192.0.2.10"
    assert session["start"] == "2025-03-31T23:01:00+00:00"
    assert (session["input_octets"], session["output_octets"]) == (0, 0)


def test_session_list_of_a_realm_without_sessions_says_so_on_stderr(db: str) -> None:
    result = run("session", "list", "--realm", "nothing.example", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "no live sessions in realm 'nothing.example'\n"


def test_usage_csv_has_a_header_and_one_row(db: str) -> None:
    result = run("usage", "--realm", "acme.example", "--month", "2025-04", "--db", db)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        [
            "realm",
            "month",
            "sessions",
            "session_time_seconds",
            "input_octets",
            "output_octets",
        ],
        # carol ended in April (her octets count there); alice, live, was last heard in March.
        ["acme.example", "2025-04", "1", "1800", "1000", "2000"],
    ]


def test_usage_json(db: str) -> None:
    result = run(
        "usage", "--realm", "acme.example", "--month", "2025-03", "--db", db, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "realm": "acme.example",
        "month": "2025-03",
        "sessions": 2,
        "session_time_seconds": 600 + 7200,  # alice so far; carol from 22:00 to midnight
        "input_octets": 1000,
        "output_octets": 2000,
    }


def test_usage_and_session_list_report_counts_beyond_63_bits_exactly(
    cli_database: str, open_cli_database: OpenCliDatabase
) -> None:
    path = cli_database
    counts = (
        (Attr.ACCT_INPUT_GIGAWORDS, integer(2147483648)),  # 2^63: past SQLite's integers
        (Attr.ACCT_INPUT_OCTETS, integer(5)),
        (Attr.ACCT_OUTPUT_GIGAWORDS, integer(2**32 - 1)),
        (Attr.ACCT_OUTPUT_OCTETS, integer(2**32 - 1)),
    )
    with open_cli_database() as store:
        store.write_accounting([record(3, "big", "dan@acme.example", "acme.example", T0, *counts)])
    result = run("usage", "--realm", "acme.example", "--month", "2025-03", "--db", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == f"acme.example,2025-03,1,0,{2**63 + 5},{2**64 - 1}"
    result = run("session", "list", "--db", path, "--format", "json")
    session = json.loads(result.stdout)
    assert (session["input_octets"], session["output_octets"]) == (2**63 + 5, 2**64 - 1)
    assert session["session_time"] is None  # none reported


@pytest.mark.parametrize("month", ["2025-3", "2025-13", "March", "2025/03"])
def test_usage_with_a_bad_month_is_a_usage_error(tmp_path: Path, month: str) -> None:
    db = tmp_path / "gw.db"  # refused before any database is opened
    result = run("usage", "--realm", "acme.example", "--month", month, "--db", db)
    line = assert_one_line_error(result, 2)
    assert "YYYY-MM" in line
    assert "--month" in line


def test_usage_without_realm_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    assert_one_line_error(run("usage", "--month", "2025-03", "--db", db), 2)


@pytest.mark.parametrize(
    "args",
    [("session", "list"), ("usage", "--realm", "acme.example", "--month", "2025-03")],
)
def test_a_missing_database_is_one_line_and_exit_1(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run(*args, "--db", tmp_path / "absent.db")
    assert "does not exist" in assert_one_line_error(result, 1)
    assert not (tmp_path / "absent.db").exists()


def test_a_file_that_is_not_a_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 200)
    result = run("session", "list", "--db", path)
    assert "is not an SQLite database" in assert_one_line_error(result, 1)
