"""Vendor-Specific attributes (RFC 2865 §5.26): the one codec for their inside.

A Vendor-Specific value is a 4-octet Vendor-Id (high octet 0) and a string the vendor defines.
RFC 2865 §5.26 recommends, and every vendor the gateway meets uses (Microsoft, RFC 2548 §2),
the format of sub-attributes: Vendor-Type (1 octet), Vendor-Length (1 octet, the sub-attribute's
whole length, at least 2), value. One Vendor-Specific may hold several (RFC 2548 §2 says they
SHOULD be packed so) and one packet several Vendor-Specific attributes.

Rules: ``split`` parses a value and says None (never raises) when it is not in that format, so
that a caller passes on or ignores what it cannot read. ``attribute`` builds one wire-encoded
Vendor-Specific attribute holding one sub-attribute; a value that cannot fit (more than 247
octets) is a programming error (``ValueError``).

Sans-I/O and allocation-light: nothing here runs for a packet that carries no Vendor-Specific.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from radiusgw.radius.attributes import Attr

_VENDOR_SPECIFIC: Final = int(Attr.VENDOR_SPECIFIC)
MAX_SUB_VALUE: Final = 255 - 2 - 4 - 2  # attribute header, Vendor-Id, sub-attribute header

SubAttributes = list[tuple[int, bytes]]


def split(value: bytes) -> tuple[int, SubAttributes] | None:
    """A Vendor-Specific value -> (Vendor-Id, [(Vendor-Type, value), ...]) in wire order; None
    when it is not in the sub-attribute format of RFC 2865 §5.26 (a length under 2 or running
    past the end)."""
    if len(value) < 4:
        return None
    subs: SubAttributes = []
    pos, end = 4, len(value)
    while pos < end:
        if pos + 2 > end:
            return None
        sub_end = pos + value[pos + 1]
        if sub_end < pos + 2 or sub_end > end:
            return None
        subs.append((value[pos], value[pos + 2 : sub_end]))
        pos = sub_end
    return int.from_bytes(value[:4], "big"), subs


def join(vendor: int, subs: Iterable[tuple[int, bytes]]) -> bytes:
    """(Vendor-Id, sub-attributes) -> a Vendor-Specific value; the reverse of ``split``."""
    parts = [vendor.to_bytes(4, "big")]
    for sub_type, data in subs:
        if len(data) > MAX_SUB_VALUE:
            raise ValueError(f"vendor attribute {vendor}/{sub_type} of {len(data)} octets")
        parts.append(bytes((sub_type, len(data) + 2)))
        parts.append(data)
    return b"".join(parts)


def attribute(vendor: int, sub_type: int, data: bytes) -> bytes:
    """One wire-encoded Vendor-Specific attribute (type 26) holding one sub-attribute."""
    size = len(data)
    if size > MAX_SUB_VALUE:
        raise ValueError(f"vendor attribute {vendor}/{sub_type} of {size} octets exceeds 247")
    return (
        bytes((_VENDOR_SPECIFIC, size + 8))
        + vendor.to_bytes(4, "big")
        + bytes((sub_type, size + 2))
        + data
    )


def find(attributes: Iterable[tuple[int, bytes]], vendor: int) -> dict[int, bytes]:
    """The first value of each sub-attribute type of ``vendor`` over all the Vendor-Specific
    attributes of a packet (a request may send each in its own Vendor-Specific, as radclient
    does, or pack them). Values that do not parse are skipped."""
    found: dict[int, bytes] = {}
    prefix = vendor.to_bytes(4, "big")
    for attr_type, value in attributes:
        if attr_type != _VENDOR_SPECIFIC or value[:4] != prefix:
            continue
        parsed = split(value)
        if parsed is None:
            continue
        for sub_type, data in parsed[1]:
            found.setdefault(sub_type, data)
    return found
