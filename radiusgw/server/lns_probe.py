"""Live LNS health over real L2TP: one tunnel set-up and tear-down per probe (issue 4).

``probe_lns`` drives a ``radiusgw.l2tp.ControlConnection`` through the one UDP edge
(``radiusgw.server.datagrams.MachineEdge``: a socket on an ephemeral port): it brings a control
connection up with the realm's tunnel secret (SCCRQ, SCCRP, SCCCN, acknowledged), stops it at
once with StopCCN, and reports:

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
- Datagrams count only from the LNS's address, and later messages follow the port it answers
  from (RFC 2661 §8.1): the connection's rules. What it drops is logged (``l2tp-dropped``).
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

from radiusgw.l2tp.control import ControlConnection, Dropped, FailureKind, State, StateChanged
from radiusgw.l2tp.reliable import MAX_TRIES, RETRANSMIT_INITIAL
from radiusgw.server.datagrams import MachineEdge

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


class _Quiet:
    """The log when the caller gives none: the probe's events are then not kept."""

    def debug(self, event: str, **fields: Any) -> None:
        pass

    error = debug


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
    log = _Quiet() if log is None else log
    conn = ControlConnection(
        tunnel_id or secrets.randbelow(0xFFFF) + 1,
        secret,
        host_name,
        time.monotonic(),
        peer=(address, port),
        challenge=challenge,
    )
    closed = asyncio.Event()

    def on_event(event: StateChanged | Dropped) -> None:
        if isinstance(event, Dropped):
            log.debug("l2tp-dropped", lns=str(lns), reason=event.reason)
        elif event.state is State.ESTABLISHED:
            conn.stop(time.monotonic())  # the tunnel is up: that is all a probe needs to know
        elif event.state is State.CLOSED:
            closed.set()

    edge = MachineEdge(
        asyncio.get_running_loop(), conn, on_event, log, name="lns-probe", clock=time.monotonic
    )
    try:
        if not edge.open(family):
            return ProbeResult(
                ProbeStatus.ERROR, f"cannot open a UDP socket: {edge.failure(family)}"
            )
        conn.start(time.monotonic())
        edge.flush()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the event is set, and the probe would then outlive its monitor.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await closed.wait()
        edge.flush()  # a last ZLB, if one is due
    finally:
        edge.close()
    return _outcome(conn, address, port, timeout)


def _outcome(conn: ControlConnection, address: str, port: int, timeout: float) -> ProbeResult:
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
    if conn.reply_at is None:
        return ProbeResult(ProbeStatus.DOWN, f"{where}: no answer to SCCRQ within {timeout:g} s")
    return ProbeResult(
        ProbeStatus.DOWN, f"{where}: answered SCCRP, then SCCCN was not acknowledged", rtt
    )
