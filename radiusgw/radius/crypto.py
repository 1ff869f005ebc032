"""The cryptography of RADIUS: authenticators, hidden passwords, salts, Message-Authenticator.

Everything is MD5 or HMAC-MD5 as the RFCs demand; all digests are compared with
``hmac.compare_digest``. Functions take and return bytes and never log.

- Request/Response Authenticator: RFC 2865 §3, accounting Request Authenticator RFC 2866 §3.
- User-Password hiding: RFC 2865 §5.2.
- CHAP-Password: RFC 2865 §5.3 (challenge from CHAP-Challenge, else the Request Authenticator).
- Message-Authenticator: RFC 3579 §3.2 (HMAC-MD5 over the packet with the value zeroed; in a
  response the Request Authenticator stands in the authenticator field).
- Salt encryption (Tunnel-Password, MS-MPPE keys): RFC 2868 §3.5, RFC 2548 §2.4.2.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Final, Protocol, cast

from radiusgw.radius.attributes import Attr
from radiusgw.radius.packet import HEADER_LENGTH, MAX_LENGTH, frame, message_authenticator_offset


class Digest(Protocol):
    """What the package uses of an MD5 object (hashlib's and ``_md5``'s alike)."""

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> Digest: ...


def _fastest_md5() -> Callable[[bytes], Digest]:
    """CPython's built-in MD5 costs half of OpenSSL's for RADIUS-sized inputs: OpenSSL's per-call
    set-up dominates at 20-100 octets (measured: 0.6 vs 1.2 us); hashlib's is the fallback for
    a CPython built without ``_md5``. Chosen at run time, not under ``TYPE_CHECKING``: mypyc
    compiles as if that were true, and the compiled module must take the fast one too."""
    try:
        module = importlib.import_module("_md5")
    except ImportError:
        return cast("Callable[[bytes], Digest]", hashlib.md5)
    return cast("Callable[[bytes], Digest]", module.md5)


# The one MD5 of the package: the proxy rewrite and L2TP take it from here.
md5: Final = _fastest_md5()

ZERO16: Final = bytes(16)
_MA_TYPE: Final = int(Attr.MESSAGE_AUTHENTICATOR)
_MA_HEADER: Final = bytes((_MA_TYPE, 18))


@lru_cache(maxsize=4096)
def _hmac_pads(key: bytes) -> tuple[Digest, Digest]:
    """RFC 2104 inner and outer MD5 states for ``key``, computed once per secret."""
    if len(key) > 64:
        key = md5(key).digest()
    block = key.ljust(64, b"\0")
    return md5(bytes(b ^ 0x36 for b in block)), md5(bytes(b ^ 0x5C for b in block))


def hmac_md5(key: bytes, message: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104) from precomputed pads: a third of ``hmac.digest``'s cost here."""
    inner, outer = _hmac_pads(key)
    i = inner.copy()
    i.update(message)
    o = outer.copy()
    o.update(i.digest())
    digest: bytes = o.digest()
    return digest


def new_authenticator() -> bytes:
    """A Request Authenticator: unpredictable, unique over the secret's lifetime (§3)."""
    return os.urandom(16)


