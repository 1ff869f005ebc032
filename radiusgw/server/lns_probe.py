"""Live LNS health over real L2TP: one tunnel set-up and tear-down per probe (issue 4).

``probe_lns`` is the thin asyncio edge over ``radiusgw.l2tp.ControlConnection``: it opens a UDP
socket on an ephemeral port, brings a control connection up with the realm's tunnel secret
(SCCRQ, SCCRP, SCCCN, acknowledged), stops it at once with StopCCN, and reports:

- ``UP``: the tunnel came up (it is then stopped; an unacknowledged StopCCN is noted, not fatal).
- ``DOWN``: no usable answer within ``timeout``: nothing listening, the host unreachable, or an
  LNS that went silent half-way. The default timeout is the whole retransmission schedule of
  RFC 2661 §5.8 (tries at 0, 1, 3, 7 and 15 s, given up at 31 s).
- ``SECRET_MISMATCH``: the LNS answered but tunnel authentication (RFC 2661 §5.1.1) failed,
  in either direction, or the LNS challenged and no secret was given.
- ``ERROR``: the LNS refused the tunnel for another reason (StopCCN, with its result and error
  codes in ``detail``) or broke the protocol.

Rules:
- The address is an IP literal (an LNS comes from Tunnel-Server-Endpoint, RFC 2868 §3.3); its
  family picks the socket's. The socket is unconnected and closed on every way out.
- Datagrams count only from the LNS's address. The first valid answer may come from another
  port than the one probed; later messages go to that port (RFC 2661 §8.1). xl2tpd answers
  from its listening port.
- Every probe takes a random local Tunnel ID: xl2tpd ignores a second SCCRQ with a Tunnel ID it
  still holds from the same host ("requested tunnel twice").
- Works on any asyncio loop (the server runs uvloop). Time is ``time.monotonic()``, not the
  loop's clock: uvloop's counts whole milliseconds, too coarse for a loopback round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from radiusgw.l2tp.control import ControlConnection, FailureKind, State
from radiusgw.l2tp.reliable import MAX_TRIES, RETRANSMIT_INITIAL

# RFC 2661 §5.8: 1 + 2 + 4 + 8 + 16 s, the time after which a silent peer is given up.
DEFAULT_TIMEOUT = RETRANSMIT_INITIAL * (2**MAX_TRIES - 1)


class ProbeStatus(Enum):
    UP = "up"
    DOWN = "down"
    SECRET_MISMATCH = "secret-mismatch"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's outcome; ``rtt`` is seconds from the first SCCRQ to the SCCRP, if any."""

    status: ProbeStatus
    detail: str
    rtt: float | None = None


class _ProbeProtocol(asyncio.DatagramProtocol):
    """Feeds the LNS's datagrams to the connection and wakes the probe."""

    def __init__(self, conn: ControlConnection, lns: Any, peer: Any, log: Any) -> None:
        self.conn = conn
        self.lns = lns
        self.peer = peer
        self.peer_locked = False
        self.log = log
        self.error: OSError | None = None
        self.wakeup = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            source = ipaddress.ip_address(addr[0])
        except ValueError:
            return
        if source != self.lns:
            self._debug("l2tp-dropped", reason=f"from {addr[0]}, not the LNS")
            return
        dropped = self.conn.dropped
        self.conn.receive(data, time.monotonic())
        if self.conn.dropped != dropped:
            self._debug("l2tp-dropped", reason=self.conn.last_drop_reason)
        elif not self.peer_locked:
            self.peer, self.peer_locked = addr, True  # RFC 2661 §8.1
        self.wakeup.set()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError) and self.error is None:
            self.error = exc
        self.wakeup.set()

    def _debug(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.debug(event, lns=str(self.lns), **fields)


async def probe_lns(
    address: str,
    port: int,
    secret: bytes | None,
    *,
    host_name: str = "radiusgw-probe",
    timeout: float = DEFAULT_TIMEOUT,
    tunnel_id: int | None = None,
    challenge: bool = True,
    log: Any = None,
) -> ProbeResult:
    """Set a tunnel up to the LNS at ``address``:``port`` and stop it; say how it went.

    ``challenge`` (default) authenticates the LNS as well when there is a secret. Raises
    ``ValueError`` only when ``address`` is not an IP address; everything the network or the
    LNS does becomes a ``ProbeResult``.
    """
    lns = ipaddress.ip_address(address)
    family = socket.AF_INET6 if lns.version == 6 else socket.AF_INET
    loop = asyncio.get_running_loop()
    conn = ControlConnection(
        tunnel_id or secrets.randbelow(0xFFFF) + 1,
        secret,
        host_name,
        time.monotonic(),
        challenge=challenge,
    )
    protocol = _ProbeProtocol(conn, lns, (address, port), log)
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=("::" if family == socket.AF_INET6 else "0.0.0.0", 0)
        )
    except OSError as exc:
        return ProbeResult(ProbeStatus.ERROR, f"cannot open a UDP socket: {exc}")
    try:
        conn.start(time.monotonic())
        await _drive(conn, transport, protocol, time.monotonic() + timeout)
    finally:
        transport.close()
    return _outcome(conn, protocol, address, port, timeout)


