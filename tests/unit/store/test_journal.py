"""The accounting journal (radiusgw.store.journal): an acknowledged record is applied once.

The tests of a replay into the store run once per backend (tests/unit/store/conftest.py):
the journal is a node's own files whichever database it applies to."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Code
from radiusgw.radius.packet import encode_attributes
from radiusgw.store import AccountingRecord, journal
from radiusgw.store.backend import Backend
from radiusgw.store.journal import JournalError, JournalWriter, Position
from tests.unit.store.conftest import OpenDb

NAS = "198.51.100.7"
REALM = "acme.example"


def record(
    n: int, status: int = AcctStatusType.START, realm: str | None = REALM
) -> AccountingRecord:
    session = f"s{n}"
    attrs = encode_attributes(
        [
            (40, int(status).to_bytes(4, "big")),
            (44, session.encode()),
            (1, f"user{n}@{REALM}".encode()),
        ]
    )
    raw = crypto.sign_request(
        Code.ACCOUNTING_REQUEST, n % 256, attrs, b"secret", message_authenticator=False
    )
    return AccountingRecord(
        received=1_700_000_000.0 + n,
        nas_address=NAS,
        realm=realm,
        username=f"user{n}@{REALM}",
        status_type=int(status),
        session_id=session,
        packet=raw,
    )


def everything(directory: Path, name: str, after: Position | None = None) -> list[AccountingRecord]:
    return [r for records, _ in journal.read(directory, name, after) for r in records]


_FIELDS = ("received", "nas_address", "realm", "username", "status_type", "session_id", "packet")


def same(a: AccountingRecord, b: AccountingRecord) -> bool:
    """Equal in every stored field (the event is parsed again on reading)."""
    return all(getattr(a, f) == getattr(b, f) for f in _FIELDS)


def test_records_read_back_as_written_with_their_event(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "acct-0")
    written = [record(1), record(2, AcctStatusType.STOP), record(3, realm=None)]
    end = writer.append(written)
    read = list(journal.read(tmp_path, "acct-0", None))
    assert len(read) == 1 and read[0][1] == end
    assert all(same(a, b) for a, b in zip(written, read[0][0], strict=True))
    assert read[0][0][0].event is not None and read[0][0][0].event.session_id == "s1"
    assert read[0][0][2].realm is None


def test_reading_after_a_position_skips_what_it_covers(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "acct-0")
    first = writer.append([record(1), record(2)])
    writer.append([record(3)])
    assert [r.session_id for r in everything(tmp_path, "acct-0", first)] == ["s3"]


def test_a_new_writer_starts_a_new_segment_and_reading_spans_them(tmp_path: Path) -> None:
    JournalWriter(tmp_path, "acct-0").append([record(1)])
    second = JournalWriter(tmp_path, "acct-0")
    end = second.append([record(2)])
    assert end.segment == 2
    assert [r.session_id for r in everything(tmp_path, "acct-0")] == ["s1", "s2"]
    assert journal.names(tmp_path) == ["acct-0"]


def tear(path: Path, octets: int, *, cut: bool = False) -> None:
    """A crash that left the last ``octets`` of the data unwritten: zeros, as written ahead,
    or (``cut``) the file ending there, as a journal written before zeros were written ahead."""
    data = bytearray(path.read_bytes())
    end = journal.written_end(bytes(data))
    if cut:
        del data[end - octets :]
    else:
        data[end - octets : end] = bytes(octets)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("cut", [False, True])
def test_a_torn_tail_ends_its_segment_and_the_next_segment_is_still_read(
    tmp_path: Path, cut: bool
) -> None:
    writer = JournalWriter(tmp_path, "acct-0")
    writer.append([record(1)])
    writer.append([record(2)])
    writer.close()
    path = journal.segments(tmp_path, "acct-0")[0][1]
    tear(path, 5, cut=cut)  # the crash cut the last write short
    JournalWriter(tmp_path, "acct-0").append([record(3)])
    assert [r.session_id for r in everything(tmp_path, "acct-0")] == ["s1", "s3"]


def test_zeros_are_written_ahead_and_the_records_overwrite_them(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "acct-0")
    first = writer.append([record(1)])
    second = writer.append([record(2), record(3)])
    size = len(journal.encode([record(1)])) + len(journal.encode([record(2), record(3)]))
    assert (first.offset, second.offset) == (len(journal.encode([record(1)])), size)
    assert writer.path.stat().st_size == journal.FILL_BYTES  # one step of zeros ahead
    big = [record(n) for n in range(4, 4 + journal.FILL_BYTES // 100)]  # past the first step
    third = writer.append(big)
    assert writer.path.stat().st_size == -(-third.offset // journal.FILL_BYTES) * journal.FILL_BYTES
    writer.close()
    data = writer.path.read_bytes()
    assert journal.written_end(data) == third.offset and not data[third.offset :].strip(b"\0")
    assert [r.session_id for r in everything(tmp_path, "acct-0")] == [
        f"s{n}" for n in range(1, 4 + len(big))
    ]


def test_a_corrupt_record_is_not_read(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "acct-0")
    writer.append([record(1), record(2)])
    writer.close()
    path = journal.segments(tmp_path, "acct-0")[0][1]
    data = bytearray(path.read_bytes())
    data[journal.written_end(bytes(data)) - 3] ^= 0xFF  # a flipped bit in the second's packet
    path.write_bytes(bytes(data))
    assert [r.session_id for r in everything(tmp_path, "acct-0")] == ["s1"]


def test_replay_applies_once_and_prunes_applied_segments(tmp_path: Path, store: Backend) -> None:
    directory = tmp_path / "journal"
    JournalWriter(directory, "acct-0").append([record(1), record(2)])
    JournalWriter(directory, "acct-0").append([record(3)])
    assert journal.replay(store, directory, "acct-0").records == 3
    assert store.count_accounting() == 3
    assert store.journal_position("acct-0") == Position(
        2, journal.written_end(journal.segments(directory, "acct-0")[0][1].read_bytes())
    )
    assert [n for n, _ in journal.segments(directory, "acct-0")] == [2]  # segment 1 pruned
    assert journal.replay(store, directory, "acct-0").records == 0  # a second start applies nothing
    assert store.count_accounting() == 3
    JournalWriter(directory, "acct-0").append([record(4)])
    assert journal.replay(store, directory, "acct-0").records == 1
    assert store.count_accounting() == 4


def test_the_position_commits_with_the_records(tmp_path: Path, store: Backend) -> None:
    store.write_accounting([record(1)], ("acct-3", Position(7, 120)))
    assert store.journal_position("acct-3") == Position(7, 120)
    assert store.journal_position("acct-4") is None


def test_replayed_sessions_follow_the_session_rules(tmp_path: Path, store: Backend) -> None:
    directory = tmp_path / "journal"
    JournalWriter(directory, "acct-0").append(
        [record(1), record(2), record(1, AcctStatusType.STOP)]
    )
    journal.replay(store, directory, "acct-0")
    table = [(r.acct_session_id, r.closed_by is None) for r in store.sessions()]
    assert table == [("s1", False), ("s2", True)]


def test_an_unwritable_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match=str(blocker)):
        JournalWriter(blocker / "journal", "acct-0")


# -- damage is reported, and costs only itself ----------------------------------------------------


def ten_records(directory: Path) -> tuple[Path, list[int]]:
    """A segment of records 1..10, and where each record's frame begins (and the end)."""
    written = [record(n) for n in range(1, 11)]
    JournalWriter(directory, "acct-0").append(written)
    starts = [0]
    for r in written:
        starts.append(starts[-1] + len(journal.encode([r])))
    return journal.segments(directory, "acct-0")[0][1], starts


