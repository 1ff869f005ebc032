"""The realm-file schema: keys, types, defaults, secrets, file kinds and the directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.config import Balance, PoolPolicy, check_directory, load_registry
from radiusgw.errors import ConfigError
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

PROXY_CONTRACT = HEAD + CLIENT + PROXY_REALM
VPDN_CONTRACT = HEAD + VPDN_REALM
LNS = "[[realm.lns]]\naddress = '192.0.2.11'\nsecret = 's'\n"


def _in_realm(text: str, mode: str, extra: str) -> str:
    """``text`` with ``extra`` lines added to its realm, right after the realm's mode."""
    return text.replace(f'mode = "{mode}"', f'mode = "{mode}"\n{extra}')


# -- unknown keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 1\n" + GROUP_CONTRACT, "c.toml: colour: unknown key"),
        (HEAD + "owner = 'x'\n" + CLIENT + GROUP_REALM, "c.toml: contract.owner: unknown key"),
        (HEAD + CLIENT + "vendor = 'x'\n" + GROUP_REALM, "c.toml: client[0].vendor: unknown key"),
        (GROUP_CONTRACT + "colour = 1", "c.toml: realm[0].colour: unknown key"),
        (PROXY_CONTRACT + "timeout = 3", "c.toml: realm[0].server[0].timeout: unknown key"),
        (VPDN_CONTRACT + "hostname = 'lns1'", "c.toml: realm[0].lns[0].hostname: unknown key"),
    ],
    ids=["top-level", "contract", "client", "realm", "server", "lns"],
)
def test_unknown_key_is_refused_with_its_dotted_path(
    write: Write, problems: Problems, text: str, expected: str
) -> None:
    write("c.toml", text)

    assert problems() == [expected]


def test_unknown_key_of_a_carrier_is_refused(write: Write, problems: Problems) -> None:
    write("carriers.toml", "[[carrier]]\ntype = 'E'\naddress = '192.0.2.1'\nsecret = 's'\nx = 1")

    assert problems() == ["carriers.toml: carrier[0].x: unknown key"]


def test_unknown_key_suggests_the_known_key_it_resembles(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace("max_accounts", "max_acounts"))

    assert 'c.toml: realm[0].max_acounts: unknown key (did you mean "max_accounts"?)' in problems()


@pytest.mark.parametrize(
    ("text", "key", "mode", "belongs"),
    [
        (GROUP_CONTRACT + LNS, "lns", "group", "vpdn"),
        (GROUP_CONTRACT + "strip = false", "strip", "group", "proxy"),
        (_in_realm(PROXY_CONTRACT, "proxy", "carrier = 'D'"), "carrier", "proxy", "vpdn"),
        (
            _in_realm(PROXY_CONTRACT, "proxy", "max_accounts = 5"),
            "max_accounts",
            "proxy",
            "group and vpdn",
        ),
        (_in_realm(VPDN_CONTRACT, "vpdn", "pool = 'failover'"), "pool", "vpdn", "proxy"),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "on_upstream_down = 'drop'"),
            "on_upstream_down",
            "vpdn",
            "proxy",
        ),
    ],
    ids=[
        "lns-in-group",
        "strip-in-group",
        "carrier-in-proxy",
        "accounts-in-proxy",
        "pool-in-vpdn",
        "down-in-vpdn",
    ],
)
def test_key_of_another_mode_is_refused_naming_the_mode_it_belongs_to(
    write: Write, problems: Problems, text: str, key: str, mode: str, belongs: str
) -> None:
    write("c.toml", text)

    assert problems() == [
        f"c.toml: realm[0].{key}: not a key of a {mode} realm (it belongs to {belongs} realms)"
    ]


def test_realm_with_unreadable_mode_reports_unknown_keys_but_not_keys_of_modes(
    write: Write, problems: Problems
) -> None:
    write("c.toml", HEAD + CLIENT + GROUP_REALM.replace('"group"', '"grup"') + "strip = 1\nhue = 1")

    assert problems() == [
        'c.toml: realm[0].mode: must be one of "group", "proxy", "vpdn", got "grup"',
        "c.toml: realm[0].hue: unknown key",
    ]


