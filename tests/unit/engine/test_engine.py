from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from radiusgw.domain import Account
from radiusgw.engine import AccountingAnswer
from radiusgw.engine.cache import AccountCache
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode, encode_attributes
from tests.unit.engine.helpers import (
    ACME_NAS,
    GLOBEX_NAS,
    LAC_D,
    STRANGER,
    Accounts,
    engine,
    registry,
)

NOW = time.time()
ALICE = Account("acme.example", "alice", "wonderland", framed_ip="10.0.0.5", session_timeout=3600)


def pap_request(
    user: str,
    password: bytes,
    secret: bytes,
    *,
    ident: int = 1,
    ma: bool = True,
    extra: list[tuple[int, bytes]] | None = None,
) -> bytes:
    auth = os.urandom(16)
    attrs = [(1, user.encode()), (2, crypto.hide_password(password, secret, auth)), *(extra or [])]
    return crypto.sign_request(
        Code.ACCESS_REQUEST,
        ident,
        encode_attributes(attrs),
        secret,
        authenticator=auth,
        message_authenticator=ma,
    )


def answer_of(
    raw: bytes | None, request: bytes, secret: bytes
) -> tuple[int, dict[int, list[bytes]]]:
    assert raw is not None
    request_auth = request[4:20]
    assert crypto.response_authenticator_matches(raw, secret, request_auth)
    p = decode(raw)
    assert p.identifier == request[1]
    assert p.message_authenticator_offset > 0
    assert crypto.response_message_authenticator_matches(
        raw, p.message_authenticator_offset, secret, request_auth
    )
    attrs: dict[int, list[bytes]] = {}
    for t, v in p.attributes:
        attrs.setdefault(t, []).append(v)
    return p.code, attrs


def test_pap_accept_carries_the_account_reply_attributes() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert code == Code.ACCESS_ACCEPT
    assert attrs[Attr.FRAMED_IP_ADDRESS] == [bytes((10, 0, 0, 5))]
    assert attrs[Attr.SESSION_TIMEOUT] == [(3600).to_bytes(4, "big")]


def test_realm_is_matched_case_insensitively_after_the_last_at() -> None:
    odd = Account("acme.example", "a@b", "pw")
    eng, _ = engine(Accounts(odd))
    req = pap_request("a@b@ACME.Example", b"pw", b"acme-secret")
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT


def test_wrong_password_is_rejected_with_a_reason_and_logged() -> None:
    eng, log = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"Tr0ub4dor", b"acme-secret")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert code == Code.ACCESS_REJECT
    assert attrs[Attr.REPLY_MESSAGE] == [b"unknown user or wrong password"]
    event = log.events[-1]
    assert event["event"] == "access-reject" and event["level"] == "info"
    assert event["user"] == "alice@acme.example" and event["realm"] == "acme.example"
    assert "Tr0ub4dor" not in str(log.events)  # the password never reaches the log
    assert "acme-secret" not in str(log.events)


def test_chap_with_request_authenticator_and_with_chap_challenge() -> None:
    eng, _ = engine(Accounts(ALICE))
    for use_challenge in (False, True):
        auth = os.urandom(16)
        challenge = os.urandom(16) if use_challenge else auth
        attrs = [(1, b"alice@acme.example"), (3, crypto.chap_password(7, b"wonderland", challenge))]
        if use_challenge:
            attrs.append((60, challenge))
        req = crypto.sign_request(
            Code.ACCESS_REQUEST, 3, encode_attributes(attrs), b"acme-secret", authenticator=auth
        )
        assert (
            answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT
        )


