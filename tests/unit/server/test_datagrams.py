"""The event loop's UDP edge, on real loopback sockets: a socket alone, and a machine driven
through it (an LNS probe to ::1; a Disconnect-Request to ::1 is in the integration tests)."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from radiusgw.l2tp.avp import MessageType
from radiusgw.l2tp.control import ControlConnection, State, StateChanged
from radiusgw.server.datagrams import (
    MAX_DATAGRAM,
    READ_BURST,
    YOUNG_EVERY,
    DatagramSocket,
    MachineEdge,
)
from radiusgw.server.lns_probe import ProbeStatus, probe_lns
from tests.unit.l2tp.test_control import LOCAL, FakeLns


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


# Each socket test runs with recvmmsg/sendmmsg (where the extension is built: otherwise both
# runs take the socket module's calls) and with the socket module's calls.
@pytest.fixture(params=[True, False], ids=["batched", "each"])
def batched(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_answers_each_datagram_to_its_sender(peer: socket.socket, batched: bool) -> None:
    loop = asyncio.get_running_loop()
    edge: DatagramSocket

    def echo(data: bytes, address: Any) -> None:
        edge.sendto(data.upper(), address)

    edge = DatagramSocket(loop, _bound(), echo, batched=batched)
    try:
        for word in (b"one", b"two"):
            peer.sendto(word, edge.getsockname())
            answer, source = await loop.run_in_executor(None, peer.recvfrom, 100)
            assert (answer, source) == (word.upper(), edge.getsockname())
    finally:
        edge.close()


async def test_one_readiness_reads_at_most_a_burst(peer: socket.socket, batched: bool) -> None:
    # A flood on one socket leaves the loop free for its other work between bursts.
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []
    edge = DatagramSocket(loop, _bound(), lambda data, _address: seen.append(data), batched=batched)
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
    peer: socket.socket, batched: bool
) -> None:
    # RFC 2865 §3: 4096 octets at most; the cut packet then fails the codec's length check.
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()
    edge = DatagramSocket(
        loop, _bound(), lambda data, _address: got.set_result(data), batched=batched
    )
    try:
        peer.sendto(b"x" * (MAX_DATAGRAM + 100), edge.getsockname())
        assert len(await asyncio.wait_for(got, 2.0)) == MAX_DATAGRAM
    finally:
        edge.close()


async def test_a_refused_send_is_counted_not_raised(batched: bool) -> None:
    loop = asyncio.get_running_loop()
    edge = DatagramSocket(loop, _bound(), lambda data, address: None, batched=batched)
    try:
        edge.sendto(b"x", ("127.0.0.1", 0))  # EINVAL from the kernel
        assert edge.send_failures == 1
        edge.send_many([(b"x", ("127.0.0.1", 0)), (b"y", ("127.0.0.1", 0))])
        assert edge.send_failures == 3
    finally:
        edge.close()
    edge.send_many([(b"x", ("127.0.0.1", 9))])  # closed: counted too
    assert edge.send_failures == 4


async def test_the_answers_of_one_burst_all_reach_their_senders(batched: bool) -> None:
    """Batched, the answers given while a burst is read wait and go together at its end: each
    one reaches its own sender, in order, and one the kernel refuses is counted, not raised."""
    loop = asyncio.get_running_loop()
    edge: DatagramSocket
    refused = ("127.0.0.1", 0)

    def answer(data: bytes, address: Any) -> None:
        edge.sendto(data + b"!", address)
        if data == b"3":
            edge.sendto(b"lost", refused)

    edge = DatagramSocket(loop, _bound(), answer, batched=batched)
    loop.remove_reader(edge._fd)  # one burst, by hand
    senders = [_bound() for _ in range(3)]
    try:
        for i in range(12):
            senders[i % 3].sendto(str(i).encode(), edge.getsockname())
        await asyncio.sleep(0.05)
        edge._readable()
        for index, sender in enumerate(senders):
            sender.settimeout(2.0)
            got = [sender.recvfrom(100) for _ in range(4)]
            assert got == [(f"{i}!".encode(), edge.getsockname()) for i in range(index, 12, 3)]
        assert edge.send_failures == 1
    finally:
        edge._fd = -1
        edge._sock.close()
        for sender in senders:
            sender.close()


async def test_what_another_socket_sends_during_a_burst_reaches_its_peer(
    peer: socket.socket, batched: bool
) -> None:
    """A proxy's forward: a request read on one socket is sent on the loop's other one. Batched,
    it waits for the end of the burst that read the request, with the burst's others."""
    loop = asyncio.get_running_loop()
    upstream = DatagramSocket(loop, _bound(), lambda data, address: None, batched=batched)
    nas = DatagramSocket(
        loop,
        _bound(),
        lambda data, _address: upstream.sendto(data, peer.getsockname()),
        batched=batched,
    )
    loop.remove_reader(nas._fd)
    sender = _bound()
    try:
        for i in range(20):
            sender.sendto(bytes([i]), nas.getsockname())
        await asyncio.sleep(0.05)
        nas._readable()
        got = [peer.recvfrom(10) for _ in range(20)]
        assert got == [(bytes([i]), upstream.getsockname()) for i in range(20)]
        assert upstream.send_failures == 0
        upstream.sendto(b"after", peer.getsockname())  # outside a burst: at once
        assert peer.recvfrom(10) == (b"after", upstream.getsockname())
    finally:
        nas._fd = -1
        nas._sock.close()
        upstream.close()
        sender.close()


