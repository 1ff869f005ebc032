"""recvmmsg/sendmmsg (``radiusgw/server/_mmsg.c``) against the socket module's own calls, on
loopback sockets: the same datagrams, in the same order, from the same addresses. Built by
``make compiled``; the pure-Python pass has no extensions and skips this module (its edge uses
the socket module's calls, which ``test_datagrams`` runs both ways)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiusgw.server.datagrams import MAX_DATAGRAM, READ_BURST
from tests.unit.server.test_datagrams import _loopback_v6

mmsg = pytest.importorskip("radiusgw.server._mmsg", reason="the C extension is not built")


def _bound(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    return sock


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    sock = _bound()
    yield sock
    sock.close()


def _wait_readable(sock: socket.socket) -> None:
    assert select.select([sock], [], [], 2.0)[0], "nothing arrived"


def _receive_all(sock: socket.socket, count: int) -> list[tuple[bytes, object]]:
    """``count`` datagrams read with ``receive``, waiting for each batch (2 s at most)."""
    got: list[tuple[bytes, object]] = []
    while len(got) < count:
        _wait_readable(sock)
        got += mmsg.receive(sock.fileno(), min(mmsg.BATCH, count - len(got)))
    return got


def test_one_call_reads_a_whole_burst() -> None:
    # DatagramSocket reads a burst with one receive, so the burst must fit one call.
    assert READ_BURST <= mmsg.BATCH


def test_an_empty_socket_gives_an_empty_list(receiver: socket.socket) -> None:
    assert mmsg.receive(receiver.fileno(), mmsg.BATCH) == []


def test_datagrams_arrive_in_order_with_their_senders_addresses(receiver: socket.socket) -> None:
    # Two NAS on loopback aliases, as the bench's: each datagram keeps its own source.
    senders = [_bound("127.0.0.10"), _bound("127.0.0.11")]
    try:
        sent = []
        for i in range(10):
            sender = senders[i % 2]
            sender.sendto(bytes([i]) * (i + 1), receiver.getsockname())
            sent.append((bytes([i]) * (i + 1), sender.getsockname()))
        assert _receive_all(receiver, 10) == sent
    finally:
        for sender in senders:
            sender.close()


def test_at_most_count_are_read_and_the_rest_wait(receiver: socket.socket) -> None:
    sender = _bound()
    try:
        for i in range(5):
            sender.sendto(bytes([i]), receiver.getsockname())
        first = _receive_all(receiver, 3)
        assert len(first) == 3
        rest = _receive_all(receiver, 2)
        assert [d for d, _ in first + rest] == [bytes([i]) for i in range(5)]
        assert mmsg.receive(receiver.fileno(), 3) == []
    finally:
        sender.close()


@pytest.mark.parametrize("count", [0, -1, 65])
def test_a_count_out_of_range_is_a_value_error(receiver: socket.socket, count: int) -> None:
    with pytest.raises(ValueError, match="count must be 1 to 64"):
        mmsg.receive(receiver.fileno(), count)


def test_a_closed_descriptor_is_an_os_error() -> None:
    sock = _bound()
    fd = sock.fileno()
    sock.close()
    with pytest.raises(OSError):
        mmsg.receive(fd, 4)


def test_an_oversized_datagram_is_cut_to_the_radius_maximum(receiver: socket.socket) -> None:
    sender = _bound()
    try:
        sender.sendto(b"x" * (MAX_DATAGRAM + 100), receiver.getsockname())
        [(data, _)] = _receive_all(receiver, 1)
        assert data == b"x" * MAX_DATAGRAM
    finally:
        sender.close()


def test_send_reaches_each_destination_and_counts_what_it_could_not_send(
    receiver: socket.socket,
) -> None:
    sender, other = _bound("127.0.0.10"), _bound("127.0.0.11")
    try:
        here, there = receiver.getsockname(), other.getsockname()
        datagrams = [
            (b"one", here),
            (b"refused", ("127.0.0.1", 0)),  # EINVAL from the kernel
            (b"two", there),
            (b"no address", ("not-an-address", 1812)),  # numeric only, as the gateway's are
            (b"not an address", "127.0.0.1"),
            (12345, here),  # not bytes-like
            (b"three", here),
            (bytearray(b"four"), here),  # any bytes-like data, as socket.sendto takes
            (memoryview(b"five"), here),
        ]
        assert mmsg.send(sender.fileno(), datagrams) == 4
        got = [d for d, _ in _receive_all(receiver, 4)]
        assert got == [b"one", b"three", b"four", b"five"]
        assert _receive_all(other, 1) == [(b"two", sender.getsockname())]
        assert mmsg.receive(receiver.fileno(), 8) == []
    finally:
        sender.close()
        other.close()


def test_send_rejects_what_is_not_a_list(receiver: socket.socket) -> None:
    with pytest.raises(TypeError):
        mmsg.send(receiver.fileno(), ((b"x", receiver.getsockname()),))


def test_more_than_a_batch_goes_out_whole_and_in_order(receiver: socket.socket) -> None:
    sender = _bound()
    try:
        count = 3 * mmsg.BATCH + 5
        datagrams = [(i.to_bytes(2, "big"), receiver.getsockname()) for i in range(count)]
        assert mmsg.send(sender.fileno(), datagrams) == 0
        assert [d for d, _ in _receive_all(receiver, count)] == [d for d, _ in datagrams]
    finally:
        sender.close()


@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
def test_ipv6_addresses_are_the_socket_modules_four_tuples() -> None:
    one, two = _bound("::1"), _bound("::1")
    try:
        one.sendto(b"ping", two.getsockname())
        [(data, address)] = _receive_all(two, 1)
        assert (data, address) == (b"ping", one.getsockname())
        assert mmsg.send(two.fileno(), [(b"pong", address)]) == 0
        _wait_readable(one)
        assert one.recvfrom(100) == (b"pong", two.getsockname())
    finally:
        one.close()
        two.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=MAX_DATAGRAM + 50), min_size=1, max_size=32))
def test_what_send_sends_receive_reads_back_as_recvfrom_would(payloads: list[bytes]) -> None:
    receiver, sender = _bound(), _bound()
    try:
        assert mmsg.send(sender.fileno(), [(p, receiver.getsockname()) for p in payloads]) == 0
        expected = [(p[:MAX_DATAGRAM], sender.getsockname()) for p in payloads]
        assert _receive_all(receiver, len(payloads)) == expected
    finally:
        receiver.close()
        sender.close()


def test_a_source_seen_again_gives_the_same_tuple(receiver: socket.socket) -> None:
    # A NAS sends from a few ports: its address is made once and shared, not three new
    # objects per datagram; another source still has its own.
    one, two = _bound("127.0.0.10"), _bound("127.0.0.11")
    try:
        for sender in (one, two, one):
            sender.sendto(b"x", receiver.getsockname())
        (_, first), (_, other), (_, again) = _receive_all(receiver, 3)
        assert first == one.getsockname() and other == two.getsockname()
        assert again is first
        assert other is not first
    finally:
        one.close()
        two.close()


def _from_passing_sources(receiver: socket.socket, count: int) -> None:
    """``count`` datagrams, each from a socket of its own made and closed for it, received and
    checked against their sources: more sources than the table holds."""
    sources = []
    for start in range(0, count, mmsg.BATCH):
        for _ in range(min(mmsg.BATCH, count - start)):
            sender = _bound()
            sender.sendto(b"passing", receiver.getsockname())
            sources.append(sender.getsockname())
            sender.close()
        got = _receive_all(receiver, min(mmsg.BATCH, count - start))
        assert [address for _, address in got] == sources
        sources.clear()


def test_more_sources_than_the_table_holds_each_keep_their_address(
    receiver: socket.socket,
) -> None:
    _from_passing_sources(receiver, 3 * mmsg.ADDRESS_CACHE)


def test_an_address_whose_slot_another_took_still_sends_to_its_source(
    receiver: socket.socket,
) -> None:
    # ``send`` takes a tuple ``receive`` made from the table while the tuple is there, and
    # parses it once its slot holds another source's: either way the datagram reaches it.
    # With 4 x ADDRESS_CACHE sources passing, almost every one of 64 slots is taken over.
    nas = [_bound() for _ in range(64)]
    try:
        for sender in nas:
            sender.sendto(b"hello", receiver.getsockname())
        addresses = [address for _, address in _receive_all(receiver, len(nas))]
        assert addresses == [sender.getsockname() for sender in nas]
        _from_passing_sources(receiver, 4 * mmsg.ADDRESS_CACHE)
        replies = [(b"reply %d" % i, address) for i, address in enumerate(addresses)]
        assert mmsg.send(receiver.fileno(), replies) == 0
        for i, sender in enumerate(nas):
            _wait_readable(sender)
            assert sender.recvfrom(100) == (b"reply %d" % i, receiver.getsockname())
    finally:
        for sender in nas:
            sender.close()