# -- types and ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GROUP_CONTRACT.replace('name = "C"', "name = 5"),
            "contract.name: must be a string, got 5",
        ),
        (
            GROUP_CONTRACT.replace('name = "C"', 'name = ""'),
            "contract.name: must not be empty",
        ),
        (
            HEAD + CLIENT + "require_message_authenticator = 'yes'\n" + GROUP_REALM,
            'client[0].require_message_authenticator: must be true or false, got "yes"',
        ),
        (
            HEAD + CLIENT + "rate_limit = true\n" + GROUP_REALM,
            "client[0].rate_limit: must be an integer, got true",
        ),
        (
            HEAD + CLIENT + "rate_limit = 2.5\n" + GROUP_REALM,
            "client[0].rate_limit: must be an integer, got 2.5",
        ),
        (
            HEAD + CLIENT + "coa_port = 70000\n" + GROUP_REALM,
            "client[0].coa_port: must be between 1 and 65535, got 70000",
        ),
        (
            GROUP_CONTRACT.replace("max_accounts = 10", "max_accounts = -1"),
            "realm[0].max_accounts: must be at least 0, got -1",
        ),
        (
            GROUP_CONTRACT + "max_sessions = 0",
            "realm[0].max_sessions: must be at least 1, got 0",
        ),
        (
            GROUP_CONTRACT + "max_sessions_per_account = '1'",
            'realm[0].max_sessions_per_account: must be an integer, got "1"',
        ),
        (
            GROUP_CONTRACT.replace('name = "c.example"', "name = ['c.example']"),
            "realm[0].name: must be a string, got an array",
        ),
        (
            _in_realm(PROXY_CONTRACT, "proxy", "strip = 1"),
            "realm[0].strip: must be true or false, got 1",
        ),
        (
            _in_realm(PROXY_CONTRACT, "proxy", "pool = 'random'"),
            'realm[0].pool: must be one of "failover", "load-balance", got "random"',
        ),
        (
            GROUP_CONTRACT.replace("max_accounts", "on_store_down = 'drop'\nmax_accounts"),
            'realm[0].on_store_down: must be one of "admit", "reject", got "drop"',
        ),
        (
            _in_realm(PROXY_CONTRACT, "proxy", "on_upstream_down = 'ignore'"),
            'realm[0].on_upstream_down: must be one of "drop", "reject", got "ignore"',
        ),
        (
            PROXY_CONTRACT + "auth_port = '1812'",
            'realm[0].server[0].auth_port: must be an integer, got "1812"',
        ),
        (
            PROXY_CONTRACT + "acct_port = 0",
            "realm[0].server[0].acct_port: must be between 1 and 65535, got 0",
        ),
        (
            PROXY_CONTRACT + "response_window = 0",
            "realm[0].server[0].response_window: must be more than 0, got 0",
        ),
        (
            PROXY_CONTRACT + "revive_interval = 'soon'",
            'realm[0].server[0].revive_interval: must be a number, got "soon"',
        ),
        (
            PROXY_CONTRACT + "retries = -1",
            "realm[0].server[0].retries: must be at least 0, got -1",
        ),
        (
            PROXY_CONTRACT + "status_check = 'ping'",
            'realm[0].server[0].status_check: must be one of "status-server", "request", "none", '
            'got "ping"',
        ),
        (
            PROXY_CONTRACT + "require_message_authenticator = 'no'",
            'realm[0].server[0].require_message_authenticator: must be true or false, got "no"',
        ),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "balance = 'random'"),
            'realm[0].balance: must be one of "none", "lac", "round-robin", "weighted", '
            '"least-sessions", got "random"',
        ),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "probe_interval = -1"),
            "realm[0].probe_interval: must be at least 0, got -1",
        ),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "probe_interval = nan"),
            "realm[0].probe_interval: must be a number, got nan",
        ),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "authenticate = 'no'"),
            'realm[0].authenticate: must be true or false, got "no"',
        ),
        (
            _in_realm(VPDN_CONTRACT, "vpdn", "on_all_down = 'drop'"),
            'realm[0].on_all_down: must be one of "answer", "reject", got "drop"',
        ),
        (
            VPDN_CONTRACT + "weight = 0",
            "realm[0].lns[0].weight: must be at least 1, got 0",
        ),
        (
            VPDN_CONTRACT + "port = 65536",
            "realm[0].lns[0].port: must be between 1 and 65535, got 65536",
        ),
        (
            VPDN_CONTRACT + "preference = 16777216",
            "realm[0].lns[0].preference: must be between 0 and 16777215, got 16777216",
        ),
        (
            VPDN_CONTRACT + "max_sessions = 0",
            "realm[0].lns[0].max_sessions: must be at least 1, got 0",
        ),
        (
            VPDN_CONTRACT + "client_auth_id = ''",
            "realm[0].lns[0].client_auth_id: must not be empty",
        ),
        (
            VPDN_CONTRACT + f"assignment_id = '{'a' * 253}'",
            "realm[0].lns[0].assignment_id: is 253 octets long; at most 252",
        ),
    ],
)
def test_wrong_type_or_range_is_refused_naming_the_key(
    write: Write, problems: Problems, text: str, expected: str
) -> None:
    write("c.toml", text)

    assert problems() == [f"c.toml: {expected}"]


