"""radiusgw.dynauth (RFC 5176): Disconnect-Requests, answers, retransmission, abandonment."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, replace
from typing import Any

import pytest
from pyrad.dictionary import Dictionary
from pyrad.packet import CoAPacket

from radiusgw.client.core import AnswerDropped
from radiusgw.dynauth import (
    MAX_AGE,
    DisconnectClient,
    DisconnectTarget,
    DynauthError,
    ErrorCause,
    Outcome,
    Result,
    error_cause_name,
)
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode, encode_attributes, integer

SECRET = b"coa-secret"
T0 = 1_760_000_000.0  # unix time: the client puts it in Event-Timestamp
NAS = ("192.0.2.10", 3799)
ZERO16 = bytes(16)


def target(session: str = "sess-1", **changes: object) -> DisconnectTarget:
    t = DisconnectTarget(
        nas_address=NAS[0],
        coa_port=NAS[1],
        secret=SECRET,
        acct_session_id=session,
        user_name="alice@acme.example",
        nas_ip_address="192.0.2.10",
        nas_identifier="bras-1",
        framed_ip="10.0.0.5",
        realm="acme.example",
    )
    return replace(t, **changes) if changes else t  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Outgoing:
    address: tuple[str, int]
    datagram: bytes


class Driven:
    """A ``DisconnectClient`` driven as the edge drives it (``radiusgw.machine``), with each
    call's output gathered: the datagrams, the ``Result``s, the last drop's reason. Everything
    else is the client's own."""

    def __init__(self, **options: Any) -> None:
        self.client = DisconnectClient(**options)
        self.last_drop_reason = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __len__(self) -> int:
        return len(self.client)

    def request(self, t: DisconnectTarget, now: float, reason: str = "") -> list[Outgoing]:
        self.client.request(t, now, reason)
        self._results()
        return self.datagrams_to_send()

    def receive(self, datagram: bytes, source: tuple[Any, ...], now: float) -> list[Result]:
        self.client.receive_datagram(datagram, source, now)
        return self._results()

    def handle_timer(self, now: float) -> list[Result]:
        self.client.handle_timer(now)
        return self._results()

    def abandon_all(self, now: float, detail: str) -> list[Result]:
        self.client.abandon_all(now, detail)
        return self._results()

    def next_timer(self) -> float | None:
        return self.client.get_timer()

    def datagrams_to_send(self) -> list[Outgoing]:
        return [Outgoing(d, data) for data, d in self.client.datagrams_to_send(0.0)]

    def _results(self) -> list[Result]:
        results = []
        while (event := self.client.next_event()) is not None:
            if isinstance(event, AnswerDropped):
                self.last_drop_reason = event.reason
            else:
                results.append(event)
        return results


def exact() -> Driven:
    """No jitter: retransmissions at exactly 1, 2, 4, ... s."""
    return Driven(jitter=0.0)


def answer(
    request: bytes,
    code: int = Code.DISCONNECT_ACK,
    *,
    secret: bytes = SECRET,
    cause: int | None = None,
    message_authenticator: bool = True,
) -> bytes:
    """The NAS's answer to ``request``, signed as RFC 5176 §2.3 and §3.4 say."""
    attrs = b"" if cause is None else encode_attributes([(Attr.ERROR_CAUSE, integer(cause))])
    return crypto.sign_response(
        code,
        request[1],
        request[4:20],
        attrs,
        secret,
        message_authenticator=message_authenticator,
    )


def only(out: list[Outgoing]) -> bytes:
    assert len(out) == 1
    assert out[0].address == NAS
    return out[0].datagram


def test_request_is_signed_per_rfc5176_and_carries_the_session_identification() -> None:
    raw = only(exact().request(target(), T0, "traffic-quota"))
    assert raw[0] == Code.DISCONNECT_REQUEST
    # RFC 5176 §2.3: Request Authenticator = MD5(Code + Identifier + Length + 16 zero octets +
    # Attributes + Secret), recomputed here from the RFC text, not with the code under test.
    assert hashlib.md5(raw[:4] + ZERO16 + raw[20:] + SECRET).digest() == raw[4:20]
    assert hashlib.md5(raw[:4] + ZERO16 + raw[20:] + b"other").digest() != raw[4:20]
    packet = decode(raw)
    # RFC 5176 §3.4: HMAC-MD5 with the Request Authenticator and the value as 16 zero octets.
    assert packet.attributes[-1][0] == Attr.MESSAGE_AUTHENTICATOR
    at = packet.message_authenticator_offset
    zeroed = raw[:4] + ZERO16 + raw[20:at] + ZERO16 + raw[at + 16 :]
    assert hmac.new(SECRET, zeroed, "md5").digest() == raw[at : at + 16]
    assert packet.attributes[:-1] == (
        (Attr.USER_NAME, b"alice@acme.example"),
        (Attr.NAS_IP_ADDRESS, bytes([192, 0, 2, 10])),
        (Attr.NAS_IDENTIFIER, b"bras-1"),
        (Attr.FRAMED_IP_ADDRESS, bytes([10, 0, 0, 5])),
        (Attr.ACCT_SESSION_ID, b"sess-1"),
        (Attr.EVENT_TIMESTAMP, integer(int(T0))),
    )