def test_disabled_account_is_rejected() -> None:
    disabled = Account("acme.example", "alice", "wonderland", enabled=False)
    eng, _ = engine(Accounts(disabled))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert (code, attrs[Attr.REPLY_MESSAGE]) == (Code.ACCESS_REJECT, [b"account disabled"])


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("alice@nowhere.example", b"unknown realm"),
        ("alice", b"no realm in user name"),
        ("bob@globex.example", b"unknown realm"),  # another contract's realm: isolation
        ("x@vpn.initech.example", b"unknown realm"),  # a VPDN realm, and not its own
    ],
)
def test_routing_refusals_are_rejects_with_reply_message(user: str, reason: bytes) -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request(user, b"pw", b"acme-secret")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert (code, attrs[Attr.REPLY_MESSAGE]) == (Code.ACCESS_REJECT, [reason])


def test_carrier_asking_for_a_group_realm_is_told_unknown_realm() -> None:
    eng, log = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"lac-secret")
    code, attrs = answer_of(eng.on_auth(req, LAC_D, NOW), req, b"lac-secret")
    assert (code, attrs[Attr.REPLY_MESSAGE]) == (Code.ACCESS_REJECT, [b"unknown realm"])
    event = log.events[-1]
    assert (event["event"], event["reason"]) == ("access-reject", "unknown realm")
    assert event["detail"] == "a group realm, asked by a carrier"


def test_contract_past_its_end_date_is_rejected() -> None:
    yesterday = dt.date.today() - dt.timedelta(days=1)
    eng, _ = engine(Accounts(ALICE), registry=registry(acme_ends=yesterday))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert (code, attrs[Attr.REPLY_MESSAGE]) == (Code.ACCESS_REJECT, [b"contract ended"])


def test_contract_is_served_through_its_last_day() -> None:
    eng, _ = engine(Accounts(ALICE), registry=registry(acme_ends=dt.date.today()))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT


def test_unregistered_source_is_dropped_counted_and_logged_once_a_minute() -> None:
    eng, log = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    for i in range(5):
        assert eng.on_auth(req, STRANGER, NOW + i) is None
    assert eng.counters.dropped_unknown_client == 5
    assert len([e for e in log.events if e["event"] == "dropped"]) == 1
    eng.on_auth(req, STRANGER, NOW + 61)
    assert len([e for e in log.events if e["event"] == "dropped"]) == 2


def test_missing_message_authenticator_is_dropped_when_required() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret", ma=False)
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    assert eng.counters.dropped_missing_message_authenticator == 1


def test_missing_message_authenticator_is_accepted_from_a_legacy_nas() -> None:
    eng, _ = engine(Accounts(ALICE), registry=registry(require_ma=False))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret", ma=False)
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT


def test_wrong_message_authenticator_is_dropped() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"not-the-secret")
    assert eng.on_auth(req, ACME_NAS, NOW) is None
    assert eng.counters.dropped_bad_authenticator == 1


def test_garbage_is_dropped_and_counted() -> None:
    eng, log = engine(Accounts(ALICE))
    for junk in (b"", b"\x01", os.urandom(19), b"\x01\x00\x10\x00" + bytes(16), os.urandom(300)):
        assert eng.on_auth(junk, ACME_NAS, NOW) is None
    assert eng.counters.dropped_malformed + eng.counters.dropped_unexpected_code >= 4
    assert any(e["level"] == "debug" and "malformed" in e["reason"] for e in log.events)


def test_retransmission_gets_the_same_answer_without_processing_again() -> None:
    accounts = Accounts(ALICE)
    eng, _ = engine(accounts)
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    first = eng.on_auth(req, ACME_NAS, NOW)
    eng.accounts.clear()  # a second processing would have to look the account up again
    lookups = accounts.lookups
    assert eng.on_auth(req, ACME_NAS, NOW + 1) == first
    assert accounts.lookups == lookups
    assert eng.counters.duplicates == 1 and eng.counters.access_requests == 1


def test_same_identifier_from_another_port_is_a_new_request() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    eng.on_auth(req, ACME_NAS, NOW)
    eng.on_auth(req, (ACME_NAS[0], ACME_NAS[1] + 1), NOW)
    assert eng.counters.access_requests == 2


