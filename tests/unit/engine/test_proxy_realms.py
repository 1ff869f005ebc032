"""The engine's side of proxy realms (issue 14): their accounting is recorded as a group realm's,
their accepts take session slots, the quota holds, and every outcome is logged with its server."""

from __future__ import annotations

import os
import time

from radiusgw.config.model import Contract, Mode, Nas, Realm, Registry, UpstreamServer
from radiusgw.domain import AdmissionResult
from radiusgw.engine import Admission, Engine, ProxyAccounting, ProxyAuth
from radiusgw.engine.core import QUOTA_REACHED
from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import decode, encode_attributes, integer
from tests.unit.engine.helpers import Accounts, ListLog, engine, registry

NOW = time.time()
NAS_ADDR = ("127.0.0.12", 40002)
SECRET = b"proxy-secret"
SERVER = ("203.0.113.20", 1812)
REALM = "proxy.example"


def proxy_registry(**limits: int) -> Registry:
    base = registry()
    realm = Realm(
        REALM,
        Mode.PROXY,
        "globex-proxy",
        "proxy.toml",
        servers=(UpstreamServer(SERVER[0], b"upstream"),),
        **limits,
    )
    contract = Contract("globex-proxy", "Globex Proxy", "proxy.toml", realms=(realm,))
    nas = Nas(NAS_ADDR[0], SECRET, True, None, contract_id="globex-proxy")
    return Registry(
        contracts={**base.contracts, contract.id: contract},
        realms={**base.realms, REALM: realm},
        nas={**base.nas, nas.address: nas},
    )


def proxy_engine(*, access_log: bool = False, **limits: int) -> tuple[Engine, ListLog]:
    return engine(Accounts(), registry=proxy_registry(**limits), access_log=access_log)


def access_request(user: str = f"alice@{REALM}") -> bytes:
    auth = os.urandom(16)
    attrs = encode_attributes([(1, user.encode()), (2, crypto.hide_password(b"pw", SECRET, auth))])
    return crypto.sign_request(Code.ACCESS_REQUEST, 7, attrs, SECRET, authenticator=auth)


def forwarded(e: Engine, request: bytes) -> ProxyAuth:
    pending = e.on_auth(request, NAS_ADDR, NOW)
    assert isinstance(pending, ProxyAuth)
    return pending


def upstream_answer(request: bytes, code: Code) -> bytes:
    """What the proxy client hands over: the upstream's answer re-signed for the NAS."""
    return crypto.sign_response(code, request[1], request[4:20], b"", SECRET)


def test_accounting_of_a_proxy_realm_carries_a_record_of_that_realm() -> None:
    e, _ = proxy_engine()
    attrs = [
        (Attr.USER_NAME, f"alice@{REALM}".encode()),
        (Attr.ACCT_STATUS_TYPE, integer(AcctStatusType.START)),
        (Attr.ACCT_SESSION_ID, b"s-1"),
    ]
    raw = crypto.sign_request(
        Code.ACCOUNTING_REQUEST, 3, encode_attributes(attrs), SECRET, message_authenticator=False
    )
    pending = e.on_acct(raw, NAS_ADDR, NOW)
    assert isinstance(pending, ProxyAccounting)
    record = pending.record
    assert (record.realm, record.username, record.session_id) == (REALM, f"alice@{REALM}", "s-1")
    assert record.event is not None and record.packet == raw
    assert (pending.waiting, pending.failed, pending.answer) == (2, False, b"")
    assert e.on_acct(raw, NAS_ADDR, NOW) is None  # a copy waits for the first one's answer


def test_a_proxy_realm_over_its_quota_is_rejected_before_forwarding() -> None:
    e, log = proxy_engine()
    e.quota_reached = frozenset({REALM})
    request = access_request()
    answer = e.on_auth(request, NAS_ADDR, NOW)
    assert isinstance(answer, bytes)
    reply = decode(answer)
    assert reply.code == Code.ACCESS_REJECT
    assert reply.get(Attr.REPLY_MESSAGE) == QUOTA_REACHED.reason.encode()
    assert crypto.response_authenticator_matches(answer, SECRET, request[4:20])
    assert log.events[-1]["event"] == "access-reject" and log.events[-1]["realm"] == REALM


def test_an_upstream_accept_is_relayed_and_logged_only_with_the_access_log() -> None:
    for access_log in (False, True):
        e, log = proxy_engine(access_log=access_log)
        request = access_request()
        reply = upstream_answer(request, Code.ACCESS_ACCEPT)
        assert e.proxied(forwarded(e, request), reply, SERVER) == reply
        assert e.counters.access_accepts == 1
        accepts = [x for x in log.events if x["event"] == "access-accept"]
        if access_log:
            assert accepts == [
                {
                    "level": "info",
                    "event": "access-accept",
                    "client": NAS_ADDR[0],
                    "realm": REALM,
                    "user": f"alice@{REALM}",
                    "upstream": "203.0.113.20:1812",
                }
            ]
        else:
            assert accepts == []
        assert e.on_auth(request, NAS_ADDR, NOW + 1) == reply  # retransmission: from the cache


def test_an_upstream_reject_is_always_logged_with_its_server() -> None:
    e, log = proxy_engine()
    request = access_request()
    reply = upstream_answer(request, Code.ACCESS_REJECT)
    assert e.proxied(forwarded(e, request), reply, ("2001:db8::20", 1812)) == reply
    [rejected] = [x for x in log.events if x["event"] == "access-reject"]
    assert rejected["upstream"] == "[2001:db8::20]:1812" and rejected["realm"] == REALM
    assert e.counters.access_rejects == 1


def test_a_challenge_is_relayed_unlogged() -> None:
    e, log = proxy_engine(access_log=True)
    request = access_request()
    reply = upstream_answer(request, Code.ACCESS_CHALLENGE)
    assert e.proxied(forwarded(e, request), reply, SERVER) == reply
    assert log.events == []


def test_an_upstream_accept_of_a_limited_realm_waits_for_admission() -> None:
    e, log = proxy_engine(access_log=True, max_sessions=1, max_sessions_per_account=1)
    request = access_request()
    reply = upstream_answer(request, Code.ACCESS_ACCEPT)
    pending = e.proxied(forwarded(e, request), reply, SERVER)
    assert isinstance(pending, Admission)
    assert (pending.request.realm, pending.request.username) == (REALM, "alice")
    assert (pending.request.realm_max, pending.request.account_max) == (1, 1)
    assert pending.accept == reply and pending.upstream == SERVER
    assert e.admitted(pending, AdmissionResult(True, reservation_id=1)) == reply
    [accepted] = [x for x in log.events if x["event"] == "access-accept"]
    assert accepted["upstream"] == "203.0.113.20:1812"


def test_a_refused_slot_turns_the_upstream_accept_into_our_reject() -> None:
    e, _ = proxy_engine(max_sessions=1)
    request = access_request()
    pending = e.proxied(forwarded(e, request), upstream_answer(request, Code.ACCESS_ACCEPT), SERVER)
    assert isinstance(pending, Admission)
    reason = "realm session limit 1 reached (max_sessions)"
    answer = e.admitted(pending, AdmissionResult(False, reason))
    reply = decode(answer)
    assert reply.code == Code.ACCESS_REJECT and reply.get(Attr.REPLY_MESSAGE) == reason.encode()
    assert crypto.response_authenticator_matches(answer, SECRET, request[4:20])
    assert e.on_auth(request, NAS_ADDR, NOW + 1) == answer
