from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.radius.attributes import Attr
from radiusgw.radius.dictionary import (
    DictionaryError,
    attribute_number,
    encode_value,
    load_dictionary,
)

ACRONYMS = {"Chap": "CHAP", "Eap": "EAP", "Nas": "NAS", "Ip": "IP", "Ipv6": "IPv6", "Id": "Id"}


def dictionary_name(member: Attr) -> str:
    words = [w.capitalize() for w in member.name.split("_")]
    return "-".join(ACRONYMS.get(w, w) for w in words)


@pytest.mark.parametrize("member", list(Attr))
def test_wire_numbers_agree_with_the_shipped_dictionary(member: Attr) -> None:
    assert attribute_number(load_dictionary(), dictionary_name(member)) == member


def test_named_values_encode_to_their_wire_octets() -> None:
    d = load_dictionary()
    assert encode_value(d, "Service-Type", "Framed-User") == (6, (2).to_bytes(4, "big"))
    assert encode_value(d, "Framed-IP-Address", "10.1.2.3") == (8, bytes((10, 1, 2, 3)))
    assert encode_value(d, "Session-Timeout", 3600) == (27, (3600).to_bytes(4, "big"))
    assert encode_value(d, "Class", "0x0102") == (25, b"\x01\x02")


def test_unknown_attribute_and_bad_value_are_operator_errors() -> None:
    d = load_dictionary()
    with pytest.raises(DictionaryError, match="not in the dictionary"):
        attribute_number(d, "No-Such-Attribute")
    with pytest.raises(DictionaryError, match="not a valid"):
        encode_value(d, "Framed-IP-Address", "not-an-ip")


def test_operator_vendor_dictionary_is_added(tmp_path: Path) -> None:
    extra = tmp_path / "dictionary.acme"
    extra.write_text(
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Level 1 integer\nEND-VENDOR Acme\n"
    )
    d = load_dictionary([extra])
    assert d.attributes["Acme-Level"].vendor == "Acme"


def test_broken_dictionary_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "dictionary.bad"
    bad.write_text("ATTRIBUTE Broken\n")
    with pytest.raises(DictionaryError, match="cannot read dictionary"):
        load_dictionary([bad])