def read_reporting(directory: Path) -> tuple[list[str | None], list[journal.Damage]]:
    damage: list[journal.Damage] = []
    records = [
        r.session_id
        for batch, _ in journal.read(directory, "acct-0", None, damaged=damage.append)
        for r in batch
    ]
    return records, damage


def damage_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["body", "length", "crc"])
def test_a_damaged_record_is_reported_and_the_records_after_it_are_read(
    tmp_path: Path, where: str
) -> None:
    path, starts = ten_records(tmp_path)
    third = starts[2]
    damage_byte(path, {"body": third + 40, "length": third, "crc": third + 5}[where])
    records, damage = read_reporting(tmp_path)
    assert records == ["s1", "s2", "s4", "s5", "s6", "s7", "s8", "s9", "s10"]
    assert damage == [journal.Damage(path, third, starts[3] - third, truncated=False)]


@pytest.mark.parametrize("cut", [False, True])
def test_a_truncated_tail_is_reported_as_such(tmp_path: Path, cut: bool) -> None:
    path, starts = ten_records(tmp_path)
    tear(path, 5, cut=cut)  # the last write cut short by a crash
    records, damage = read_reporting(tmp_path)
    assert records == [f"s{n}" for n in range(1, 10)]
    assert damage == [journal.Damage(path, starts[9], starts[10] - starts[9] - 5, truncated=True)]


