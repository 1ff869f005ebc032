from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode, encode_attributes
from tests.unit.radius import vectors


def test_rfc2865_7_1_user_password_unhides_to_arctangent() -> None:
    p = decode(vectors.ACCESS_REQUEST_7_1)
    hidden = p.get(Attr.USER_PASSWORD)
    assert hidden is not None
    assert crypto.unhide_password(hidden, vectors.SECRET, p.authenticator) == b"arctangent"


def test_rfc2865_7_1_password_hides_to_the_octets_on_the_wire() -> None:
    p = decode(vectors.ACCESS_REQUEST_7_1)
    assert crypto.hide_password(b"arctangent", vectors.SECRET, p.authenticator) == p.get(
        Attr.USER_PASSWORD
    )


def test_rfc2865_7_1_accept_response_authenticator_verifies() -> None:
    request = decode(vectors.ACCESS_REQUEST_7_1)
    assert crypto.response_authenticator_matches(
        vectors.ACCESS_ACCEPT_7_1, vectors.SECRET, request.authenticator
    )
    assert not crypto.response_authenticator_matches(
        vectors.ACCESS_ACCEPT_7_1, b"wrong", request.authenticator
    )


def test_sign_response_without_message_authenticator_reproduces_rfc2865_7_1_accept() -> None:
    request = decode(vectors.ACCESS_REQUEST_7_1)
    accept = decode(vectors.ACCESS_ACCEPT_7_1)
    built = crypto.sign_response(
        Code.ACCESS_ACCEPT,
        request.identifier,
        request.authenticator,
        encode_attributes(accept.attributes),
        vectors.SECRET,
        message_authenticator=False,
    )
    assert built == vectors.ACCESS_ACCEPT_7_1


def test_signed_response_carries_a_verifiable_message_authenticator() -> None:
    ra = os.urandom(16)
    raw = crypto.sign_response(Code.ACCESS_REJECT, 9, ra, encode_attributes([(18, b"no")]), b"s")
    p = decode(raw)
    assert p.message_authenticator_offset > 0
    assert crypto.response_message_authenticator_matches(
        raw, p.message_authenticator_offset, b"s", ra
    )
    assert crypto.response_authenticator_matches(raw, b"s", ra)
    assert not crypto.response_message_authenticator_matches(
        raw, p.message_authenticator_offset, b"t", ra
    )


def test_signed_request_message_authenticator_verifies_and_detects_tampering() -> None:
    raw = crypto.sign_request(Code.ACCESS_REQUEST, 3, encode_attributes([(1, b"bob")]), b"k")
    p = decode(raw)
    assert crypto.message_authenticator_matches(raw, p.message_authenticator_offset, b"k")
    tampered = raw[:22] + b"x" + raw[23:]
    assert not crypto.message_authenticator_matches(tampered, p.message_authenticator_offset, b"k")


def test_accounting_request_authenticator_verifies_only_with_the_secret() -> None:
    raw = crypto.sign_request(
        Code.ACCOUNTING_REQUEST,
        1,
        encode_attributes([(40, (1).to_bytes(4, "big"))]),
        b"k",
        message_authenticator=False,
    )
    assert crypto.accounting_request_matches(raw, b"k")
    assert not crypto.accounting_request_matches(raw, b"other")


def test_chap_with_request_authenticator_as_challenge() -> None:
    challenge = os.urandom(16)
    value = crypto.chap_password(22, b"secret-pw", challenge)
    assert crypto.chap_matches(value, challenge, b"secret-pw")
    assert not crypto.chap_matches(value, challenge, b"other")
    assert not crypto.chap_matches(value[:16], challenge, b"secret-pw")


@given(
    st.binary(max_size=128), st.binary(min_size=1, max_size=40), st.binary(min_size=16, max_size=16)
)
def test_password_hiding_round_trips(pw: bytes, secret: bytes, ra: bytes) -> None:
    pw = pw.rstrip(b"\0")
    hidden = crypto.hide_password(pw, secret, ra)
    assert len(hidden) % 16 == 0 and hidden
    assert crypto.unhide_password(hidden, secret, ra) == pw


@given(
    st.integers(min_value=1, max_value=16)
    .map(lambda n: n * 16)
    .flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.binary(min_size=1, max_size=40),
    st.binary(min_size=16, max_size=16),
)
def test_block_hiding_round_trips_every_octet(plain: bytes, secret: bytes, ra: bytes) -> None:
    hidden = crypto.hide_blocks(plain, secret, ra)
    assert len(hidden) == len(plain)
    assert crypto.unhide_blocks(hidden, secret, ra) == plain  # trailing zeros included


def test_block_hiding_is_the_password_cipher() -> None:
    assert crypto.hide_blocks(b"pw" + bytes(14), b"s", bytes(16)) == crypto.hide_password(
        b"pw", b"s", bytes(16)
    )
    with pytest.raises(ValueError):
        crypto.hide_blocks(bytes(15), b"s", bytes(16))
    assert crypto.unhide_blocks(bytes(15), b"s", bytes(16)) is None
    assert crypto.unhide_blocks(b"", b"s", bytes(16)) is None


