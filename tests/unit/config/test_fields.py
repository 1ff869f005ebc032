"""The table reader: typed values, problems recorded with their dotted path, never raised."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from radiusgw.config.fields import Table, parse_octets, show
from radiusgw.config.model import Mode


def _table(data: dict[str, object], problems: list[str], known: tuple[str, ...] = ()) -> Table:
    return Table(
        data,
        source="realms/x.toml",
        path="realm[2]",
        header="realm",
        known=known or tuple(data),
        problems=problems,
    )


@pytest.mark.parametrize(
    ("text", "octets"),
    [
        ("0", 0),
        ("1000000", 1_000_000),
        ("1B", 1),
        ("1K", 1000),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("1MB", 1000**2),
        ("1MiB", 1024**2),
        ("1GB", 1000**3),
        ("1GiB", 1024**3),
        ("1TB", 1000**4),
        ("1TiB", 1024**4),
        ("1.5TB", 1_500_000_000_000),
        ("0.5KiB", 512),
        (" 20 mb ", 20_000_000),
    ],
)
def test_parse_octets_uses_powers_of_1000_for_si_and_1024_for_iec(text: str, octets: int) -> None:
    assert parse_octets(text) == octets


@pytest.mark.parametrize(
    "text", ["", "GB", "1.5", "0.3B", "1.0001KB", "5 GBs", "-1", "1e3", "1,000"]
)
def test_parse_octets_refuses_what_is_not_a_whole_size(text: str) -> None:
    assert parse_octets(text) is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("grup", '"grup"'),
        (True, "true"),
        (5, "5"),
        (2.5, "2.5"),
        (dt.date(2027, 3, 31), "a date 2027-03-31"),
        ({}, "a table"),
        ([1], "an array"),
    ],
)
def test_show_writes_values_as_toml_spells_them(value: object, shown: str) -> None:
    assert show(value) == shown


def test_reader_records_every_problem_and_returns_defaults() -> None:
    problems: list[str] = []
    table = _table({"port": True, "mode": "grup", "strip": "no"}, problems)

    assert table.port("port", default=1701) == 1701
    assert table.enum("mode", Mode, required=True) is None
    assert table.flag("strip", default=True) is True
    assert problems == [
        "realms/x.toml: realm[2].port: must be an integer, got true",
        'realms/x.toml: realm[2].mode: must be one of "group", "proxy", "vpdn", got "grup"',
        'realms/x.toml: realm[2].strip: must be true or false, got "no"',
    ]


def test_reader_returns_the_default_for_an_absent_key_without_a_problem() -> None:
    problems: list[str] = []
    table = _table({}, problems, known=("weight", "strip", "probe_interval"))

    assert table.integer("weight", low=1, default=1) == 1
    assert table.flag("strip", default=False) is False
    assert table.number("probe_interval", default=10.0, low=0) == 10.0
    assert problems == []


def test_number_accepts_integers_as_floats() -> None:
    problems: list[str] = []

    assert _table({"t": 3}, problems).number("t", default=1.0, low=0) == 3.0
    assert problems == []


def test_finish_reports_each_unread_key_once() -> None:
    problems: list[str] = []
    table = _table({"name": "x", "nmae": "y", "zzz": 1}, problems, known=("name",))

    table.text("name")
    table.finish()

    assert problems == [
        'realms/x.toml: realm[2].nmae: unknown key (did you mean "name"?)',
        "realms/x.toml: realm[2].zzz: unknown key",
    ]


def test_child_tables_carry_the_dotted_path_and_index() -> None:
    problems: list[str] = []
    table = _table({"server": [{"port": 0}, {"port": 1}]}, problems)

    servers = table.tables("server", known=("port",))
    for server in servers:
        server.integer("port", low=1)

    assert [s.path for s in servers] == ["realm[2].server[0]", "realm[2].server[1]"]
    assert problems == ["realms/x.toml: realm[2].server[0].port: must be at least 1, got 0"]


def test_secret_reads_a_file_relative_to_the_base_and_strips_crlf(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"tunnel\r\n")
    problems: list[str] = []
    table = _table({"secret_file": "s"}, problems, known=("secret", "secret_file"))

    assert table.secret(tmp_path) == b"tunnel"
    assert problems == []


def test_text_on_the_top_level_names_the_key_alone() -> None:
    problems: list[str] = []
    table = Table.root({"id": 1}, source="realms/x.toml", known=("id",), problems=problems)

    assert table.text("id") is None
    assert problems == ["realms/x.toml: id: must be a string, got 1"]