async def test_send_many_sends_each_in_order(peer: socket.socket, batched: bool) -> None:
    loop = asyncio.get_running_loop()
    edge = DatagramSocket(loop, _bound(), lambda data, address: None, batched=batched)
    try:
        edge.send_many([(bytes([i]), peer.getsockname()) for i in range(100)])
        assert [peer.recvfrom(10)[0] for _ in range(100)] == [bytes([i]) for i in range(100)]
        assert edge.send_failures == 0
    finally:
        edge.close()


async def test_a_paused_socket_leaves_datagrams_to_the_kernel_until_resumed(
    peer: socket.socket, batched: bool
) -> None:
    """Flow control (the accounting applier's): while paused nothing is read, and what came
    meanwhile is read, in order, once resumed."""
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []
    edge = DatagramSocket(loop, _bound(), lambda data, _address: seen.append(data), batched=batched)
    try:
        edge.pause()
        edge.pause()  # idempotent
        for word in (b"one", b"two", b"three"):
            peer.sendto(word, edge.getsockname())
        await asyncio.sleep(0.05)
        assert seen == []
        edge.resume()
        edge.resume()
        for _ in range(200):
            if len(seen) == 3:
                break
            await asyncio.sleep(0.005)
        assert seen == [b"one", b"two", b"three"]
        edge.pause()
    finally:
        edge.close()  # paused: nothing to remove from the loop
    edge.resume()  # closed: stays closed (no reader added for a closed descriptor)


async def test_close_stops_reading_and_is_idempotent() -> None:
    loop = asyncio.get_running_loop()
    sock = _bound()
    edge = DatagramSocket(loop, sock, lambda data, address: None)
    edge.close()
    edge.close()
    assert sock.fileno() == -1


def _loopback_v6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class _TinyLns(asyncio.DatagramProtocol):
    """An LNS without a secret on ::1 (xl2tpd speaks IPv4 only): SCCRP to SCCRQ, a ZLB to the
    rest (SCCCN, StopCCN), built by the unit tests' hand-made LNS."""

    def __init__(self) -> None:
        self.lns = FakeLns(secret=None)
        self.seen: list[MessageType | int | None] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message = self.lns.take(data)
        if message.is_zlb:
            return
        self.seen.append(message.message_type)
        if message.message_type == MessageType.SCCRQ:
            self.transport.sendto(self.lns.sccrp(message, challenge=None), addr)
        else:
            self.transport.sendto(self.lns.zlb(), addr)


