"""radiusgw.router: user@realm to a realm, and who may ask for it (tenant isolation)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from radiusgw.config.model import Mode
from radiusgw.router import Refusal, Router, realm_name
from tests.unit.engine.helpers import ACME_NAS, GLOBEX_NAS, LAC_D, LAC_K, registry

NOW = time.time()
REG = registry()
NAS = REG.nas


def test_realm_is_the_text_after_the_last_at_lower_cased() -> None:
    assert realm_name("a@b@ACME.Example") == "acme.example"
    assert realm_name("alice") is None and realm_name("alice@") is None


@pytest.mark.parametrize(
    ("nas", "user", "mode"),
    [
        (ACME_NAS, "alice@acme.example", Mode.GROUP),
        (GLOBEX_NAS, "bob@GLOBEX.example", Mode.GROUP),
        (LAC_D, "taro@vpn.initech.example", Mode.VPDN),
    ],
)
def test_a_nas_gets_the_realms_it_may_use(nas: tuple[str, int], user: str, mode: Mode) -> None:
    realm = Router(REG).route(NAS[nas[0]], user, NOW)
    assert not isinstance(realm, Refusal) and realm.mode is mode


@pytest.mark.parametrize(
    ("nas", "user", "detail"),
    [
        (ACME_NAS, "bob@globex.example", "a realm of another contract"),
        (ACME_NAS, "taro@vpn.initech.example", "a realm of another contract"),
        (LAC_D, "alice@acme.example", "a group realm, asked by a carrier"),
        (
            LAC_K,
            "taro@vpn.initech.example",
            "a VPDN realm of carrier type D, asked by carrier type K",
        ),
    ],
)
def test_a_realm_the_nas_may_not_use_is_refused_as_an_unknown_one(
    nas: tuple[str, int], user: str, detail: str
) -> None:
    """Issue 14.18: the reason (the reject's Reply-Message) is the same as for a realm that
    does not exist; only ``detail`` (logged, never sent) says why."""
    router = Router(REG)
    refused = router.route(NAS[nas[0]], user, NOW)
    unknown = router.route(NAS[nas[0]], "x@no-such-realm.example", NOW)
    assert isinstance(refused, Refusal) and isinstance(unknown, Refusal)
    assert refused.reason == unknown.reason == "unknown realm"
    assert refused.detail == detail and unknown.detail is None


def test_a_customers_own_vpdn_realm_is_refused_as_unknown_too() -> None:
    from dataclasses import replace

    from radiusgw.config.model import CarrierType, Lns, Realm

    own = Realm(
        "vpn.acme.example",
        Mode.VPDN,
        "acme",
        "acme.toml",
        carrier=CarrierType.DOCOMO,
        lns=(Lns("192.0.2.30", b"t"),),
    )
    reg = replace(REG, realms={**REG.realms, own.name: own})
    refused = Router(reg).route(NAS[ACME_NAS[0]], "alice@vpn.acme.example", NOW)
    assert refused == Refusal(
        "unknown realm", "vpn.acme.example", "a VPDN realm: answered to carrier access servers only"
    )


def test_an_ended_contract_is_refused_after_its_last_day() -> None:
    yesterday = dt.date.today() - dt.timedelta(days=1)
    router = Router(registry(acme_ends=yesterday))
    assert router.route(NAS[ACME_NAS[0]], "alice@acme.example", NOW) == Refusal(
        "contract ended", "acme.example"
    )


def test_no_realm_in_the_user_name_is_refused() -> None:
    refused = Router(REG).route(NAS[ACME_NAS[0]], "alice", NOW)
    assert isinstance(refused, Refusal) and refused.reason == "no realm in user name"
