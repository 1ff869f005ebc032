"""The authentication log in both stores (issue 18.3): rows written in a batch, read back by
realm with each filter, pruned by age; read-only readers of an older or fresh file see none."""

from __future__ import annotations

import marshal
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import zstandard

from radiusgw.authlog_records import pack
from radiusgw.domain import AuthLogBatch, AuthLogRow
from radiusgw.errors import StoreError
from radiusgw.store.authlog import CHUNK_ROWS, COLUMNS, batches_of, path_of
from radiusgw.store.backend import Backend, open_backend
from radiusgw.store.connection import has_table
from radiusgw.store.sqlite import _SCHEMA_V6, SCHEMA_VERSION

SQLITE_V6_TABLE = _SCHEMA_V6[0]


def row(time: float, user: str, result: str = "accept", **extra: object) -> AuthLogRow:
    fields: dict[str, object] = {
        "time": time,
        "node": "gw-a",
        "worker": 0,
        "nas": "198.51.100.7",
        "realm": "acme.example",
        "username": f"{user}@acme.example",
        "method": "pap",
        "result": result,
        "reason": "" if result == "accept" else "unknown user or wrong password",
        "framed_ip": None,
        "lns": None,
        "upstream": None,
    }
    fields.update(extra)
    return AuthLogRow(**fields)  # type: ignore[arg-type]


def write(store: Backend, rows: Sequence[AuthLogRow]) -> None:
    store.write_auth_log(batches_of(rows))


@pytest.fixture
def one_row(tmp_path: Path) -> Iterator[tuple[Backend, Path]]:
    """A SQLite store whose log holds ``ROWS[0]``, and its database file."""
    db = tmp_path / "gw.db"
    store = open_backend(db, tmp_path / "k")
    try:
        write(store, ROWS[:1])
        yield store, db
    finally:
        store.close()


def set_bodies(db: Path, body: bytes) -> None:
    """Every chunk of ``db``'s log file given ``body``, as a damaged or an older file has it."""
    raw = sqlite3.connect(path_of(db))
    raw.execute("UPDATE auth_log_chunks SET body = ?", (body,))
    raw.commit()
    raw.close()


@pytest.fixture
def db(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "gw.db")


ROWS = [
    row(100.0, "alice", framed_ip="10.0.0.5"),
    row(101.0, "bob", "reject"),
    row(102.0, "alice", "reject", worker=1),
    row(103.0, "carol", realm="Globex.Example", username="carol@Globex.Example"),
    row(104.0, "alice", lns="192.0.2.10", upstream="203.0.113.20:1812", method="chap"),
]


def test_rows_are_read_back_by_realm_with_each_filter(db: str, tmp_path: Path) -> None:
    store = open_backend(db, tmp_path / "gw.key")
    try:
        write(store, ROWS[:2])
        write(store, ROWS[2:])
        assert store.auth_log("ACME.example") == [ROWS[0], ROWS[1], ROWS[2], ROWS[4]]
        assert store.auth_log("acme.example", user="alice@acme.example") == [
            ROWS[0],
            ROWS[2],
            ROWS[4],
        ]
        assert store.auth_log("acme.example", result="reject") == [ROWS[1], ROWS[2]]
        assert store.auth_log("acme.example", since=101.0, until=104.0) == [ROWS[1], ROWS[2]]
        assert store.auth_log("acme.example", limit=1) == [ROWS[0]]
        # The realm is kept lower-cased, as routed.
        assert store.auth_log("globex.example") == [ROWS[3]._replace(realm="globex.example")]
        assert store.auth_log("initech.example") == []
    finally:
        store.close()


def test_prune_deletes_only_rows_older_than_the_cut(db: str, tmp_path: Path) -> None:
    store = open_backend(db, tmp_path / "gw.key")
    try:
        write(store, ROWS)
        assert store.prune_auth_log(102.0) == 2
        assert [r.time for r in store.auth_log("acme.example")] == [102.0, 104.0]
        assert store.prune_auth_log(50.0) == 0
    finally:
        store.close()


