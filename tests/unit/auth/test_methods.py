"""The methods of a group realm through the engine: PAP and CHAP as before, MS-CHAPv1/v2 with
their reply attributes (RFC 2548), EAP refused with an EAP-Failure (RFC 3579 §2.6.1)."""

from __future__ import annotations

import os
import time

from radiusgw.auth import method, mschap
from radiusgw.auth.chap import CHAP
from radiusgw.auth.eap import EAP_NOT_OFFERED
from radiusgw.auth.microsoft import MSCHAP_V1, MSCHAP_V2
from radiusgw.auth.pap import PAP
from radiusgw.domain import Account
from radiusgw.engine.cache import CachedAccount
from radiusgw.modes import group
from radiusgw.radius import crypto, vsa
from radiusgw.radius.attributes import MICROSOFT, Attr, Code, Microsoft
from radiusgw.radius.packet import decode, encode_attributes
from radiusgw.refusal import Refusal
from tests.unit.engine.helpers import ACME_NAS, LAC_D, Accounts, engine
from tests.unit.engine.test_engine import answer_of, pap_request

NOW = time.time()
SECRET = b"acme-secret"
ALICE = Account("acme.example", "alice", "wonderland", framed_ip="10.0.0.5")
DISABLED = Account("acme.example", "dora", "explorer", enabled=False)
VPDN_USER = Account("auth.initech.example", "ivan", "tunnel-pw")


def ms(sub_type: Microsoft, value: bytes) -> tuple[int, bytes]:
    return (int(Attr.VENDOR_SPECIFIC), vsa.join(MICROSOFT, [(int(sub_type), value)]))


def mschapv2_request(
    user: str, password: bytes, *, secret: bytes = SECRET, ident: int = 9
) -> tuple[bytes, bytes, bytes]:
    """An Access-Request with MS-CHAP-Challenge and MS-CHAP2-Response; also returns the
    authenticator challenge and the peer challenge."""
    challenge, peer = os.urandom(16), os.urandom(16)
    nt = mschap.generate_nt_response(
        challenge, peer, user.encode(), mschap.nt_password_hash(password)
    )
    attrs = [
        (1, user.encode()),
        ms(Microsoft.MS_CHAP_CHALLENGE, challenge),
        ms(Microsoft.MS_CHAP2_RESPONSE, bytes((ident, 0)) + peer + bytes(8) + nt),
    ]
    return crypto.sign_request(1, 3, encode_attributes(attrs), secret), challenge, peer


def mschapv1_request(user: str, password: bytes, *, flags: int = 1, ident: int = 5) -> bytes:
    challenge = os.urandom(8)
    nt = mschap.challenge_response(challenge, mschap.nt_password_hash(password))
    # With Flags 0 the NT-Response MUST be ignored (RFC 2548 §2.1.3): put it in the LM field.
    response = bytes((ident, flags)) + (bytes(24) + nt if flags else nt + bytes(24))
    attrs = [
        (1, user.encode()),
        ms(Microsoft.MS_CHAP_CHALLENGE, challenge),
        ms(Microsoft.MS_CHAP_RESPONSE, response),
    ]
    return crypto.sign_request(1, 4, encode_attributes(attrs), SECRET)