def test_ends_must_be_a_toml_date_not_a_string(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('name = "C"', 'name = "C"\nends = "2027-03-31"'))

    assert problems() == [
        'c.toml: contract.ends: must be a TOML date like 2027-03-31 (no quotes), got "2027-03-31"'
    ]


def test_ends_must_be_a_date_not_a_datetime(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('name = "C"', 'name = "C"\nends = 2027-03-31T00:00:00'))

    assert problems() == [
        "c.toml: contract.ends: must be a TOML date like 2027-03-31 (no quotes), "
        "got a datetime 2027-03-31T00:00:00"
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GROUP_CONTRACT.replace('id = "c"', ""), "contract.id"),
        (GROUP_CONTRACT.replace('name = "C"', ""), "contract.name"),
        (GROUP_CONTRACT.replace('address = "192.0.2.1"', ""), "client[0].address"),
        (GROUP_CONTRACT.replace('name = "c.example"', ""), "realm[0].name"),
        (GROUP_CONTRACT.replace('mode = "group"', ""), "realm[0].mode"),
        (PROXY_CONTRACT.replace('address = "203.0.113.20"', ""), "realm[0].server[0].address"),
        (VPDN_CONTRACT.replace('address = "192.0.2.10"', ""), "realm[0].lns[0].address"),
    ],
)
def test_missing_required_key_is_refused_naming_it(
    write: Write, problems: Problems, text: str, key: str
) -> None:
    write("c.toml", text)

    assert problems() == [f"c.toml: {key}: required key is missing"]


def test_contract_id_with_spaces_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('id = "c"', 'id = "a c"'))

    assert problems() == ['c.toml: contract.id: "a c" is not a contract id: it has spaces']


# -- defaults and the extra keys of the model --------------------------------------------


def test_omitted_keys_take_the_interface_defaults(write: Write, realms: Path) -> None:
    write("g.toml", GROUP_CONTRACT)
    write(
        "p.toml", PROXY_CONTRACT.replace('id = "c"', 'id = "p"').replace("192.0.2.1", "192.0.2.2")
    )
    write("v.toml", VPDN_CONTRACT.replace('id = "c"', 'id = "v"'))

    registry = load_registry(realms)

    client = registry.contracts["c"].clients[0]
    assert (client.require_message_authenticator, client.rate_limit, client.coa_port) == (
        True,
        None,
        None,
    )
    proxy = registry.realms["p.example"]
    assert (proxy.strip, proxy.pool, proxy.on_upstream_down) == (True, PoolPolicy.FAILOVER, "drop")
    assert registry.realms["c.example"].on_store_down == proxy.on_store_down == "admit"
    server = proxy.servers[0]
    assert (server.auth_port, server.acct_port, server.status_check) == (
        1812,
        1813,
        "status-server",
    )
    assert (server.response_window, server.retries, server.revive_interval) == (1.0, 2, 5.0)
    assert server.require_message_authenticator is True
    vpdn = registry.realms["v.example"]
    assert (vpdn.balance, vpdn.authenticate, vpdn.probe_interval) == (Balance.NONE, False, 10.0)
    assert (vpdn.on_all_down, vpdn.max_accounts) == ("answer", None)
    lns = vpdn.lns[0]
    assert (lns.port, lns.preference, lns.weight, lns.max_sessions) == (1701, 1, 1, None)
    assert (lns.client_auth_id, lns.server_auth_id, lns.assignment_id) == (None, None, None)