def test_pyrad_verifies_the_request_too() -> None:
    """A second, independent implementation agrees on both authenticators."""
    raw = only(exact().request(target(), T0))
    received = CoAPacket(packet=raw, secret=SECRET, dict=Dictionary())
    assert received.VerifyCoARequest()
    assert received.verify_message_authenticator()
    assert not CoAPacket(packet=raw, secret=b"wrong", dict=Dictionary()).VerifyCoARequest()


def test_optional_identification_is_left_out_and_ipv6_nas_ip_uses_its_own_attribute() -> None:
    t = target(user_name=None, nas_identifier=None, framed_ip=None, nas_ip_address="2001:db8::1")
    packet = decode(only(exact().request(t, T0)))
    types = [a for a, _ in packet.attributes]
    assert types == [
        Attr.NAS_IPV6_ADDRESS,
        Attr.ACCT_SESSION_ID,
        Attr.EVENT_TIMESTAMP,
        Attr.MESSAGE_AUTHENTICATOR,
    ]
    assert packet.get(Attr.NAS_IPV6_ADDRESS) == ipaddress.ip_address("2001:db8::1").packed


def test_ack_ends_retries() -> None:
    c = exact()
    raw = only(c.request(target(), T0, "traffic-quota"))
    [result] = c.receive(answer(raw), NAS, T0 + 0.2)
    assert result.outcome is Outcome.ACK
    assert (result.target, result.reason, result.tries, result.error_cause) == (
        target(),
        "traffic-quota",
        1,
        None,
    )
    assert result.age == pytest.approx(0.2)
    assert c.next_timer() is None
    assert len(c) == 0
    assert c.handle_timer(T0 + 100) == []
    assert c.datagrams_to_send() == []
    assert c.counters.acked == 1


def test_nak_with_error_cause_ends_retries_and_carries_the_cause() -> None:
    c = exact()
    raw = only(c.request(target(), T0))
    nak = answer(raw, Code.DISCONNECT_NAK, cause=ErrorCause.SESSION_CONTEXT_NOT_FOUND)
    [result] = c.receive(nak, NAS, T0 + 0.1)
    assert result.outcome is Outcome.NAK
    assert result.error_cause == 503
    assert error_cause_name(result.error_cause) == "session-context-not-found"
    assert c.next_timer() is None
    assert c.handle_timer(T0 + 10) == []
    assert c.datagrams_to_send() == []
    assert c.counters.naked == 1


def test_ack_without_message_authenticator_is_accepted() -> None:
    """RFC 5176 §3.4: the attribute MAY be used; an answer without it is still an answer."""
    c = exact()
    raw = only(c.request(target(), T0))
    [result] = c.receive(answer(raw, message_authenticator=False), NAS, T0 + 0.1)
    assert result.outcome is Outcome.ACK


def test_answer_signed_with_another_secret_is_dropped_and_retries_go_on() -> None:
    c = exact()
    raw = only(c.request(target(), T0))
    assert c.receive(answer(raw, secret=b"not-the-secret"), NAS, T0 + 0.1) == []
    assert c.counters.dropped_bad_answer == 1
    assert "Response Authenticator" in c.last_drop_reason
    assert c.next_timer() == T0 + 1
    assert c.handle_timer(T0 + 1) == []
    assert [o.datagram for o in c.datagrams_to_send()] == [raw]
    [result] = c.receive(answer(raw), NAS, T0 + 1.1)
    assert result.outcome is Outcome.ACK
    assert result.tries == 2


