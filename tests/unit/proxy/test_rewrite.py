"""radiusgw.proxy.rewrite: NAS request -> upstream request, upstream answer -> NAS reply."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from radiusgw.client import answers
from radiusgw.proxy import rewrite
from radiusgw.proxy.rewrite import RewriteError, nas_reply, upstream_request
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import Packet, as_integer, decode, encode_attributes, integer
from tests.unit.proxy.helpers import (
    NAS_SECRET,
    A,
    access_request,
    accounting_request,
    answer,
    ms_key,
    tunnel_password,
)
from tests.unit.radius import vectors

OURS = b"\x01\x02\x03\x04ours"


def forward(nas: Packet, *, strip: bool = True, extra_delay: float = 0.0) -> tuple[Packet, bytes]:
    datagram, authenticator = upstream_request(
        nas,
        NAS_SECRET,
        A,
        strip=strip,
        identifier=42,
        proxy_state=OURS,
        extra_delay=extra_delay,
    )
    return decode(datagram), authenticator


# -- the request upstream --------------------------------------------------------------------


def test_strip_forwards_the_text_before_the_last_at() -> None:
    up, _ = forward(access_request(user=b"bob@branch@globex.example"))
    assert up.get(Attr.USER_NAME) == b"bob@branch"


def test_strip_false_forwards_user_at_realm() -> None:
    up, _ = forward(access_request(user=b"bob@globex.example"), strip=False)
    assert up.get(Attr.USER_NAME) == b"bob@globex.example"


EAP_IDENTITY = b"\x02\x01\x00\x19\x01alice@globex.example"  # EAP-Response/Identity, RFC 3748


def test_eap_request_keeps_user_name_as_sent_even_with_strip() -> None:
    # RFC 3579 §2.1: the NAS copied the EAP identity into User-Name; the EAP server compares them.
    nas = access_request(password=None, extra=[(79, EAP_IDENTITY)])
    up, authenticator = forward(nas)
    assert up.get(Attr.USER_NAME) == b"alice@globex.example"
    assert up.get(79) == EAP_IDENTITY
    assert up.get_all(Attr.PROXY_STATE) == [OURS]
    # The rest of the rewrite is unchanged: our Message-Authenticator, valid for the upstream.
    assert crypto.message_authenticator_matches(up.raw, up.message_authenticator_offset, A.secret)
    assert up.authenticator == authenticator


def test_eap_keeps_a_user_name_with_several_at_signs_whole() -> None:
    nas = access_request(
        user=b"bob@branch@globex.example", password=None, extra=[(Attr.NAS_IDENTIFIER, b"n")]
    )
    nas = decode(
        crypto.sign_request(
            Code.ACCESS_REQUEST,
            nas.identifier,
            encode_attributes([*nas.attributes[:-1], (79, EAP_IDENTITY)]),
            NAS_SECRET,
            authenticator=nas.authenticator,
        )
    )
    up, _ = forward(nas)
    assert up.get(Attr.USER_NAME) == b"bob@branch@globex.example"
    assert up.get(Attr.NAS_IDENTIFIER) == b"n"


def test_strip_never_leaves_an_empty_user_name() -> None:
    assert rewrite.strip_realm(b"@globex.example") == b"@globex.example"
    assert rewrite.strip_realm(b"plain") == b"plain"


def test_upstream_request_has_our_identifier_and_a_new_authenticator() -> None:
    nas = access_request()
    up, authenticator = forward(nas)
    assert up.identifier == 42
    assert up.authenticator == authenticator
    assert authenticator != nas.authenticator
    assert forward(nas)[1] != authenticator  # random each time (RFC 2865 §3)


def test_password_is_rehidden_for_the_upstream_secret() -> None:
    nas = access_request(password=b"a password longer than sixteen octets")
    up, authenticator = forward(nas)
    hidden = up.get(Attr.USER_PASSWORD)
    assert hidden is not None and hidden != nas.get(Attr.USER_PASSWORD)
    plain = b"a password longer than sixteen octets"
    assert crypto.unhide_password(hidden, A.secret, authenticator) == plain
    assert crypto.unhide_password(hidden, NAS_SECRET, nas.authenticator) != plain


def test_malformed_user_password_is_refused() -> None:
    nas = access_request(password=None, extra=[(Attr.USER_PASSWORD, b"short")])
    with pytest.raises(RewriteError, match=r"RFC 2865 §5\.2"):
        forward(nas)


def test_chap_without_challenge_gets_the_nas_authenticator_as_chap_challenge() -> None:
    # RFC 2865 §7.2: CHAP with the Request Authenticator as the challenge.
    nas = decode(vectors.ACCESS_REQUEST_7_2)
    up, _ = forward(nas)
    assert up.get(Attr.CHAP_PASSWORD) == nas.get(Attr.CHAP_PASSWORD)
    assert up.get_all(Attr.CHAP_CHALLENGE) == [nas.authenticator]


def test_chap_hash_verifies_upstream_against_the_added_challenge() -> None:
    authenticator = os.urandom(16)
    chap = crypto.chap_password(5, b"secret-pw", authenticator)
    attrs = encode_attributes([(Attr.USER_NAME, b"u@r"), (Attr.CHAP_PASSWORD, chap)])
    nas = decode(
        crypto.sign_request(Code.ACCESS_REQUEST, 1, attrs, NAS_SECRET, authenticator=authenticator)
    )
    up, _ = forward(nas)
    challenge = up.get(Attr.CHAP_CHALLENGE)
    chap_password = up.get(Attr.CHAP_PASSWORD)
    assert challenge is not None and chap_password is not None
    assert crypto.chap_matches(chap_password, challenge, b"secret-pw")
    assert not crypto.chap_matches(chap_password, up.authenticator, b"secret-pw")


def test_chap_challenge_sent_by_the_nas_is_kept_and_not_added_again() -> None:
    challenge = os.urandom(16)
    chap = crypto.chap_password(5, b"pw", challenge)
    nas = access_request(
        password=None, extra=[(Attr.CHAP_PASSWORD, chap), (Attr.CHAP_CHALLENGE, challenge)]
    )
    up, _ = forward(nas)
    assert up.get_all(Attr.CHAP_CHALLENGE) == [challenge]


def test_pap_request_gets_no_chap_challenge() -> None:
    up, _ = forward(access_request())
    assert up.get(Attr.CHAP_CHALLENGE) is None


def test_message_authenticator_is_replaced_by_one_valid_for_the_upstream() -> None:
    nas = access_request(message_authenticator=True)
    up, _ = forward(nas)
    assert len(up.get_all(Attr.MESSAGE_AUTHENTICATOR)) == 1
    offset = up.message_authenticator_offset
    assert crypto.message_authenticator_matches(up.raw, offset, A.secret)
    assert not crypto.message_authenticator_matches(up.raw, offset, NAS_SECRET)


def test_message_authenticator_is_added_when_the_nas_sent_none() -> None:
    up, _ = forward(access_request(message_authenticator=False))
    offset = up.message_authenticator_offset
    assert offset > 0 and crypto.message_authenticator_matches(up.raw, offset, A.secret)


def test_proxy_state_of_the_nas_kept_in_order_and_ours_appended_last() -> None:
    nas = access_request(extra=[(Attr.PROXY_STATE, b"first"), (Attr.PROXY_STATE, b"second")])
    up, _ = forward(nas)
    assert up.get_all(Attr.PROXY_STATE) == [b"first", b"second", OURS]


def test_other_attributes_pass_unchanged_in_order() -> None:
    extra = [
        (Attr.NAS_PORT, integer(3)),
        (Attr.CALLING_STATION_ID, b"0901234"),
        (26, b"\0\0\0\x09x"),
    ]
    up, _ = forward(access_request(extra=extra))
    kept = [(t, v) for t, v in up.attributes if t in (Attr.NAS_PORT, Attr.CALLING_STATION_ID, 26)]
    assert kept == extra


def test_accounting_authenticator_is_valid_with_the_upstream_secret() -> None:
    nas = accounting_request()
    up, authenticator = forward(nas)
    assert up.code == Code.ACCOUNTING_REQUEST
    assert authenticator == up.raw[4:20]
    assert crypto.accounting_request_matches(up.raw, A.secret)
    assert not crypto.accounting_request_matches(up.raw, NAS_SECRET)
    assert up.get(Attr.USER_NAME) == b"alice"
    assert up.get_all(Attr.PROXY_STATE) == [OURS]


def test_extra_delay_is_added_to_acct_delay_time() -> None:
    up, _ = forward(accounting_request(extra=[(Attr.ACCT_DELAY_TIME, integer(5))]), extra_delay=60)
    assert up.get_all(Attr.ACCT_DELAY_TIME) == [integer(65)]
    assert crypto.accounting_request_matches(up.raw, A.secret)


def test_acct_delay_time_is_created_when_absent_and_rounded() -> None:
    up, _ = forward(accounting_request(), extra_delay=89.6)
    value = up.get(Attr.ACCT_DELAY_TIME)
    assert value is not None and as_integer(value) == 90


def test_no_delay_leaves_accounting_attributes_as_sent() -> None:
    nas = accounting_request()
    up, _ = forward(nas, strip=False)
    assert up.get(Attr.ACCT_DELAY_TIME) is None
    assert up.attributes[:-1] == nas.attributes


def test_codes_other_than_access_and_accounting_request_are_not_forwarded() -> None:
    status = decode(rewrite.status_server(NAS_SECRET, identifier=1)[0])
    with pytest.raises(RewriteError, match="code 12"):
        forward(status)


def test_status_server_probe_carries_a_valid_message_authenticator() -> None:
    datagram, authenticator = rewrite.status_server(A.secret, identifier=3)
    probe = decode(datagram)
    assert probe.code == Code.STATUS_SERVER and probe.identifier == 3
    assert probe.authenticator == authenticator
    assert crypto.message_authenticator_matches(
        probe.raw, probe.message_authenticator_offset, A.secret
    )


def test_request_probe_logs_in_as_the_probe_user() -> None:
    datagram, authenticator = rewrite.probe_request(A.secret, identifier=4, accounting=False)
    probe = decode(datagram)
    hidden = probe.get(Attr.USER_PASSWORD)
    assert probe.get(Attr.USER_NAME) == b"radiusgw-probe" and hidden is not None
    assert crypto.unhide_password(hidden, A.secret, authenticator) == rewrite.PROBE_PASSWORD
    acct = decode(rewrite.probe_request(A.secret, identifier=5, accounting=True)[0])
    assert acct.code == Code.ACCOUNTING_REQUEST
    assert crypto.accounting_request_matches(acct.raw, A.secret)


# -- the reply to the NAS --------------------------------------------------------------------


def roundtrip(nas: Packet) -> tuple[bytes, bytes]:
    """The upstream request for ``nas`` and its Request Authenticator."""
    return upstream_request(nas, NAS_SECRET, A, strip=True, identifier=42, proxy_state=OURS)


def reply_for(nas: Packet, raw: bytes, authenticator: bytes) -> Packet:
    out = nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS)
    assert out is not None
    return decode(out)


def test_reply_is_signed_for_the_nas_with_its_identifier() -> None:
    nas = access_request(identifier=200)
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, A.secret, attrs=[(Attr.REPLY_MESSAGE, b"welcome")])
    reply = reply_for(nas, raw, authenticator)
    assert reply.code == Code.ACCESS_ACCEPT and reply.identifier == 200
    assert reply.get(Attr.REPLY_MESSAGE) == b"welcome"
    assert crypto.response_authenticator_matches(reply.raw, NAS_SECRET, nas.authenticator)
    assert crypto.response_message_authenticator_matches(
        reply.raw, reply.message_authenticator_offset, NAS_SECRET, nas.authenticator
    )
    assert len(reply.get_all(Attr.MESSAGE_AUTHENTICATOR)) == 1


@pytest.mark.parametrize("code", [Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE])
def test_reject_and_challenge_get_a_message_authenticator_even_if_upstream_sent_none(
    code: int,
) -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, A.secret, code, [(Attr.STATE, b"st")], message_authenticator=False)
    reply = reply_for(nas, raw, authenticator)
    assert reply.code == code and reply.get(Attr.STATE) == b"st"
    assert crypto.response_message_authenticator_matches(
        reply.raw, reply.message_authenticator_offset, NAS_SECRET, nas.authenticator
    )


def test_our_proxy_state_is_removed_and_the_nas_ones_stay_in_order() -> None:
    nas = access_request(extra=[(Attr.PROXY_STATE, b"first"), (Attr.PROXY_STATE, b"second")])
    datagram, authenticator = roundtrip(nas)
    reply = reply_for(nas, answer(datagram, A.secret), authenticator)
    assert reply.get_all(Attr.PROXY_STATE) == [b"first", b"second"]


def test_a_nas_proxy_state_equal_to_ours_is_kept() -> None:
    nas = access_request(extra=[(Attr.PROXY_STATE, OURS)])
    datagram, authenticator = roundtrip(nas)
    reply = reply_for(nas, answer(datagram, A.secret), authenticator)
    assert reply.get_all(Attr.PROXY_STATE) == [OURS]


def test_accounting_response_is_resigned_without_message_authenticator() -> None:
    nas = accounting_request(identifier=77)
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, A.secret, Code.ACCOUNTING_RESPONSE)
    reply = reply_for(nas, raw, authenticator)
    assert reply.code == Code.ACCOUNTING_RESPONSE and reply.identifier == 77
    assert reply.message_authenticator_offset == -1
    assert crypto.response_authenticator_matches(reply.raw, NAS_SECRET, nas.authenticator)


def test_answer_signed_with_another_secret_is_refused() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, b"not-the-secret")
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is None


def test_answer_with_one_tampered_octet_is_refused() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = bytearray(answer(datagram, A.secret, attrs=[(Attr.REPLY_MESSAGE, b"hello")]))
    raw[22] ^= 0x01  # inside Reply-Message
    assert nas_reply(bytes(raw), A.secret, authenticator, nas, NAS_SECRET, OURS) is None


def test_answer_with_a_wrong_message_authenticator_is_refused() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    request = decode(datagram)
    # A correct Response Authenticator over a Message-Authenticator that is garbage.
    attrs = encode_attributes([(Attr.MESSAGE_AUTHENTICATOR, b"\x55" * 16)])
    raw = crypto.sign_response(
        Code.ACCESS_ACCEPT,
        request.identifier,
        request.authenticator,
        attrs + encode_attributes([(Attr.PROXY_STATE, OURS)]),
        A.secret,
        message_authenticator=False,
    )
    assert crypto.response_authenticator_matches(raw, A.secret, authenticator)
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is None


def test_missing_message_authenticator_is_refused_only_when_required() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, A.secret, message_authenticator=False)
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is not None
    strict = nas_reply(
        raw, A.secret, authenticator, nas, NAS_SECRET, OURS, require_message_authenticator=True
    )
    assert strict is None


def test_status_server_answers_need_a_message_authenticator_only_as_access_answers() -> None:
    # BlastRADIUS: an Access-Accept to Status-Server is checked as any Access-* answer; an
    # Accounting-Response (the acct port's answer) carries none and is not required to.
    datagram, authenticator = rewrite.status_server(A.secret, identifier=1)
    unsigned = answer(datagram, A.secret, Code.ACCESS_ACCEPT, message_authenticator=False)
    codes = rewrite.ACCESS_ANSWERS
    assert answers.verify_answer(unsigned, A.secret, authenticator, codes) is not None
    strict = answers.verify_answer(
        unsigned, A.secret, authenticator, codes, require_message_authenticator=True
    )
    assert strict is None
    acct = answer(datagram, A.secret, Code.ACCOUNTING_RESPONSE)
    assert (
        answers.verify_answer(
            acct,
            A.secret,
            authenticator,
            rewrite.ACCOUNTING_ANSWERS,
            require_message_authenticator=True,
        )
        is not None
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: b"\x02\x00\x00", "malformed"),
        (lambda d: answer(d, A.secret, Code.ACCOUNTING_RESPONSE), "code 5 does not answer"),
        (lambda d: answer(d, b"other"), "Response Authenticator does not match"),
        (
            lambda d: answer(d, A.secret, message_authenticator=False),
            "Message-Authenticator missing (require_message_authenticator = true)",
        ),
    ],
    ids=["malformed", "code", "secret", "unsigned"],
)
def test_answer_problem_names_why_an_answer_was_refused(make: Any, reason: str) -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = make(datagram)
    assert (
        nas_reply(
            raw, A.secret, authenticator, nas, NAS_SECRET, OURS, require_message_authenticator=True
        )
        is None
    )
    problem = answers.answer_problem(
        raw, A.secret, authenticator, rewrite.ACCESS_ANSWERS, require_message_authenticator=True
    )
    assert reason in problem


def test_answer_with_a_code_that_does_not_answer_the_request_is_refused() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    raw = answer(datagram, A.secret, Code.ACCOUNTING_RESPONSE)
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is None


def test_garbage_answer_is_refused() -> None:
    nas = access_request()
    assert nas_reply(b"\x02\x00\x00", A.secret, bytes(16), nas, NAS_SECRET, OURS) is None


# -- salt-encrypted attributes ---------------------------------------------------------------


def test_tunnel_password_is_reencrypted_for_the_nas() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    value = tunnel_password(b"tunnel-secret", A.secret, authenticator, tag=3)
    reply = reply_for(
        nas, answer(datagram, A.secret, attrs=[(Attr.TUNNEL_PASSWORD, value)]), authenticator
    )
    out = reply.get(Attr.TUNNEL_PASSWORD)
    assert out is not None and out[0] == 3  # the tag stays
    assert out[1] & 0x80  # salt with its top bit set (RFC 2868 §3.5)
    assert crypto.salt_decrypt(out[1:], NAS_SECRET, nas.authenticator) == b"tunnel-secret"
    assert crypto.salt_decrypt(out[1:], A.secret, authenticator) != b"tunnel-secret"


def test_ms_mppe_keys_are_reencrypted_for_the_nas() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    send_key, recv_key = os.urandom(16), os.urandom(32)
    attrs = [
        (Attr.VENDOR_SPECIFIC, ms_key(16, send_key, A.secret, authenticator)),
        (Attr.VENDOR_SPECIFIC, ms_key(17, recv_key, A.secret, authenticator)),
    ]
    reply = reply_for(nas, answer(datagram, A.secret, attrs=attrs), authenticator)
    found = {}
    for vsa in reply.get_all(Attr.VENDOR_SPECIFIC):
        assert vsa[:4] == (311).to_bytes(4, "big")
        assert vsa[5] == len(vsa) - 4  # sub-attribute length
        assert vsa[6] & 0x80
        found[vsa[4]] = crypto.salt_decrypt(vsa[6:], NAS_SECRET, nas.authenticator)
    assert found == {16: send_key, 17: recv_key}


def test_ms_chap_mppe_keys_are_hidden_again_for_the_nas() -> None:
    # RFC 2548 §2.4.1: 8 octets LM key, 16 NT key, 8 padding, hidden as in RFC 2865 §5.2.
    # Every octet must survive, the zero padding too (no password-style stripping).
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    keys = os.urandom(24) + bytes(8)
    hidden = crypto.hide_blocks(keys, A.secret, authenticator)
    vsa = (311).to_bytes(4, "big") + bytes((12, len(hidden) + 2)) + hidden
    reply = reply_for(
        nas, answer(datagram, A.secret, attrs=[(Attr.VENDOR_SPECIFIC, vsa)]), authenticator
    )
    (out,) = reply.get_all(Attr.VENDOR_SPECIFIC)
    assert out[:6] == vsa[:6]
    assert out[6:] != hidden  # not passed through: re-hidden for the NAS hop
    assert crypto.unhide_blocks(out[6:], NAS_SECRET, nas.authenticator) == keys


def test_ms_chap_mppe_keys_not_in_blocks_refuse_the_answer() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    vsa = (311).to_bytes(4, "big") + bytes((12, 2 + 20)) + bytes(20)
    raw = answer(datagram, A.secret, attrs=[(Attr.VENDOR_SPECIFIC, vsa)])
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is None


def test_other_vendor_attributes_pass_unchanged() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    cisco = (9).to_bytes(4, "big") + bytes((1, 8)) + b"avpair"
    ms_other = (311).to_bytes(4, "big") + bytes((7, 6)) + b"\0\0\0\x01"  # MS-MPPE-Encryption-Policy
    attrs = [(Attr.VENDOR_SPECIFIC, cisco), (Attr.VENDOR_SPECIFIC, ms_other)]
    reply = reply_for(nas, answer(datagram, A.secret, attrs=attrs), authenticator)
    assert reply.get_all(Attr.VENDOR_SPECIFIC) == [cisco, ms_other]


def test_undecryptable_tunnel_password_refuses_the_answer() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    broken = b"\x01\x80\x01" + bytes(15)  # cipher text not a multiple of 16 octets
    raw = answer(datagram, A.secret, attrs=[(Attr.TUNNEL_PASSWORD, broken)])
    assert nas_reply(raw, A.secret, authenticator, nas, NAS_SECRET, OURS) is None


@pytest.fixture
def repeating_salts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """os.urandom that offers each 2-octet salt twice in a row: only a per-packet check of
    uniqueness can then give distinct salts."""
    real = os.urandom
    count = [0]

    def fake(n: int) -> bytes:
        if n != 2:
            return real(n)
        count[0] += 1
        return bytes((0x80, (count[0] + 1) // 2))

    monkeypatch.setattr(os, "urandom", fake)  # crypto reads os.urandom at call time
    yield


@pytest.mark.usefixtures("repeating_salts")
def test_salts_are_unique_within_the_reply() -> None:
    nas = access_request()
    datagram, authenticator = roundtrip(nas)
    attrs = [
        (
            Attr.TUNNEL_PASSWORD,
            bytes((tag,)) + crypto.salt_encrypt(b"pw", A.secret, authenticator, bytes((0x80, tag))),
        )
        for tag in range(1, 6)
    ]
    attrs.append((Attr.VENDOR_SPECIFIC, ms_key(16, b"k" * 16, A.secret, authenticator)))
    reply = reply_for(nas, answer(datagram, A.secret, attrs=attrs), authenticator)
    salts = [v[1:3] for v in reply.get_all(Attr.TUNNEL_PASSWORD)]
    salts += [v[6:8] for v in reply.get_all(Attr.VENDOR_SPECIFIC)]
    assert len(salts) == 6 and len(set(salts)) == 6
    assert all(s[0] & 0x80 for s in salts)
    for value in reply.get_all(Attr.TUNNEL_PASSWORD):
        assert crypto.salt_decrypt(value[1:], NAS_SECRET, nas.authenticator) == b"pw"
