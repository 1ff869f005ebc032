"""DES (FIPS 46-3) for one 8-octet block under a 7-octet key: RFC 2759 §8.6 DesEncrypt.

MS-CHAP is the one user of DES here, and it needs three encryptions of one block per
request, each under a key made from the user's NT hash (RFC 2759 §8.5). With 100,000 users
every key is new to the worker that meets it, so what counts is the cost of a key, not of a
block. Through ``cryptography`` a key meant a cipher context: 12.5 us to make one, and 4 us
more to spread 56 key bits over 8 octets with parity; pycryptodome's cipher object took 22
us. Here, compiled with mypyc on native 64-bit integers, a key schedule and a block cost
2.8 us together (``tests/unit/auth/test_des.py`` holds this code to
``cryptography``'s DES over random keys and blocks, and to FIPS's and RFC 2759's vectors).

How: every bit permutation of the standard (IP, its inverse, P, PC-1, PC-2) is a table
per input octet, built at import from FIPS 46-3's tables, so that a permutation is one look-up
and one OR per octet; the S-boxes are merged with P (a table per S-box of what its four bits
become after P). The key is taken as RFC 2759 gives it, 56 bits without parity: PC-1 is
composed with the spreading of §8.6 (7 bits to each of 8 octets), so that step costs nothing.
The expansion E is read off a rotated copy of R (its rows are overlapping windows).

Not constant-time: the look-ups depend on the key. The keys are NT hashes (which MS-CHAP
makes password-equivalent anyway) and the timing of a cache line is not observable across
a RADIUS round trip; this is the trade the C libraries of FreeRADIUS make too.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

# FIPS 46-3 tables, bit 1 the most significant, as the standard prints them.
_IP: Final[tuple[int, ...]] = (
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
)  # fmt: skip
_P: Final[tuple[int, ...]] = (
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
)  # fmt: skip
_PC1: Final[tuple[int, ...]] = (
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
)  # fmt: skip
_PC2: Final[tuple[int, ...]] = (
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
)  # fmt: skip
_SHIFTS: Final[tuple[int, ...]] = (1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1)
_S: Final[tuple[tuple[int, ...], ...]] = (
    (14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
     0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
     4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
     15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13),
    (15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
     3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
     0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
     13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9),
    (10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
     13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
     13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
     1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12),
    (7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
     13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
     10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
     3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14),
    (2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
     14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
     4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
     11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3),
    (12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
     10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
     9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
     4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13),
    (4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
     13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
     1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
     6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12),
    (13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
     1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
     7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
     2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11),
)  # fmt: skip


def _octet_tables(table: tuple[int, ...], in_bits: int) -> list[i64]:
    """For the permutation ``table`` (output bit i takes input bit ``table[i]``) of an
    ``in_bits``-bit input: per input octet and value, the output bits it sets, flat
    (``[octet * 256 + value]``; octet 0 the most significant)."""
    out_bits = len(table)
    flat: list[i64] = [0] * (in_bits // 8 * 256)
    for octet in range(in_bits // 8):
        for value in range(256):
            word = 0
            for i, source in enumerate(table):
                bit = source - 1 - 8 * octet  # the source's place in this octet, 0 = top
                if 0 <= bit < 8 and value >> (7 - bit) & 1:
                    word |= 1 << (out_bits - 1 - i)
            flat[octet * 256 + value] = word
    return flat


def _inverse(table: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(table)
    for i, source in enumerate(table):
        inverse[source - 1] = i + 1
    return tuple(inverse)


def _spread_pc1() -> tuple[int, ...]:
    """PC-1 over the 56-bit key of RFC 2759 §8.6 rather than the 64-bit key with parity: bit
    ``b`` of the 8-octet key (1-based, 8 per octet, the last of each the parity) is bit
    ``b - b // 8`` of the 7-octet one."""
    return tuple(b - (b - 1) // 8 for b in _PC1)


def _sp_tables() -> list[i64]:
    """Per S-box and 6-bit input, its 4 output bits in their place in the 32-bit f output,
    then put through P: ``[box * 64 + six]``."""
    p = _octet_tables(_P, 32)
    flat: list[i64] = [0] * (8 * 64)
    for box in range(8):
        for six in range(64):
            row = (six >> 4 & 2) | (six & 1)  # the outer bits choose the row
            column = six >> 1 & 15
            before_p = _S[box][row * 16 + column] << (28 - 4 * box)
            word = 0
            for octet in range(4):
                word |= p[octet * 256 + (before_p >> (24 - 8 * octet) & 255)]
            flat[box * 64 + six] = word
    return flat


# Each 64-bit permutation as two tables of 32 output bits (a native integer is signed 64-bit),
# fed the input's two 32-bit halves: octets 0-3 from offset 0, octets 4-7 from offset 1024.
_IP_LEFT: Final = _octet_tables(_IP[:32], 64)
_IP_RIGHT: Final = _octet_tables(_IP[32:], 64)
_FP_HIGH: Final = _octet_tables(_inverse(_IP)[:32], 64)
_FP_LOW: Final = _octet_tables(_inverse(_IP)[32:], 64)
_PC1_T: Final = _octet_tables(_spread_pc1(), 56)
# PC-2 takes its first 24 bits from C alone and the last 24 from D alone: a table for each
# half (C and D as 32-bit words with 4 leading zeros), so that an entry is 24 bits. A list
# item past 30 bits is a two-digit Python int, which mypyc unboxes by a slower path.
_PC2_C: Final = _octet_tables(tuple(b + 4 for b in _PC2[:24]), 32)
_PC2_D: Final = _octet_tables(tuple(b - 28 + 4 for b in _PC2[24:]), 32)
_SP_T: Final = _sp_tables()
_M28: Final[i64] = (1 << 28) - 1
_M32: Final[i64] = (1 << 32) - 1


def _permute(x: i64, table: list[i64], octets: i64, base: i64 = 0) -> i64:
    """The output bits of ``table`` set by the ``octets`` octets of ``x`` (most significant
    first), read from the table's octet entries from ``base`` on."""
    out: i64 = 0
    shift: i64 = 8 * (octets - 1)
    i: i64 = base
    while shift >= 0:
        out |= table[i + ((x >> shift) & 255)]
        shift -= 8
        i += 256
    return out


def _permute64(high: i64, low: i64, table: list[i64]) -> i64:
    """32 output bits of a permutation of a 64-bit input given as two 32-bit halves."""
    return _permute(high, table, 4) | _permute(low, table, 4, 1024)


def encrypt(key: bytes, block: bytes) -> bytes:
    """RFC 2759 §8.6 DesEncrypt: ``block`` (8 octets) under the 56 bits of ``key`` (7 octets)."""
    if len(key) != 7 or len(block) != 8:
        raise ValueError("DES takes a 7-octet key and an 8-octet block")
    cd = _permute(int.from_bytes(key, "big"), _PC1_T, 7)
    c: i64 = cd >> 28
    d: i64 = cd & _M28
    high: i64 = int.from_bytes(block[:4], "big")
    low: i64 = int.from_bytes(block[4:], "big")
    left = _permute64(high, low, _IP_LEFT)
    right = _permute64(high, low, _IP_RIGHT)
    for shift_ in _SHIFTS:
        shift: i64 = shift_
        c = ((c << shift) | (c >> (28 - shift))) & _M28
        d = ((d << shift) | (d >> (28 - shift))) & _M28
        subkey = (_permute(c, _PC2_C, 4) << 24) | _permute(d, _PC2_D, 4)
        # E: the eight 6-bit windows of R that overlap by a bit at each side, R's last bit
        # before its first and its first after its last; as one 34-bit word they are read at
        # a step of 4 bits, with no table.
        wrapped: i64 = ((right & 1) << 33) | (right << 1) | (right >> 31)
        f: i64 = 0
        box: i64 = 0
        while box < 8:
            six = ((wrapped >> (28 - 4 * box)) ^ (subkey >> (42 - 6 * box))) & 63
            f |= _SP_T[box * 64 + six]
            box += 1
        f ^= left  # one name at a time: compiled, a tuple of native integers is boxed
        left = right
        right = f
    # the output is R16 L16 (FIPS 46-3: the halves are not swapped after the last round)
    out: int = _permute64(right, left, _FP_HIGH)
    return out.to_bytes(4, "big") + int(_permute64(right, left, _FP_LOW)).to_bytes(4, "big")