async def _drive(
    conn: ControlConnection,
    transport: asyncio.DatagramTransport,
    protocol: _ProbeProtocol,
    deadline: float,
) -> None:
    """Run the connection until it closes, the deadline passes, or sending fails."""
    while True:
        for datagram in conn.datagrams_to_send():
            transport.sendto(datagram, protocol.peer)
        if protocol.error is not None or conn.state is State.CLOSED:
            return
        now = time.monotonic()
        if conn.state is State.ESTABLISHED:
            conn.stop(now)  # the tunnel is up: that is all a probe needs to know
            continue
        timer = conn.next_timer()
        wake_at = deadline if timer is None else min(timer, deadline)
        if wake_at > now:
            protocol.wakeup.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and the probe would then outlive its monitor.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wake_at - now):
                    await protocol.wakeup.wait()
        now = time.monotonic()
        if timer is not None and now >= timer:
            conn.handle_timer(now)
        if now >= deadline:
            for datagram in conn.datagrams_to_send():  # a last ZLB, if one is due
                transport.sendto(datagram, protocol.peer)
            return


def _outcome(
    conn: ControlConnection, protocol: _ProbeProtocol, address: str, port: int, timeout: float
) -> ProbeResult:
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    rtt = None
    if conn.reply_at is not None and conn.started_at is not None:
        rtt = conn.reply_at - conn.started_at
    failure = conn.failure
    if failure is not None and failure.kind is FailureKind.SECRET_MISMATCH:
        return ProbeResult(ProbeStatus.SECRET_MISMATCH, f"{where}: {failure.detail}", rtt)
    if conn.established:
        detail = f"{where}: tunnel {conn.local_tunnel_id}/{conn.peer_tunnel_id} to "
        detail += f"{conn.peer_host_name!r} came up"
        if conn.state is State.CLOSED and failure is None:
            detail += " and was stopped cleanly"
        else:
            detail += f"; StopCCN not acknowledged within {timeout:g} s"
        return ProbeResult(ProbeStatus.UP, detail, rtt)
    if failure is not None and failure.kind in (FailureKind.REFUSED, FailureKind.PROTOCOL_ERROR):
        return ProbeResult(ProbeStatus.ERROR, f"{where}: {failure.detail}", rtt)
    if protocol.error is not None:
        return ProbeResult(ProbeStatus.DOWN, f"{where}: {protocol.error}", rtt)
    if conn.reply_at is None:
        return ProbeResult(ProbeStatus.DOWN, f"{where}: no answer to SCCRQ within {timeout:g} s")
    return ProbeResult(
        ProbeStatus.DOWN, f"{where}: answered SCCRP, then SCCCN was not acknowledged", rtt
    )
