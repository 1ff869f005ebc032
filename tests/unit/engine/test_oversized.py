"""Issue 14.11: an answer that cannot fit with every Proxy-State echoed is not sent, and counted
as such: not as an accept or a reject, and not remembered as the request's answer."""

from __future__ import annotations

import os
from dataclasses import replace

from radiusgw.config.model import Registry
from radiusgw.domain import AdmissionResult
from radiusgw.engine import AccountingAnswer, Admission
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import MAX_LENGTH, decode, encode_attributes
from tests.unit.engine.helpers import ACME_NAS, Accounts, engine, padding, registry
from tests.unit.engine.test_engine import ALICE, NOW, answer_of, pap_request


def padded_request(user: str, secret: bytes, *, to: int = MAX_LENGTH, ma: bool = True) -> bytes:
    base = len(pap_request(user, b"wonderland", secret, ma=ma))
    req = pap_request(user, b"wonderland", secret, ma=ma, extra=padding(to - base))
    assert len(req) == to
    return req


# Reply attributes of 74 octets: its accept is longer than its request, which loses User-Name,
# User-Password and Message-Authenticator (56 octets) and gains these and a new Message-Auth.
CLASSY = replace(ALICE, class_=b"c" * 60)


def test_an_accept_too_long_for_its_proxy_state_is_not_sent_and_counted() -> None:
    eng, log = engine(Accounts(CLASSY), access_log=True)
    req = padded_request("alice@acme.example", b"acme-secret")
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    assert eng.on_auth(req, ACME_NAS, NOW + 1) is None  # the retry: decided anew, not replayed
    c = eng.counters
    assert c.dropped_oversized_answer == 2 and c.access_requests == 2
    assert c.access_accepts == c.access_rejects == c.duplicates == 0
    assert not [e for e in log.events if e["event"] in ("access-accept", "access-reject")]
    dropped = [e for e in log.events if e["event"] == "dropped"]
    octets = MAX_LENGTH - 56 + 74 + 18
    assert dropped[0]["reason"] == (
        f"answer of {octets} octets with the request's Proxy-State exceeds 4096"
    )


# From a legacy NAS (no Message-Authenticator) a request for "a@b" has 23 octets besides its
# Proxy-State; its reject has 33 (Reply-Message "unknown realm" and a Message-Authenticator).
LEGACY = registry(require_ma=False)


def test_a_reject_too_long_for_its_proxy_state_is_not_sent_and_counted() -> None:
    eng, log = engine(Accounts(ALICE), registry=LEGACY)
    req = padded_request("a@b", b"acme-secret", ma=False)
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    assert eng.counters.dropped_oversized_answer == 1 and eng.counters.access_rejects == 0
    assert not [e for e in log.events if e["event"] == "access-reject"]


def test_an_answer_of_exactly_4096_octets_is_sent_with_every_proxy_state_in_order() -> None:
    eng, _ = engine(Accounts(ALICE), registry=LEGACY)
    req = padded_request("a@b", b"acme-secret", to=MAX_LENGTH - 10, ma=False)
    reply = eng.on_auth(req, ACME_NAS, NOW)
    assert isinstance(reply, bytes) and len(reply) == MAX_LENGTH
    code, attrs = answer_of(reply, req, b"acme-secret")
    assert code == Code.ACCESS_REJECT
    assert attrs[Attr.PROXY_STATE] == decode(req).get_all(Attr.PROXY_STATE)


def with_session_limit() -> Registry:
    reg = registry()
    acme = replace(reg.realms["acme.example"], max_sessions=5)
    return replace(reg, realms={**reg.realms, acme.name: acme})


def test_no_session_slot_is_asked_for_an_accept_that_cannot_be_sent() -> None:
    eng, _ = engine(Accounts(CLASSY), registry=with_session_limit())
    req = padded_request("alice@acme.example", b"acme-secret")
    assert eng.on_auth(req, ACME_NAS, NOW) is None  # not an Admission
    assert eng.counters.dropped_oversized_answer == 1


def test_a_reject_after_admission_too_long_to_send_leaves_no_answer_behind() -> None:
    eng, log = engine(Accounts(ALICE), registry=with_session_limit())
    # The accept (12 octets of reply attributes) fits; a reject saying a 200-octet reason not.
    req = padded_request("alice@acme.example", b"acme-secret", to=MAX_LENGTH - 40)
    pending = eng.on_auth(req, ACME_NAS, NOW)
    assert isinstance(pending, Admission)
    assert eng.admitted(pending, AdmissionResult(False, reason="r" * 200)) is None
    assert eng.counters.dropped_oversized_answer == 1 and eng.counters.access_rejects == 0
    assert not [e for e in log.events if e["event"] == "access-reject"]
    assert isinstance(eng.on_auth(req, ACME_NAS, NOW + 1), Admission)  # the retry is new work


def test_an_accounting_request_of_4096_octets_of_proxy_state_is_answered_with_all_of_it() -> None:
    eng, _ = engine(Accounts(ALICE))
    head = [(40, (1).to_bytes(4, "big")), (1, b"alice@acme.example"), (44, b"s-1")]
    size = MAX_LENGTH - 20 - len(encode_attributes(head))
    attrs = encode_attributes(head + padding(size))
    req = crypto.sign_request(
        Code.ACCOUNTING_REQUEST, 5, attrs, b"acme-secret", message_authenticator=False
    )
    assert len(req) == MAX_LENGTH
    pending = eng.on_acct(req, ACME_NAS, NOW)
    assert isinstance(pending, AccountingAnswer)
    reply = decode(pending.reply)
    assert crypto.response_authenticator_matches(pending.reply, b"acme-secret", req[4:20])
    assert reply.get_all(Attr.PROXY_STATE) == decode(req).get_all(Attr.PROXY_STATE)


def test_proxy_state_of_random_sizes_never_makes_the_engine_raise() -> None:
    eng, _ = engine(Accounts(ALICE))
    for _ in range(200):
        size = int.from_bytes(os.urandom(2), "big") % 4100
        req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
        if size > len(req) + 3 and size <= MAX_LENGTH:
            req = padded_request("alice@acme.example", b"acme-secret", to=size)
        eng.on_auth(req, ACME_NAS, NOW)
