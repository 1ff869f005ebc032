from __future__ import annotations

from hashlib import md5

from hypothesis import given
from hypothesis import strategies as st

from radiusgw.l2tp.avp import AvpType, MessageType
from radiusgw.l2tp.crypto import challenge_response, hide_value, response_matches, reveal_value
from tests.unit.l2tp import vectors

SECRET = b"tunnel-secret"
RANDOM_VECTOR = bytes.fromhex("0123456789abcdeffedcba9876543210")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=False))


def test_hidden_value_of_one_block_matches_rfc_2661_4_3_by_hand() -> None:
    # Subformat: original length 2, the value 0x1234, 12 octets of zero padding: one block,
    # XORed with MD5(Attribute Type 9 as 2 octets + secret + Random Vector).
    plain = b"\x00\x02" + b"\x12\x34" + bytes(12)
    expected = _xor(plain, md5(b"\x00\x09" + SECRET + RANDOM_VECTOR).digest())
    hidden = hide_value(AvpType.ASSIGNED_TUNNEL_ID, b"\x12\x34", SECRET, RANDOM_VECTOR, bytes(12))
    assert hidden == expected
    assert reveal_value(AvpType.ASSIGNED_TUNNEL_ID, hidden, SECRET, RANDOM_VECTOR) == b"\x12\x34"


def test_later_blocks_chain_on_the_previous_cipher_block() -> None:
    # A 16-octet Challenge Response: 2 + 16 = 18 octets of subformat, padded to 32.
    value = bytes(range(100, 116))
    plain = b"\x00\x10" + value + bytes(14)
    c1 = _xor(plain[:16], md5(b"\x00\x0d" + SECRET + RANDOM_VECTOR).digest())
    c2 = _xor(plain[16:], md5(SECRET + c1).digest())
    hidden = hide_value(AvpType.CHALLENGE_RESPONSE, value, SECRET, RANDOM_VECTOR, bytes(14))
    assert hidden == c1 + c2
    assert reveal_value(AvpType.CHALLENGE_RESPONSE, hidden, SECRET, RANDOM_VECTOR) == value


def test_a_short_last_block_takes_the_first_octets_of_its_key() -> None:
    value = b"lns-host-name-x"  # 2 + 15 = 17 octets, no padding: the last block is 1 octet
    plain = b"\x00\x0f" + value
    c1 = _xor(plain[:16], md5(b"\x00\x08" + SECRET + RANDOM_VECTOR).digest())
    c2 = _xor(plain[16:], md5(SECRET + c1).digest())
    hidden = hide_value(AvpType.VENDOR_NAME, value, SECRET, RANDOM_VECTOR)
    assert hidden == c1 + c2 and len(hidden) == 17
    assert reveal_value(AvpType.VENDOR_NAME, hidden, SECRET, RANDOM_VECTOR) == value


def test_the_key_depends_on_the_attribute_type() -> None:
    hidden = hide_value(AvpType.ASSIGNED_TUNNEL_ID, b"\x12\x34", SECRET, RANDOM_VECTOR, bytes(12))
    assert reveal_value(AvpType.FIRMWARE_REVISION, hidden, SECRET, RANDOM_VECTOR) != b"\x12\x34"


def test_reveal_refuses_a_subformat_that_does_not_fit() -> None:
    assert reveal_value(9, b"\x00", SECRET, RANDOM_VECTOR) is None
    # Original length 200 in a 16-octet block.
    too_long = _xor(b"\x00\xc8" + bytes(14), md5(b"\x00\x09" + SECRET + RANDOM_VECTOR).digest())
    assert reveal_value(9, too_long, SECRET, RANDOM_VECTOR) is None


@given(
    st.integers(0, 0xFFFF),
    st.binary(max_size=80),
    st.binary(min_size=1, max_size=40),
    st.binary(max_size=40),
    st.binary(max_size=20),
)
def test_reveal_of_hide_is_identity(
    attr_type: int, value: bytes, secret: bytes, vector: bytes, padding: bytes
) -> None:
    hidden = hide_value(attr_type, value, secret, vector, padding)
    assert len(hidden) == 2 + len(value) + len(padding)
    assert reveal_value(attr_type, hidden, secret, vector) == value


def test_challenge_response_is_md5_of_type_octet_secret_and_challenge() -> None:
    challenge = bytes(range(16))
    assert challenge_response(MessageType.SCCRP, b"s", challenge) == (
        md5(b"\x02" + b"s" + challenge).digest()
    )
    assert challenge_response(MessageType.SCCCN, b"s", challenge) == (
        md5(b"\x03" + b"s" + challenge).digest()
    )


def test_xl2tpd_challenge_response_in_its_sccrp_matches() -> None:
    assert response_matches(
        vectors.XL2TPD_RESPONSE, MessageType.SCCRP, vectors.SECRET, vectors.OUR_CHALLENGE
    )
    assert not response_matches(
        vectors.XL2TPD_RESPONSE, MessageType.SCCCN, vectors.SECRET, vectors.OUR_CHALLENGE
    )
    assert not response_matches(
        vectors.XL2TPD_RESPONSE, MessageType.SCCRP, b"other", vectors.OUR_CHALLENGE
    )


def test_our_sccn_response_that_xl2tpd_accepted() -> None:
    assert (
        challenge_response(MessageType.SCCCN, vectors.SECRET, vectors.XL2TPD_CHALLENGE)
        == vectors.SCCCN_RESPONSE
    )