def test_answer_with_a_forged_message_authenticator_is_dropped() -> None:
    """Response Authenticator right, Message-Authenticator computed with another secret."""
    c = exact()
    raw = only(c.request(target(), T0))
    forged = bytearray(answer(raw, secret=b"not-the-secret"))
    forged[4:20] = hashlib.md5(bytes(forged[:4]) + raw[4:20] + bytes(forged[20:]) + SECRET).digest()
    assert crypto.response_authenticator_matches(bytes(forged), SECRET, raw[4:20])
    assert c.receive(bytes(forged), NAS, T0 + 0.1) == []
    assert "Message-Authenticator" in c.last_drop_reason
    assert len(c) == 1


def test_unmatched_and_garbage_answers_are_dropped_and_counted() -> None:
    c = exact()
    raw = only(c.request(target(), T0))
    good = answer(raw)
    assert c.receive(good, (NAS[0], 1700), T0) == []  # another port of the NAS
    assert c.receive(good, ("192.0.2.99", NAS[1]), T0) == []  # another host
    other_id = good[:1] + bytes([(good[1] + 1) % 256]) + good[2:]
    assert c.receive(other_id, NAS, T0) == []
    assert c.counters.dropped_unknown_answer == 3
    assert c.receive(b"\x29\x00\x00", NAS, T0) == []  # shorter than a header
    coa_ack = answer(raw, Code.COA_ACK)
    assert c.receive(coa_ack, NAS, T0) == []
    assert c.counters.dropped_bad_answer == 2
    assert "not Disconnect-ACK/NAK" in c.last_drop_reason
    assert len(c) == 1
    [result] = c.receive(good, NAS, T0)
    assert result.outcome is Outcome.ACK


def test_an_answer_from_the_ipv4_mapped_form_of_the_nas_address_matches() -> None:
    c = exact()
    raw = only(c.request(target(), T0))
    [result] = c.receive(answer(raw), ("::ffff:192.0.2.10", NAS[1], 0, 0), T0)
    assert result.outcome is Outcome.ACK


def run_timers(c: Driven, until: float) -> list[tuple[float, bytes]]:
    """Fire every timer up to ``until``; the datagrams sent, with the offset from T0."""
    sent = []
    while (due := c.next_timer()) is not None and due <= until:
        assert c.handle_timer(due) == []
        sent += [(due - T0, o.datagram) for o in c.datagrams_to_send()]
    return sent


def test_retransmissions_back_off_to_a_minute_and_repeat_the_same_datagram() -> None:
    c = exact()
    first = only(c.request(target(), T0))
    sent = run_timers(c, T0 + 200)
    assert [t for t, _ in sent] == [1, 3, 7, 15, 31, 63, 123, 183]
    # Up to 120 s the Event-Timestamp is fresh: the same datagram (RFC 5080 §2.2.1).
    assert all(d == first for _, d in sent[:6])
    # At 123 s it is rebuilt: new Event-Timestamp, so a new Identifier and authenticator.
    rebuilt = decode(sent[6][1])
    assert rebuilt.get(Attr.EVENT_TIMESTAMP) == integer(int(T0) + 123)
    assert rebuilt.identifier != first[1]
    assert sent[7][1] == sent[6][1]
    assert c.counters.retransmitted == 8
    assert c.counters.rebuilt == 1


def test_a_late_answer_to_the_try_before_a_rebuild_still_counts() -> None:
    c = exact()
    first = only(c.request(target(), T0))
    run_timers(c, T0 + 123)
    assert c.counters.rebuilt == 1
    [result] = c.receive(answer(first), NAS, T0 + 124)
    assert result.outcome is Outcome.ACK
    assert result.tries == 8


def test_only_the_two_latest_builds_are_answerable() -> None:
    c = exact()
    first = only(c.request(target(), T0))
    run_timers(c, T0 + 303)  # rebuilt at 123 and again at 303
    assert c.counters.rebuilt == 2
    assert c.receive(answer(first), NAS, T0 + 304) == []
    assert len(c) == 1


def test_jitter_spreads_the_interval_by_up_to_a_tenth() -> None:
    low = Driven(random=lambda: 0.0)
    low.request(target(), T0)
    assert low.next_timer() == pytest.approx(T0 + 0.9)
    high = Driven(random=lambda: 1.0)
    high.request(target(), T0)
    assert high.next_timer() == pytest.approx(T0 + 1.1)