def test_sqlite_chunks_prune_exactly_across_batches_and_a_straddling_chunk(
    tmp_path: Path,
) -> None:
    store = open_backend(tmp_path / "gw.db", tmp_path / "k")
    try:
        write(store, [ROWS[0], ROWS[2]._replace(worker=0)])  # one chunk: 100, 102
        write(store, [ROWS[1], ROWS[4]])  # another: 101 came late, then 104
        assert [r.time for r in store.auth_log("acme.example")] == [100.0, 101.0, 102.0, 104.0]
        assert store.auth_log("acme.example")[2] == ROWS[2]._replace(worker=0)
        assert store.prune_auth_log(101.5) == 2  # 100 from the first, 101 from the second
        assert [r.time for r in store.auth_log("acme.example")] == [102.0, 104.0]
        assert store.auth_log("acme.example", since=103.0) == [ROWS[4]]
        assert store.prune_auth_log(1e9) == 2  # the rest
        assert store.auth_log("acme.example") == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "body",
    [
        bytes.fromhex("789c0300"),  # zlib of nothing: no marshal
        bytes.fromhex("28b52ffd") + b"\x00damaged frame",  # Zstandard's magic, then garbage
        zstandard.ZstdCompressor().compress(b""),  # a whole Zstandard frame of nothing
        b"neither",
    ],
)
def test_a_damaged_chunk_is_an_error_naming_the_file_and_the_chunk(
    tmp_path: Path, body: bytes
) -> None:
    store = open_backend(tmp_path / "gw.db", tmp_path / "k")
    try:
        write(store, ROWS[:1])
    finally:
        store.close()
    set_bodies(tmp_path / "gw.db", body)
    reader = open_backend(tmp_path / "gw.db", tmp_path / "k", read_only=True)
    try:
        with pytest.raises(StoreError, match=r"gw\.db\.authlog: authentication log chunk 1 is"):
            reader.auth_log("acme.example")
    finally:
        reader.close()


