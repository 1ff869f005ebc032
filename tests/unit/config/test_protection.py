"""Realm keys of issue 17: ``lockout_after``/``lockout_window``/``lockout_time`` and the
``[realm.reply]`` table of attribute name = value, typed with the dictionaries at load."""

from __future__ import annotations

from pathlib import Path

from radiusgw.config import load_registry
from radiusgw.radius import vsa
from tests.unit.config.helpers import GROUP_CONTRACT, HEAD, VPDN_REALM, Problems, Write

REPLY = """
lockout_after = 5
lockout_time = 600
[realm.reply]
"Filter-Id" = "std-filter"
"Framed-Route" = ["192.0.2.0/24 0.0.0.0 1", "198.51.100.0/24 0.0.0.0 1"]
"Cisco-AVPair" = "ip:addr-pool=acme"
"Session-Timeout" = 3600
"Delegated-IPv6-Prefix" = "2001:db8:100::/56"
"""


def test_reply_table_is_encoded_once_at_load_and_lockout_read(write: Write, realms: Path) -> None:
    write("c.toml", GROUP_CONTRACT + REPLY)
    realm = load_registry(realms).realms["c.example"]
    assert (realm.lockout_after, realm.lockout_window, realm.lockout_time) == (5, 300.0, 600.0)
    wires = [a.wire for a in realm.reply]
    assert wires[0] == bytes((11, 12)) + b"std-filter"
    assert wires[1] == bytes((22, 24)) + b"192.0.2.0/24 0.0.0.0 1"
    assert len(wires) == 6
    assert wires[3] == vsa.attribute(9, 1, b"ip:addr-pool=acme")
    assert wires[4] == bytes((27, 6)) + (3600).to_bytes(4, "big")
    # RFC 3162 §2.3: reserved, prefix length, the 7 octets a /56 covers.
    assert wires[5] == bytes((123, 11, 0, 56)) + bytes.fromhex("20010db8010000")


def test_unknown_attribute_or_bad_value_names_file_realm_and_attribute(
    write: Write, problems: Problems
) -> None:
    write(
        "c.toml",
        GROUP_CONTRACT + '[realm.reply]\n"Filter-Idd" = "x"\n"Framed-IP-Address" = "nope"\n',
    )
    assert problems() == [
        "c.toml: realm[0].reply.Filter-Idd: realm 'c.example': attribute 'Filter-Idd' is not "
        "in the dictionary",
        "c.toml: realm[0].reply.Framed-IP-Address: realm 'c.example': attribute "
        "'Framed-IP-Address': 'nope' is not a valid ipaddr",
    ]


def test_attributes_the_gateway_writes_or_encrypts_cannot_be_configured(
    write: Write, problems: Problems
) -> None:
    write(
        "c.toml", GROUP_CONTRACT + '[realm.reply]\n"Proxy-State" = "x"\n"MS-MPPE-Send-Key" = "x"\n'
    )
    found = problems()
    assert "the gateway writes it itself" in found[0]
    assert "encrypted for each request" in found[1]


def test_an_operator_dictionary_adds_names(write: Write, realms: Path, tmp_path: Path) -> None:
    extra = tmp_path / "dicts"
    extra.mkdir()
    (extra / "dictionary.acme").write_text(
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Level 1 integer\nEND-VENDOR Acme\n"
    )
    write("c.toml", GROUP_CONTRACT + '[realm.reply]\n"Acme-Level" = 3\n')
    realm = load_registry(realms, [extra]).realms["c.example"]
    assert [a.wire for a in realm.reply] == [vsa.attribute(99999, 1, (3).to_bytes(4, "big"))]


def test_lockout_keys_need_lockout_after_and_accounts(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT + "lockout_time = 60\n")
    write(
        "v.toml",
        (HEAD + VPDN_REALM)
        .replace('"c"', '"v"')
        .replace('carrier = "K"', 'carrier = "K"\nlockout_after = 3'),
    )
    assert problems() == [
        "c.toml: realm[0].lockout_time: applies only with lockout_after, the failures that lock",
        "v.toml: realm[0].lockout_after: applies only with authenticate = true: without it the "
        "realm has no accounts",
    ]
