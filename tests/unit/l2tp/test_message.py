from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.l2tp.avp import Avp, AvpType, MessageType, ResultCode, message_type_avp, u16, u32
from radiusgw.l2tp.message import ControlMessage, L2tpDecodeError, decode, encode
from tests.unit.l2tp import vectors

SCCRQ_AVPS = (
    message_type_avp(MessageType.SCCRQ),
    Avp(AvpType.PROTOCOL_VERSION, b"\x01\x00"),
    Avp(AvpType.FRAMING_CAPABILITIES, u32(3)),
    Avp(AvpType.HOST_NAME, b"probe"),
    Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(0x1234)),
    Avp(AvpType.RECEIVE_WINDOW_SIZE, u16(4)),
    Avp(AvpType.CHALLENGE, bytes(range(16))),
)


def test_hand_built_sccrq_decodes_field_by_field() -> None:
    m = decode(vectors.SCCRQ)
    assert (m.tunnel_id, m.session_id, m.ns, m.nr) == (0, 0, 0, 0)
    assert m.message_type is MessageType.SCCRQ
    assert m.avps == SCCRQ_AVPS
    assert not m.is_zlb


def test_sccrq_encodes_to_the_hand_built_octets() -> None:
    assert encode(ControlMessage(0, 0, 0, 0, SCCRQ_AVPS)) == vectors.SCCRQ


def test_xl2tpd_sccrp_decodes_with_optional_avps_flagged() -> None:
    m = decode(vectors.XL2TPD_SCCRP)
    assert (m.tunnel_id, m.ns, m.nr) == (vectors.LOCAL_TUNNEL_ID, 0, 1)
    assert m.message_type is MessageType.SCCRP
    assert m.get(AvpType.HOST_NAME) == b"lns1"
    assert m.get(AvpType.ASSIGNED_TUNNEL_ID) == u16(vectors.XL2TPD_TUNNEL_ID)
    assert m.get(AvpType.CHALLENGE_RESPONSE) == vectors.XL2TPD_RESPONSE
    firmware = next(a for a in m.avps if a.attr_type == AvpType.FIRMWARE_REVISION)
    assert not firmware.mandatory  # RFC 2661 §4.4.3: Firmware Revision has M clear
    assert encode(m) == vectors.XL2TPD_SCCRP


def test_zlb_is_the_bare_12_octet_header() -> None:
    zlb = ControlMessage(tunnel_id=7, ns=3, nr=5)
    raw = encode(zlb)
    assert raw == bytes.fromhex("c802 000c 0007 0000 0003 0005")
    assert decode(raw) == zlb
    assert decode(raw).is_zlb and decode(raw).message_type is None


def test_octets_past_length_are_ignored() -> None:
    assert decode(vectors.SCCRQ + b"\x00trailer") == decode(vectors.SCCRQ)


def test_an_unknown_message_type_is_kept_as_a_number() -> None:
    m = decode(encode(ControlMessage(1, avps=(Avp(AvpType.MESSAGE_TYPE, u16(99)),))))
    assert m.message_type == 99 and not isinstance(m.message_type, MessageType)


def test_result_code_with_error_and_message() -> None:
    rc = ResultCode(2, 6, "Invalid challenge authentication")
    assert rc.to_bytes() == b"\x00\x02\x00\x06Invalid challenge authentication"
    assert ResultCode.from_bytes(rc.to_bytes()) == rc
    assert ResultCode.from_bytes(b"\x00\x01") == ResultCode(1)
    assert ResultCode.from_bytes(b"\x00") is None
    assert str(rc) == "result 2, error 6: Invalid challenge authentication"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc8\x02\x00", "shorter than the 12-octet control header"),
        (bytes.fromhex("4802 000c 0000 0000 0000 0000"), "data message"),
        (bytes.fromhex("c803 000c 0000 0000 0000 0000"), "version 3"),
        (bytes.fromhex("8002 000c 0000 0000 0000 0000"), "L and S bits"),
        (bytes.fromhex("ca02 000c 0000 0000 0000 0000"), "O and P bits"),
        (bytes.fromhex("c902 000c 0000 0000 0000 0000"), "O and P bits"),
        (bytes.fromhex("c802 000b 0000 0000 0000 0000"), "Length 11 is shorter"),
        (bytes.fromhex("c802 0020 0000 0000 0000 0000"), "only 12 octets arrived"),
        (bytes.fromhex("c802 0011 0000 0000 0000 0000 8008 0000 00"), "runs past Length"),
        (bytes.fromhex("c802 0012 0000 0000 0000 0000 8005 0000 0000"), "length 5 < 6"),
        (bytes.fromhex("c802 0013 0000 0000 0000 0000 8008 0000 0000 00"), "runs past Length"),
        (bytes.fromhex("c802 0014 0000 0000 0000 0000 8008 0000 0007 0001"), "first AVP"),
        (bytes.fromhex("c802 0013 0000 0000 0000 0000 8007 0000 0000 01"), "Message Type of 1"),
        (bytes.fromhex("c802 0014 0000 0000 0000 0000 8408 0000 0000 0001"), "reserved bits"),
        (bytes.fromhex("c802 0014 0000 0000 0000 0000 c008 0000 0000 0001"), "must not be hidden"),
    ],
)
def test_malformed_control_messages_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(L2tpDecodeError, match=reason):
        decode(raw)