def test_duplicate_window_is_five_seconds() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    eng.on_auth(req, ACME_NAS, NOW)
    other = pap_request("alice@acme.example", b"wonderland", b"acme-secret", ident=2)
    eng.on_auth(other, ACME_NAS, NOW + 5.1)  # expiry runs as new requests arrive
    eng.on_auth(req, ACME_NAS, NOW + 5.2)
    assert eng.counters.access_requests == 3


def test_proxy_state_is_copied_in_order() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request(
        "alice@acme.example", b"wonderland", b"acme-secret", extra=[(33, b"first"), (33, b"second")]
    )
    _, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")
    assert attrs[Attr.PROXY_STATE] == [b"first", b"second"]


def test_status_server_is_answered_on_both_ports() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = crypto.sign_request(Code.STATUS_SERVER, 9, b"", b"acme-secret")
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT
    answer = eng.on_acct(req, ACME_NAS, NOW)
    assert isinstance(answer, bytes)
    assert answer_of(answer, req, b"acme-secret")[0] == Code.ACCOUNTING_RESPONSE


def test_a_stream_carrying_both_is_dispatched_by_code() -> None:
    """RFC 6614 §2.3: one TLS connection carries authentication and accounting; the engine
    tells them apart by code, and answers Status-Server as the authentication port does."""
    eng, _ = engine(Accounts(ALICE))
    pap = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert answer_of(eng.on_stream(pap, ACME_NAS, NOW), pap, b"acme-secret")[0] == (
        Code.ACCESS_ACCEPT
    )
    acct = accounting_request(b"acme-secret")
    pending = eng.on_stream(acct, ACME_NAS, NOW)
    assert isinstance(pending, AccountingAnswer) and pending.record.session_id == "sess-1"
    status = crypto.sign_request(Code.STATUS_SERVER, 9, b"", b"acme-secret")
    answer = eng.on_stream(status, ACME_NAS, NOW)
    assert answer_of(answer, status, b"acme-secret")[0] == Code.ACCESS_ACCEPT
    assert eng.on_stream(b"", ACME_NAS, NOW) is None  # nothing to dispatch: dropped, counted
    assert eng.counters.dropped_malformed == 1


def test_status_server_without_message_authenticator_is_dropped() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = crypto.sign_request(
        Code.STATUS_SERVER, 9, b"", b"acme-secret", message_authenticator=False
    )
    assert eng.on_auth(req, ACME_NAS, NOW) is None


def accounting_request(secret: bytes, user: str = "alice@acme.example", status: int = 1) -> bytes:
    attrs = [(40, status.to_bytes(4, "big")), (1, user.encode()), (44, b"sess-1"), (33, b"ps")]
    return crypto.sign_request(
        Code.ACCOUNTING_REQUEST, 5, encode_attributes(attrs), secret, message_authenticator=False
    )


def test_accounting_is_answered_only_after_the_record_is_durable() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = accounting_request(b"acme-secret")
    pending = eng.on_acct(req, ACME_NAS, NOW)
    assert isinstance(pending, AccountingAnswer)
    assert pending.record.realm == "acme.example" and pending.record.session_id == "sess-1"
    assert pending.record.status_type == 1 and pending.record.packet == req
    assert crypto.response_authenticator_matches(pending.reply, b"acme-secret", req[4:20])
    assert decode(pending.reply).get(Attr.PROXY_STATE) == b"ps"
    # a copy while the write is in flight is dropped, not written twice
    assert eng.on_acct(req, ACME_NAS, NOW) is None
    eng.accounting_done(pending)
    assert eng.on_acct(req, ACME_NAS, NOW) == pending.reply


def test_accounting_with_a_wrong_authenticator_is_dropped() -> None:
    eng, _ = engine(Accounts(ALICE))
    assert eng.on_acct(accounting_request(b"wrong"), ACME_NAS, NOW) is None
    assert eng.counters.dropped_bad_authenticator == 1


