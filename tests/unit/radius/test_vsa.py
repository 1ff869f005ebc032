"""The Vendor-Specific codec (RFC 2865 §5.26): round trips, and garbage never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.radius import vsa
from radiusgw.radius.attributes import MICROSOFT, Attr
from radiusgw.radius.packet import decode, encode_attributes

subs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=5)


@given(st.integers(0, 2**32 - 1), subs)
def test_split_reverses_join(vendor: int, sub_attributes: list[tuple[int, bytes]]) -> None:
    assert vsa.split(vsa.join(vendor, sub_attributes)) == (vendor, sub_attributes)


@given(st.binary(max_size=253))
def test_split_of_any_octets_says_none_or_parses(value: bytes) -> None:
    parsed = vsa.split(value)
    if parsed is not None:
        assert vsa.join(*parsed) == value


def test_broken_sub_attributes_are_none() -> None:
    assert vsa.split(b"\x00\x00\x01") is None  # no Vendor-Id
    assert vsa.split(b"\x00\x00\x01\x37\x0b\x01") is None  # length 1
    assert vsa.split(b"\x00\x00\x01\x37\x0b\x09ab") is None  # runs past the end
    assert vsa.split(b"\x00\x00\x01\x37\x0b") is None  # half a header
    assert vsa.split(b"\x00\x00\x01\x37") == (MICROSOFT, [])


def test_attribute_is_one_wire_encoded_vendor_specific() -> None:
    wire = vsa.attribute(MICROSOFT, 26, b"\x01S=AB")
    packet = decode(b"\x02\x01\x00" + bytes((20 + len(wire),)) + bytes(16) + wire)
    assert packet.attributes == (
        (int(Attr.VENDOR_SPECIFIC), vsa.join(MICROSOFT, [(26, b"\x01S=AB")])),
    )
    with pytest.raises(ValueError, match="exceeds 247"):
        vsa.attribute(MICROSOFT, 1, bytes(248))


def test_find_reads_every_vendor_specific_of_one_vendor_first_value_wins() -> None:
    attributes = [
        (26, vsa.join(9, [(1, b"cisco")])),
        (26, vsa.join(MICROSOFT, [(11, b"challenge")])),
        (26, b"\x00\x00\x01\x37\xff"),  # broken: skipped
        (26, vsa.join(MICROSOFT, [(25, b"response"), (11, b"second")])),
        (1, b"user"),
    ]
    assert vsa.find(attributes, MICROSOFT) == {11: b"challenge", 25: b"response"}
    assert vsa.find(attributes, 9) == {1: b"cisco"}
    assert encode_attributes(attributes)  # all of them fit on the wire
