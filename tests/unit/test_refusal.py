"""``radiusgw.refusal``: every refusal of the core is one type, its Reply-Message text unchanged.

The reasons are what a NAS shows its user and what the metrics class rejects by, so their text
is pinned here; the fixed ones are shared constants, never built per request.
"""

from __future__ import annotations

import pytest

from radiusgw.auth.eap import NOT_OFFERED
from radiusgw.auth.method import (
    ACCOUNT_DISABLED,
    BAD_CREDENTIALS,
    DISABLED,
    NO_CREDENTIALS,
    NOTHING_TO_CHECK,
    UNKNOWN_OR_WRONG,
)
from radiusgw.config.model import Lns, Mode, Realm
from radiusgw.engine.core import (
    CALLING_STATION_REFUSED,
    LOCKED,
    NO_CALLING_STATION,
    NO_USER_NAME,
    QUOTA_REACHED,
    SESSION_LIMIT,
    STORE_DOWN,
    UPSTREAM_DOWN,
)
from radiusgw.modes.vpdn import ALL_DOWN, ALL_FULL, Balancer, Health
from radiusgw.refusal import Refusal
from radiusgw.router import NO_REALM
from radiusgw.server.metrics import reason_class

FIXED = [
    (NO_USER_NAME, "no User-Name", "bad_request"),
    (NO_REALM, "no realm in user name", "unknown_realm"),
    (UNKNOWN_OR_WRONG, "unknown user or wrong password", "bad_credentials"),
    (DISABLED, "account disabled", "account_disabled"),
    (NO_CREDENTIALS, "no User-Password, CHAP-Password or MS-CHAP response", "no_credentials"),
    (NOT_OFFERED, "EAP is not offered in this realm", "method_not_offered"),
    (ALL_FULL, "every LNS of the realm is full (max_sessions)", "lns_unavailable"),
    (ALL_DOWN, "every LNS of the realm is down", "lns_unavailable"),
    (QUOTA_REACHED, "monthly traffic quota reached", "quota"),
    (SESSION_LIMIT, "session limit reached", "session_limit"),
    (STORE_DOWN, "session limit cannot be checked", "store_down"),
    (UPSTREAM_DOWN, "customer RADIUS servers unavailable", "upstream_down"),
    (LOCKED, "account locked", "other"),
    (NO_CALLING_STATION, "no Calling-Station-Id", "other"),
    (CALLING_STATION_REFUSED, "calling station not allowed", "other"),
]


@pytest.mark.parametrize(("refusal", "reason", "metric"), FIXED, ids=[r for _, r, _ in FIXED])
def test_a_fixed_refusal_keeps_its_reply_message_and_its_metrics_class(
    refusal: Refusal, reason: str, metric: str
) -> None:
    assert type(refusal) is Refusal
    assert (refusal.reason, refusal.realm, refusal.detail) == (reason, None, None)
    assert reason_class(refusal.reason) == metric


def test_the_auth_verdicts_carry_the_shared_refusals() -> None:
    assert BAD_CREDENTIALS.refusal is UNKNOWN_OR_WRONG
    assert ACCOUNT_DISABLED.refusal is DISABLED
    assert NOTHING_TO_CHECK.refusal is NO_CREDENTIALS


def test_vpdn_answers_with_the_shared_refusal_not_a_new_one() -> None:
    lns = (Lns("192.0.2.30", b"t", max_sessions=1), Lns("192.0.2.31", b"t", max_sessions=1))
    realm = Realm("vpn.example", Mode.VPDN, "c", "c.toml", on_all_down="reject", lns=lns)
    balancer = Balancer()
    assert balancer.offers(realm, {}, lambda _r, _i: 1) is ALL_FULL
    down = {("vpn.example", 0): Health.DOWN, ("vpn.example", 1): Health.DOWN}
    assert balancer.offers(realm, down, lambda _r, _i: 0) is ALL_DOWN
