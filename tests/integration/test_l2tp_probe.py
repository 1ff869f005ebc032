"""The LNS health probe against a real LNS: xl2tpd on 127.0.0.1, one per test, stopped by PID."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from radiusgw.l2tp.control import ControlConnection, State
from radiusgw.server.lns_probe import ProbeStatus, probe_lns
from tests.integration.xl2tpd import Xl2tpd, free_udp_port, running_xl2tpd

pytestmark = pytest.mark.peers

SECRET = "tunnel-s3cret"


@pytest.fixture
def lns(tmp_path: Path) -> Iterator[Xl2tpd]:
    with running_xl2tpd(tmp_path / "lns", SECRET) as server:
        yield server
    with pytest.raises(ProcessLookupError):  # stopped and reaped, by its own PID
        os.kill(server.pid, 0)


class Events:
    """A stand-in for the structlog logger: keeps what the probe logs."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))


async def test_right_secret_brings_the_tunnel_up_and_stops_it_cleanly(lns: Xl2tpd) -> None:
    result = await probe_lns(lns.address, lns.port, SECRET.encode())
    assert result.status is ProbeStatus.UP, result.detail
    assert "'lns1' came up and was stopped cleanly" in result.detail
    assert result.rtt is not None and 0 < result.rtt < 1
    log = lns.log()
    assert "Connection established to 127.0.0.1" in log
    assert "Connection closed to 127.0.0.1" in log  # xl2tpd took our StopCCN, not only acked it


@pytest.mark.parametrize(
    ("challenge", "detail"),
    [
        (True, "the LNS's Challenge Response does not match our secret"),
        (False, "Invalid challenge authentication"),  # xl2tpd's own StopCCN after our SCCCN
    ],
)
async def test_wrong_secret_is_a_secret_mismatch(lns: Xl2tpd, challenge: bool, detail: str) -> None:
    result = await probe_lns(lns.address, lns.port, b"not-the-secret", challenge=challenge)
    assert result.status is ProbeStatus.SECRET_MISMATCH
    assert detail in result.detail
    assert result.rtt is not None


async def test_no_secret_against_a_challenging_lns_is_a_secret_mismatch(lns: Xl2tpd) -> None:
    result = await probe_lns(lns.address, lns.port, None)
    assert result.status is ProbeStatus.SECRET_MISMATCH
    assert "no secret is configured" in result.detail


async def test_probing_twice_with_the_same_tunnel_id_comes_up_twice(lns: Xl2tpd) -> None:
    # xl2tpd ignores an SCCRQ for a Tunnel ID it still holds: the second probe can only come up
    # if the first one's StopCCN really cleared the tunnel.
    for _ in range(2):
        result = await probe_lns(lns.address, lns.port, SECRET.encode(), tunnel_id=4242)
        assert result.status is ProbeStatus.UP, result.detail
    assert lns.log().count("Connection closed to 127.0.0.1") == 2


async def test_nothing_listening_is_down_within_the_timeout() -> None:
    port = free_udp_port()
    started = time.monotonic()
    result = await probe_lns("127.0.0.1", port, SECRET.encode(), timeout=1.5)
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.DOWN
    assert result.detail == f"127.0.0.1:{port}: no answer to SCCRQ within 1.5 s"
    assert result.rtt is None
    assert 1.5 <= elapsed < 2.5


async def test_a_silent_lns_gets_the_sccrq_retransmitted_at_0_1_and_3_s() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        result = await probe_lns("127.0.0.1", silent.getsockname()[1], None, timeout=3.5)
        arrivals = []
        while True:
            try:
                arrivals.append(silent.recv(4096))
            except BlockingIOError:
                break
    assert result.status is ProbeStatus.DOWN
    assert len(arrivals) == 3  # sent at 0 s, retransmitted at 1 s and 3 s (RFC 2661 §5.8)
    assert arrivals[0] == arrivals[1] == arrivals[2]  # the same SCCRQ, Ns 0


async def test_garbage_answers_are_dropped_and_logged() -> None:
    loop = asyncio.get_running_loop()

    class Garbage(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(b"\xc8\x02\x00\x05" + bytes(12), addr)  # Length 5

    transport, _ = await loop.create_datagram_endpoint(Garbage, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        events = Events()
        result = await probe_lns("127.0.0.1", port, None, timeout=1.5, log=events)
    finally:
        transport.close()
    assert result.status is ProbeStatus.DOWN
    reasons = [fields["reason"] for event, fields in events.seen if event == "l2tp-dropped"]
    assert reasons == ["Length 5 is shorter than the control header"] * 2  # SCCRQ at 0 s and 1 s


def test_the_probe_runs_on_uvloop(lns: Xl2tpd) -> None:
    result = uvloop.run(probe_lns(lns.address, lns.port, SECRET.encode()))
    assert result.status is ProbeStatus.UP, result.detail


def test_xl2tpd_reveals_our_hidden_avps(lns: Xl2tpd) -> None:
    # SCCCN's Challenge Response and StopCCN's Assigned Tunnel ID travel hidden (RFC 2661 §4.3).
    # The tunnel only comes up, and is only closed, if xl2tpd decrypts both correctly.
    conn = ControlConnection(
        4343,
        SECRET.encode(),
        "lac1",
        time.monotonic(),
        peer=(lns.address, lns.port),
        hide_avps=True,
    )
    sent = _drive_blocking(conn)
    assert conn.state is State.CLOSED and conn.failure is None and conn.established
    assert b"\x00\x24" in sent[1]  # the SCCCN carries a Random Vector (type 36)
    log = lns.log()
    assert "Connection established to 127.0.0.1" in log
    assert "Connection closed to 127.0.0.1" in log


def _drive_blocking(conn: ControlConnection) -> list[bytes]:
    """Bring the tunnel up and stop it over a blocking socket; the datagrams sent."""
    sent: list[bytes] = []
    deadline = time.monotonic() + 5
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        conn.start(time.monotonic())
        while conn.state is not State.CLOSED and time.monotonic() < deadline:
            for datagram, destination in conn.datagrams_to_send(time.monotonic()):
                sent.append(datagram)
                sock.sendto(datagram, destination)
            if conn.state is State.ESTABLISHED:
                conn.stop(time.monotonic())
                continue
            sock.settimeout(0.2)
            try:
                conn.receive_datagram(*sock.recvfrom(4096), time.monotonic())
            except TimeoutError:
                conn.handle_timer(time.monotonic())
        for datagram, destination in conn.datagrams_to_send(time.monotonic()):
            sock.sendto(datagram, destination)
    return sent