def _xor16(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def hide_blocks(plain: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The cipher of RFC 2865 §5.2 on 16n octets as they are: c(i) = p(i) xor MD5(S + c(i-1)),
    c(0) = RA. Also the encryption of MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1)."""
    if len(plain) % 16:
        raise ValueError("the RFC 2865 §5.2 cipher takes a multiple of 16 octets")
    out = []
    last = authenticator
    for i in range(0, len(plain), 16):
        block = _xor16(plain[i : i + 16], md5(secret + last).digest())
        out.append(block)
        last = block
    return b"".join(out)


def unhide_blocks(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """Reverse of ``hide_blocks``, every octet kept; None when not 16n octets (n >= 1)."""
    size = len(hidden)
    if size == 0 or size % 16:
        return None
    if size == 16:  # the common case, one block, no loop
        return _xor16(hidden, md5(secret + authenticator).digest())
    out = []
    last = authenticator
    for i in range(0, size, 16):
        block = hidden[i : i + 16]
        out.append(_xor16(block, md5(secret + last).digest()))
        last = block
    return b"".join(out)


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 §5.2: User-Password padded with zeros to 16n octets (max 128), then hidden."""
    if len(password) > 128:
        raise ValueError("User-Password is at most 128 octets (RFC 2865 §5.2)")
    # An empty password still takes one block of padding.
    padded = password + bytes(-len(password) % 16 if password else 16)
    return hide_blocks(padded, secret, authenticator)


def unhide_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """Reverse of ``hide_password`` (the zero padding removed); None when the value is not a
    multiple of 16 octets or longer than 128."""
    size = len(hidden)
    if size == 16:  # the common case, inline: this runs for every PAP request
        return _xor16(hidden, md5(secret + authenticator).digest()).rstrip(b"\0")
    if size > 128:
        return None
    plain = unhide_blocks(hidden, secret, authenticator)
    return None if plain is None else plain.rstrip(b"\0")


def chap_matches(chap_password: bytes, challenge: bytes, password: bytes) -> bool:
    """RFC 2865 §5.3 / RFC 1994: CHAP-Password = ident(1) + MD5(ident + password + challenge)."""
    if len(chap_password) != 17:
        return False
    expected = md5(chap_password[:1] + password + challenge).digest()
    return hmac.compare_digest(expected, chap_password[1:])


def chap_password(ident: int, password: bytes, challenge: bytes) -> bytes:
    """The CHAP-Password a peer would send (for clients and tests)."""
    head = bytes((ident,))
    return head + md5(head + password + challenge).digest()


def message_authenticator_matches(raw: bytes, offset: int, secret: bytes) -> bool:
    """RFC 3579 §3.2 on a request: HMAC-MD5 of the packet with the 16-octet value zeroed."""
    value = raw[offset : offset + 16]
    if len(value) != 16 or raw[offset - 1] != 18:
        return False
    zeroed = raw[:offset] + ZERO16 + raw[offset + 16 :]
    return hmac.compare_digest(hmac_md5(secret, zeroed), value)


MA_ABSENT: Final = -1  # request_message_authenticator: the request carries none
MA_WRONG: Final = -2  # request_message_authenticator: it carries one that does not match


def request_message_authenticator(data: bytes, secret: bytes) -> int:
    """RFC 3579 §3.2 on a request not yet decoded: the offset of a Message-Authenticator that
    matches, ``MA_ABSENT`` or ``MA_WRONG``. ``data`` is the datagram as it came: a header that
    ``decode`` would refuse raises ``packet.DecodeError``, octets past Length are left out.

    Senders put it first (FreeRADIUS since 3.2.5, the BlastRADIUS advice) or last (most
    others): both places are looked at without a walk. The first attribute is always on an
    attribute boundary, so what is found there is the answer. The last 18 octets may lie inside
    another attribute's value, so they count only when the HMAC matches (nobody without the
    secret makes it match); else the attribute headers are walked, which a forged packet pays
    for: at most ``MAX_ATTRIBUTES`` steps. Raises ``packet.DecodeError`` for broken headers
    met on the walk.
    """
    raw = data
    length = len(raw)
    if not (HEADER_LENGTH <= length <= MAX_LENGTH and (raw[2] << 8 | raw[3]) == length):
        raw = frame(data)  # the full checks, only for what is not the common case
        length = len(raw)
    tried = -1
    if length >= 38:
        if raw[20] == _MA_TYPE:
            return 22 if message_authenticator_matches(raw, 22, secret) else MA_WRONG
        last = length - 16
        if raw[last - 2] == _MA_TYPE and raw[last - 1] == 18:
            # The common case, inline: one HMAC over the packet with the value zeroed.
            if hmac.compare_digest(hmac_md5(secret, raw[:last] + ZERO16), raw[last:]):
                return last
            tried = last
    offset = message_authenticator_offset(raw)
    if offset < 0:
        return MA_ABSENT
    if offset == tried:  # it was the last attribute after all: one HMAC is enough
        return MA_WRONG
    return offset if message_authenticator_matches(raw, offset, secret) else MA_WRONG


def response_message_authenticator_matches(
    raw: bytes, offset: int, secret: bytes, request_authenticator: bytes
) -> bool:
    """RFC 3579 §3.2 on a response: computed with the Request Authenticator in place."""
    value = raw[offset : offset + 16]
    if len(value) != 16 or raw[offset - 1] != 18:
        return False
    zeroed = raw[:4] + request_authenticator + raw[20:offset] + ZERO16 + raw[offset + 16 :]
    return hmac.compare_digest(hmac_md5(secret, zeroed), value)


def accounting_request_matches(raw: bytes, secret: bytes) -> bool:
    """RFC 2866 §3: Request Authenticator = MD5(header + 16 zero octets + attributes + secret).

    Also the rule for Disconnect/CoA requests (RFC 5176 §2.3). ``raw`` may be the datagram as
    it came, not yet decoded: a header ``decode`` would refuse raises ``packet.DecodeError``,
    octets past Length are left out.
    """
    length = len(raw)
    if not (HEADER_LENGTH <= length <= MAX_LENGTH and (raw[2] << 8 | raw[3]) == length):
        raw = frame(raw)
    expected = md5(raw[:4] + ZERO16 + raw[20:] + secret).digest()
    return hmac.compare_digest(expected, raw[4:20])


def response_authenticator_matches(raw: bytes, secret: bytes, request_authenticator: bytes) -> bool:
    """RFC 2865 §3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret) == Response Authenticator."""
    expected = md5(raw[:4] + request_authenticator + raw[20:] + secret).digest()
    return hmac.compare_digest(expected, raw[4:20])


def sign_response(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    message_authenticator: bool = True,
) -> bytes | None:
    """Build a response datagram: Message-Authenticator (last) then Response Authenticator;
    None when it would pass 4,096 octets.

    ``attributes`` is already wire-encoded. Order matters: the Message-Authenticator is computed
    first, with the Request Authenticator in the header (RFC 3579 §3.2), then the Response
    Authenticator over the whole packet including it (RFC 2865 §3).

    The builder owns the limit (RFC 2865 §3), as aioquic's packet builder does, instead of an
    exception at the end: an answer that does not fit cannot be sent, and nothing in it may be
    left out to make room (the request's Proxy-State, RFC 2865 §5.33), so the caller drops the
    request and counts it. An Accounting-Response always fits: no Message-Authenticator, and
    nothing but its request's Proxy-State, which that request (at most 4,096 octets) carried.
    """
    length = 20 + len(attributes) + (18 if message_authenticator else 0)
    if length > 4096:
        return None
    header = bytes((code, identifier, length >> 8, length & 0xFF))
    if message_authenticator:
        mac = hmac_md5(secret, header + request_authenticator + attributes + _MA_HEADER + ZERO16)
        attributes = attributes + _MA_HEADER + mac
    return header + md5(header + request_authenticator + attributes + secret).digest() + attributes


def sign_request(
    code: int,
    identifier: int,
    attributes: bytes,
    secret: bytes,
    *,
    authenticator: bytes | None = None,
    message_authenticator: bool = True,
) -> bytes:
    """Build a request datagram (Access-Request, Status-Server, or accounting-style requests).

    Access-Request and Status-Server carry a random authenticator; Accounting-Request,
    Disconnect-Request and CoA-Request carry MD5(header + zeros + attributes + secret)
    (RFC 2866 §3, RFC 5176 §2.3): pass ``authenticator=None`` for those codes.
    """
    length = 20 + len(attributes) + (18 if message_authenticator else 0)
    if length > 4096:
        raise ValueError(f"request of {length} octets exceeds 4096")
    header = bytes((code, identifier, length >> 8, length & 0xFF))
    accounting_style = code in (4, 40, 43)
    auth = ZERO16 if accounting_style else (authenticator or new_authenticator())
    if message_authenticator:
        mac = hmac_md5(secret, header + auth + attributes + _MA_HEADER + ZERO16)
        attributes = attributes + _MA_HEADER + mac
    if accounting_style:
        auth = md5(header + ZERO16 + attributes + secret).digest()
    return header + auth + attributes


def salt_encrypt(plain: bytes, secret: bytes, request_authenticator: bytes, salt: bytes) -> bytes:
    """RFC 2868 §3.5: salt(2, top bit set) + encrypt(len(1) + plain + zero padding).

    b(1) = MD5(S + R + A), c(1) = p(1) xor b(1); b(i) = MD5(S + c(i-1)). The tag octet, when the
    attribute has one, is the caller's to prepend.
    """
    if len(salt) != 2 or not salt[0] & 0x80:
        raise ValueError("salt is 2 octets with the most significant bit set (RFC 2868 §3.5)")
    if len(plain) < 16:  # one block, the usual tunnel secret: no loop, no list
        one = int.from_bytes(bytes((len(plain),)) + plain + bytes(15 - len(plain)), "big")
        return salt_encrypt_block(one, secret + request_authenticator, salt)
    data = bytes((len(plain),)) + plain
    data += bytes(-len(data) % 16)
    out = [salt]
    last = request_authenticator + salt
    for i in range(0, len(data), 16):
        block = _xor16(data[i : i + 16], md5(secret + last).digest())
        out.append(block)
        last = block
    return b"".join(out)


def salt_encrypt_block(block: int, keyed: bytes, salt: bytes) -> bytes:
    """``salt_encrypt`` of a value that fits one block (under 16 octets), for callers that
    prepared it: ``block`` is the padded plaintext (length octet, value, zeros) as a big-endian
    integer and ``keyed`` is S + R. Returns salt + p(1) xor MD5(S + R + A)."""
    pad = int.from_bytes(md5(keyed + salt).digest(), "big")
    return salt + (block ^ pad).to_bytes(16, "big")


def salt_decrypt(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes | None:
    """Reverse of ``salt_encrypt`` (value without tag); None if malformed."""
    if len(value) < 18 or (len(value) - 2) % 16 or not value[0] & 0x80:
        return None
    salt, cipher = value[:2], value[2:]
    out = []
    last = request_authenticator + salt
    for i in range(0, len(cipher), 16):
        block = cipher[i : i + 16]
        out.append(_xor16(block, md5(secret + last).digest()))
        last = block
    plain = b"".join(out)
    size = plain[0]
    if size > len(plain) - 1:
        return None
    return plain[1 : 1 + size]


_salts = random.Random(os.urandom(16))
_salt_draw = _salts.getrandbits
os.register_at_fork(after_in_child=lambda: _salts.seed(os.urandom(16)))  # workers differ


class SaltSource:
    """Salts unique within one packet (RFC 2868 §3.5), random across packets.

    One draw per packet, then the next values in turn (top bit kept set): unique for up to
    32,768 attributes. The draw is from ``random`` (seeded from the OS at start), not a
    getrandom call per packet: the salt travels in clear and only has to differ (§3.5); the
    secrecy is the shared secret's.
    """

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = _salt_draw(15)

    def next(self) -> bytes:
        value = self._next
        self._next = (value + 1) & 0x7FFF
        return (0x8000 | (value & 0x7FFF)).to_bytes(2, "big")
