from __future__ import annotations

import pytest

from radiusgw.l2tp.avp import MessageType, message_type_avp
from radiusgw.l2tp.message import ControlMessage, decode
from radiusgw.l2tp.reliable import Arrival, ReliableChannel, seq_before

HELLO = (message_type_avp(MessageType.HELLO),)


PEER = ("192.0.2.1", 1701)


def datagrams(channel: ReliableChannel) -> list[bytes]:
    """What the channel puts on the wire now (every datagram goes to its peer)."""
    out = channel.datagrams_to_send(0.0)
    assert all(destination == PEER for _, destination in out)
    return [data for data, _ in out]


def sent(channel: ReliableChannel) -> list[ControlMessage]:
    return [decode(d) for d in datagrams(channel)]


def peer(ns: int, nr: int, zlb: bool = False) -> ControlMessage:
    return ControlMessage(1, 0, ns, nr, () if zlb else HELLO)


@pytest.mark.parametrize(
    ("a", "b", "before"),
    [
        (0, 1, True),
        (1, 0, False),
        (5, 5, False),
        (65535, 0, True),  # wraps modulo 2^16 (RFC 2661 §5.8)
        (0, 65535, False),
        (0, 32767, True),
        (0, 32768, False),
    ],
)
def test_sequence_numbers_compare_modulo_2_16(a: int, b: int, before: bool) -> None:
    assert seq_before(a, b) is before


def test_each_message_takes_the_next_ns_and_a_zlb_does_not() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.peer_tunnel_id = 9
    assert ch.send(HELLO, 0.0) == 0
    assert ch.send(HELLO, 0.0) == 1
    assert [(m.tunnel_id, m.ns, m.nr) for m in sent(ch)] == [(9, 0, 0), (9, 1, 0)]
    assert ch.receive(peer(0, 0), 0.1) is Arrival.NEW
    ch.acknowledge()
    (zlb,) = sent(ch)
    assert zlb.is_zlb and (zlb.ns, zlb.nr) == (2, 1)


def test_a_message_we_send_carries_the_acknowledgement_so_no_zlb_follows() -> None:
    ch = ReliableChannel(peer=PEER)
    assert ch.receive(peer(0, 0), 0.0) is Arrival.NEW
    ch.send(HELLO, 0.0)
    ch.acknowledge()
    assert [(m.is_zlb, m.nr) for m in sent(ch)] == [(False, 1)]


def test_a_duplicate_is_acknowledged_again_and_not_new() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.receive(peer(0, 0), 0.0)
    ch.acknowledge()
    sent(ch)
    assert ch.receive(peer(0, 0), 0.5) is Arrival.DUPLICATE
    (zlb,) = sent(ch)
    assert zlb.is_zlb and zlb.nr == 1


def test_a_message_from_the_future_is_dropped_unacknowledged() -> None:
    ch = ReliableChannel(peer=PEER)
    assert ch.receive(peer(3, 0), 0.0) is Arrival.OUT_OF_ORDER
    ch.acknowledge()
    assert sent(ch) == []
    assert ch.expected_ns == 0


def test_retransmission_at_1_2_4_8_16_seconds_then_given_up() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.send(HELLO, 100.0)
    (first,) = datagrams(ch)
    timers = [ch.get_timer()]
    for _ in range(4):
        ch.handle_timer(ch.get_timer() or 0.0)
        assert datagrams(ch) == [first]
        timers.append(ch.get_timer())
    assert timers == [101.0, 103.0, 107.0, 115.0, 131.0]
    ch.handle_timer(130.9)  # early: nothing happens
    assert not ch.exhausted and datagrams(ch) == []
    ch.handle_timer(131.0)
    assert ch.exhausted and ch.get_timer() is None and datagrams(ch) == []


def test_an_acknowledgement_stops_the_timer_and_the_next_message_starts_at_1_s() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.send(HELLO, 0.0)
    ch.handle_timer(1.0)
    ch.handle_timer(3.0)
    ch.receive(peer(0, 1, zlb=True), 4.0)
    assert ch.outstanding == 0 and ch.get_timer() is None and ch.is_acknowledged(0)
    ch.send(HELLO, 10.0)
    assert ch.get_timer() == 11.0


def test_retransmissions_carry_the_current_nr() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.send(HELLO, 0.0)
    sent(ch)
    ch.receive(peer(0, 0), 0.5)  # acknowledges nothing of ours
    ch.acknowledge()
    sent(ch)
    ch.handle_timer(1.0)
    (again,) = sent(ch)
    assert (again.ns, again.nr) == (0, 1)


def test_the_peer_window_bounds_unacknowledged_messages() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.peer_window = 2
    for _ in range(3):
        ch.send(HELLO, 0.0)
    assert [m.ns for m in sent(ch)] == [0, 1]
    ch.receive(peer(0, 1, zlb=True), 0.2)
    assert [m.ns for m in sent(ch)] == [2]
    assert ch.outstanding == 2


def test_a_stale_or_bogus_nr_acknowledges_nothing() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.send(HELLO, 0.0)
    ch.send(HELLO, 0.0)
    ch.receive(peer(0, 1, zlb=True), 0.1)
    ch.receive(peer(0, 0, zlb=True), 0.2)  # stale: before our oldest unacknowledged
    ch.receive(peer(0, 7, zlb=True), 0.3)  # bogus: beyond what we sent
    assert ch.outstanding == 1 and not ch.is_acknowledged(1)


def test_ns_wraps_and_nr_zero_acknowledges_65535() -> None:
    ch = ReliableChannel(peer=PEER)
    ch.next_ns = 65535
    assert ch.send(HELLO, 0.0) == 65535
    assert ch.next_ns == 0
    ch.receive(peer(0, 0, zlb=True), 0.1)
    assert ch.is_acknowledged(65535) and ch.get_timer() is None