def test_an_unanswered_request_is_abandoned_after_an_hour_and_not_before() -> None:
    c = exact()
    c.request(target(), T0, "traffic-quota")
    sent = run_timers(c, T0 + MAX_AGE - 1)
    assert sent[-1][0] < MAX_AGE
    assert len(c) == 1
    due = c.next_timer()
    assert due == T0 + MAX_AGE
    [result] = c.handle_timer(due)
    assert result.outcome is Outcome.ABANDONED
    assert result.tries == len(sent) + 1
    assert result.age == MAX_AGE
    assert "3600" in result.detail
    assert c.datagrams_to_send() == []
    assert c.next_timer() is None
    assert len(c) == 0
    assert c.counters.abandoned == 1
    assert len(c.request(target(), due + 1)) == 1  # abandoned, not answered: may be asked again


def test_no_second_request_for_a_session_while_one_is_outstanding() -> None:
    c = exact()
    raw = only(c.request(target(), T0))
    assert c.is_outstanding(target())
    assert c.request(target(), T0 + 0.5) == []
    assert c.counters.duplicates == 1
    other = only(c.request(target("sess-2"), T0 + 0.5))  # another session of the same NAS
    assert other[1] != raw[1]
    c.receive(answer(raw), NAS, T0 + 0.6)
    assert not c.is_outstanding(target())
    assert c.counters.requested == 2


def test_an_answered_session_is_not_asked_again_for_five_minutes() -> None:
    """The caller asks for every live session at each poll; the NAS's Stop is on its way."""
    c = exact()
    nak = answer(only(c.request(target(), T0)), Code.DISCONNECT_NAK, cause=503)
    c.receive(nak, NAS, T0 + 0.5)
    assert c.request(target(), T0 + 10) == []
    assert c.request(target(), T0 + 300) == []
    assert c.counters.recently_answered == 2
    again = only(c.request(target(), T0 + 300.5))
    assert decode(again).get(Attr.ACCT_SESSION_ID) == b"sess-1"
    assert c.counters.requested == 2


def test_a_freed_identifier_is_reused_last_and_a_queued_request_takes_it() -> None:
    c = exact()
    sent = [only(c.request(target(f"s{i}"), T0)) for i in range(256)]
    assert sorted(d[1] for d in sent) == list(range(256))
    assert c.request(target("s256"), T0) == []  # all 256 Identifiers in use: queued
    assert len(c) == 257
    [result] = c.receive(answer(sent[42]), NAS, T0 + 0.1)
    assert result.target.acct_session_id == "s42"
    [started] = c.datagrams_to_send()
    assert started.datagram[1] == 42  # the only free Identifier
    assert decode(started.datagram).get(Attr.ACCT_SESSION_ID) == b"s256"
    # A late copy of the old answer meets the new request's authenticator and is dropped.
    assert c.receive(answer(sent[42]), NAS, T0 + 0.2) == []
    assert c.is_outstanding(target("s256"))


def test_identifiers_come_back_in_order_of_release() -> None:
    c = exact()
    first = only(c.request(target("a"), T0))
    c.receive(answer(first), NAS, T0)
    second = only(c.request(target("b"), T0))
    assert second[1] != first[1]  # the freed one went to the back of the queue


def test_abandon_all_reports_sent_and_queued_requests() -> None:
    c = exact()
    for i in range(257):
        c.request(target(f"s{i}"), T0)
    results = c.abandon_all(T0 + 5, "the gateway shut down")
    assert len(results) == 257
    assert {r.outcome for r in results} == {Outcome.ABANDONED}
    assert results[-1].tries == 0  # never sent
    assert c.datagrams_to_send() == []
    assert c.next_timer() is None
    assert len(c) == 0


def test_targets_are_checked_and_never_show_the_secret() -> None:
    with pytest.raises(DynauthError, match="not an IP address"):
        target(nas_address="nas.example")
    with pytest.raises(DynauthError, match="framed_ip"):
        target(framed_ip="10.0.0")
    with pytest.raises(DynauthError, match="CoA port"):
        target(coa_port=0)
    with pytest.raises(DynauthError, match="secret"):
        target(secret=b"")
    with pytest.raises(DynauthError, match="253"):
        target(user_name="u" * 254)
    assert target(nas_address="::ffff:192.0.2.10").nas_address == "192.0.2.10"
    assert "coa-secret" not in repr(target())


def test_error_cause_names() -> None:
    assert error_cause_name(None) is None
    assert error_cause_name(201) == "residual-session-context-removed"
    assert error_cause_name(599) == "599"