@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
async def test_an_lns_probe_to_ipv6_loopback_goes_through_the_one_edge() -> None:
    loop = asyncio.get_running_loop()
    transport, lns = await loop.create_datagram_endpoint(_TinyLns, local_addr=("::1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        result = await probe_lns("::1", port, None, tunnel_id=LOCAL, timeout=5.0)
    finally:
        transport.close()
    assert result.status is ProbeStatus.UP, result.detail
    assert result.detail.startswith(f"[::1]:{port}: tunnel {LOCAL}/")
    assert result.detail.endswith("came up and was stopped cleanly")
    assert lns.seen == [MessageType.SCCRQ, MessageType.SCCCN, MessageType.STOPCCN]


@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
async def test_the_edge_opens_ipv6_sockets_for_a_machine_whose_peer_is_ipv6() -> None:
    # What probe_lns does, by hand: the edge sends, feeds the answers back and keeps the timer.
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_TinyLns, local_addr=("::1", 0))
    states: list[State] = []
    up = asyncio.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, StateChanged):
            states.append(event.state)
            if event.state is State.ESTABLISHED:
                up.set()

    port = transport.get_extra_info("sockname")[1]
    conn = ControlConnection(LOCAL, None, "lac", time.monotonic(), peer=("::1", port))
    edge = MachineEdge(loop, conn, on_event, None, name="lac", clock=time.monotonic)
    try:
        conn.start(time.monotonic())
        edge.flush()
        await asyncio.wait_for(up.wait(), 5.0)
        assert list(edge.local_ports) == [socket.AF_INET6]
    finally:
        edge.close()
        transport.close()
    assert states[:3] == [State.WAIT_CTL_REPLY, State.WAIT_CTL_CONN_ACK, State.ESTABLISHED]
    assert edge.send_failures == 0


async def _collections_while_reading(
    peer: socket.socket, batched: bool, datagrams: int, *, collector_runs: bool
) -> int:
    """Young collections started while ``datagrams`` are read with the collector's threshold
    out of reach; ``collector_runs``: one by hand after each burst, as the threshold would
    make."""
    loop = asyncio.get_running_loop()
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            collections.append(0)

    edge = DatagramSocket(loop, _bound(), lambda _data, _address: None, batched=batched)
    loop.remove_reader(edge._fd)  # drive the readiness callback by hand
    thresholds = gc.get_threshold()
    gc.set_threshold(1 << 30)  # none by the threshold; the collector stays on
    try:
        sent = 0
        while sent < datagrams:
            for _ in range(READ_BURST):
                peer.sendto(b"x", edge.getsockname())
            sent += READ_BURST
            await asyncio.sleep(0.005)
            gc.callbacks.append(seen)
            try:
                edge._readable()
            finally:
                gc.callbacks.remove(seen)
            if collector_runs:
                gc.collect(0)
    finally:
        gc.set_threshold(*thresholds)
        edge._fd = -1  # its reader is already removed
        edge._sock.close()
    return len(collections)


async def test_the_young_generation_is_collected_every_so_many_datagrams_read(
    peer: socket.socket, batched: bool
) -> None:
    # Keys recycled through the tuple free list do not count towards the collector's own
    # threshold (YoungCollections' docstring): the edge's count of datagrams does. The count
    # is the process's, so what earlier tests read moves the first collection.
    made = await _collections_while_reading(peer, batched, 4 * YOUNG_EVERY, collector_runs=False)
    assert 3 <= made <= 5


async def test_no_young_collection_is_added_where_the_collector_makes_its_own(
    peer: socket.socket, batched: bool
) -> None:
    made = await _collections_while_reading(peer, batched, 4 * YOUNG_EVERY, collector_runs=True)
    assert made == 0


async def test_no_young_collection_while_the_collector_is_off(
    peer: socket.socket, batched: bool
) -> None:
    # As during the account cache's preload (radiusgw.server.worker.kept_from_the_collector).
    gc.disable()
    try:
        made = await _collections_while_reading(
            peer, batched, 4 * YOUNG_EVERY, collector_runs=False
        )
    finally:
        gc.enable()
    assert made == 0