def test_a_damaged_last_record_is_damage_not_a_torn_write(tmp_path: Path) -> None:
    path, starts = ten_records(tmp_path)
    damage_byte(path, starts[10] - 3)
    records, damage = read_reporting(tmp_path)
    assert len(records) == 9
    assert damage == [journal.Damage(path, starts[9], starts[10] - starts[9], truncated=False)]


@pytest.mark.parametrize("filler", [b"\x00", b"\xff", bytes(range(256))])
def test_garbage_between_records_is_skipped_whole(tmp_path: Path, filler: bytes) -> None:
    path, starts = ten_records(tmp_path)
    data = path.read_bytes()
    garbage = (filler * 40_000)[:40_000]
    path.write_bytes(data[: starts[5]] + garbage + data[starts[5] :])
    records, damage = read_reporting(tmp_path)
    assert len(records) == 10
    assert damage == [journal.Damage(path, starts[5], len(garbage), truncated=False)]


# -- a database restored without its journal ------------------------------------------------------


def test_replay_never_removes_the_segment_being_written(tmp_path: Path, open_db: OpenDb) -> None:
    directory = tmp_path / "restored.journal"  # the database came back; its journal did not
    with open_db() as store:
        store.write_accounting([record(1)], ("acct-0", Position(57, 4096)))
        writer = JournalWriter(directory, "acct-0")  # the new run's writer: segment 1
        assert journal.replay(store, directory, "acct-0", writer).records == 0
        assert writer.segment == 58 and writer.path.exists()  # after the stored position
        assert [n for n, _ in journal.segments(directory, "acct-0")] == [58]
        writer.append([record(2)])  # acknowledged now; then the process dies, unapplied
        writer.close()
    with open_db() as store:  # the next start
        writer = JournalWriter(directory, "acct-0")
        assert journal.replay(store, directory, "acct-0", writer).records == 1
        assert store.count_accounting() == 2
        assert writer.path.exists()
        writer.close()


def test_a_writer_already_past_the_stored_position_stays_where_it_is(
    tmp_path: Path, store: Backend
) -> None:
    directory = tmp_path / "journal"
    JournalWriter(directory, "acct-0").append([record(1)])
    writer = JournalWriter(directory, "acct-0")
    assert journal.replay(store, directory, "acct-0", writer).records == 1
    assert writer.segment == 2 and writer.path.exists()
    writer.close()


_TEXT = st.none() | st.text(max_size=40)


@given(
    received=st.floats(min_value=0, max_value=4e9),
    realm=_TEXT,
    username=_TEXT,
    session_id=_TEXT,
    status_type=st.none() | st.integers(min_value=0, max_value=2**32 - 1),
    packet=st.binary(max_size=300),
)
def test_every_field_reads_back_as_encoded_none_and_empty_apart(
    tmp_path_factory: pytest.TempPathFactory,
    received: float,
    realm: str | None,
    username: str | None,
    session_id: str | None,
    status_type: int | None,
    packet: bytes,
) -> None:
    """A None string and an empty one differ only in the length field: both must survive."""
    directory = tmp_path_factory.mktemp("journal")
    written = AccountingRecord(
        received=received,
        nas_address="2001:db8::7",
        realm=realm,
        username=username,
        status_type=status_type,
        session_id=session_id,
        packet=packet,
    )
    writer = JournalWriter(directory, "acct-0", sync=False)
    writer.append([written])
    writer.close()
    (read,) = everything(directory, "acct-0")
    assert same(read, written)