def test_extra_policy_and_timer_keys_are_read(write: Write, realms: Path) -> None:
    proxy = _in_realm(PROXY_CONTRACT, "proxy", "on_upstream_down = 'reject'\npool = 'load-balance'")
    write(
        "p.toml",
        proxy
        + "response_window = 0.5\nretries = 0\nrevive_interval = 30\nstatus_check = 'request'"
        + "\nrequire_message_authenticator = false",
    )
    vpdn = _in_realm(
        VPDN_CONTRACT.replace('id = "c"', 'id = "v"'),
        "vpdn",
        "on_all_down = 'reject'\nauthenticate = true\nmax_accounts = 0\nprobe_interval = 0",
    )
    write(
        "v.toml",
        vpdn + "client_auth_id = 'lac'\nserver_auth_id = 'lns'\nassignment_id = 'tunnel-1'",
    )

    registry = load_registry(realms)

    realm = registry.realms["p.example"]
    assert (realm.on_upstream_down, realm.pool) == ("reject", PoolPolicy.LOAD_BALANCE)
    server = realm.servers[0]
    assert (server.response_window, server.retries, server.revive_interval) == (0.5, 0, 30.0)
    assert server.status_check == "request"
    assert server.require_message_authenticator is False
    vpdn_realm = registry.realms["v.example"]
    assert (vpdn_realm.on_all_down, vpdn_realm.authenticate) == ("reject", True)
    assert (vpdn_realm.max_accounts, vpdn_realm.probe_interval) == (0, 0.0)
    lns = vpdn_realm.lns[0]
    assert (lns.client_auth_id, lns.server_auth_id, lns.assignment_id) == ("lac", "lns", "tunnel-1")


def test_vpdn_max_accounts_without_authenticate_is_refused(
    write: Write, problems: Problems
) -> None:
    write("c.toml", _in_realm(VPDN_CONTRACT, "vpdn", "max_accounts = 5"))

    assert problems() == [
        "c.toml: realm[0].max_accounts: applies only with authenticate = true: "
        "without it the realm has no accounts"
    ]


def test_realm_name_is_lower_cased_for_the_index(write: Write, realms: Path) -> None:
    write("c.toml", GROUP_CONTRACT.replace("c.example", "C.Example"))

    registry = load_registry(realms)

    assert list(registry.realms) == ["c.example"]
    assert registry.realms["c.example"].name == "c.example"


def test_addresses_are_stored_normalised(write: Write, realms: Path) -> None:
    text = PROXY_CONTRACT.replace("192.0.2.1", "2001:DB8:0:0::1").replace(
        "203.0.113.20", "2001:db8::0020"
    )
    write("c.toml", text)

    registry = load_registry(realms)

    assert list(registry.nas) == ["2001:db8::1"]
    assert registry.realms["p.example"].servers[0].address == "2001:db8::20"


@pytest.mark.parametrize(
    ("quota", "octets"),
    [
        ('"500GB"', 500 * 1000**3),
        ('"1.5TB"', 1_500_000_000_000),
        ('"750MiB"', 750 * 1024**2),
        ('"1000000"', 1_000_000),
        ("1000000", 1_000_000),
        ('"2 KiB"', 2048),
        ('"10k"', 10_000),
        ('"1gb"', 1000**3),
        ('"3GiB"', 3 * 1024**3),
        ('"1TiB"', 1024**4),
    ],
)
def test_traffic_quota_units_become_octets(
    write: Write, realms: Path, quota: str, octets: int
) -> None:
    write("c.toml", GROUP_CONTRACT + f"traffic_quota = {quota}")

    assert load_registry(realms).realms["c.example"].traffic_quota == octets


