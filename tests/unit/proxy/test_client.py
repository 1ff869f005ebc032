"""radiusgw.proxy.client: forwarding, answers, own retransmission, failover, probes, counters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from radiusgw.client.core import AnswerDropped
from radiusgw.config.model import PoolPolicy, UpstreamServer
from radiusgw.proxy.client import UpstreamClient
from radiusgw.proxy.events import Completed, Failure
from radiusgw.proxy.upstream import Kind, ServerState
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import as_integer, decode
from tests.unit.proxy.helpers import (
    NAS,
    NAS_SECRET,
    A,
    B,
    C,
    Driven,
    Outgoing,
    access_request,
    accounting_request,
    answer,
    realm,
)

SECRETS = {A.address: A.secret, B.address: B.secret, C.address: C.secret}
A_AUTH = ("203.0.113.20", 1812)
B_AUTH = ("203.0.113.21", 1812)
C_AUTH = ("203.0.113.22", 1812)


def quiet(
    server: UpstreamServer,
    *,
    retries: int = 2,
    response_window: float = 1.0,
    revive_interval: float = 5.0,
) -> UpstreamServer:
    """``server`` with ``status_check = "none"`` (no probes: only the request's own tries)."""
    return replace(
        server,
        status_check="none",
        retries=retries,
        response_window=response_window,
        revive_interval=revive_interval,
    )


def client(sockets: int = 1) -> Driven[str]:
    return Driven(sockets)


def reply_to(
    c: Driven[str], out: Outgoing, now: float, code: int = Code.ACCESS_ACCEPT
) -> list[Completed[str]]:
    """The server ``out`` went to answers it correctly."""
    raw = answer(out.datagram, SECRETS[out.address[0]], code)
    return c.receive(out.socket, raw, out.address, now)


def only(outs: list[Outgoing]) -> Outgoing:
    assert len(outs) == 1, outs
    return outs[0]


# -- forwarding and answers ------------------------------------------------------------------


def test_forward_sends_one_datagram_to_the_first_server_auth_port() -> None:
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A, B), 0.0, "ctx", source=NAS))
    assert out.address == ("203.0.113.20", 1812) and out.socket == 0
    assert decode(out.datagram).code == Code.ACCESS_REQUEST


