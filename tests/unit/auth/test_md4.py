"""MD4 (radiusgw/auth/md4.py) against RFC 1320's test suite and pycryptodome's MD4."""

from __future__ import annotations

import pytest
from Crypto.Hash import MD4
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.auth import md4

# RFC 1320 §A.5 Test suite.
SUITE = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "043f8582f241db351ce627e153e7f0e4",
    ),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]


@pytest.mark.parametrize(("data", "digest"), SUITE)
def test_rfc1320_test_suite(data: bytes, digest: str) -> None:
    assert md4.digest(data).hex() == digest


@pytest.mark.parametrize("length", [55, 56, 63, 64, 65, 119, 120, 128])
def test_the_padding_edges_agree_with_pycryptodome(length: int) -> None:
    data = bytes(range(256))[:length]
    assert md4.digest(data) == MD4.new(data).digest()


@given(st.binary(max_size=300))
def test_any_input_agrees_with_pycryptodome(data: bytes) -> None:
    assert md4.digest(data) == MD4.new(data).digest()
