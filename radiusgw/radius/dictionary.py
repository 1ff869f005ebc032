"""The attribute dictionary, in FreeRADIUS format, read with pyrad's parser.

The gateway ships ``dictionaries/dictionary`` (the RFC attributes it meets) and a few vendor
dictionaries beside it (Cisco, Juniper ERX); operators add their own (``--dictionary DIR``).
The dictionary serves the edges: turning an operator's ``Name = value`` into wire octets once,
at load (``radiusgw.radius.reply``), and naming attributes in logs. It is never consulted per
packet: the hot path works with the type numbers of ``radiusgw.radius.attributes``.
"""

from __future__ import annotations

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


def dictionary_files(directory: Path) -> list[Path]:
    """The dictionaries of ``directory``: ``dictionary`` first, then ``dictionary.*`` by name
    (FreeRADIUS's naming), hidden and editor backup files skipped."""
    found = sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and (p.name == "dictionary" or p.name.startswith("dictionary."))
        and not p.name.endswith("~")
    )
    return sorted(found, key=lambda p: p.name != "dictionary")


def load_dictionary(extra: Iterable[Path] = ()) -> Dictionary:
    """The shipped standard and vendor dictionaries, then the operator's, in order: a file as
    it is, a directory (``--dictionary DIR``) as its ``dictionary_files``."""
    paths = dictionary_files(shipped_dictionary_path().parent)
    for path in extra:
        if path.is_dir():
            paths.extend(dictionary_files(path))
        elif path.exists():
            paths.append(path)
        else:
            raise DictionaryError(f"cannot read dictionary: {path} does not exist")
    try:
        return Dictionary(*[str(p) for p in paths])
    except Exception as exc:  # pyrad's ParseError (file:line in its message), OSError, ...
        raise DictionaryError(f"cannot read dictionary: {exc}") from exc


def attribute_number(dictionary: Dictionary, name: str) -> int:
    """The type number of a standard (non-vendor) attribute, by name."""
    try:
        attr = dictionary.attributes[name]
    except KeyError:
        raise DictionaryError(f"attribute {name!r} is not in the dictionary") from None
    if not isinstance(attr.code, int) or attr.vendor:
        raise DictionaryError(f"attribute {name!r} is not a standard attribute")
    return attr.code


def encode_value(dictionary: Dictionary, name: str, value: Any) -> tuple[int, bytes]:
    """``Name = value`` as (type, wire value) for a standard attribute (done once)."""
    from radiusgw.radius.reply import encode  # the one encoder; it builds on this module

    number = attribute_number(dictionary, name)
    return number, encode(dictionary, name, value).wire[2:]
