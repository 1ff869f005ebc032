"""Account protection and reply attributes by name in the engine (issue 17.4, 17.5): a locked
account and a Calling-Station-Id not allowed are refused before the password is checked, with
a reason (and MS-CHAP's error); a wrong password in a realm with lockout_after is handed to the
edge; the account's reply attributes win over the realm's by name."""

from __future__ import annotations

import os
import time
from dataclasses import replace

from radiusgw.auth import mschap
from radiusgw.config.model import Registry
from radiusgw.domain import Account, FailedLogin
from radiusgw.radius import crypto, vsa
from radiusgw.radius.attributes import MICROSOFT, Attr, Code, Microsoft
from radiusgw.radius.dictionary import load_dictionary
from radiusgw.radius.packet import encode_attributes
from radiusgw.radius.reply import encode_all
from tests.unit.engine.helpers import ACME_NAS, Accounts, engine, registry
from tests.unit.engine.test_engine import answer_of, pap_request

NOW = time.time()
SECRET = b"acme-secret"
USER = "alice@acme.example"
FILTER_ID = 11  # RFC 2865 §5.11


def protected_registry(**realm: object) -> Registry:
    reg = registry()
    acme = replace(reg.realms["acme.example"], **realm)  # type: ignore[arg-type]
    return replace(reg, realms={**reg.realms, "acme.example": acme})


def pap(password: bytes, station: bytes | None = None) -> bytes:
    extra = [] if station is None else [(int(Attr.CALLING_STATION_ID), station)]
    return pap_request(USER, password, SECRET, extra=extra)


def test_a_locked_account_is_refused_whatever_the_password() -> None:
    locked = Account("acme.example", "alice", "pw", locked_until=NOW + 60)
    eng, log = engine(Accounts(locked))
    for password in (b"pw", b"guess"):
        req = pap(password)
        code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
        assert (code, attrs[Attr.REPLY_MESSAGE]) == (Code.ACCESS_REJECT, [b"account locked"])
    assert log.events[-1]["reason"] == "account locked"
    # Once the lock has run out the password decides again.
    later = pap(b"pw")
    assert answer_of(eng.on_auth(later, ACME_NAS, NOW + 61), later, SECRET)[0] == (
        Code.ACCESS_ACCEPT
    )


def test_calling_station_id_is_compared_case_insensitively_and_required() -> None:
    mac = Account("acme.example", "alice", "pw", calling_station_ids=("00-11-22-aa-bb-cc",))
    eng, _ = engine(Accounts(mac))
    cases = [
        (b"00-11-22-AA-BB-CC", Code.ACCESS_ACCEPT, None),
        (b"00-11-22-aa-bb-cd", Code.ACCESS_REJECT, [b"calling station not allowed"]),
        (None, Code.ACCESS_REJECT, [b"no Calling-Station-Id"]),
    ]
    for station, expected, message in cases:
        req = pap(b"pw", station)
        code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
        assert code == expected
        assert attrs.get(Attr.REPLY_MESSAGE) == message


def test_mschap_refusals_carry_the_methods_error() -> None:
    locked = Account("acme.example", "alice", "pw", locked_until=NOW + 60)
    stations = Account("acme.example", "bob", "pw", calling_station_ids=("0312345678",))
    eng, _ = engine(Accounts(locked, stations))
    for user, code_text in (("alice", b"E=647"), ("bob", b"E=649")):
        challenge, peer = os.urandom(16), os.urandom(16)
        name = f"{user}@acme.example".encode()
        nt = mschap.generate_nt_response(challenge, peer, name, mschap.nt_password_hash(b"pw"))
        response = bytes((7, 0)) + peer + bytes(8) + nt
        attrs = (
            encode_attributes([(1, name)])
            + vsa.attribute(MICROSOFT, int(Microsoft.MS_CHAP_CHALLENGE), challenge)
            + (vsa.attribute(MICROSOFT, int(Microsoft.MS_CHAP2_RESPONSE), response))
        )
        req = crypto.sign_request(Code.ACCESS_REQUEST, 9, attrs, SECRET)
        code, answer = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
        assert code == Code.ACCESS_REJECT
        [error] = [v for v in answer[Attr.VENDOR_SPECIFIC] if v[:4] == MICROSOFT.to_bytes(4, "big")]
        parsed = vsa.split(error)
        assert parsed is not None
        [(sub_type, data)] = parsed[1]
        assert sub_type == Microsoft.MS_CHAP_ERROR and data[0] == 7
        assert data[1:].startswith(code_text)


def test_a_wrong_password_is_handed_on_only_where_lockout_is_configured() -> None:
    alice = Account("acme.example", "alice", "pw")
    for lockout_after, expected in ((None, 0), (3, 1)):
        eng, _ = engine(Accounts(alice), registry=protected_registry(lockout_after=lockout_after))
        seen: list[FailedLogin] = []
        eng.failed_login = seen.append
        for password in (b"wrong", b"pw"):
            eng.on_auth(pap(password), ACME_NAS, NOW)
        nobody = pap_request("carol@acme.example", b"x", SECRET)
        eng.on_auth(nobody, ACME_NAS, NOW)  # no account: nothing to lock
        assert len(seen) == expected
    assert seen == [FailedLogin("acme.example", "alice", NOW, 3, 300.0, 900.0)]


def test_account_reply_attributes_win_over_the_realms_by_name() -> None:
    d = load_dictionary()
    realm_reply = encode_all(
        d,
        [
            ("Filter-Id", "std-filter"),
            ("Cisco-AVPair", ["ip:addr-pool=a", "ip:dns=x"]),
            ("Session-Timeout", 7200),
        ],
    )
    alice = Account(
        "acme.example",
        "alice",
        "pw",
        session_timeout=3600,
        reply=(("Cisco-AVPair", "ip:addr-pool=b"), ("Framed-Route", "192.0.2.0/24 0.0.0.0 1")),
    )
    eng, _ = engine(Accounts(alice), registry=protected_registry(reply=realm_reply))
    req = pap(b"pw")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
    assert code == Code.ACCESS_ACCEPT
    assert attrs[FILTER_ID] == [b"std-filter"]  # the realm's: the account sets none
    assert attrs[Attr.SESSION_TIMEOUT] == [(3600).to_bytes(4, "big")]  # the account's
    assert attrs[22] == [b"192.0.2.0/24 0.0.0.0 1"]  # Framed-Route
    cisco = [vsa.split(v) for v in attrs[Attr.VENDOR_SPECIFIC]]
    assert cisco == [(9, [(1, b"ip:addr-pool=b")])]  # both realm values give way


def test_a_reload_that_changes_a_realms_reply_reads_its_accounts_again() -> None:
    d = load_dictionary()
    accounts = Accounts(Account("acme.example", "alice", "pw"))
    eng, _ = engine(
        accounts, registry=protected_registry(reply=encode_all(d, [("Filter-Id", "a")]))
    )
    eng.on_auth(pap(b"pw"), ACME_NAS, NOW)
    eng.reload(protected_registry(reply=encode_all(d, [("Filter-Id", "b")])))
    req = pap(b"pw")
    assert answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)[1][FILTER_ID] == [b"b"]
    assert accounts.lookups == 2