def test_accounting_goes_to_the_acct_port() -> None:
    c = client()
    out = only(c.forward(accounting_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    assert out.address == ("203.0.113.20", 1813)


def test_verified_answer_completes_with_the_reply_for_the_nas() -> None:
    c = client()
    nas = access_request(identifier=99)
    out = only(c.forward(nas, NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    [done] = reply_to(c, out, 0.1)
    assert done.context == "ctx" and done.failure is None and done.server == A_AUTH
    assert done.reply is not None
    reply = decode(done.reply)
    assert reply.identifier == 99
    assert crypto.response_authenticator_matches(reply.raw, NAS_SECRET, nas.authenticator)
    assert c.outstanding == 0 and c.next_timer() is None
    assert c.counters.answered == 1


def test_answer_from_a_dual_stack_socket_matches_the_ipv4_server() -> None:
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    raw = answer(out.datagram, A.secret)
    assert c.receive(0, raw, ("::ffff:203.0.113.20", 1812, 0, 0), 0.1)


def test_forged_answer_is_dropped_and_counted_and_the_real_one_still_completes() -> None:
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    forged = answer(out.datagram, b"guessed-secret")
    assert c.receive(out.socket, forged, out.address, 0.1) == []
    assert c.counters.dropped_bad_answer == 1
    assert [d.context for d in reply_to(c, out, 0.2)] == ["ctx"]


def test_unsigned_access_answer_is_dropped_by_default_and_logged_with_the_reason() -> None:
    # BlastRADIUS: require_message_authenticator is true unless the server says otherwise.
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    unsigned = answer(out.datagram, A.secret, message_authenticator=False)
    assert c.receive(out.socket, unsigned, out.address, 0.1) == []
    assert c.counters.dropped_bad_answer == 1 and c.counters.answered == 0
    [dropped] = c.pop_events()
    assert isinstance(dropped, AnswerDropped)
    assert (dropped.address, dropped.port, dropped.at) == ("203.0.113.20", 1812, 0.1)
    assert "Message-Authenticator missing" in dropped.reason
    assert [d.context for d in reply_to(c, out, 0.2)] == ["ctx"]  # the signed one still counts


def test_a_server_exempted_from_message_authenticator_is_taken_unsigned() -> None:
    c = client()
    r = realm(replace(A, require_message_authenticator=False))
    out = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS))
    unsigned = answer(out.datagram, A.secret, message_authenticator=False)
    [done] = c.receive(out.socket, unsigned, out.address, 0.1)
    assert done.reply is not None and c.counters.dropped_bad_answer == 0


def test_unsigned_accounting_response_is_taken() -> None:
    c = client()
    out = only(c.forward(accounting_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    raw = answer(out.datagram, A.secret, Code.ACCOUNTING_RESPONSE)  # no Message-Authenticator
    assert [d.context for d in c.receive(out.socket, raw, out.address, 0.1)] == ["ctx"]


def test_forged_answer_is_reported_with_its_reason() -> None:
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    c.receive(out.socket, answer(out.datagram, b"guessed"), out.address, 0.1)
    [dropped] = c.pop_events()
    assert isinstance(dropped, AnswerDropped) and "Response Authenticator" in dropped.reason
    assert "guessed" not in repr(dropped) and A.secret.decode() not in repr(dropped)


def test_answer_from_another_source_or_socket_is_not_taken() -> None:
    c = client(sockets=2)
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    raw = answer(out.datagram, A.secret)
    assert c.receive(out.socket, raw, ("203.0.113.99", 1812), 0.1) == []
    assert c.receive(1 - out.socket, raw, out.address, 0.1) == []
    assert c.receive(out.socket, raw[:19], out.address, 0.1) == []
    assert c.counters.dropped_unknown_answer == 2
    assert c.counters.dropped_bad_answer == 1
    assert c.outstanding == 1


def test_nas_retransmission_is_not_forwarded_twice() -> None:
    c = client()
    nas = access_request()
    out = only(c.forward(nas, NAS_SECRET, realm(A), 0.0, "first", source=NAS))
    assert c.forward(nas, NAS_SECRET, realm(A), 0.5, "copy", source=NAS) == []
    assert c.counters.duplicates == 1 and c.counters.forwarded == 1
    assert [d.context for d in reply_to(c, out, 0.6)] == ["first"]
    # Answered: a later copy is the engine's duplicate cache's to answer; here it is new again.
    assert len(c.forward(nas, NAS_SECRET, realm(A), 0.7, "again", source=NAS)) == 1


def test_same_identifier_from_another_nas_port_is_not_a_duplicate() -> None:
    c = client()
    nas = access_request()
    assert c.forward(nas, NAS_SECRET, realm(A), 0.0, "a", source=NAS)
    assert c.forward(nas, NAS_SECRET, realm(A), 0.0, "b", source=(NAS[0], NAS[1] + 1))


def test_replays_without_source_are_never_duplicates() -> None:
    c = client()
    nas = accounting_request()
    assert c.forward(nas, NAS_SECRET, realm(A), 0.0, "a", source=None)
    assert c.forward(nas, NAS_SECRET, realm(A), 0.0, "b", source=None)


# -- identifiers -----------------------------------------------------------------------------


def test_more_than_256_outstanding_to_one_server_over_several_sockets() -> None:
    c = client(sockets=3)
    r = realm(A)
    slots = set()
    for i in range(3 * 256):
        out = only(
            c.forward(
                access_request(identifier=i % 256), NAS_SECRET, r, 0.0, str(i), source=(NAS[0], i)
            )
        )
        assert out.address == A_AUTH
        slots.add((out.socket, decode(out.datagram).identifier))
    assert len(slots) == 768 and {s for s, _ in slots} == {0, 1, 2}
    assert c.forward(access_request(), NAS_SECRET, r, 0.0, "over", source=NAS) == []
    _, done = c.handle_timer(0.0)
    assert [(d.context, d.failure) for d in done] == [("over", Failure.BUSY)]


def test_a_full_server_makes_the_request_use_the_next_one() -> None:
    c = client(sockets=1)
    r = realm(A, B)
    for i in range(256):
        c.forward(access_request(), NAS_SECRET, r, 0.0, str(i), source=(NAS[0], i))
    out = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "next", source=NAS))
    assert out.address == B_AUTH


# -- pools -----------------------------------------------------------------------------------


def test_failover_pool_uses_the_first_server_while_it_answers() -> None:
    c = client()
    r = realm(A, B, C)
    for i in range(5):
        out = only(c.forward(access_request(), NAS_SECRET, r, float(i), str(i), source=(NAS[0], i)))
        assert out.address == A_AUTH
        reply_to(c, out, i + 0.01)


def test_load_balance_rotates_ties_between_idle_servers() -> None:
    c = client()
    r = realm(A, B, C, pool=PoolPolicy.LOAD_BALANCE)
    seen = []
    for i in range(6):
        out = only(c.forward(access_request(), NAS_SECRET, r, float(i), str(i), source=(NAS[0], i)))
        seen.append(out.address)
        reply_to(c, out, i + 0.01)
    assert seen == [A_AUTH, B_AUTH, C_AUTH, A_AUTH, B_AUTH, C_AUTH]


def test_load_balance_picks_the_server_with_fewest_outstanding() -> None:
    c = client()
    r = realm(A, B, pool=PoolPolicy.LOAD_BALANCE)
    first = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "1", source=(NAS[0], 1)))
    second = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "2", source=(NAS[0], 2)))
    assert {first.address, second.address} == {A_AUTH, B_AUTH}
    reply_to(c, second, 0.1)  # second's server is idle again, first's is not
    third = only(c.forward(access_request(), NAS_SECRET, r, 0.2, "3", source=(NAS[0], 3)))
    assert third.address == second.address
    fourth = only(c.forward(access_request(), NAS_SECRET, r, 0.2, "4", source=(NAS[0], 4)))
    fifth = only(c.forward(access_request(), NAS_SECRET, r, 0.2, "5", source=(NAS[0], 5)))
    assert [fourth.address, fifth.address].count(A_AUTH) == 1  # a tie in turn, then fewest


