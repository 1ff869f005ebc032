"""Disconnect-Requests on the wire (RFC 5176): the thin asyncio edge of ``radiusgw.dynauth``.

``DisconnectSender`` owns the sockets and a loop timer and feeds ``DisconnectClient``; every
decision (what to send, when to retry, what an answer means) is the client's. The worker calls
``disconnect`` (or ``disconnect_session``) for each live session of a realm whose quota is
reached, when the session's NAS has a ``coa_port``; each outcome is logged:

- ``disconnect-request``: a request was made (info);
- ``disconnect-ack``: the NAS ended the session (info; ``error_cause`` 201 when it says so);
- ``disconnect-nak``: the NAS refused, with ``error_cause`` and its name (RFC 5176 §3.5), e.g.
  503 session-context-not-found when the session had already ended (info: an answer);
- ``disconnect-abandoned``: no verified answer within the client's ``max_age``, or the gateway
  shut down first (warning);
- ``disconnect-dropped`` / ``disconnect-send-failed``: a datagram that did not verify, or a send
  the OS refused; the retransmission timer covers the latter (debug);
  ``disconnect-socket-failed``: no socket of the NAS's family could be opened (warning).

Rules:
- One unconnected UDP socket per address family, opened on first use (IPv4 at ``start``, so a
  bind failure shows at once; IPv6 when the first IPv6 NAS is asked). The NAS checks the source
  address against its list of Dynamic Authorization Clients (RFC 5176 §6.1), so the bind
  addresses can be set; the default lets the OS choose.
- Plain non-blocking sockets with ``loop.add_reader``: the API stays synchronous for the
  worker's code, and it works on uvloop and on asyncio's own loop alike.
- ``now`` is ``time.time()``: the client puts it in Event-Timestamp (RFC 2869 §5.3).
- Secrets are never logged; the log names the NAS, its port, the session, user and realm.
- Call everything from the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

from radiusgw.domain import SessionRow
from radiusgw.dynauth import (
    DisconnectClient,
    DisconnectTarget,
    Outcome,
    Outgoing,
    Result,
    error_cause_name,
)

_READ_BATCH = 64  # datagrams taken per wake-up before other work gets a turn
_MAX_DATAGRAM = 4096  # RFC 2865 §3
_EARLY = 0.001  # the loop's clock and time.time() differ by rounding; never wake a hair early


class DisconnectSender:
    """See the module docstring. ``log`` is a structlog-style logger (``info(event, **kw)``)."""

    def __init__(
        self,
        log: Any,
        *,
        client: DisconnectClient | None = None,
        bind_v4: str = "0.0.0.0",
        bind_v6: str = "::",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log = log
        self.client = client if client is not None else DisconnectClient()
        self._bind: dict[int, str] = {socket.AF_INET: bind_v4, socket.AF_INET6: bind_v6}
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[int, socket.socket] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._idle = asyncio.Event()
        self._closed = False

    # -- API ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running loop and open the IPv4 socket (``OSError`` if it cannot)."""
        if self._loop is not None:
            raise RuntimeError("DisconnectSender.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._socket(socket.AF_INET)

    @property
    def local_ports(self) -> dict[int, int]:
        """Address family -> local port of each open socket (the source port NASes see)."""
        return {family: s.getsockname()[1] for family, s in self._sockets.items()}

    @property
    def outstanding(self) -> int:
        return len(self.client)

    def disconnect(
        self,
        nas_address: str,
        coa_port: int,
        secret: bytes,
        *,
        acct_session_id: str,
        user_name: str | None = None,
        realm: str | None = None,
        nas_ip_address: str | None = None,
        nas_identifier: str | None = None,
        framed_ip: str | None = None,
        reason: str = "traffic-quota",
    ) -> bool:
        """Ask the NAS to end one session; False when a request for it is outstanding or was
        answered in the last ``answer_memory`` seconds (see ``radiusgw.dynauth``): calling this
        for every live session of a realm at each poll is fine.

        Raises ``radiusgw.dynauth.DynauthError`` when the values cannot make a request (the NAS
        address is not an IP address, no secret, ...).
        """
        target = DisconnectTarget(
            nas_address=nas_address,
            coa_port=coa_port,
            secret=secret,
            acct_session_id=acct_session_id,
            user_name=user_name,
            nas_ip_address=nas_ip_address,
            nas_identifier=nas_identifier,
            framed_ip=framed_ip,
            realm=realm,
        )
        return self.send(target, reason)

    def disconnect_session(
        self, session: SessionRow, *, coa_port: int, secret: bytes, reason: str = "traffic-quota"
    ) -> bool:
        """``disconnect`` for a row of the sessions table, User-Name ``username@realm``.

        The table keeps the realm lower-cased as routed: a NAS that compares User-Name exactly
        may NAK (503) a user who typed the realm in capitals; the NAK is logged.
        """
        return self.disconnect(
            session.nas_address,
            coa_port,
            secret,
            acct_session_id=session.acct_session_id,
            user_name=f"{session.username}@{session.realm}",
            realm=session.realm,
            nas_ip_address=session.nas_ip_address,
            nas_identifier=session.nas_identifier,
            framed_ip=session.framed_ip,
            reason=reason,
        )

    def send(self, target: DisconnectTarget, reason: str) -> bool:
        """``disconnect`` with a ready target."""
        if self._loop is None or self._closed:
            raise RuntimeError("DisconnectSender is not running: start() it, and not after close()")
        before = self.client.counters.requested
        outgoing = self.client.request(target, self._clock(), reason)
        made = self.client.counters.requested > before
        if made:
            self._idle.clear()
            self.log.info("disconnect-request", **_fields(target), reason=reason)
        self._transmit(outgoing)
        self._arm()
        return made

    async def close(self, drain: float = 0.0) -> None:
        """Stop: wait up to ``drain`` seconds for answers, then report the rest as abandoned."""
        if self._closed:
            return
        if drain > 0 and len(self.client):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain):
                    await self._idle.wait()
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._report(self.client.abandon_all(self._clock(), "the gateway shut down"))
        for sock in self._sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    # -- the edge -----------------------------------------------------------------------------

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is not None:
            return sock
        assert self._loop is not None
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            sock.bind((self._bind[family], 0))
            self._loop.add_reader(sock.fileno(), self._readable, sock)
        except BaseException:
            sock.close()
            raise
        self._sockets[family] = sock
        return sock

    def _readable(self, sock: socket.socket) -> None:
        client = self.client
        for _ in range(_READ_BATCH):
            try:
                data, source = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                self.log.debug("disconnect-socket-error", error=str(exc))
                continue
            dropped = client.counters.dropped_bad_answer + client.counters.dropped_unknown_answer
            results = client.receive(data, source, self._clock())
            if (
                client.counters.dropped_bad_answer + client.counters.dropped_unknown_answer
                > dropped
            ):
                self.log.debug(
                    "disconnect-dropped", source=str(source[0]), reason=client.last_drop_reason
                )
            self._report(results)
        self._transmit(client.datagrams_to_send())
        self._arm()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = None
        self._report(self.client.handle_timer(self._clock()))
        self._transmit(self.client.datagrams_to_send())
        self._arm()

    def _arm(self) -> None:
        """One loop timer, at the client's next deadline."""
        due = self.client.next_timer()
        if due == self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = due
        if due is not None:
            assert self._loop is not None
            delay = max(0.0, due - self._clock()) + _EARLY
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _transmit(self, outgoing: list[Outgoing]) -> None:
        for out in outgoing:
            host, port = out.address
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
            try:
                sock = self._socket(family)
            except OSError as exc:  # no IPv6 here, say; the next retransmission tries again
                self.log.warning("disconnect-socket-failed", nas=host, error=str(exc))
                continue
            try:
                sock.sendto(out.datagram, (host, port))
            except OSError as exc:  # a full buffer, no route: the retransmission timer covers it
                self.log.debug("disconnect-send-failed", nas=host, port=port, error=str(exc))

    def _report(self, results: list[Result]) -> None:
        for r in results:
            fields = _fields(r.target)
            timing = {"tries": r.tries, "seconds": round(r.age, 3), "reason": r.reason}
            if r.outcome is Outcome.ACK:
                if r.error_cause is not None:
                    fields["error_cause"] = r.error_cause
                    fields["error_cause_name"] = error_cause_name(r.error_cause)
                self.log.info("disconnect-ack", **fields, **timing)
            elif r.outcome is Outcome.NAK:
                cause = error_cause_name(r.error_cause)
                self.log.info(
                    "disconnect-nak",
                    **fields,
                    error_cause=r.error_cause,
                    error_cause_name=cause,
                    **timing,
                )
            else:
                self.log.warning("disconnect-abandoned", **fields, **timing, detail=r.detail)
        if not len(self.client):
            self._idle.set()


def _fields(target: DisconnectTarget) -> dict[str, Any]:
    """What the log says about a request: never the secret."""
    return {
        "nas": target.nas_address,
        "port": target.coa_port,
        "session_id": target.acct_session_id,
        "user": target.user_name,
        "realm": target.realm,
    }
