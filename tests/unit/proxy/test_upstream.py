"""radiusgw.proxy.upstream: one server's health, from its tries and probes."""

from __future__ import annotations

from dataclasses import replace

from radiusgw.proxy.upstream import REVIVE_ANSWERS, Kind, ProbeKind, ServerState, Upstream
from tests.unit.proxy.helpers import A

ALIVE, SUSPECT, DEAD = ServerState.ALIVE, ServerState.SUSPECT, ServerState.DEAD
SS, REQUEST = ProbeKind.STATUS_SERVER, ProbeKind.REQUEST


def test_new_server_is_alive_on_its_auth_or_acct_port() -> None:
    auth, acct = Upstream(A, Kind.AUTH, 0.0), Upstream(A, Kind.ACCT, 0.0)
    assert auth.state is ALIVE and auth.address == ("203.0.113.20", 1812)
    assert acct.address == ("203.0.113.20", 1813)


def test_first_miss_makes_it_suspect_and_due_for_a_probe_at_once() -> None:
    up = Upstream(A, Kind.AUTH, 0.0)
    change = up.missed(0.0, 1.0)
    assert change is not None and (change.old, change.new, change.at) == (ALIVE, SUSPECT, 1.0)
    assert up.probe_due == 1.0


def test_misses_of_tries_sent_before_the_suspicion_do_not_kill_it() -> None:
    up = Upstream(A, Kind.AUTH, 0.0)  # retries 2
    up.missed(0.0, 1.0)
    for sent in (0.1, 0.5, 0.99):  # a burst that was in flight when it stopped answering
        assert up.missed(sent, sent + 1.0) is None
    assert up.state is SUSPECT
    assert up.missed(1.0, 2.0) is None
    change = up.missed(1.5, 2.5)
    assert change is not None and change.new is DEAD and up.probe_due == 2.5 + A.revive_interval


def test_a_verified_answer_brings_a_suspect_server_back() -> None:
    up = Upstream(A, Kind.AUTH, 0.0)
    up.missed(0.0, 1.0)
    up.missed(1.0, 2.0)
    change = up.answered(2.1)
    assert change is not None and change.new is ALIVE and up.probe_due is None
    assert up.missed(2.1, 3.1) is not None  # counting starts again from ALIVE


def test_a_late_answer_does_not_revive_a_dead_server() -> None:
    up = Upstream(replace(A, retries=0), Kind.AUTH, 0.0)
    up.missed(0.0, 1.0)
    assert up.state is DEAD
    assert up.answered(1.5) is None and up.state is DEAD


def test_dead_server_revives_after_consecutive_probe_answers() -> None:
    up = Upstream(replace(A, retries=0), Kind.AUTH, 0.0)
    up.missed(0.0, 1.0)
    now = 6.0
    for _ in range(REVIVE_ANSWERS - 1):
        up.probe_sent(now)
        assert up.probe_answered(SS, now + 0.1) is None
        assert up.probe_due == now + A.revive_interval
        now += A.revive_interval
    up.probe_sent(now)
    change = up.probe_answered(SS, now + 0.1)
    assert change is not None and change.new is ALIVE


def test_a_probe_lost_while_alive_changes_nothing() -> None:
    up = Upstream(A, Kind.AUTH, 0.0)
    up.missed(0.0, 1.0)
    up.probe_sent(1.0)
    up.answered(1.5)  # a real answer first
    assert up.probe_missed(SS, 1.0, 2.0) is None and up.state is ALIVE


def test_status_check_request_probes_with_requests() -> None:
    up = Upstream(replace(A, status_check="request"), Kind.AUTH, 0.0)
    assert up.next_probe() is REQUEST


def test_a_server_that_answered_status_server_keeps_being_probed_with_it() -> None:
    up = Upstream(replace(A, retries=0), Kind.AUTH, 0.0)
    up.missed(0.0, 1.0)
    up.probe_sent(6.0)
    up.probe_missed(SS, 6.0, 7.0)
    assert up.next_probe() is REQUEST  # down, or deaf to Status-Server?
    up.probe_sent(11.0)
    up.probe_answered(REQUEST, 11.1)
    assert up.next_probe() is SS
    up.probe_sent(16.0)
    up.probe_answered(SS, 16.1)
    up.probe_sent(21.0)
    up.probe_missed(SS, 21.0, 22.0)
    assert up.next_probe() is SS  # it has answered Status-Server: a miss is a miss


def test_revive_unchecked_only_for_dead_servers() -> None:
    up = Upstream(replace(A, status_check="none"), Kind.AUTH, 0.0)
    assert up.revive_unchecked(1.0) is None
    up.missed(0.0, 1.0)
    assert up.probe_due is None  # suspect, but not probed
