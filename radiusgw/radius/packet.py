"""RADIUS packet codec (RFC 2865 §3, §5): bytes to ``Packet`` and back, nothing else.

Rules, from RFC 2865 §3:
- Length is 20..4096; octets past Length are padding and ignored; fewer octets than Length
  make the packet invalid.
- An attribute shorter than its 2-octet header, or running past Length, makes the whole packet
  invalid (it must be silently discarded).
- More than ``MAX_ATTRIBUTES`` attributes make it invalid too (not an RFC rule: FreeRADIUS's
  ``max_attributes``, default 200). It bounds the work a packet can ask for before anything
  is known about its sender: 4,096 octets of 2-octet attributes are 2,038 of them.

``frame`` checks only the header and ``message_authenticator_offset`` walks only the attribute
headers: with them the server checks a request's authenticator before it pays for ``decode``
(issue 14.12: a forged packet of 2,038 attributes cost 0.4-2 ms to decode).

``decode`` raises only ``DecodeError`` (a ``ValueError``) with the reason; the property tests
prove nothing else escapes. Attributes stay a tuple of ``(type, value)`` in wire order: no
dictionary look-ups, no value decoding. Callers read the few types they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from radiusgw.radius.attributes import Attr

HEADER_LENGTH: Final = 20
MAX_LENGTH: Final = 4096  # RFC 2865 §3
MAX_ATTRIBUTE_VALUE: Final = 253
MAX_ATTRIBUTES: Final = 200  # FreeRADIUS max_attributes: real packets carry tens; see the docstring
_ATTRIBUTE_SLOTS: Final = range(MAX_ATTRIBUTES)
_MESSAGE_AUTHENTICATOR: Final = int(Attr.MESSAGE_AUTHENTICATOR)


class DecodeError(ValueError):
    """The datagram is not a valid RADIUS packet; ``str()`` says why."""


# Not frozen: one is built per datagram, and a frozen dataclass's __init__ (object.__setattr__
# per field) cost 2 µs more per decode. Treat it as read-only. Its __init__ is written out
# (``init=False``): compiled, a dataclass keeps the __init__ that ``dataclasses`` generates,
# which is interpreted Python (perf: the decode's samples went on into the interpreter's
# frame evaluation). The same holds for every dataclass built per request in compiled code.
@dataclass(slots=True, init=False)
class Packet:
    code: int
    identifier: int
    authenticator: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()
    # Filled by decode(): the datagram up to Length, and where the Message-Authenticator
    # value starts in it (-1 when absent), so that checking it needs no second walk.
    raw: bytes = field(default=b"", compare=False, repr=False)
    message_authenticator_offset: int = field(default=-1, compare=False, repr=False)

    def __init__(
        self,
        code: int,
        identifier: int,
        authenticator: bytes,
        attributes: tuple[tuple[int, bytes], ...] = (),
        raw: bytes = b"",
        message_authenticator_offset: int = -1,
    ) -> None:
        self.code = code
        self.identifier = identifier
        self.authenticator = authenticator
        self.attributes = attributes
        self.raw = raw
        self.message_authenticator_offset = message_authenticator_offset

    def get(self, attr_type: int) -> bytes | None:
        """The first value of ``attr_type``, or None."""
        for t, v in self.attributes:
            if t == attr_type:
                return v
        return None

    def first_values(self) -> dict[int, bytes]:
        """Each attribute type's first value, built in one C-level pass: for a caller that
        reads several types (cheaper than several ``get`` walks)."""
        return dict(reversed(self.attributes))

    def get_all(self, attr_type: int) -> list[bytes]:
        """Every value of ``attr_type`` in wire order (Proxy-State, Class, Reply-Message)."""
        return [v for t, v in self.attributes if t == attr_type]


def header_error(data: bytes) -> DecodeError:
    """Why the header of ``data`` is refused (RFC 2865 §3: Length is 20..4096 and no more than
    what arrived); for callers that found it refusable with a single test."""
    received = len(data)
    if received < HEADER_LENGTH:
        return DecodeError(f"{received} octets is shorter than the 20-octet header")
    length = (data[2] << 8) | data[3]
    if length < HEADER_LENGTH or length > MAX_LENGTH:
        return DecodeError(f"Length {length} is outside 20..4096 (RFC 2865 §3)")
    return DecodeError(f"Length {length} but only {received} octets arrived")


def frame(data: bytes) -> bytes:
    """The datagram up to its Length field (RFC 2865 §3), after checking only the header.

    Raises ``DecodeError`` for what ``decode`` would refuse in the header."""
    received = len(data)
    length = (data[2] << 8) | data[3] if received >= HEADER_LENGTH else 0
    if not HEADER_LENGTH <= length <= MAX_LENGTH or length > received:
        raise header_error(data)
    return data if length == received else data[:length]


def message_authenticator_offset(raw: bytes) -> int:
    """Where the first Message-Authenticator's value starts in ``raw`` (a ``frame``), or -1.

    Walks the attribute headers only, up to that attribute: nothing is copied, three tests a
    step (an attribute running past Length shows as the walk not ending on Length). Raises
    ``DecodeError`` for a broken header on the way, or past ``MAX_ATTRIBUTES``."""
    length = len(raw)
    last = length - 1  # an attribute header needs two octets
    pos = HEADER_LENGTH
    for _ in _ATTRIBUTE_SLOTS:
        if pos >= last:
            break
        attr_length = raw[pos + 1]
        if attr_length < 2:
            raise DecodeError(f"attribute at offset {pos} has length {attr_length} < 2")
        if raw[pos] == _MESSAGE_AUTHENTICATOR:
            return pos + 2  # its length and bounds: the HMAC check's to verify
        pos += attr_length
    else:
        if pos < length:
            raise DecodeError(f"more than {MAX_ATTRIBUTES} attributes")
    if pos != length:
        raise DecodeError(f"attributes run past Length {length}")
    return -1


def attribute_value(raw: bytes, attr_type: int, start: int = HEADER_LENGTH) -> bytes | None:
    """The first value of ``attr_type`` in a packet's octets that the gateway made or decoded
    (an answer it signed, a request it answered), without decoding the rest; None when there
    is none, or when a broken length ends the walk first. ``start``: where the attributes
    begin (0: attributes without a header, as a cached reply keeps them)."""
    last = len(raw) - 1
    pos = start
    while pos < last:
        attr_length = raw[pos + 1]
        if attr_length < 2:
            return None
        if raw[pos] == attr_type:
            return raw[pos + 2 : pos + attr_length]
        pos += attr_length
    return None


def decode(data: bytes) -> Packet:
    """Parse one datagram. Raises ``DecodeError`` if it is not a valid RADIUS packet."""
    received = len(data)
    length = (data[2] << 8) | data[3] if received >= HEADER_LENGTH else 0
    if not HEADER_LENGTH <= length <= MAX_LENGTH or length > received:
        raise header_error(data)
    attributes: list[tuple[int, bytes]] = []
    append = attributes.append
    ma_offset = -1
    pos = HEADER_LENGTH
    # Unbounded here (counted after): the server decodes only what authenticated, or what
    # message_authenticator_offset walked, which is bounded.
    while pos < length:
        if pos + 2 > length:
            raise DecodeError(f"attribute header at offset {pos} runs past Length")
        attr_length = data[pos + 1]
        if attr_length < 2:
            raise DecodeError(f"attribute at offset {pos} has length {attr_length} < 2")
        end = pos + attr_length
        if end > length:
            raise DecodeError(f"attribute at offset {pos} runs past Length")
        attr_type = data[pos]
        if attr_type == _MESSAGE_AUTHENTICATOR and ma_offset < 0:
            ma_offset = pos + 2
        append((attr_type, data[pos + 2 : end]))
        pos = end
    if len(attributes) > MAX_ATTRIBUTES:
        raise DecodeError(f"more than {MAX_ATTRIBUTES} attributes")
    raw = data if length == received else data[:length]
    return Packet(data[0], data[1], data[4:20], tuple(attributes), raw, ma_offset)


def encode_attributes(attributes: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]]) -> bytes:
    """Attributes to wire format. A value longer than 253 octets is a programming error."""
    parts = []
    for attr_type, value in attributes:
        size = len(value)
        if size > MAX_ATTRIBUTE_VALUE:
            raise ValueError(f"attribute {attr_type} value of {size} octets exceeds 253")
        parts.append(bytes((attr_type, size + 2)))
        parts.append(value)
    return b"".join(parts)


def encode(packet: Packet) -> bytes:
    """A packet to wire format, authenticator as given (see ``crypto`` for computing it)."""
    body = encode_attributes(packet.attributes)
    length = HEADER_LENGTH + len(body)
    if length > MAX_LENGTH:
        raise ValueError(f"packet of {length} octets exceeds 4096")
    if len(packet.authenticator) != 16:
        raise ValueError("authenticator must be 16 octets")
    header = bytes((packet.code, packet.identifier)) + length.to_bytes(2, "big")
    return header + packet.authenticator + body


# Small typed helpers for values (RFC 2865 §5 data types); callers pick what they need.


def integer(value: int) -> bytes:
    return value.to_bytes(4, "big")


def as_integer(value: bytes) -> int | None:
    return int.from_bytes(value, "big") if len(value) == 4 else None


def text(value: str) -> bytes:
    return value.encode("utf-8")


def as_text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
