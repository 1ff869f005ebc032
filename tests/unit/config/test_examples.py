"""The examples load: the repository's realms/ and every realm file shown in docs/operations.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from radiusgw.config import (
    Balance,
    Carrier,
    CarrierType,
    Client,
    Contract,
    Lns,
    Mode,
    Nas,
    PoolPolicy,
    Realm,
    UpstreamServer,
    check_directory,
    load_registry,
)
from tests.unit.config.examples import ACME, CARRIERS, GLOBEX, INITECH
from tests.unit.config.helpers import Write

REPOSITORY_REALMS = Path(__file__).resolve().parents[3] / "realms"


def test_repository_realm_directory_is_valid() -> None:
    assert check_directory(REPOSITORY_REALMS) == []


def test_repository_acme_example_is_a_group_contract_for_127_0_0_1() -> None:
    registry = load_registry(REPOSITORY_REALMS)

    acme = registry.contracts["acme"]
    assert acme.name == "ACME Corporation"
    assert acme.ends == dt.date(2099, 12, 31)
    assert [c.address for c in acme.clients] == ["127.0.0.1"]
    assert acme.clients[0].secret == b"acme-secret"
    assert acme.clients[0].require_message_authenticator is True
    realm = registry.realms["acme.example"]
    assert realm.mode is Mode.GROUP
    assert (realm.max_accounts, realm.max_sessions, realm.max_sessions_per_account) == (
        1000,
        200,
        1,
    )
    assert realm.traffic_quota == 500 * 10**9
    assert registry.nas["127.0.0.1"].contract_id == "acme"


def test_repository_carriers_example_registers_one_lac_per_carrier_type() -> None:
    registry = load_registry(REPOSITORY_REALMS)

    by_address = {c.address: (c.type, c.secret) for c in registry.carriers}
    assert by_address == {
        "127.0.0.2": (CarrierType.DOCOMO, b"docomo-lac-secret"),
        "127.0.0.3": (CarrierType.KDDI, b"kddi-lac-secret"),
        "127.0.0.4": (CarrierType.SOFTBANK, b"softbank-lac-secret"),
    }
    assert registry.nas["127.0.0.3"].carrier is CarrierType.KDDI
    assert registry.nas["127.0.0.3"].contract_id is None


def test_interface_acme_example_loads_to_a_group_contract(write: Write, realms: Path) -> None:
    write("acme.toml", ACME)
    source = str(realms / "acme.toml")

    registry = load_registry(realms)

    client = Client(
        address="198.51.100.7",
        secret=b"s3cret",
        contract_id="acme",
        source=source,
        require_message_authenticator=True,
        rate_limit=500,
        coa_port=3799,
    )
    realm = Realm(
        name="acme.example",
        mode=Mode.GROUP,
        contract_id="acme",
        source=source,
        max_accounts=1000,
        max_sessions=200,
        max_sessions_per_account=1,
        traffic_quota=500_000_000_000,
    )
    assert registry.contracts == {
        "acme": Contract(
            id="acme",
            name="ACME Corporation",
            source=source,
            ends=dt.date(2027, 3, 31),
            clients=(client,),
            realms=(realm,),
        )
    }
    assert registry.realms == {"acme.example": realm}
    assert registry.nas == {
        "198.51.100.7": Nas(
            address="198.51.100.7",
            secret=b"s3cret",
            require_message_authenticator=True,
            rate_limit=500,
            contract_id="acme",
            coa_port=3799,
        )
    }
    assert registry.files == (source,)


def test_interface_globex_example_loads_to_a_proxy_realm(write: Write, realms: Path) -> None:
    write("globex.toml", GLOBEX)

    registry = load_registry(realms)

    assert registry.realms["globex.example"] == Realm(
        name="globex.example",
        mode=Mode.PROXY,
        contract_id="globex",
        source=str(realms / "globex.toml"),
        strip=False,
        pool=PoolPolicy.FAILOVER,
        servers=(UpstreamServer(address="203.0.113.20", secret=b"upstream-secret"),),
    )
    assert registry.nas["198.51.100.9"].secret == b"other"


def test_interface_initech_example_loads_to_a_vpdn_realm_without_clients(
    write: Write, realms: Path
) -> None:
    write("initech.toml", INITECH)

    registry = load_registry(realms)

    assert registry.contracts["initech"].clients == ()
    assert registry.realms["vpn.initech.example"] == Realm(
        name="vpn.initech.example",
        mode=Mode.VPDN,
        contract_id="initech",
        source=str(realms / "initech.toml"),
        carrier=CarrierType.DOCOMO,
        balance=Balance.ROUND_ROBIN,
        authenticate=False,
        probe_interval=10.0,
        lns=(Lns(address="192.0.2.10", secret=b"tunnel-secret", max_sessions=5000),),
    )
    assert registry.nas == {}


def test_interface_carriers_example_registers_a_carrier_nas(write: Write, realms: Path) -> None:
    write("carriers.toml", CARRIERS)

    registry = load_registry(realms)

    assert registry.contracts == {}
    assert registry.carriers == (
        Carrier(
            type=CarrierType.DOCOMO,
            address="203.0.113.1",
            secret=b"docomo-lac-secret",
            source=str(realms / "carriers.toml"),
        ),
    )
    assert registry.nas == {
        "203.0.113.1": Nas(
            address="203.0.113.1",
            secret=b"docomo-lac-secret",
            require_message_authenticator=True,
            rate_limit=None,
            carrier=CarrierType.DOCOMO,
        )
    }


def test_interface_examples_load_together_into_one_registry(write: Write, realms: Path) -> None:
    for name, text in [
        ("initech.toml", INITECH),
        ("acme.toml", ACME),
        ("carriers.toml", CARRIERS),
        ("globex.toml", GLOBEX),
    ]:
        write(name, text)

    registry = load_registry(realms)

    assert sorted(registry.contracts) == ["acme", "globex", "initech"]
    assert sorted(registry.realms) == ["acme.example", "globex.example", "vpn.initech.example"]
    assert sorted(registry.nas) == ["198.51.100.7", "198.51.100.9", "203.0.113.1"]
    # read in name order, whatever order they were written in
    assert [Path(f).name for f in registry.files] == [
        "acme.toml",
        "carriers.toml",
        "globex.toml",
        "initech.toml",
    ]