# -- own retransmission and failover ---------------------------------------------------------


def test_retransmits_the_same_datagram_on_its_own_timer_at_the_response_window() -> None:
    c = client()
    server = quiet(A, response_window=1.5)
    out = only(c.forward(access_request(), NAS_SECRET, realm(server), 10.0, "ctx", source=NAS))
    assert c.next_timer() == 11.5
    assert c.handle_timer(11.49) == ([], [])
    again, done = c.handle_timer(11.5)
    assert again == [out] and done == []
    assert c.counters.retransmitted == 1 and c.next_timer() == 13.0


def test_an_answer_to_the_first_copy_after_a_retransmission_completes() -> None:
    c = client()
    out = only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS))
    c.handle_timer(1.0)
    assert [d.context for d in reply_to(c, out, 1.2)] == ["ctx"]


def test_fails_over_after_the_retries_to_the_same_server() -> None:
    c = client()
    a, b = quiet(A, retries=2), quiet(B)
    r = realm(a, b)
    out = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS))
    assert only(c.handle_timer(1.0)[0]) == out
    assert only(c.handle_timer(2.0)[0]) == out
    moved = only(c.handle_timer(3.0)[0])
    assert moved.address == B_AUTH
    assert decode(moved.datagram).authenticator != decode(out.datagram).authenticator
    assert c.counters.failovers == 1
    assert [d.context for d in reply_to(c, moved, 3.1)] == ["ctx"]


def test_with_default_timers_failover_happens_inside_a_nas_retry_window() -> None:
    c = client()
    r = realm(A, B)  # response_window 1 s, retries 2, Status-Server probes
    out = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS))
    moved_at = None
    now = 0.0
    while moved_at is None:
        now = c.next_timer() or 0.0
        outs, _ = c.handle_timer(now)
        if any(o.address == B_AUTH for o in outs):
            moved_at = now
    assert moved_at <= 2.0  # before a NAS's first retransmission at 3-5 s
    assert out.address == A_AUTH