def test_an_optional_avp_with_reserved_bits_is_skipped() -> None:
    # RFC 2661 §4.1: treated as unrecognised; without M, ignored.
    raw = bytes.fromhex("c802 001c 0001 0000 0000 0000 8008 0000 0000 0006 0408 0000 0007 6162")
    assert decode(raw).avps == (message_type_avp(MessageType.HELLO),)


def test_hidden_avp_needs_a_secret_and_a_random_vector_before_it() -> None:
    rv = Avp(AvpType.RANDOM_VECTOR, bytes(16))
    hidden = Avp(AvpType.CHALLENGE_RESPONSE, bytes(16), hidden=True)
    raw = encode(ControlMessage(1, avps=(message_type_avp(MessageType.SCCCN), rv, hidden)), b"k")
    with pytest.raises(L2tpDecodeError, match="no tunnel secret"):
        decode(raw)
    assert decode(raw, b"k").avps[2] == hidden
    with pytest.raises(ValueError, match="Random Vector"):
        encode(ControlMessage(1, avps=(message_type_avp(MessageType.SCCCN), hidden)), b"k")
    # The vector after the hidden AVP does not count: reorder the octets on the wire.
    cut = 12 + 8
    reordered = raw[:cut] + raw[cut + 22 :] + raw[cut : cut + 22]
    with pytest.raises(L2tpDecodeError, match="no Random Vector before it"):
        decode(reordered, b"k")


def test_hidden_avp_round_trips_and_is_padded_to_whole_blocks() -> None:
    avps = (
        message_type_avp(MessageType.STOPCCN),
        Avp(AvpType.RANDOM_VECTOR, b"\x11" * 16),
        Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(0x1234), hidden=True),
        Avp(AvpType.RESULT_CODE, ResultCode(1, 0).to_bytes()),
    )
    raw = encode(ControlMessage(9, avps=avps), b"secret")
    hidden_avp = raw[12 + 8 + 22 :][: 6 + 16]
    assert hidden_avp[:2] == bytes.fromhex("c016")  # M, H, Length 22: 6 + one 16-octet block
    assert decode(raw, b"secret").avps == avps


def test_encode_refuses_what_cannot_go_on_the_wire() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        encode(ControlMessage(0x10000))
    with pytest.raises(ValueError, match="first AVP"):
        encode(ControlMessage(1, avps=(Avp(AvpType.HOST_NAME, b"x"),)))
    with pytest.raises(ValueError, match="exceeds 1023"):
        encode(
            ControlMessage(
                1, avps=(message_type_avp(MessageType.SCCRQ), Avp(AvpType.HOST_NAME, bytes(1018)))
            )
        )


# -- properties ------------------------------------------------------------------------------

u16s = st.integers(0, 0xFFFF)
values = st.binary(max_size=64)
plain_avps = st.builds(
    Avp,
    attr_type=u16s.filter(lambda t: t != AvpType.RANDOM_VECTOR),
    value=values,
    mandatory=st.booleans(),
    vendor_id=st.sampled_from([0, 0, 9, 0xFFFF]),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[ControlMessage, bytes]:
    secret = draw(st.binary(min_size=1, max_size=32))
    avps = [Avp(AvpType.MESSAGE_TYPE, u16(draw(u16s)), draw(st.booleans()))]
    for avp in draw(st.lists(plain_avps, max_size=6)):
        hidden = draw(st.booleans()) and not (
            avp.vendor_id == 0 and avp.attr_type == AvpType.MESSAGE_TYPE
        )
        if hidden and draw(st.booleans()):  # a fresh vector before some hidden AVPs
            avps.append(Avp(AvpType.RANDOM_VECTOR, draw(st.binary(min_size=1, max_size=32))))
        avps.append(Avp(avp.attr_type, avp.value, avp.mandatory, hidden, avp.vendor_id))
    if any(a.hidden for a in avps):
        avps.insert(1, Avp(AvpType.RANDOM_VECTOR, draw(st.binary(min_size=16, max_size=16))))
    header = draw(st.tuples(u16s, u16s, u16s, u16s))
    return ControlMessage(*header, avps=tuple(avps) if draw(st.booleans()) else ()), secret


@given(messages())
def test_decode_of_encode_is_identity(case: tuple[ControlMessage, bytes]) -> None:
    message, secret = case
    assert decode(encode(message, secret), secret) == message


@given(st.binary(max_size=200), st.one_of(st.none(), st.binary(max_size=8)))
def test_arbitrary_bytes_raise_only_the_decode_error(data: bytes, secret: bytes | None) -> None:
    with contextlib.suppress(L2tpDecodeError):
        decode(data, secret)


@given(st.binary(max_size=120), st.one_of(st.none(), st.binary(max_size=8)))
def test_arbitrary_avps_behind_a_valid_header_raise_only_the_decode_error(
    body: bytes, secret: bytes | None
) -> None:
    header = bytes.fromhex("c802") + (12 + len(body)).to_bytes(2, "big") + bytes(8)
    with contextlib.suppress(L2tpDecodeError):
        decode(header + body, secret)