@pytest.mark.parametrize("quota", ['"500 GBs"', '"-1GB"', '"1.0001KB"', "true", '"GB"', '"1e9"'])
def test_traffic_quota_that_is_not_a_size_is_refused(
    write: Write, problems: Problems, quota: str
) -> None:
    write("c.toml", GROUP_CONTRACT + f"traffic_quota = {quota}")

    [line] = problems()
    assert line.startswith(f"c.toml: realm[0].traffic_quota: {quota} is not a size; write e.g.")


@pytest.mark.parametrize("quota", ['"0GB"', "0"])
def test_traffic_quota_of_zero_is_refused(write: Write, problems: Problems, quota: str) -> None:
    write("c.toml", GROUP_CONTRACT + f"traffic_quota = {quota}")

    assert problems() == [
        f"c.toml: realm[0].traffic_quota: must be more than 0 octets, got {quota} "
        "(leave it out for no quota)"
    ]


# -- secrets -----------------------------------------------------------------------------


def test_secret_file_is_read_relative_to_the_realm_file_without_trailing_newline(
    write: Write, realms: Path
) -> None:
    (realms / "secrets").mkdir()
    (realms / "secrets" / "c.secret").write_bytes(b"from-a-file\n")
    write(
        "c.toml",
        GROUP_CONTRACT.replace('secret = "client-secret"', 'secret_file = "secrets/c.secret"'),
    )

    assert load_registry(realms).nas["192.0.2.1"].secret == b"from-a-file"


def test_secret_file_that_cannot_be_read_is_refused_naming_the_key(
    write: Write, problems: Problems
) -> None:
    write("c.toml", GROUP_CONTRACT.replace('secret = "client-secret"', 'secret_file = "absent"'))

    assert problems() == [
        "c.toml: client[0].secret_file: cannot read absent: No such file or directory"
    ]


def test_secret_and_secret_file_together_are_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + CLIENT + "secret_file = 'x'\n" + GROUP_REALM)

    assert problems() == [
        "c.toml: client[0].secret_file: give either secret or secret_file, not both"
    ]


def test_missing_secret_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", PROXY_CONTRACT.replace('secret = "upstream-secret"', ""))

    assert problems() == [
        "c.toml: realm[0].server[0].secret: required key is missing "
        "(give secret, or secret_file to read it from a file)"
    ]


def test_empty_inline_secret_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"client-secret"', '""'))

    assert problems() == ["c.toml: client[0].secret: the secret is empty"]


def test_secret_file_holding_only_a_newline_is_refused(
    write: Write, problems: Problems, realms: Path
) -> None:
    (realms / "empty.secret").write_bytes(b"\n")
    write(
        "c.toml", VPDN_CONTRACT.replace('secret = "tunnel-secret"', 'secret_file = "empty.secret"')
    )

    assert problems() == ["c.toml: realm[0].lns[0].secret_file: the secret is empty"]


def test_secret_of_the_wrong_type_is_refused_without_echoing_it(
    write: Write, problems: Problems
) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"client-secret"', "123456789"))

    assert problems() == ["c.toml: client[0].secret: must be a string, got an integer"]


def test_secret_is_stored_as_utf8_bytes(write: Write, realms: Path) -> None:
    write("c.toml", GROUP_CONTRACT.replace('"client-secret"', '"秘密"'))

    assert load_registry(realms).nas["192.0.2.1"].secret == "秘密".encode()


def test_lns_secret_must_fit_one_tunnel_password_attribute(
    write: Write, problems: Problems
) -> None:
    write("c.toml", VPDN_CONTRACT.replace("tunnel-secret", "x" * 240))

    assert problems() == [
        "c.toml: realm[0].lns[0].secret: the secret is 240 octets long; at most 239, "
        "to fit one Tunnel-Password attribute (RFC 2868 §3.5)"
    ]