def test_accounting_for_another_contracts_realm_is_kept_against_no_realm() -> None:
    eng, log = engine(Accounts(ALICE))
    pending = eng.on_acct(accounting_request(b"globex-secret"), GLOBEX_NAS, NOW)
    assert isinstance(pending, AccountingAnswer)
    pending2 = eng.on_acct(accounting_request(b"acme-secret", "bob@globex.example"), ACME_NAS, NOW)
    assert isinstance(pending2, AccountingAnswer) and pending2.record.realm is None
    unrouted = [e for e in log.events if e["event"] == "accounting-unrouted"][-1]
    assert unrouted["reason"] == "unknown realm"
    assert unrouted["detail"] == "a realm of another contract"


def test_failed_write_leaves_no_answer_so_the_nas_retries() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = accounting_request(b"acme-secret")
    pending = eng.on_acct(req, ACME_NAS, NOW)
    assert isinstance(pending, AccountingAnswer)
    eng.accounting_failed(pending)
    assert isinstance(eng.on_acct(req, ACME_NAS, NOW), AccountingAnswer)


def test_reload_swaps_the_registry() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.reload(registry(acme_ends=dt.date.today() - dt.timedelta(days=3)))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, b"acme-secret")[0] == Code.ACCESS_REJECT


def test_account_cache_forgets_what_the_change_log_names() -> None:
    from radiusgw.domain import Change
    from radiusgw.engine.cache import MISS, cached

    cache = AccountCache()
    assert cache.get("acme.example", "alice") is MISS
    alice = cached(ALICE)
    assert cache.put("acme.example", "alice", alice, cache.last_seq)
    assert cache.put("acme.example", "nobody", None, cache.last_seq)  # "no such user" is kept
    assert cache.get("acme.example", "alice") == alice
    assert cache.get("acme.example", "nobody") is None
    cache.apply([Change(7, "acme.example", "alice")])
    assert cache.get("acme.example", "alice") is MISS and cache.last_seq == 7
    assert cache.get("acme.example", "nobody") is None
    cache.apply([Change(8, "acme.example", None)])
    assert len(cache) == 0


def test_a_look_up_that_raced_a_change_is_used_once_and_not_kept() -> None:
    """Read before a change, put after the poll applied it: keeping it would hide the change
    until the next one."""
    from radiusgw.domain import Change
    from radiusgw.engine.cache import MISS, cached

    cache = AccountCache(last_seq=3)
    began = cache.last_seq
    cache.apply([Change(4, "acme.example", "alice")])  # the poll, while the look-up ran
    assert not cache.put("acme.example", "alice", cached(ALICE), began)
    assert cache.get("acme.example", "alice") is MISS
    assert cache.put("acme.example", "alice", cached(ALICE), cache.last_seq)


def test_a_flood_for_one_unknown_user_costs_one_look_up() -> None:
    accounts = Accounts(ALICE)
    eng, _ = engine(accounts)
    for i in range(50):
        req = pap_request("nobody@acme.example", b"x", b"acme-secret", ident=i % 256)
        answer = eng.on_auth(req, ACME_NAS, NOW + i)
        assert answer_of(answer, req, b"acme-secret")[0] == Code.ACCESS_REJECT
    assert accounts.lookups == 1