def test_a_read_only_reader_sees_what_the_writer_wrote(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    writer = open_backend(db, tmp_path / "k")
    reader = open_backend(db, tmp_path / "k", read_only=True)
    try:
        assert reader.auth_log("acme.example") == []
        write(writer, ROWS[:1])
        assert reader.auth_log("acme.example") == ROWS[:1]
    finally:
        writer.close()
        reader.close()


def test_version_7_moves_the_rows_of_a_version_6_file_into_the_log_file(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    open_backend(db, tmp_path / "k").close()
    raw = sqlite3.connect(db)  # what version 6 left: the table in the store's file, with rows
    raw.execute(SQLITE_V6_TABLE)
    raw.executemany(f"INSERT INTO auth_log ({COLUMNS}) VALUES ({', '.join('?' * 12)})", ROWS[:2])
    raw.execute("PRAGMA user_version = 6")
    raw.commit()
    raw.close()
    store = open_backend(db, tmp_path / "k")
    try:
        assert store.auth_log("acme.example") == ROWS[:2]
        write(store, ROWS[2:3])
        assert store.auth_log("acme.example") == ROWS[:3]
    finally:
        store.close()
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
    assert not has_table(raw, "auth_log")
    raw.close()
    assert path_of(db).exists()


def test_a_batch_is_stored_as_the_engine_recorded_it_and_read_as_text(
    db: str, tmp_path: Path
) -> None:
    """The engine's values: a time of None (the hand-off's), the Framed-IP's four octets, the
    upstream's (host, port); a realm as routed, and no realm at all."""
    values = [
        None, "198.51.100.7", "alice@acme.example", "pap", "accept", "", b"\x0a\x00\x00\x05",
        None, None,
        100.5, "198.51.100.7", "bob@acme.example", "mschapv2", "accept", "", None, None,
        ("2001:db8::20", 1812),
    ]  # fmt: skip
    no_realm = [101.0, "198.51.100.8", "eve", "chap", "reject", "no realm", None, None, None]
    store = open_backend(db, tmp_path / "gw.key")
    try:
        store.write_auth_log(
            [
                AuthLogBatch(
                    "gw-b",
                    3,
                    102.0,
                    {"acme.example": pack(values, 102.0), None: pack(no_realm, 102.0)},
                )
            ]
        )
        assert store.auth_log("acme.example") == [
            AuthLogRow(100.5, "gw-b", 3, "198.51.100.7", "acme.example", "bob@acme.example",
                       "mschapv2", "accept", "", None, None, "[2001:db8::20]:1812"),
            AuthLogRow(102.0, "gw-b", 3, "198.51.100.7", "acme.example", "alice@acme.example",
                       "pap", "accept", "", "10.0.0.5", None, None),
        ]  # fmt: skip
        assert store.auth_log("acme.example", since=101.0) == store.auth_log("acme.example")[1:]
        assert store.auth_log("acme.example", until=101.0) == store.auth_log("acme.example")[:1]
    finally:
        store.close()


def test_chunks_are_zstandard_and_those_written_with_zlib_are_still_read(
    one_row: tuple[Backend, Path],
) -> None:
    store, db = one_row
    raw = sqlite3.connect(path_of(db))
    (body,) = raw.execute("SELECT body FROM auth_log_chunks").fetchone()
    raw.close()
    assert body[:4] == bytes.fromhex("28b52ffd")
    set_bodies(db, zlib.compress(zstandard.ZstdDecompressor().decompress(body), 1))
    assert store.auth_log("acme.example") == ROWS[:1]


def test_a_chunk_of_the_first_layout_is_still_read(one_row: tuple[Backend, Path]) -> None:
    store, db = one_row
    raw = sqlite3.connect(path_of(db))
    body = zlib.compress(marshal.dumps([tuple(ROWS[1])]), 1)  # a tuple per row
    raw.execute(
        "INSERT INTO auth_log_chunks (realm, first, last, rows, body) VALUES (?, ?, ?, ?, ?)",
        ("acme.example", 101.0, 101.0, 1, body),
    )
    raw.commit()
    raw.close()
    assert store.auth_log("acme.example") == ROWS[:2]
    assert store.prune_auth_log(100.5) == 1
    assert store.auth_log("acme.example") == ROWS[1:2]


@pytest.mark.parametrize(
    "content",
    [
        ("gw", 0, 1.0, marshal.dumps([1.0, "nas", "u", "pap", "accept", "", b"\n\0", None, None])),
        ("gw", 0, 1.0, marshal.dumps([1.0, "nas", "u", "pap", "accept", "", None, None])),
        ("gw", 0, 1.0, marshal.dumps(["x", "nas", "u", "pap", "accept", "", None, None, None])),
        ("gw", 0, 1.0, b"\x00not marshal"),
        ("gw", 0, 1.0, [1.0, "nas", "u", "pap", "accept", "", None, None, None]),
        ("gw", "0", 1.0, marshal.dumps([])),
    ],
)
def test_a_chunk_whose_values_do_not_fit_is_damaged(
    one_row: tuple[Backend, Path], content: object
) -> None:
    store, db = one_row
    set_bodies(db, zstandard.ZstdCompressor().compress(marshal.dumps(content)))
    with pytest.raises(StoreError, match="authentication log chunk 1 is damaged"):
        store.auth_log("acme.example")


def test_rows_made_into_chunks_again_keep_chunk_rows_per_chunk(tmp_path: Path) -> None:
    rows = [row(100.0 + i, f"u{i}") for i in range(CHUNK_ROWS + 3)]
    batches = batches_of(rows)
    assert [[p[2] for p in b.entries.values()] for b in batches] == [[CHUNK_ROWS], [3]]
    assert batches[1].entries["acme.example"][:2] == (100.0 + CHUNK_ROWS, 102.0 + CHUNK_ROWS)
    store = open_backend(tmp_path / "gw.db", tmp_path / "k")
    try:
        for batch in batches:
            store.write_auth_log([batch])
        assert store.auth_log("acme.example") == rows
    finally:
        store.close()
