"""The authentication log's records (radiusgw.authlog_records): what the engine adds is what is
read back, the times are written once per change, and damaged octets raise only RecordError."""

from __future__ import annotations

import marshal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from radiusgw.authlog_records import PREFIXES, TIME, AuthLog, RecordError, pack, values_of
from radiusgw.domain import AUTH_LOG_FIELDS

ACCEPT = [None, "198.51.100.7", "alice@acme.example", "pap", "accept", "", b"\n\0\0\5", None, None]

_TEXT = st.text(max_size=300)
_ANSWER = st.tuples(
    st.one_of(st.none(), st.floats(allow_nan=False)),
    _TEXT,
    _TEXT,
    _TEXT,
    st.sampled_from(["accept", "reject", "challenge"]),
    _TEXT,
    st.one_of(st.none(), st.binary(max_size=4), _TEXT),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), _TEXT),
)


def flat(answers: list[tuple[Any, ...]]) -> list[Any]:
    return [value for answer in answers for value in answer]


def add(log: AuthLog, realm: str | None, values: list[Any]) -> None:
    log.add(realm, *values)


@given(st.lists(_ANSWER, max_size=20), st.floats(allow_nan=False))
def test_what_is_recorded_is_what_is_read_back(
    answers: list[tuple[Any, ...]], taken: float
) -> None:
    first, last, count, octets = pack(flat(answers), taken)
    assert values_of(octets) == flat(answers)
    assert count == len(answers)
    times = [a[0] for a in answers if a[0] is not None]
    if len(times) < len(answers):
        times.append(taken)
    assert (first, last) == (min(times, default=taken), max(times, default=taken))


@given(st.binary(max_size=200).filter(lambda octets: octets[:1] not in (b"[", b"\xdb")))
def test_damaged_records_raise_only_record_error(octets: bytes) -> None:
    try:
        values = values_of(octets)
    except RecordError:
        return
    assert len(values) % AUTH_LOG_FIELDS == 0


def test_a_time_is_written_once_per_change_and_realms_are_kept_apart() -> None:
    log = AuthLog()
    for when, realm in ((5.0, "a"), (5.0, "a"), (5.0, "b"), (6.0, "a"), (None, "a")):
        add(log, realm, [when, *ACCEPT[1:]])
    assert log.count == 5
    octets_a = bytes(log.by_realm["a"].octets)
    entries = log.take(9.0)
    assert log.count == 0 and log.by_realm == {}
    assert entries["a"] == (5.0, 9.0, 4, octets_a)
    assert entries["b"][:3] == (5.0, 5.0, 1)
    assert values_of(octets_a)[0::AUTH_LOG_FIELDS] == [5.0, 5.0, 6.0, None]
    # two TIME records (5.0, 6.0), each followed by its IEEE 754 double
    assert sum(1 for i in range(len(octets_a)) if octets_a[i : i + 9] in (
        bytes((TIME,)) + bytes.fromhex("4014000000000000"),
        bytes((TIME,)) + bytes.fromhex("4018000000000000"),
    )) == 2  # fmt: skip


def test_an_upstream_is_kept_as_its_text_and_a_long_user_name_whole() -> None:
    log = AuthLog()
    long_name = "é" * 200 + "@acme.example"  # 413 octets of UTF-8
    add(log, None, [1.0, "nas", long_name, "pap", "accept", "", None, None, ("2001:db8::1", 1812)])
    add(log, None, [2.0, "nas", "bob", "pap", "accept", "", None, "192.0.2.1", ("192.0.2.9", 1)])
    values = values_of(log.take(3.0)[None][3])
    assert values[2] == long_name
    assert values[8] == "[2001:db8::1]:1812"
    assert values[9 + 7 :] == ["192.0.2.1", "192.0.2.9:1"]


def test_the_cache_of_encoded_values_is_bounded_and_stays_right() -> None:
    log = AuthLog()
    for n in range(PREFIXES + 10):
        add(log, "r", [1.0, f"nas-{n}", "u", "pap", "accept", "", None, None, None])
    assert len(log._prefixes) <= PREFIXES
    values = values_of(log.take(2.0)["r"][3])
    assert values[1::AUTH_LOG_FIELDS] == [f"nas-{n}" for n in range(PREFIXES + 10)]


def test_the_layout_before_marshal_of_the_flat_list_is_still_read() -> None:
    assert values_of(marshal.dumps(ACCEPT * 2)) == ACCEPT * 2
    too_long = b"[" + (1 << 31).to_bytes(4, "little")  # marshal would allocate 16 GiB first
    for damaged in (marshal.dumps(ACCEPT)[:-3], marshal.dumps(ACCEPT[:5]), too_long, b"["):
        try:
            values_of(damaged)
        except RecordError:
            continue
        raise AssertionError(f"{damaged!r} was read")
