"""Reply attributes by name: an operator's ``Name = value`` typed with the dictionary and
encoded once, to the octets an Access-Accept carries.

Names and types are the FreeRADIUS-format dictionaries' (``radiusgw.radius.dictionary``: the
shipped standard and vendor ones, and an operator's ``--dictionary DIR``). A realm's
``[realm.reply]`` is encoded when the realm file is loaded, an account's when the worker caches
the account: never per request. Vendor attributes go into one Vendor-Specific each
(RFC 2865 §5.26, ``radiusgw.radius.vsa``).

Rules:
- An unknown name, a value that is not of the attribute's type, or an attribute that cannot be
  configured is a ``DictionaryError`` naming the attribute; the caller adds where it was (the
  realm file and realm, the account, the CSV line).
- Not configurable: attributes encrypted per request (User-Password, Tunnel-Password, the MPPE
  keys: ``encrypt=``), and the ones the gateway itself writes to every answer
  (Message-Authenticator, Proxy-State, EAP-Message, Vendor-Specific as raw octets).
- Several values of one name are several attributes, in the order given (Framed-Route,
  Cisco-AVPair are multi-valued).
- ``merged``: the account's attributes win over the realm's: every realm attribute whose name
  (type, or vendor and type) the account also sets is left out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyrad.dictionary import Dictionary

from radiusgw.radius import vsa
from radiusgw.radius.attributes import Attr
from radiusgw.radius.dictionary import DictionaryError

MAX_VALUE = 253  # RFC 2865 §5: an attribute's value is at most 253 octets
# Written by the gateway into answers itself; configuring them would break the answer.
_RESERVED = frozenset(
    {int(Attr.MESSAGE_AUTHENTICATOR), int(Attr.PROXY_STATE), int(Attr.EAP_MESSAGE), 26}
)
# Sizes of the fixed-width integer types FreeRADIUS dictionaries use.
_WIDTHS = {"byte": 1, "short": 2, "integer": 4, "date": 4, "signed": 4, "integer64": 8}

Key = tuple[int, int]  # (Vendor-Id, type): Vendor-Id 0 for a standard attribute


@dataclass(frozen=True, slots=True)
class Encoded:
    """One reply attribute, wire-encoded (header included), with the name it overrides by."""

    key: Key
    wire: bytes


def parse_pair(text: str) -> tuple[str, str]:
    """``"Name=value"`` (``account add --reply``, the CSV ``reply`` column) -> (name, value)."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not equals or not name:
        raise DictionaryError(f"{text!r} is not NAME=VALUE")
    return name, value


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The CSV ``reply`` column: ``name=value`` pairs separated by ``;`` (empty: none)."""
    return [parse_pair(part) for part in text.split(";") if part.strip()]


def encode(dictionary: Dictionary, name: str, value: object) -> Encoded:
    """One ``name = value`` as wire octets; ``DictionaryError`` names the attribute."""
    try:
        attr = dictionary.attributes[name]
    except KeyError:
        skipped = name in getattr(dictionary, "skipped_attributes", ())
        why = "is of a type radiusgw cannot send" if skipped else "is not in the dictionary"
        raise DictionaryError(f"attribute {name!r} {why}") from None
    code = attr.code
    vendor = dictionary.vendors.GetForward(attr.vendor) if attr.vendor else 0
    if not isinstance(code, int) or attr.is_sub_attribute:
        raise DictionaryError(f"attribute {name!r} cannot be configured (a TLV)")
    if attr.encrypt:
        raise DictionaryError(
            f"attribute {name!r} cannot be configured: it is encrypted for each request"
        )
    if vendor == 0 and code in _RESERVED:
        raise DictionaryError(
            f"attribute {name!r} cannot be configured: the gateway writes it itself"
        )
    data = _octets(attr, name, value)
    if attr.has_tag:
        # RFC 2868 §3: tag 0 (no tunnel group). An integer carries the tag in its first octet;
        # a string only needs one when its first octet would read as a tag (0x01-0x1F).
        if attr.type == "integer":
            data = b"\x00" + data[1:]
        elif data and data[0] <= 0x1F:
            data = b"\x00" + data
    limit = vsa.MAX_SUB_VALUE if vendor else MAX_VALUE
    if len(data) > limit:
        raise DictionaryError(
            f"attribute {name!r}: {len(data)} octets is too long (at most {limit}, RFC 2865 §5)"
        )
    if vendor:
        return Encoded((vendor, code), vsa.attribute(vendor, code, data))
    return Encoded((0, code), bytes((code, len(data) + 2)) + data)


def encode_all(dictionary: Dictionary, pairs: Iterable[tuple[str, object]]) -> tuple[Encoded, ...]:
    """Each (name, value) in order; a list value is one attribute per element."""
    out: list[Encoded] = []
    for name, value in pairs:
        for one in value if isinstance(value, list) else [value]:
            out.append(encode(dictionary, name, one))
    return tuple(out)


def merged(account: Sequence[Encoded], realm: Sequence[Encoded]) -> bytes:
    """The account's attributes, then the realm's that the account does not set by name."""
    if not realm:
        return b"".join(a.wire for a in account)
    own = {a.key for a in account}
    return b"".join(a.wire for a in account) + b"".join(r.wire for r in realm if r.key not in own)


def _octets(attr: object, name: str, value: object) -> bytes:
    kind: str = getattr(attr, "type", "")
    values = getattr(attr, "values", None)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DictionaryError(f"attribute {name!r}: give a string or an integer")
    try:
        if isinstance(value, str) and values is not None and values.HasForward(value):
            named = values.GetForward(value)  # pyrad keeps named values wire-encoded
            return named if isinstance(named, bytes) else int(named).to_bytes(4, "big")
        if kind in _WIDTHS:
            number = int(value)
            return number.to_bytes(_WIDTHS[kind], "big", signed=kind == "signed")
        text = str(value)
        if kind == "string":
            return text.encode("utf-8")
        if kind == "octets":
            return bytes.fromhex(text[2:]) if text.startswith("0x") else text.encode("utf-8")
        if kind == "ipaddr":
            return ipaddress.IPv4Address(text).packed
        if kind == "ipv6addr":
            return ipaddress.IPv6Address(text).packed
        if kind == "ipv6prefix":
            # RFC 3162 §2.3: reserved octet, prefix length, then only the octets it covers.
            network = ipaddress.IPv6Network(text, strict=True)
            length = network.prefixlen
            return bytes((0, length)) + network.network_address.packed[: (length + 7) // 8]
        if kind == "ifid":
            # RFC 3162 §2.2: 8 octets, written as four groups of hex digits.
            data = bytes.fromhex(text.replace(":", ""))
            if len(data) != 8:
                raise ValueError("an interface id is 8 octets")
            return data
    except (ValueError, OverflowError):
        raise DictionaryError(f"attribute {name!r}: {value!r} is not a valid {kind}") from None
    raise DictionaryError(f"attribute {name!r}: values of type {kind} cannot be configured")
