from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import (
    MAX_ATTRIBUTES,
    DecodeError,
    Packet,
    attribute_value,
    decode,
    encode,
    encode_attributes,
    frame,
    message_authenticator_offset,
)
from tests.unit.radius import vectors


def test_rfc2865_7_1_access_request_decodes_to_its_four_attributes() -> None:
    p = decode(vectors.ACCESS_REQUEST_7_1)
    assert (p.code, p.identifier) == (Code.ACCESS_REQUEST, 0)
    assert p.authenticator == bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
    assert [t for t, _ in p.attributes] == [1, 2, 4, 5]
    assert p.get(Attr.USER_NAME) == b"nemo"
    assert p.get(Attr.NAS_IP_ADDRESS) == bytes([192, 168, 1, 16])
    assert p.get(Attr.NAS_PORT) == (3).to_bytes(4, "big")
    assert p.message_authenticator_offset == -1


@pytest.mark.parametrize(
    "raw",
    [
        vectors.ACCESS_REQUEST_7_1,
        vectors.ACCESS_ACCEPT_7_1,
        vectors.ACCESS_REQUEST_7_2,
        vectors.ACCESS_CHALLENGE_7_3,
    ],
)
def test_rfc2865_examples_reencode_to_the_same_octets(raw: bytes) -> None:
    assert encode(decode(raw)) == raw


def test_rfc2865_7_3_challenge_keeps_reply_message_and_state() -> None:
    p = decode(vectors.ACCESS_CHALLENGE_7_3)
    assert p.code == Code.ACCESS_CHALLENGE
    assert p.get(Attr.REPLY_MESSAGE) == b"Challenge 32769430.  Enter response at prompt."
    assert p.get(Attr.STATE) == b"32769430"


def test_octets_past_length_are_ignored() -> None:
    p = decode(vectors.ACCESS_REQUEST_7_1 + b"\x00garbage")
    assert p == decode(vectors.ACCESS_REQUEST_7_1)
    assert p.raw == vectors.ACCESS_REQUEST_7_1


@pytest.mark.parametrize("cut", range(20, len(vectors.ACCESS_REQUEST_7_1)))
def test_a_truncated_datagram_is_refused(cut: int) -> None:
    with pytest.raises(DecodeError, match="only"):
        decode(vectors.ACCESS_REQUEST_7_1[:cut])


def test_shorter_than_header_is_refused() -> None:
    with pytest.raises(DecodeError, match="shorter"):
        decode(b"\x01\x00\x00")


@pytest.mark.parametrize("length", [0, 19, 4097, 65535])
def test_length_outside_20_to_4096_is_refused(length: int) -> None:
    raw = bytes((1, 0)) + length.to_bytes(2, "big") + bytes(16) + bytes(max(0, length - 20))
    with pytest.raises(DecodeError, match="outside"):
        decode(raw)


def test_attribute_of_length_one_is_refused() -> None:
    raw = bytes((1, 0, 0, 23)) + bytes(16) + bytes((1, 1, 0))
    with pytest.raises(DecodeError, match="< 2"):
        decode(raw)


def test_attribute_running_past_length_is_refused() -> None:
    raw = bytes((1, 0, 0, 23)) + bytes(16) + bytes((1, 5, 0))
    with pytest.raises(DecodeError, match="past Length"):
        decode(raw)


def test_lone_attribute_type_octet_is_refused() -> None:
    raw = bytes((1, 0, 0, 21)) + bytes(16) + bytes((1,))
    with pytest.raises(DecodeError, match="header"):
        decode(raw)


def test_message_authenticator_offset_is_recorded() -> None:
    attrs = encode_attributes([(1, b"bob"), (80, bytes(16))])
    raw = bytes((1, 7)) + (20 + len(attrs)).to_bytes(2, "big") + bytes(16) + attrs
    p = decode(raw)
    assert p.message_authenticator_offset == 20 + 5 + 2
    assert raw[p.message_authenticator_offset - 2] == 80


