"""Accounting-Requests read as typed events (radiusgw.accounting): RFC 2866, 2867, 2868, 2869."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.accounting import (
    GIGAWORD,
    AccountingError,
    from_record,
    local_part,
    parse,
    tunnel_endpoint,
)
from radiusgw.domain import AccountingRecord
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import Packet, decode, encode, integer

NAS = "198.51.100.7"


def request(*attrs: tuple[int, bytes], code: int = Code.ACCOUNTING_REQUEST) -> Packet:
    """An encoded-then-decoded packet, as the engine has it."""
    return decode(encode(Packet(code, 1, bytes(16), tuple(attrs))))


def status(value: int) -> tuple[int, bytes]:
    return (Attr.ACCT_STATUS_TYPE, integer(value))


def test_octets_add_gigawords_times_two_to_the_32() -> None:
    # RFC 2869 §5.1/§5.2: Gigawords count how often the 32-bit octet counter wrapped.
    event = parse(
        request(
            status(AcctStatusType.INTERIM_UPDATE),
            (Attr.ACCT_INPUT_OCTETS, integer(5)),
            (Attr.ACCT_INPUT_GIGAWORDS, integer(2)),
            (Attr.ACCT_OUTPUT_OCTETS, integer(2**32 - 1)),
            (Attr.ACCT_OUTPUT_GIGAWORDS, integer(1)),
        ),
        nas_address=NAS,
        received=0.0,
    )
    assert event.input_octets == 2 * GIGAWORD + 5 == 8_589_934_597
    assert event.output_octets == 2 * GIGAWORD - 1


def test_the_largest_counts_are_read_whole_and_wider_values_not_at_all() -> None:
    # RFC 2866 §5.3/§5.4, RFC 2869 §5.1/§5.2: each is 32 bits, so a count is below 2^64.
    event = parse(
        request(
            status(AcctStatusType.INTERIM_UPDATE),
            (Attr.ACCT_INPUT_OCTETS, integer(2**32 - 1)),
            (Attr.ACCT_INPUT_GIGAWORDS, integer(2**32 - 1)),
            (Attr.ACCT_OUTPUT_OCTETS, integer(7)),
            (Attr.ACCT_OUTPUT_GIGAWORDS, (2**40).to_bytes(8, "big")),  # 64 bits: malformed
        ),
        nas_address=NAS,
        received=0.0,
    )
    assert (event.input_octets, event.output_octets) == (2**64 - 1, 7)


def test_octets_without_gigawords_or_counters() -> None:
    packet = request(status(AcctStatusType.START), (Attr.ACCT_INPUT_OCTETS, integer(1234)))
    event = parse(packet, nas_address=NAS, received=0.0)
    assert (event.input_octets, event.output_octets) == (1234, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\x01192.0.2.10", "192.0.2.10"),  # tag 1 (RFC 2868 §3.3)
        (b"\x1f192.0.2.10", "192.0.2.10"),  # the highest tag
        (b"\x00192.0.2.10", "192.0.2.10"),  # tag 0: still not text
        (b"192.0.2.10", "192.0.2.10"),  # '1' is 0x31 > 0x1F: the first octet of the text
        (b"lns.example", "lns.example"),  # a domain name, untagged
        (b"\x022001:DB8::0:1", "2001:db8::1"),  # normalised as the realm files are
        (b"\x01", None),
        (b"", None),
    ],
)
def test_tunnel_server_endpoint_drops_a_tag_octet_only_up_to_0x1f(
    value: bytes, expected: str | None
) -> None:
    assert tunnel_endpoint(value) == expected


def test_the_first_tunnel_server_endpoint_is_the_sessions_lns() -> None:
    event = parse(
        request(
            status(AcctStatusType.START),
            (Attr.TUNNEL_SERVER_ENDPOINT, b"\x01192.0.2.10"),
            (Attr.TUNNEL_SERVER_ENDPOINT, b"\x02192.0.2.11"),
        ),
        nas_address=NAS,
        received=0.0,
    )
    assert event.lns == "192.0.2.10"


def test_event_time_is_received_minus_acct_delay_time() -> None:
    # RFC 2866 §5.2; the NAS's Event-Timestamp is kept but not used for ordering.
    event = parse(
        request(
            status(AcctStatusType.STOP),
            (Attr.ACCT_DELAY_TIME, integer(30)),
            (Attr.EVENT_TIMESTAMP, integer(1_600_000_000)),
        ),
        nas_address=NAS,
        received=1_700_000_100.5,
    )
    assert event.delay == 30
    assert event.event_time == 1_700_000_070.5
    assert event.received == 1_700_000_100.5
    assert event.event_timestamp == 1_600_000_000


def test_no_delay_means_the_event_happened_when_received() -> None:
    event = parse(request(status(1)), nas_address=NAS, received=42.0)
    assert (event.delay, event.event_time) == (0, 42.0)


def test_every_field_is_read() -> None:
    event = parse(
        request(
            status(AcctStatusType.STOP),
            (Attr.USER_NAME, b"alice@ACME.example"),
            (Attr.ACCT_SESSION_ID, b"0000002A"),
            (Attr.NAS_IP_ADDRESS, bytes((10, 0, 0, 1))),
            (Attr.NAS_IDENTIFIER, b"bras-1"),
            (Attr.ACCT_SESSION_TIME, integer(3600)),
            (Attr.ACCT_TERMINATE_CAUSE, integer(1)),
            (Attr.ACCT_INTERIM_INTERVAL, integer(300)),
            (Attr.FRAMED_IP_ADDRESS, bytes((100, 64, 0, 9))),
        ),
        nas_address=NAS,
        received=0.0,
        realm="ACME.example",
    )
    assert event.status is AcctStatusType.STOP
    assert event.user_name == "alice@ACME.example"
    assert event.username == "alice"
    assert event.realm == "acme.example"
    assert event.session_id == "0000002A"
    assert event.nas_address == NAS
    assert event.nas_ip_address == "10.0.0.1"
    assert event.nas_identifier == "bras-1"
    assert event.session_time == 3600
    assert event.terminate_cause == 1
    assert event.interim_interval == 300
    assert event.framed_ip == "100.64.0.9"
    assert event.lns is None


def test_nas_ipv6_address_is_used_when_there_is_no_ipv4_one() -> None:
    v6 = bytes.fromhex("20010db8000000000000000000000007")
    event = parse(request(status(1), (Attr.NAS_IPV6_ADDRESS, v6)), nas_address=NAS, received=0)
    assert event.nas_ip_address == "2001:db8::7"


def test_malformed_values_count_as_absent() -> None:
    event = parse(
        request(
            status(AcctStatusType.INTERIM_UPDATE),
            (Attr.ACCT_INPUT_OCTETS, b"\x00\x01\x00"),  # 3 octets: not an integer
            (Attr.ACCT_DELAY_TIME, b"\x00"),
            (Attr.FRAMED_IP_ADDRESS, b"\x0a\x00"),
        ),
        nas_address=NAS,
        received=10.0,
    )
    assert (event.input_octets, event.delay, event.event_time, event.framed_ip) == (
        0,
        0,
        10.0,
        None,
    )


def test_the_first_of_repeated_attributes_counts() -> None:
    event = parse(
        request(
            status(AcctStatusType.INTERIM_UPDATE),
            status(AcctStatusType.STOP),
            (Attr.ACCT_SESSION_ID, b"first"),
            (Attr.ACCT_SESSION_ID, b"second"),
        ),
        nas_address=NAS,
        received=0.0,
    )
    assert (event.status, event.session_id) == (AcctStatusType.INTERIM_UPDATE, "first")


@pytest.mark.parametrize(
    "value", [AcctStatusType.TUNNEL_LINK_START, AcctStatusType.TUNNEL_REJECT, 15]
)
def test_rfc_2867_tunnel_types_are_typed(value: int) -> None:
    event = parse(request(status(value)), nas_address=NAS, received=0.0)
    assert event.status == value
    assert isinstance(event.status, AcctStatusType)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (request((Attr.USER_NAME, b"alice")), "no Acct-Status-Type"),
        (request(status(5)), "Acct-Status-Type 5 is not defined"),
        (request(status(1), code=Code.ACCESS_REQUEST), "not an Accounting-Request"),
    ],
)
def test_unusable_requests_raise_accounting_error(packet: Packet, reason: str) -> None:
    with pytest.raises(AccountingError, match=reason):
        parse(packet, nas_address=NAS, received=0.0)


def test_from_record_decodes_the_stored_datagram() -> None:
    raw = encode(
        Packet(
            Code.ACCOUNTING_REQUEST,
            7,
            bytes(16),
            (status(AcctStatusType.START), (Attr.ACCT_SESSION_ID, b"s1")),
        )
    )
    record = AccountingRecord(100.0, NAS, "acme.example", None, 1, "s1", raw)
    event = from_record(record)
    assert (event.status, event.session_id, event.realm, event.received) == (
        AcctStatusType.START,
        "s1",
        "acme.example",
        100.0,
    )
    assert event.nas_address == NAS


def test_from_record_of_garbage_raises_accounting_error() -> None:
    with pytest.raises(AccountingError, match="not a RADIUS packet"):
        from_record(AccountingRecord(0.0, NAS, None, None, None, None, b"\x04\x01\x00"))


@pytest.mark.parametrize(
    ("name", "local"),
    [("alice@acme.example", "alice"), ("a@b@acme.example", "a@b"), ("alice", "alice")],
)
def test_local_part_is_the_text_before_the_last_at(name: str, local: str) -> None:
    assert local_part(name) == local


_WORD = st.integers(min_value=0, max_value=2**32 - 1)


@given(
    octets=st.tuples(_WORD, _WORD, _WORD, _WORD),
    session_time=_WORD,
    cause=_WORD,
    interim=_WORD,
    timestamp=_WORD,
    delay=_WORD,
)
def test_every_integer_reads_as_its_four_octets_big_endian(
    octets: tuple[int, int, int, int],
    session_time: int,
    cause: int,
    interim: int,
    timestamp: int,
    delay: int,
) -> None:
    """RFC 2865 §5: an integer is 32 bits, most significant octet first."""
    in_low, in_giga, out_low, out_giga = octets
    event = parse(
        request(
            status(AcctStatusType.STOP),
            (Attr.ACCT_INPUT_OCTETS, integer(in_low)),
            (Attr.ACCT_INPUT_GIGAWORDS, integer(in_giga)),
            (Attr.ACCT_OUTPUT_OCTETS, integer(out_low)),
            (Attr.ACCT_OUTPUT_GIGAWORDS, integer(out_giga)),
            (Attr.ACCT_SESSION_TIME, integer(session_time)),
            (Attr.ACCT_TERMINATE_CAUSE, integer(cause)),
            (Attr.ACCT_INTERIM_INTERVAL, integer(interim)),
            (Attr.EVENT_TIMESTAMP, integer(timestamp)),
            (Attr.ACCT_DELAY_TIME, integer(delay)),
        ),
        nas_address=NAS,
        received=5e9,
    )
    assert (event.input_octets, event.output_octets) == (
        in_giga * GIGAWORD + in_low,
        out_giga * GIGAWORD + out_low,
    )
    assert (event.session_time, event.terminate_cause, event.interim_interval) == (
        session_time,
        cause,
        interim,
    )
    assert (event.event_timestamp, event.delay, event.event_time) == (
        timestamp,
        delay,
        5e9 - delay,
    )