def test_unhide_refuses_values_not_a_multiple_of_16() -> None:
    assert crypto.unhide_password(bytes(17), b"s", bytes(16)) is None
    assert crypto.unhide_password(b"", b"s", bytes(16)) is None


@given(
    st.binary(max_size=200), st.binary(min_size=1, max_size=40), st.binary(min_size=16, max_size=16)
)
def test_salt_encryption_round_trips(plain: bytes, secret: bytes, ra: bytes) -> None:
    salt = crypto.SaltSource().next()
    value = crypto.salt_encrypt(plain, secret, ra, salt)
    assert value[:2] == salt and value[0] & 0x80
    assert (len(value) - 2) % 16 == 0
    assert crypto.salt_decrypt(value, secret, ra) == plain


def test_salt_without_top_bit_is_refused() -> None:
    with pytest.raises(ValueError, match="most significant"):
        crypto.salt_encrypt(b"x", b"s", bytes(16), b"\x01\x02")


def test_salts_are_unique_within_a_packet() -> None:
    source = crypto.SaltSource()
    salts = [source.next() for _ in range(2000)]
    assert len(set(salts)) == 2000
    assert all(s[0] & 0x80 for s in salts)


@given(st.binary(max_size=100), st.binary(max_size=300))
def test_hmac_md5_agrees_with_the_standard_library(key: bytes, message: bytes) -> None:
    import hmac

    assert crypto.hmac_md5(key, message) == hmac.digest(key, message, "md5")


def _signed_with_ma_at(index: int, attrs: list[tuple[int, bytes]], secret: bytes) -> bytes:
    """An Access-Request whose Message-Authenticator is attribute number ``index``."""
    attrs = [*attrs[:index], (80, bytes(16)), *attrs[index:]]
    body = encode_attributes(attrs)
    header = bytes((Code.ACCESS_REQUEST, 3)) + (20 + len(body)).to_bytes(2, "big")
    auth = os.urandom(16)
    offset = len(encode_attributes(attrs[:index])) + 2
    mac = crypto.hmac_md5(secret, header + auth + body)
    return header + auth + body[:offset] + mac + body[offset + 16 :]


LOOKALIKE = (33, b"\x50\x12" + bytes(16))  # a Proxy-State ending as a Message-Authenticator
REQUEST_ATTRS = [(1, b"alice@acme.example"), (4, bytes(4)), LOOKALIKE]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_request_message_authenticator_is_found_and_checked_wherever_it_is(index: int) -> None:
    raw = _signed_with_ma_at(index, REQUEST_ATTRS, b"s")
    offset = crypto.request_message_authenticator(raw, b"s")
    assert offset == decode(raw).message_authenticator_offset
    assert crypto.request_message_authenticator(raw, b"other") == crypto.MA_WRONG


def test_request_message_authenticator_absent_even_with_a_lookalike_at_the_end() -> None:
    raw = crypto.sign_request(
        Code.ACCESS_REQUEST, 1, encode_attributes(REQUEST_ATTRS), b"s", message_authenticator=False
    )
    assert crypto.request_message_authenticator(raw, b"s") == crypto.MA_ABSENT


def test_request_message_authenticator_of_a_wrong_length_is_wrong() -> None:
    body = encode_attributes([(80, bytes(15)), (1, b"u" * 30)])
    raw = bytes((1, 1)) + (20 + len(body)).to_bytes(2, "big") + bytes(16) + body
    assert crypto.request_message_authenticator(raw, b"s") == crypto.MA_WRONG


@given(st.binary(min_size=20, max_size=600), st.binary(max_size=8))
def test_request_message_authenticator_raises_only_decode_error(data: bytes, secret: bytes) -> None:
    from radiusgw.radius.packet import DecodeError, frame

    raw = data[:2] + len(data).to_bytes(2, "big") + data[4:]
    try:
        verdict = crypto.request_message_authenticator(frame(raw), secret)
    except DecodeError:
        return
    assert verdict in (crypto.MA_ABSENT, crypto.MA_WRONG) or verdict >= 22


def test_sign_response_refuses_to_pass_4096_octets() -> None:
    ra = os.urandom(16)
    fits = encode_attributes([(33, bytes(253))] * 15 + [(33, bytes(4096 - 20 - 18 - 15 * 255 - 2))])
    reply = crypto.sign_response(Code.ACCESS_ACCEPT, 1, ra, fits, b"s")
    assert reply is not None and len(reply) == 4096
    assert crypto.sign_response(Code.ACCESS_ACCEPT, 1, ra, fits + b"\x21\x03x", b"s") is None
    assert crypto.sign_response(
        Code.ACCOUNTING_RESPONSE,
        1,
        ra,
        fits + bytes((33, 18)) + bytes(16),
        b"s",
        message_authenticator=False,
    )