def test_encode_refuses_value_longer_than_253() -> None:
    with pytest.raises(ValueError, match="253"):
        encode_attributes([(1, bytes(254))])


def test_get_all_keeps_wire_order() -> None:
    p = Packet(1, 0, bytes(16), ((33, b"a"), (1, b"u"), (33, b"b")))
    assert p.get_all(33) == [b"a", b"b"]
    assert p.get(99) is None


@given(st.binary(max_size=5000))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@given(
    st.binary(min_size=20, max_size=20),
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=30),
)
def test_arbitrary_attribute_lists_after_a_header_raise_only_decode_error(
    header: bytes, attrs: list[tuple[int, bytes]]
) -> None:
    body = encode_attributes(attrs)
    data = header[:2] + (20 + len(body)).to_bytes(2, "big") + header[4:] + body
    with contextlib.suppress(DecodeError):
        decode(data)


attribute = st.tuples(st.integers(0, 255), st.binary(max_size=253))


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(min_size=16, max_size=16),
    st.lists(attribute, max_size=15),
)
def test_decode_of_encode_is_identity(
    code: int, ident: int, auth: bytes, attrs: list[tuple[int, bytes]]
) -> None:
    p = Packet(code, ident, auth, tuple(attrs))
    assert decode(encode(p)) == p


def _with_attributes(count: int, size: int = 2) -> bytes:
    body = encode_attributes([(33, bytes(size - 2))] * count)
    return bytes((1, 1)) + (20 + len(body)).to_bytes(2, "big") + bytes(16) + body


def test_two_hundred_attributes_decode_and_one_more_is_refused() -> None:
    assert len(decode(_with_attributes(MAX_ATTRIBUTES)).attributes) == 200
    with pytest.raises(DecodeError, match="more than 200 attributes"):
        decode(_with_attributes(MAX_ATTRIBUTES + 1))


def test_frame_is_the_datagram_up_to_length() -> None:
    raw = vectors.ACCESS_REQUEST_7_1
    assert frame(raw + b"padding") == raw
    with pytest.raises(DecodeError, match="only"):
        frame(raw[:-1])


def test_message_authenticator_offset_walks_headers_up_to_it() -> None:
    attrs = encode_attributes([(1, b"bob"), (80, bytes(16)), (1, b"x")])
    raw = bytes((1, 7)) + (20 + len(attrs)).to_bytes(2, "big") + bytes(16) + attrs
    assert message_authenticator_offset(raw) == decode(raw).message_authenticator_offset == 27
    assert message_authenticator_offset(vectors.ACCESS_REQUEST_7_1) == -1


def test_message_authenticator_offset_stops_after_200_attributes() -> None:
    assert message_authenticator_offset(_with_attributes(MAX_ATTRIBUTES)) == -1
    with pytest.raises(DecodeError, match="more than 200 attributes"):
        message_authenticator_offset(_with_attributes(2038))  # 4,096 octets of them


@given(st.binary(min_size=20, max_size=2000))
def test_message_authenticator_offset_agrees_with_decode(data: bytes) -> None:
    raw = data[:2] + len(data).to_bytes(2, "big") + data[4:]
    try:
        packet = decode(raw)
    except DecodeError:
        with contextlib.suppress(DecodeError):
            message_authenticator_offset(raw)
        return
    assert message_authenticator_offset(raw) == packet.message_authenticator_offset


def test_attribute_value_walks_the_octets_to_the_first_of_its_type() -> None:
    header = bytes(20)
    answer = header + bytes((18, 4)) + b"hi" + bytes((8, 6, 10, 0, 0, 5, 8, 6, 10, 0, 0, 6))
    assert attribute_value(answer, 8) == bytes((10, 0, 0, 5))
    assert attribute_value(answer, 18) == b"hi"
    assert attribute_value(answer, 25) is None
    assert attribute_value(header + bytes((18, 0, 8, 6)), 8) is None  # a broken length ends it
    assert attribute_value(header + bytes((8,)), 8) is None  # a header cut short
    assert attribute_value(header, 8) is None
