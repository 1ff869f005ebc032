"""MD4 (RFC 1320), for MS-CHAP's NtPasswordHash and HashNtPasswordHash (RFC 2759 §8.3-8.4).

OpenSSL 3 keeps MD4 in its legacy provider, which ``hashlib`` does not load, so the standard
library has none on current systems. pycryptodome has one, but each digest there builds its
state through cffi: 13.5 us for a 16-octet input, where the arithmetic is 48 steps on four
32-bit words. MS-CHAPv2 takes two per request for a user the worker has not met (the NT hash
and its hash), and with 100,000 users most are. Compiled with mypyc on native 64-bit integers
this is about a microsecond (``tests/unit/auth/test_md4.py`` holds it to RFC 1320's test suite
and to pycryptodome over random inputs).
"""

from __future__ import annotations

import struct
from typing import Final

from mypy_extensions import i64

_M32: Final[i64] = 0xFFFFFFFF
_WORDS: Final = struct.Struct("<16I")  # RFC 1320 §3.4: a block is 16 little-endian words
# RFC 1320 §3.4: the order of the words and the shifts of rounds 2 and 3.
_ROUND2: Final[tuple[int, ...]] = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_ROUND3: Final[tuple[int, ...]] = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_SHIFTS1: Final[tuple[int, ...]] = (3, 7, 11, 19)
_SHIFTS2: Final[tuple[int, ...]] = (3, 5, 9, 13)
_SHIFTS3: Final[tuple[int, ...]] = (3, 9, 11, 15)
_K2: Final[i64] = 0x5A827999  # RFC 1320 §3.4: the square root of 2, as a 32-bit word
_K3: Final[i64] = 0x6ED9EBA1  # and of 3


def _rotate(x: i64, s: i64) -> i64:
    return ((x << s) | (x >> (32 - s))) & _M32


def digest(data: bytes) -> bytes:
    """The 16-octet MD4 digest of ``data``."""
    # RFC 1320 §3.1-3.2: a 1 bit, zeros to 56 octets modulo 64, the bit length little-endian.
    length = len(data)
    padded = data + b"\x80" + bytes((55 - length) % 64) + (8 * length).to_bytes(8, "little")
    a: i64 = 0x67452301
    b: i64 = 0xEFCDAB89
    c: i64 = 0x98BADCFE
    d: i64 = 0x10325476
    for start in range(0, len(padded), 64):
        words: tuple[int, ...] = _WORDS.unpack_from(padded, start)
        aa: i64 = a
        bb: i64 = b
        cc: i64 = c
        dd: i64 = d
        # Each step makes a new a, and the names turn (a b c d -> d a' b c) for the next one,
        # as RFC 1320 writes [abcd], [dabc], [cdab], [bcda]. One assignment a name, not a
        # tuple: compiled, a tuple of native integers is boxed into a Python tuple.
        for i in range(16):  # round 1: F(x, y, z) = xy v not(x) z
            new = _rotate((a + ((b & c) | (~b & d)) + words[i]) & _M32, _SHIFTS1[i & 3])
            a = d
            d = c
            c = b
            b = new
        for i in range(16):  # round 2: G(x, y, z) = xy v xz v yz
            word = words[_ROUND2[i]]
            new = _rotate((a + ((b & c) | (b & d) | (c & d)) + word + _K2) & _M32, _SHIFTS2[i & 3])
            a = d
            d = c
            c = b
            b = new
        for i in range(16):  # round 3: H(x, y, z) = x xor y xor z
            new = _rotate((a + (b ^ c ^ d) + words[_ROUND3[i]] + _K3) & _M32, _SHIFTS3[i & 3])
            a = d
            d = c
            c = b
            b = new
        a = (a + aa) & _M32
        b = (b + bb) & _M32
        c = (c + cc) & _M32
        d = (d + dd) & _M32
    out = int(a) | int(b) << 32 | int(c) << 64 | int(d) << 96  # past 64 bits: a Python int
    return out.to_bytes(16, "little")
