"""DES (radiusgw/auth/des.py) against FIPS's classic vector, RFC 2759 §9.3 and cryptography's
DES over random keys and blocks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.auth import des
from tests.unit.auth.test_mschap import DES_KEY_1, DES_KEY_2, MYPW_HASH


def seven_of(key: bytes) -> bytes:
    """The 56 key bits of an 8-octet DES key (the top 7 bits of each octet, parity dropped)."""
    bits = 0
    for octet in key:
        bits = bits << 7 | octet >> 1
    return bits.to_bytes(7, "big")


def reference(key: bytes, block: bytes) -> bytes:
    """cryptography's DES: TripleDES with one key three times (E-D-E is then DES)."""
    return Cipher(TripleDES(key * 3), modes.ECB()).encryptor().update(block)


def test_the_classic_vector() -> None:
    # The worked example of FIPS 46's tutorials (key 133457799BBCDFF1).
    key = bytes.fromhex("133457799BBCDFF1")
    block = bytes.fromhex("0123456789ABCDEF")
    assert des.encrypt(seven_of(key), block).hex().upper() == "85E813540F0AB405"


def test_the_rfc2759_key_spreading_is_the_one_des_sees() -> None:
    # RFC 2759 §9.3: the 7-octet keys cut from the hash of "MyPw" become these 8-octet keys.
    for seven, eight in ((MYPW_HASH[:7], DES_KEY_1), (MYPW_HASH[7:14], DES_KEY_2)):
        assert seven_of(eight) == seven
        for block in (bytes(8), bytes.fromhex("0123456789ABCDEF"), b"\xff" * 8):
            assert des.encrypt(seven, block) == reference(eight, block)


def spread(seven: bytes) -> bytes:
    bits = int.from_bytes(seven, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


@given(st.binary(min_size=7, max_size=7), st.binary(min_size=8, max_size=8))
def test_any_key_and_block_agree_with_cryptography(key: bytes, block: bytes) -> None:
    assert des.encrypt(key, block) == reference(spread(key), block)


@pytest.mark.parametrize(("key", "block"), [(bytes(8), bytes(8)), (bytes(7), bytes(7))])
def test_wrong_lengths_are_refused(key: bytes, block: bytes) -> None:
    with pytest.raises(ValueError, match="7-octet key"):
        des.encrypt(key, block)
