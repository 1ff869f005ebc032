"""The service terms' rules (第5条, 第6条 ...) and the uniqueness of names across files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from radiusgw.config import CarrierType, load_registry
from tests.unit.config.helpers import (
    CLIENT,
    GROUP_CONTRACT,
    GROUP_REALM,
    HEAD,
    PROXY_REALM,
    VPDN_REALM,
    Problems,
    Write,
)


def _contract(contract_id: str, *pieces: str) -> str:
    return HEAD.replace('id = "c"', f'id = "{contract_id}"') + "".join(pieces)


def _lns(count: int) -> str:
    return "".join(
        f"[[realm.lns]]\naddress = '192.0.2.{n}'\nsecret = 's'\n" for n in range(1, count + 1)
    )


def _carrier(carrier_type: str, address: str) -> str:
    return f"[[carrier]]\ntype = '{carrier_type}'\naddress = '{address}'\nsecret = 's'\n"


# -- 第5条1: what makes a contract usable ------------------------------------------------


def test_group_realm_without_a_client_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + GROUP_REALM)

    assert problems() == [
        "c.toml: client: a contract with a group or proxy realm needs at least one [[client]], "
        "the terminal that sends its requests (第5条1)"
    ]


def test_proxy_realm_without_a_client_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + PROXY_REALM)

    [line] = problems()
    assert line.startswith("c.toml: client: a contract with a group or proxy realm needs")
    assert line.endswith("(第5条1)")


@pytest.mark.parametrize("text", [HEAD + CLIENT, HEAD], ids=["client-only", "empty-contract"])
def test_contract_without_a_realm_is_refused(write: Write, problems: Problems, text: str) -> None:
    write("c.toml", text)

    assert problems() == [
        "c.toml: realm: a contract needs at least one [[realm]]: a group or proxy realm with a "
        "[[client]], or a vpdn realm (第5条1)"
    ]


def test_vpdn_realm_alone_makes_a_usable_contract(write: Write, realms: Path) -> None:
    write("c.toml", HEAD + VPDN_REALM)

    assert load_registry(realms).contracts["c"].clients == ()


def test_usable_contract_rule_waits_until_its_file_reads_cleanly(
    write: Write, problems: Problems
) -> None:
    # The only client is broken, so it cannot be built; saying "no client" would be false.
    write("c.toml", GROUP_CONTRACT.replace("192.0.2.1", "192.0.2.0/24"))

    assert problems() == [
        'c.toml: client[0].address: "192.0.2.0/24" is a range; a client is one IP address (第5条2)'
    ]


# -- 第6条: group and proxy not together -------------------------------------------------


def test_group_and_proxy_realms_in_one_contract_are_refused(
    write: Write, problems: Problems
) -> None:
    write("c.toml", HEAD + CLIENT + GROUP_REALM + PROXY_REALM)

    assert problems() == [
        'c.toml: realm[1].mode: proxy realm "p.example" and group realm "c.example" (realm[0]) '
        "in one contract; group and proxy cannot be used together by one contract (第6条)"
    ]


def test_group_and_proxy_conflict_is_reported_even_beside_other_problems(
    write: Write, problems: Problems
) -> None:
    write("c.toml", HEAD + CLIENT + PROXY_REALM + GROUP_REALM + "max_sessions = 0")

    assert problems() == [
        "c.toml: realm[1].max_sessions: must be at least 1, got 0",
        'c.toml: realm[1].mode: group realm "c.example" and proxy realm "p.example" (realm[0]) '
        "in one contract; group and proxy cannot be used together by one contract (第6条)",
    ]


@pytest.mark.parametrize(
    "pieces",
    [
        (GROUP_REALM, VPDN_REALM),
        (PROXY_REALM, VPDN_REALM),
        (GROUP_REALM, GROUP_REALM.replace("c.", "d.")),
    ],
    ids=["group+vpdn", "proxy+vpdn", "two-groups"],
)
def test_other_mode_combinations_are_accepted(
    write: Write, realms: Path, pieces: tuple[str, str]
) -> None:
    write("c.toml", HEAD + CLIENT + "".join(pieces))

    assert len(load_registry(realms).contracts["c"].realms) == 2


# -- 第5条2 and single addresses ---------------------------------------------------------


def test_client_range_is_refused(write: Write, problems: Problems) -> None:
    write("acme.toml", HEAD + CLIENT + CLIENT.replace("192.0.2.1", "10.0.0.0/24") + GROUP_REALM)

    assert problems() == [
        'acme.toml: client[1].address: "10.0.0.0/24" is a range; '
        "a client is one IP address (第5条2)"
    ]


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("10.0.0.1-10.0.0.9", "is a range"),
        ("2001:db8::/64", "is a range"),
        ("nas.example.com", "is not an IP address"),
        ("10.0.0.256", "is not an IP address"),
        ("0.0.0.0", "is not the address of one host"),
        ("224.0.0.1", "is not the address of one host"),
    ],
)
def test_client_must_be_one_host_address(
    write: Write, problems: Problems, address: str, what: str
) -> None:
    write("c.toml", GROUP_CONTRACT.replace("192.0.2.1", address))

    assert problems() == [
        f'c.toml: client[0].address: "{address}" {what}; a client is one IP address (第5条2)'
    ]


def test_client_address_must_be_a_string(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"192.0.2.1"', "3221225985"))

    assert problems() == [
        "c.toml: client[0].address: must be an IP address as a string, got 3221225985"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + CLIENT + PROXY_REALM.replace("203.0.113.20", "203.0.113.0/28"),
            'realm[0].server[0].address: "203.0.113.0/28" is a range; '
            "an upstream RADIUS server is one IP address (第5条3(5))",
        ),
        (
            HEAD + VPDN_REALM.replace("192.0.2.10", "lns.example"),
            'realm[0].lns[0].address: "lns.example" is not an IP address; '
            "an LNS is one IP address (第5条3(3))",
        ),
    ],
    ids=["server", "lns"],
)
def test_server_and_lns_must_be_one_ip_address(
    write: Write, problems: Problems, text: str, expected: str
) -> None:
    write("c.toml", text)

    assert problems() == [f"c.toml: {expected}"]


def test_carrier_range_is_refused(write: Write, problems: Problems) -> None:
    write("carriers.toml", _carrier("D", "203.0.113.0/24"))

    assert problems() == [
        'carriers.toml: carrier[0].address: "203.0.113.0/24" is a range; '
        "a carrier access server is one IP address"
    ]


# -- 第2条: carrier types ---------------------------------------------------------------


@pytest.mark.parametrize("carrier_type", ["d", "docomo", "A", ""])
def test_carrier_type_must_be_d_k_or_e(write: Write, problems: Problems, carrier_type: str) -> None:
    write("carriers.toml", _carrier(carrier_type, "203.0.113.1"))

    assert problems() == [
        f'carriers.toml: carrier[0].type: must be one of "D", "K", "E", got "{carrier_type}"'
    ]


def test_vpdn_realm_carrier_must_be_d_k_or_e(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + VPDN_REALM.replace('carrier = "K"', 'carrier = "Y"'))

    assert problems() == ['c.toml: realm[0].carrier: must be one of "D", "K", "E", got "Y"']


def test_each_carrier_type_is_read(write: Write, realms: Path) -> None:
    write(
        "carriers.toml",
        _carrier("D", "192.0.2.1") + _carrier("K", "192.0.2.2") + _carrier("E", "192.0.2.3"),
    )

    assert [c.type for c in load_registry(realms).carriers] == [
        CarrierType.DOCOMO,
        CarrierType.KDDI,
        CarrierType.SOFTBANK,
    ]


# -- realm names (第5条3(1)) -------------------------------------------------------------


@pytest.mark.parametrize("name", ["user@c.example", "c example", "c.example\t", "@"])
def test_realm_name_with_at_sign_or_whitespace_is_refused(
    write: Write, problems: Problems, name: str
) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"c.example"', f'"{name}"'.replace("\t", "\\t")))

    [line] = problems()
    assert line.startswith("c.toml: realm[0].name: ")
    assert line.endswith(
        "is not a realm name: a realm is the text after the last '@' of a "
        "user name, so it has no '@' and no spaces"
    )


def test_empty_realm_name_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"c.example"', '""'))

    assert problems() == ["c.toml: realm[0].name: must not be empty"]


def test_realm_name_used_by_two_contracts_is_refused_naming_both_files(
    write: Write, problems: Problems
) -> None:
    write("a.toml", _contract("a", CLIENT, GROUP_REALM))
    write(
        "b.toml",
        _contract(
            "b",
            CLIENT.replace("192.0.2.1", "192.0.2.2"),
            GROUP_REALM.replace("c.example", "C.EXAMPLE"),
        ),
    )

    assert problems() == [
        'b.toml: realm[0].name: "c.example" is already a realm in a.toml (realm[0].name); '
        "a realm belongs to exactly one contract (第5条3(1))"
    ]


def test_realm_name_twice_in_one_contract_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + CLIENT + GROUP_REALM + GROUP_REALM)

    assert problems() == [
        'c.toml: realm[1].name: "c.example" is already a realm in c.toml (realm[0].name); '
        "a realm belongs to exactly one contract (第5条3(1))"
    ]


def test_realm_name_of_a_file_with_other_problems_still_counts_as_taken(
    write: Write, problems: Problems
) -> None:
    write("a.toml", _contract("a", CLIENT, GROUP_REALM, "max_sessions = 0"))
    write("b.toml", _contract("b", VPDN_REALM.replace("v.example", "c.example")))

    assert problems() == [
        "a.toml: realm[0].max_sessions: must be at least 1, got 0",
        'b.toml: realm[0].name: "c.example" is already a realm in a.toml (realm[0].name); '
        "a realm belongs to exactly one contract (第5条3(1))",
    ]


# -- contract ids and NAS addresses ------------------------------------------------------


def test_contract_id_used_twice_is_refused(write: Write, problems: Problems) -> None:
    write("a.toml", GROUP_CONTRACT)
    write("b.toml", _contract("c", VPDN_REALM))

    assert problems() == [
        'b.toml: contract.id: "c" is already the id of the contract in a.toml; '
        "a contract id names one contract"
    ]


@pytest.mark.parametrize(
    ("first", "second", "where"),
    [
        (_contract("a", CLIENT, GROUP_REALM), _contract("b", CLIENT, VPDN_REALM), "client[0]"),
        (_contract("a", CLIENT, GROUP_REALM), _carrier("D", "192.0.2.1"), "carrier[0]"),
        (_carrier("D", "192.0.2.1"), _carrier("K", "192.0.2.1"), "carrier[0]"),
    ],
    ids=["client-vs-client", "client-vs-carrier", "carrier-vs-carrier"],
)
def test_nas_address_registered_twice_is_refused_naming_both_places(
    write: Write, problems: Problems, first: str, second: str, where: str
) -> None:
    write("a.toml", first)
    write("b.toml", second)
    first_place = "client[0]" if "[[client]]" in first else "carrier[0]"

    assert problems() == [
        f"b.toml: {where}.address: 192.0.2.1 is already registered in a.toml "
        f"({first_place}.address); one source address is one NAS, as it selects the shared "
        "secret (RFC 2865 §3)"
    ]


def test_nas_addresses_are_compared_normalised(write: Write, problems: Problems) -> None:
    write("carriers.toml", _carrier("D", "2001:db8::1") + _carrier("E", "2001:DB8:0::0001"))

    assert problems() == [
        "carriers.toml: carrier[1].address: 2001:db8::1 is already registered in carriers.toml "
        "(carrier[0].address); one source address is one NAS, as it selects the shared secret "
        "(RFC 2865 §3)"
    ]


# -- RFC 2868 tags, 第8条 and 第9条 -----------------------------------------------------


def test_vpdn_realm_with_31_lns_is_accepted(write: Write, realms: Path) -> None:
    write("c.toml", HEAD + VPDN_REALM.split("[[realm.lns]]")[0] + _lns(31))

    assert len(load_registry(realms).realms["v.example"].lns) == 31


def test_vpdn_realm_with_32_lns_is_refused_as_rfc_2868_has_31_tags(
    write: Write, problems: Problems
) -> None:
    write("c.toml", HEAD + VPDN_REALM.split("[[realm.lns]]")[0] + _lns(32))

    assert problems() == [
        "c.toml: realm[0].lns: 32 LNS; at most 31 per realm, one RFC 2868 tag (1..31) each "
        "(RFC 2868 §3.1)"
    ]


def test_balance_none_with_several_lns_is_ordered_failover_and_accepted(
    write: Write, realms: Path
) -> None:
    write("c.toml", HEAD + VPDN_REALM.split("[[realm.lns]]")[0] + _lns(3) + "preference = 2")

    realm = load_registry(realms).realms["v.example"]
    assert [(x.address, x.preference) for x in realm.lns] == [
        ("192.0.2.1", 1),
        ("192.0.2.2", 1),
        ("192.0.2.3", 2),
    ]


def test_contract_that_ended_in_the_past_still_loads(write: Write, realms: Path) -> None:
    # 第9条: after its end date the realms are answered with Access-Reject; not a load error.
    write("c.toml", GROUP_CONTRACT.replace('name = "C"', 'name = "C"\nends = 2000-01-01'))

    contract = load_registry(realms).contracts["c"]
    assert contract.ends == dt.date(2000, 1, 1)
    assert not contract.active_on(dt.date(2000, 1, 2))