def test_every_server_silent_completes_the_request_as_failed() -> None:
    c = client()
    r = realm(quiet(A, retries=1), quiet(B, retries=0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    done: list[Completed[str]] = []
    while not done:
        when = c.next_timer()
        assert when is not None and when < 10
        done = c.handle_timer(when)[1]
    assert [(d.context, d.reply, d.failure) for d in done] == [("ctx", None, Failure.NO_ANSWER)]
    assert c.counters.failed == 1 and c.outstanding == 0


def test_a_realm_with_every_server_dead_fails_at_once() -> None:
    c = client()
    r = realm(quiet(A, retries=0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "first", source=NAS)
    c.handle_timer(1.0)
    assert not c.realm_up(r, Kind.AUTH, 1.0)
    assert c.forward(access_request(), NAS_SECRET, r, 1.5, "second", source=NAS) == []
    assert c.next_timer() == 1.5  # due at once
    outs, done = c.handle_timer(1.5)
    assert outs == [] and [(d.context, d.failure) for d in done] == [("second", Failure.DOWN)]


def test_requests_waiting_on_a_server_that_dies_move_at_once() -> None:
    c = client()
    r = realm(replace(A, retries=1), B)
    first = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "1", source=(NAS[0], 1)))
    second = only(c.forward(access_request(), NAS_SECRET, r, 0.5, "2", source=(NAS[0], 2)))
    assert first.address == second.address == A_AUTH
    c.handle_timer(1.0)  # A suspect: the first retransmitted, a Status-Server sent
    assert only(c.handle_timer(1.5)[0]) == second  # its own retransmission, due again at 2.5
    outs, _ = c.handle_timer(2.0)  # a try sent while suspect unanswered: A dead
    assert [o.address for o in outs] == [B_AUTH, B_AUTH]  # the second does not wait for 2.5
    assert c.counters.failovers == 2


def test_accounting_moved_to_another_server_counts_the_time_spent() -> None:
    c = client()
    r = realm(quiet(A, retries=0), B)
    c.forward(accounting_request(), NAS_SECRET, r, 100.0, "ctx", source=NAS, extra_delay=30)
    moved = only(c.handle_timer(101.0)[0])
    delay = decode(moved.datagram).get(Attr.ACCT_DELAY_TIME)
    assert moved.address == ("203.0.113.21", 1813)
    assert delay is not None and as_integer(delay) == 31


def test_unforwardable_request_fails_with_the_reason() -> None:
    c = client()
    nas = access_request(password=None, extra=[(Attr.USER_PASSWORD, b"bad")])
    assert c.forward(nas, NAS_SECRET, realm(A), 0.0, "ctx", source=NAS) == []
    [done] = c.handle_timer(0.0)[1]
    assert done.failure is Failure.UNFORWARDABLE and "§5.2" in done.detail
    assert c.outstanding == 0


# -- health, probes, events ------------------------------------------------------------------


def run_until(c: Driven[str], end: float, answer_probes: bool) -> None:
    """Drive the timers up to ``end``; answer (or ignore) every probe sent."""
    while (when := c.next_timer()) is not None and when <= end:
        outs, _ = c.handle_timer(when)
        for out in outs:
            code = decode(out.datagram).code
            if answer_probes and code in (Code.STATUS_SERVER, Code.ACCESS_REQUEST):
                assert (
                    c.receive(out.socket, answer(out.datagram, A.secret), out.address, when) == []
                )


def test_suspect_then_dead_then_probed_and_revived_after_three_good_answers() -> None:
    c = client()
    r = realm(A)  # window 1 s, retries 2, revive_interval 5 s, Status-Server
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    run_until(c, 2.0, answer_probes=False)
    events = c.pop_events()
    assert [(e.old, e.new, e.at) for e in events] == [
        (ServerState.ALIVE, ServerState.SUSPECT, 1.0),
        (ServerState.SUSPECT, ServerState.DEAD, 2.0),
    ]
    assert all(e.address == "203.0.113.20" and e.port == 1812 for e in events)
    assert events[0].reason == "no answer to a request in 1 s"
    assert c.next_timer() == 7.0  # the first revive probe, revive_interval later
    run_until(c, 100.0, answer_probes=True)
    [revived] = c.pop_events()
    assert (revived.old, revived.new) == (ServerState.DEAD, ServerState.ALIVE)
    assert revived.at == 17.0 and "3" in revived.reason  # answers at 7, 12, 17
    assert c.counters.probes_answered == 3
    assert c.realm_up(r, Kind.AUTH, 17.0) and c.next_timer() is None


@pytest.mark.parametrize(
    "answer_of",
    [
        lambda datagram: answer(datagram, b"forged"),
        # BlastRADIUS: an Access-Accept to Status-Server must be signed too (the default).
        lambda datagram: answer(datagram, A.secret, message_authenticator=False),
    ],
    ids=["forged", "unsigned"],
)
def test_probe_answers_are_verified_before_they_count(answer_of: Any) -> None:
    c = client()
    r = realm(replace(A, retries=0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)  # dead
    probe = only(c.handle_timer(6.0)[0])
    assert decode(probe.datagram).code == Code.STATUS_SERVER
    assert c.receive(probe.socket, answer_of(probe.datagram), probe.address, 6.1) == []
    assert c.counters.dropped_bad_answer == 1 and c.counters.probes_answered == 0


def test_a_dead_server_missing_a_probe_starts_counting_again() -> None:
    c = client()
    r = realm(replace(A, retries=0, status_check="request"))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)  # dead
    for at in (6.0, 11.0):  # two good answers
        probe = only(c.handle_timer(at)[0])
        c.receive(
            probe.socket, answer(probe.datagram, A.secret, Code.ACCESS_REJECT), probe.address, at
        )
    only(c.handle_timer(16.0)[0])  # the third is lost
    c.handle_timer(17.0)
    for at in (21.0, 26.0):
        probe = only(c.handle_timer(at)[0])
        c.receive(
            probe.socket, answer(probe.datagram, A.secret, Code.ACCESS_REJECT), probe.address, at
        )
    assert not c.realm_up(r, Kind.AUTH, 26.0)  # two in a row since the lost one
    probe = only(c.handle_timer(31.0)[0])
    c.receive(
        probe.socket, answer(probe.datagram, A.secret, Code.ACCESS_REJECT), probe.address, 31.0
    )
    assert c.pop_events()[-1].new is ServerState.ALIVE and c.realm_up(r, Kind.AUTH, 31.0)


def test_a_suspect_server_answering_a_probe_is_alive_again() -> None:
    c = client()
    r = realm(A, B)
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    outs, _ = c.handle_timer(1.0)
    probe = next(o for o in outs if decode(o.datagram).code == Code.STATUS_SERVER)
    c.receive(probe.socket, answer(probe.datagram, A.secret), probe.address, 1.01)
    assert [e.new for e in c.pop_events()] == [ServerState.SUSPECT, ServerState.ALIVE]


def test_a_server_deaf_to_status_server_is_probed_with_requests() -> None:
    c = client()
    r = realm(replace(A, retries=0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)  # dead
    kinds = []
    now = 1.0
    while c.realm_up(r, Kind.AUTH, now) is False and now < 100:
        now = c.next_timer() or 0.0
        for out in c.handle_timer(now)[0]:
            code = decode(out.datagram).code
            kinds.append(code)
            if code == Code.ACCESS_REQUEST:  # an NPS-like server: requests yes, Status-Server no
                raw = answer(out.datagram, A.secret, Code.ACCESS_REJECT)
                c.receive(out.socket, raw, out.address, now)
    assert c.realm_up(r, Kind.AUTH, now)
    # Down or deaf? A request tells; answered, then Status-Server unanswered again: deaf. That
    # miss does not count: three answered requests in a row and it is back.
    ss, req = Code.STATUS_SERVER, Code.ACCESS_REQUEST
    assert kinds == [ss, req, ss, req, req]
    assert [s.probe for s in c.status()] == ["request"]


def test_status_check_none_revives_after_the_revive_interval() -> None:
    c = client()
    r = realm(quiet(A, retries=0, revive_interval=30.0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)
    assert c.next_timer() == 31.0
    assert c.handle_timer(31.0) == ([], [])
    assert [e.new for e in c.pop_events()] == [ServerState.DEAD, ServerState.ALIVE]
    assert c.counters.probes_sent == 0


def test_accounting_probes_go_to_the_acct_port() -> None:
    c = client()
    r = realm(replace(A, retries=0))
    c.forward(accounting_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)
    probe = only(c.handle_timer(6.0)[0])
    assert probe.address == ("203.0.113.20", 1813)
    raw = answer(probe.datagram, A.secret, Code.ACCOUNTING_RESPONSE)
    c.receive(probe.socket, raw, probe.address, 6.1)
    assert c.counters.probes_answered == 1
    assert c.realm_up(r, Kind.AUTH, 6.1)  # the auth port never failed


def test_status_snapshot_for_operators() -> None:
    c = client()
    r = realm(A, B)
    out = only(c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS))
    [a, b] = c.status()
    assert (a.address, a.port, a.kind, a.state, a.outstanding, a.sent) == (
        "203.0.113.20",
        1812,
        Kind.AUTH,
        ServerState.ALIVE,
        1,
        1,
    )
    assert b.sent == 0 and a.probe == "status-server"
    reply_to(c, out, 0.5)
    assert c.status()[0].last_answer == 0.5 and c.status()[0].answered == 1
    assert "secret" not in repr(c.status()) and "secret" not in repr(c.pop_events())


def test_status_has_one_entry_per_realm_of_a_shared_server() -> None:
    c = client()
    first, second = realm(A, name="one.example"), realm(A, name="two.example")
    only(c.forward(access_request(), NAS_SECRET, first, 0.0, "1", source=(NAS[0], 1)))
    only(c.forward(access_request(), NAS_SECRET, second, 0.0, "2", source=(NAS[0], 2)))
    rows = c.status()
    assert [(s.realm, s.address, s.port) for s in rows] == [
        ("one.example", "203.0.113.20", 1812),
        ("two.example", "203.0.113.20", 1812),
    ]
    assert rows[0].outstanding == rows[1].outstanding == 2  # one server, one health


def test_a_request_no_server_answered_names_the_servers_tried() -> None:
    c = client()
    r = realm(quiet(A, retries=0), quiet(B, retries=0))
    c.forward(access_request(), NAS_SECRET, r, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)
    [done] = c.handle_timer(2.0)[1]
    assert done.failure is Failure.NO_ANSWER and done.tried == (A_AUTH, B_AUTH)


def test_reload_stops_probing_servers_no_realm_names() -> None:
    c = client()
    old = realm(replace(A, retries=0))
    c.forward(access_request(), NAS_SECRET, old, 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)  # dead, a probe due at 6
    c.reload([realm(B)])
    assert c.handle_timer(6.0) == ([], []) and c.next_timer() is None
    assert c.status() == []


def test_a_reloaded_realm_with_new_servers_uses_them() -> None:
    c = client()
    only(c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "1", source=(NAS[0], 1)))
    out = only(c.forward(access_request(), NAS_SECRET, realm(B), 0.0, "2", source=(NAS[0], 2)))
    assert out.address == B_AUTH


def test_sockets_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one socket"):
        UpstreamClient[str](0)


def test_retries_zero_kills_on_the_first_miss() -> None:
    c = client()
    c.forward(access_request(), NAS_SECRET, realm(replace(A, retries=0)), 0.0, "ctx", source=NAS)
    c.handle_timer(1.0)
    assert [(e.old, e.new) for e in c.pop_events()] == [(ServerState.ALIVE, ServerState.DEAD)]


def test_counters_export_as_a_dict() -> None:
    c = client()
    c.forward(access_request(), NAS_SECRET, realm(A), 0.0, "ctx", source=NAS)
    counters = c.counters.as_dict()
    assert counters["forwarded"] == 1 and counters["sent"] == 1 and counters["failed"] == 0