def test_lns_secret_of_239_octets_is_accepted(write: Write, realms: Path) -> None:
    write("c.toml", VPDN_CONTRACT.replace("tunnel-secret", "x" * 239))

    assert load_registry(realms).realms["v.example"].lns[0].secret == b"x" * 239


# -- several servers and LNS -------------------------------------------------------------


def test_same_lns_address_and_port_twice_in_a_realm_is_refused(
    write: Write, problems: Problems
) -> None:
    write("c.toml", VPDN_CONTRACT + LNS.replace("192.0.2.11", "192.0.2.10"))

    assert problems() == [
        "c.toml: realm[0].lns[1].address: 192.0.2.10 port 1701 is already realm[0].lns[0]; "
        "list each once"
    ]


def test_same_lns_address_on_another_port_is_accepted(write: Write, realms: Path) -> None:
    write("c.toml", VPDN_CONTRACT + LNS.replace("192.0.2.11", "192.0.2.10") + "port = 1702")

    assert [x.port for x in load_registry(realms).realms["v.example"].lns] == [1701, 1702]


def test_same_upstream_server_twice_in_a_realm_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", PROXY_CONTRACT + "[[realm.server]]\naddress = '203.0.113.20'\nsecret = 'x'")

    assert problems() == [
        "c.toml: realm[0].server[1].address: 203.0.113.20 port 1812 is already "
        "realm[0].server[0]; list each once"
    ]


def test_proxy_realm_without_server_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + CLIENT + "[[realm]]\nname = 'p.example'\nmode = 'proxy'")

    assert problems() == [
        "c.toml: realm[0].server: a proxy realm needs at least one [[realm.server]], "
        "the customer's RADIUS server (第5条3(5))"
    ]


def test_vpdn_realm_without_lns_or_carrier_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + "[[realm]]\nname = 'v.example'\nmode = 'vpdn'")

    assert problems() == [
        'c.toml: realm[0].carrier: required for a vpdn realm: the carrier ("D", "K" or "E") '
        "whose access servers it answers (第2条)",
        "c.toml: realm[0].lns: a vpdn realm needs at least one [[realm.lns]], "
        "the customer's LNS (第5条3(3))",
    ]


def test_group_realm_without_max_accounts_is_refused_citing_article_7(
    write: Write, problems: Problems
) -> None:
    write("c.toml", GROUP_CONTRACT.replace("max_accounts = 10", ""))

    assert problems() == [
        "c.toml: realm[0].max_accounts: required for a group realm: "
        "the number of accounts is a contract term (第7条)"
    ]


# -- file kinds and tables ---------------------------------------------------------------


def test_file_with_both_contract_and_carrier_tables_is_refused(
    write: Write, problems: Problems
) -> None:
    write("c.toml", GROUP_CONTRACT + "[[carrier]]\ntype = 'D'\naddress = '192.0.2.9'\nsecret = 's'")

    assert problems() == [
        "c.toml: has both contract tables ([contract], [[client]], [[realm]]) and [[carrier]] "
        "tables; a realm file is either one contract or carrier access servers"
    ]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "colour = 1\n"])
def test_file_with_neither_contract_nor_carrier_tables_is_refused(
    write: Write, problems: Problems, text: str
) -> None:
    write("c.toml", text)

    assert problems()[0] == (
        "c.toml: has neither a [contract] table nor [[carrier]] tables; "
        "a realm file is either one contract or carrier access servers"
    )


def test_clients_and_realms_without_a_contract_table_are_refused(
    write: Write, problems: Problems
) -> None:
    write("c.toml", CLIENT + GROUP_REALM)

    assert problems() == [
        "c.toml: contract: required key is missing: a file with [[client]] or [[realm]] "
        "tables is one contract and needs a [contract] table"
    ]


def test_contract_as_an_array_of_tables_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", GROUP_CONTRACT.replace("[contract]", "[[contract]]"))

    assert problems() == ["c.toml: contract: must be one table [contract], got an array"]


def test_client_as_a_single_table_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + CLIENT.replace("[[client]]", "[client]") + GROUP_REALM)

    assert problems() == ["c.toml: client: must be an array of tables [[client]], got a table"]