def microsoft_of(attrs: dict[int, list[bytes]]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for value in attrs.get(Attr.VENDOR_SPECIFIC, []):
        parsed = vsa.split(value)
        assert parsed is not None and parsed[0] == MICROSOFT
        for sub_type, data in parsed[1]:
            out.setdefault(sub_type, []).append(data)
    return out


def test_mschapv2_accept_carries_success_mppe_keys_and_the_account_reply() -> None:
    eng, _ = engine(Accounts(ALICE))
    req, challenge, peer = mschapv2_request("alice@acme.example", b"wonderland")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
    assert code == Code.ACCESS_ACCEPT
    assert attrs[Attr.FRAMED_IP_ADDRESS] == [bytes((10, 0, 0, 5))]
    m = microsoft_of(attrs)
    password_hash = mschap.nt_password_hash(b"wonderland")
    nt = decode(req).attributes[2][1][-24:]
    expected = mschap.authenticator_response(
        password_hash, nt, peer, challenge, b"alice@acme.example"
    )
    assert m[Microsoft.MS_CHAP2_SUCCESS] == [bytes((9,)) + expected]
    send, recv = mschap.mppe_v2_keys(password_hash, nt)
    (send_value,), (recv_value,) = m[Microsoft.MS_MPPE_SEND_KEY], m[Microsoft.MS_MPPE_RECV_KEY]
    assert crypto.salt_decrypt(send_value, SECRET, req[4:20]) == send
    assert crypto.salt_decrypt(recv_value, SECRET, req[4:20]) == recv
    assert send_value[:2] != recv_value[:2]  # RFC 2548 §2.4.2: salts unique in the packet
    assert m[Microsoft.MS_MPPE_ENCRYPTION_POLICY] == [(1).to_bytes(4, "big")]
    assert m[Microsoft.MS_MPPE_ENCRYPTION_TYPES] == [(6).to_bytes(4, "big")]


def error_of(raw: bytes | None, req: bytes) -> tuple[bytes, str]:
    code, attrs = answer_of(raw, req, SECRET)
    assert code == Code.ACCESS_REJECT
    (error,) = microsoft_of(attrs)[Microsoft.MS_CHAP_ERROR]
    return attrs[Attr.REPLY_MESSAGE][0], error[:1].hex() + " " + error[1:].decode()


def test_mschapv2_wrong_password_and_unknown_user_get_the_same_691() -> None:
    eng, _ = engine(Accounts(ALICE))
    wrong, _, _ = mschapv2_request("alice@acme.example", b"guess")
    unknown, _, _ = mschapv2_request("nobody@acme.example", b"guess")
    answers = [error_of(eng.on_auth(r, ACME_NAS, NOW), r) for r in (wrong, unknown)]
    for reason, error in answers:
        assert reason == b"unknown user or wrong password"
        ident, code, retry, challenge, rest = error.split(" ", 4)
        assert (ident, code, retry) == ("09", "E=691", "R=0")
        assert challenge.startswith("C=") and len(challenge) == 34  # RFC 2759 §6
        assert rest == "V=3 M=Authentication failed"


def test_mschapv2_disabled_account_gets_647_only_with_the_right_password() -> None:
    eng, _ = engine(Accounts(DISABLED))
    right, _, _ = mschapv2_request("dora@acme.example", b"explorer")
    reason, error = error_of(eng.on_auth(right, ACME_NAS, NOW), right)
    assert reason == b"account disabled" and error.startswith("09 E=647 R=0 C=")
    assert error.endswith(" V=3 M=Account disabled")
    wrong, _, _ = mschapv2_request("dora@acme.example", b"guess")
    assert error_of(eng.on_auth(wrong, ACME_NAS, NOW), wrong)[1].startswith("09 E=691 ")


def test_mschapv1_nt_response_is_accepted_with_mppe_keys() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = mschapv1_request("alice@acme.example", b"wonderland")
    code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
    assert code == Code.ACCESS_ACCEPT
    (keys,) = microsoft_of(attrs)[Microsoft.MS_CHAP_MPPE_KEYS]
    assert crypto.unhide_blocks(keys, SECRET, req[4:20]) == mschap.mppe_v1_keys(b"wonderland")


def test_mschapv1_lan_manager_response_is_refused_as_a_wrong_password() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = mschapv1_request("alice@acme.example", b"wonderland", flags=0)
    assert error_of(eng.on_auth(req, ACME_NAS, NOW), req)[1] == "05 E=691 R=0"


def test_mschapv1_wrong_password_gets_691_without_a_challenge() -> None:
    eng, _ = engine(Accounts(ALICE))
    req = mschapv1_request("alice@acme.example", b"guess")
    assert error_of(eng.on_auth(req, ACME_NAS, NOW), req)[1] == "05 E=691 R=0"


def test_vpdn_realm_that_authenticates_answers_mschapv2_with_tunnel_and_success() -> None:
    eng, _ = engine(Accounts(VPDN_USER))
    req, _, _ = mschapv2_request("ivan@auth.initech.example", b"tunnel-pw", secret=b"lac-secret")
    code, attrs = answer_of(eng.on_auth(req, LAC_D, NOW), req, b"lac-secret")
    assert code == Code.ACCESS_ACCEPT
    assert Attr.TUNNEL_SERVER_ENDPOINT in attrs
    assert Microsoft.MS_CHAP2_SUCCESS in microsoft_of(attrs)


def test_eap_message_gets_an_eap_failure_with_the_requests_identifier() -> None:
    eng, log = engine(Accounts(ALICE))
    identity = bytes((2, 0x2A, 0, 23, 1)) + b"alice@acme.example"  # EAP-Response/Identity
    attrs = [(1, b"alice@acme.example"), (int(Attr.EAP_MESSAGE), identity)]
    req = crypto.sign_request(1, 6, encode_attributes(attrs), SECRET)
    code, answer = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
    assert code == Code.ACCESS_REJECT
    assert answer[Attr.EAP_MESSAGE] == [bytes((4, 0x2A, 0, 4))]  # RFC 3748 §4.2
    assert answer[Attr.REPLY_MESSAGE] == [b"EAP is not offered in this realm"]
    assert log.events[-1]["reason"] == "EAP is not offered in this realm"


def test_request_without_credentials_names_what_a_group_realm_checks() -> None:
    eng, _ = engine(Accounts(ALICE))
    short = ms(Microsoft.MS_CHAP2_RESPONSE, bytes(10))  # not 50 octets: nothing to check
    for extra in ([], [short]):
        req = crypto.sign_request(
            1, 7, encode_attributes([(1, b"alice@acme.example"), *extra]), SECRET
        )
        code, attrs = answer_of(eng.on_auth(req, ACME_NAS, NOW), req, SECRET)
        assert (code, attrs[Attr.REPLY_MESSAGE]) == (
            Code.ACCESS_REJECT,
            [method.NO_CREDENTIALS.reason.encode()],
        )


def test_the_choice_returns_shared_methods_and_pap_shared_verdicts() -> None:
    req = decode(pap_request("alice@acme.example", b"wonderland", SECRET))
    first = req.first_values()
    assert group.choose(req, first) is PAP
    account = CachedAccount(b"wonderland", True, b"")
    assert PAP.verify(req, first, SECRET, account) is method.ACCEPTED  # nothing allocated
    assert PAP.verify(req, first, SECRET, None) is method.BAD_CREDENTIALS
    chap = decode(crypto.sign_request(1, 1, encode_attributes([(3, bytes(17))]), SECRET))
    assert group.choose(chap, chap.first_values()) is CHAP
    v1 = decode(mschapv1_request("a@acme.example", b"x"))
    assert group.choose(v1, v1.first_values()) is MSCHAP_V1
    v2 = decode(mschapv2_request("a@acme.example", b"x")[0])
    assert group.choose(v2, v2.first_values()) is MSCHAP_V2
    eap = decode(crypto.sign_request(1, 1, encode_attributes([(79, b"\x02\x01\x00\x04")]), SECRET))
    assert group.choose(eap, eap.first_values()) is EAP_NOT_OFFERED


def test_refuse_gives_each_method_its_failure_attributes() -> None:
    v2 = decode(mschapv2_request("a@acme.example", b"x", ident=3)[0])
    locked = Refusal("account locked")
    verdict = MSCHAP_V2.refuse(v2, v2.first_values(), method.Outcome.DISABLED, locked)
    assert verdict.refusal is locked and b"E=647" in verdict.reply
    pap = decode(pap_request("a@acme.example", b"x", SECRET))
    plain = PAP.refuse(pap, pap.first_values(), method.Outcome.BAD_CREDENTIALS, locked)
    assert (plain.outcome, plain.reply) == (method.Outcome.BAD_CREDENTIALS, b"")
