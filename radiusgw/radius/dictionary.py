"""The attribute dictionary, in FreeRADIUS format, read with pyrad's parser.

The gateway ships ``dictionaries/dictionary`` (the RFC attributes it meets); operators add vendor
dictionaries. The dictionary serves the edges: turning an operator's ``Name = value`` into wire
octets once, at load, and naming attributes in logs. It is never consulted per packet: the hot
path works with the type numbers of ``radiusgw.radius.attributes``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pyrad.dictionary import Dictionary

from radiusgw.errors import RadiusGwError


class DictionaryError(RadiusGwError):
    """A dictionary file could not be read, or a name or value is not in it."""


def shipped_dictionary_path() -> Path:
    return Path(str(resources.files("radiusgw.radius") / "dictionaries" / "dictionary"))


def load_dictionary(extra: Iterable[Path] = ()) -> Dictionary:
    """The shipped dictionary plus the operator's files, in order."""
    paths = [shipped_dictionary_path(), *extra]
    try:
        return Dictionary(*[str(p) for p in paths])
    except Exception as exc:  # pyrad's ParseError (file:line in its message), OSError, ...
        raise DictionaryError(f"cannot read dictionary: {exc}") from exc


def attribute_number(dictionary: Dictionary, name: str) -> int:
    """The type number of a standard (non-vendor) attribute, by name."""
    try:
        code = dictionary.attributes[name].code
    except KeyError:
        raise DictionaryError(f"attribute {name!r} is not in the dictionary") from None
    if not isinstance(code, int):
        raise DictionaryError(f"attribute {name!r} is not a standard attribute")
    return code


def encode_value(dictionary: Dictionary, name: str, value: Any) -> tuple[int, bytes]:
    """``Name = value`` as (type, wire value), for configured reply attributes (done once)."""
    number = attribute_number(dictionary, name)
    attr = dictionary.attributes[name]
    kind = attr.type
    try:
        if isinstance(value, str) and attr.values.HasForward(value):
            named = attr.values.GetForward(value)  # pyrad keeps named values wire-encoded
            return number, named if isinstance(named, bytes) else int(named).to_bytes(4, "big")
        if kind in ("integer", "date"):
            return number, int(value).to_bytes(4, "big")
        if kind == "ipaddr":
            return number, ipaddress.IPv4Address(value).packed
        if kind == "ipv6addr":
            return number, ipaddress.IPv6Address(value).packed
        if kind == "string":
            return number, str(value).encode("utf-8")
        if kind == "octets":
            if isinstance(value, bytes):
                return number, value
            text = str(value)
            return number, bytes.fromhex(text[2:]) if text.startswith("0x") else text.encode()
    except (ValueError, OverflowError) as exc:
        raise DictionaryError(f"{name}: {value!r} is not a valid {kind}") from exc
    raise DictionaryError(f"{name}: values of type {kind} cannot be configured")
