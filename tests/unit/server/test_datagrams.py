"""The event loop's UDP edge, on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from radiusgw.server.datagrams import MAX_DATAGRAM, READ_BURST, DatagramSocket


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_answers_each_datagram_to_its_sender(peer: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    edge: DatagramSocket

    def echo(data: bytes, address: Any) -> None:
        edge.sendto(data.upper(), address)

    edge = DatagramSocket(loop, _bound(), echo)
    try:
        for word in (b"one", b"two"):
            peer.sendto(word, edge.getsockname())
            answer, source = await loop.run_in_executor(None, peer.recvfrom, 100)
            assert (answer, source) == (word.upper(), edge.getsockname())
    finally:
        edge.close()


async def test_one_readiness_reads_at_most_a_burst(peer: socket.socket) -> None:
    # A flood on one socket leaves the loop free for its other work between bursts.
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []
    edge = DatagramSocket(loop, _bound(), lambda data, _address: seen.append(data))
    loop.remove_reader(edge._fd)  # drive the readiness callback by hand
    try:
        for i in range(READ_BURST + 10):
            peer.sendto(i.to_bytes(2, "big"), edge.getsockname())
        await asyncio.sleep(0.05)
        edge._readable()
        assert len(seen) == READ_BURST
        edge._readable()
        assert [int.from_bytes(d, "big") for d in seen] == list(range(READ_BURST + 10))
        edge._readable()  # nothing left: returns at once
        assert len(seen) == READ_BURST + 10
    finally:
        edge._fd = -1  # its reader is already removed
        edge._sock.close()


async def test_an_oversized_datagram_arrives_cut_to_the_radius_maximum(
    peer: socket.socket,
) -> None:
    # RFC 2865 §3: 4096 octets at most; the cut packet then fails the codec's length check.
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()
    edge = DatagramSocket(loop, _bound(), lambda data, _address: got.set_result(data))
    try:
        peer.sendto(b"x" * (MAX_DATAGRAM + 100), edge.getsockname())
        assert len(await asyncio.wait_for(got, 2.0)) == MAX_DATAGRAM
    finally:
        edge.close()


async def test_a_refused_send_is_counted_not_raised() -> None:
    loop = asyncio.get_running_loop()
    edge = DatagramSocket(loop, _bound(), lambda data, address: None)
    try:
        edge.sendto(b"x", ("127.0.0.1", 0))  # EINVAL from the kernel
        assert edge.send_failures == 1
    finally:
        edge.close()


async def test_close_stops_reading_and_is_idempotent() -> None:
    loop = asyncio.get_running_loop()
    sock = _bound()
    edge = DatagramSocket(loop, sock, lambda data, address: None)
    edge.close()
    edge.close()
    assert sock.fileno() == -1