def test_server_as_a_single_table_is_refused(write: Write, problems: Problems) -> None:
    write("c.toml", PROXY_CONTRACT.replace("[[realm.server]]", "[realm.server]"))

    assert problems() == [
        "c.toml: realm[0].server: must be an array of tables [[realm.server]], got a table"
    ]


# -- files and the directory -------------------------------------------------------------


def test_broken_toml_gives_one_line_with_the_file_and_the_parser_message(
    write: Write, problems: Problems
) -> None:
    write("c.toml", "[contract\nid = 'c'")

    assert problems() == [
        "c.toml: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 10)"
    ]


def test_duplicate_toml_key_is_a_toml_error(write: Write, problems: Problems) -> None:
    write("c.toml", HEAD + CLIENT + "address = '192.0.2.2'\n" + GROUP_REALM)

    [line] = problems()
    assert line.startswith("c.toml: not valid TOML: ")


def test_file_that_is_not_utf8_is_refused(realms: Path, problems: Problems) -> None:
    (realms / "c.toml").write_bytes(b'[contract]\nid = "\xff"\n')

    assert problems() == ["c.toml: not valid TOML: the file is not UTF-8 text"]


def test_problems_of_every_file_are_reported_at_once(write: Write, problems: Problems) -> None:
    write("a.toml", "[contract\n")
    write("b.toml", GROUP_CONTRACT.replace('"group"', '"grup"'))
    write(
        "c.toml",
        PROXY_CONTRACT.replace('id = "c"', 'id = "c2"').replace("192.0.2.1", "10.0.0.0/8")
        + "hue = 1",
    )
    write("d.toml", VPDN_CONTRACT.replace('id = "c"', 'id = "d"'))  # valid
    write("e.toml", "[[carrier]]\ntype = 'X'\naddress = '192.0.2.99'\nsecret = 's'")

    assert problems() == [
        "a.toml: not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 10)",
        'b.toml: realm[0].mode: must be one of "group", "proxy", "vpdn", got "grup"',
        'c.toml: client[0].address: "10.0.0.0/8" is a range; a client is one IP address (第5条2)',
        "c.toml: realm[0].server[0].hue: unknown key",
        'e.toml: carrier[0].type: must be one of "D", "K", "E", got "X"',
    ]


def test_load_registry_raises_config_error_with_every_problem(write: Write, realms: Path) -> None:
    write("a.toml", GROUP_CONTRACT.replace('"group"', '"grup"'))
    write("b.toml", "[[carrier]]\ntype = 'X'\naddress = '192.0.2.99'\nsecret = 's'")

    with pytest.raises(ConfigError) as raised:
        load_registry(realms)

    assert raised.value.problems == check_directory(realms)
    assert len(raised.value.problems) == 2
    assert str(raised.value) == "\n".join(raised.value.problems)


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_registry(tmp_path / "nowhere")

    assert raised.value.problems == [f"{tmp_path}/nowhere: the realm directory does not exist"]


def test_file_given_as_the_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text("")

    assert check_directory(tmp_path / "acme.toml") == [
        f"{tmp_path}/acme.toml: the realm directory is not a directory"
    ]


def test_empty_directory_is_a_config_error(realms: Path) -> None:
    (realms / "README.txt").write_text("not a realm file")

    assert check_directory(realms) == [
        f"{realms}: the realm directory holds no realm files (*.toml)"
    ]


def test_only_visible_toml_files_directly_in_the_directory_are_read(
    write: Write, realms: Path
) -> None:
    write("c.toml", GROUP_CONTRACT)
    write(".c.toml", "[broken")  # an editor's lock or swap file
    write("c.toml.orig", "[broken")
    (realms / "old").mkdir()
    write("old/c.toml", "[broken")

    assert load_registry(realms).files == (str(realms / "c.toml"),)


def test_directory_may_be_given_as_text(write: Write, realms: Path) -> None:
    write("c.toml", GROUP_CONTRACT)

    assert list(load_registry(str(realms)).contracts) == ["c"]