def test_an_account_not_cached_is_a_look_up_for_the_worker_not_a_store_read() -> None:
    """Issue 15.6: the engine never reads the store; a miss comes back as an AccountLookup,
    and ``looked_up`` finishes it (here with the account the thread would have read)."""
    from radiusgw.engine import AccountLookup, Engine
    from radiusgw.engine.cache import cached
    from tests.unit.engine.helpers import ListLog

    eng = Engine(registry(), AccountCache(), log=ListLog())
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    lookup = eng.on_auth(req, ACME_NAS, NOW)
    assert isinstance(lookup, AccountLookup)
    assert (lookup.realm.name, lookup.local) == ("acme.example", "alice")
    assert eng.on_auth(req, ACME_NAS, NOW) is None  # its retransmission waits with it
    assert eng.counters.dropped_in_progress == 1
    answer = eng.looked_up(lookup, cached(ALICE), NOW)
    assert answer_of(answer, req, b"acme-secret")[0] == Code.ACCESS_ACCEPT
    assert eng.on_auth(req, ACME_NAS, NOW) == answer  # the retransmission gets the same answer
    again = pap_request("alice@acme.example", b"wonderland", b"acme-secret", ident=9)
    second = eng.on_auth(again, ACME_NAS, NOW)  # cached now: answered at once
    assert answer_of(second, again, b"acme-secret")[0] == Code.ACCESS_ACCEPT


def test_ipv4_mapped_source_of_a_dual_stack_socket_finds_its_nas() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    mapped = ("::ffff:" + ACME_NAS[0], ACME_NAS[1], 0, 0)
    assert answer_of(eng.on_auth(req, mapped, NOW), req, b"acme-secret")[0] == Code.ACCESS_ACCEPT


def test_vpdn_realm_is_answered_to_its_carriers_lac_with_tunnel_attributes() -> None:
    from tests.unit.engine.helpers import LAC_D

    eng, _ = engine(Accounts(ALICE))
    req = pap_request("anyone@vpn.initech.example", b"not-checked", b"lac-secret")
    code, attrs = answer_of(eng.on_auth(req, LAC_D, NOW), req, b"lac-secret")
    assert code == Code.ACCESS_ACCEPT
    assert attrs[Attr.TUNNEL_SERVER_ENDPOINT] == [b"\x01192.0.2.10"]
    password = attrs[Attr.TUNNEL_PASSWORD][0]
    assert crypto.salt_decrypt(password[1:], b"lac-secret", req[4:20]) == b"tunnel"


def test_vpdn_realm_asked_by_another_carriers_lac_is_told_unknown_realm() -> None:
    """Issue 14.18: the reject does not tell an existing realm of another carrier from none;
    the operator's log line does."""
    from tests.unit.engine.helpers import LAC_K

    eng, log = engine(Accounts(ALICE))
    replies = []
    for user in ("anyone@vpn.initech.example", "anyone@nowhere.example"):
        req = pap_request(user, b"x", b"kddi-secret")
        code, attrs = answer_of(eng.on_auth(req, LAC_K, NOW), req, b"kddi-secret")
        del attrs[Attr.MESSAGE_AUTHENTICATOR]  # differs with every request
        replies.append((code, attrs))
    expected = (Code.ACCESS_REJECT, {Attr.REPLY_MESSAGE: [b"unknown realm"]})
    assert replies[0] == replies[1] == expected
    rejects = [e for e in log.events if e["event"] == "access-reject"]
    assert [e["reason"] for e in rejects] == ["unknown realm", "unknown realm"]
    assert rejects[0]["detail"] == "a VPDN realm of carrier type D, asked by carrier type K"
    assert "detail" not in rejects[1]


def test_vpdn_realm_with_authenticate_checks_the_password_first() -> None:
    from tests.unit.engine.helpers import LAC_D

    taro = Account("auth.initech.example", "taro", "secret-pw")
    eng, _ = engine(Accounts(taro))
    good = pap_request("taro@auth.initech.example", b"secret-pw", b"lac-secret")
    code, attrs = answer_of(eng.on_auth(good, LAC_D, NOW), good, b"lac-secret")
    assert code == Code.ACCESS_ACCEPT and attrs[Attr.TUNNEL_SERVER_ENDPOINT] == [b"\x01192.0.2.20"]
    bad = pap_request("taro@auth.initech.example", b"guess", b"lac-secret")
    code, attrs = answer_of(eng.on_auth(bad, LAC_D, NOW), bad, b"lac-secret")
    assert code == Code.ACCESS_REJECT and Attr.TUNNEL_PASSWORD not in attrs
