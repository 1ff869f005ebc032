"""Disconnect-Requests on the wire (RFC 5176): the thin asyncio edge of ``radiusgw.dynauth``.

``DisconnectSender`` drives ``DisconnectClient`` through the one UDP edge
(``radiusgw.server.datagrams.MachineEdge``: its sockets and its timer); every decision (what to
send, when to retry, what an answer means) is the client's. The worker calls
``disconnect`` (or ``disconnect_session``) for each live session of a realm whose quota is
reached, when the session's NAS has a ``coa_port``; each outcome is logged:

- ``disconnect-request``: a request was made (info);
- ``disconnect-ack``: the NAS ended the session (info; ``error_cause`` 201 when it says so);
- ``disconnect-nak``: the NAS refused, with ``error_cause`` and its name (RFC 5176 §3.5), e.g.
  503 session-context-not-found when the session had already ended (info: an answer);
- ``disconnect-abandoned``: no verified answer within the client's ``max_age``, or the gateway
  shut down first (warning);
- ``disconnect-dropped``: a datagram that was not a verified answer, with the reason (debug);
  ``disconnect-sockets-failed``: no socket of the NAS's family could be opened (error; its
  requests go unanswered). A send the OS refuses is counted by the edge; the retransmission
  timer covers it.

Rules:
- One unconnected UDP socket per address family, opened on first use (IPv4 at ``start``, so a
  bind failure shows at once; IPv6 when the first IPv6 NAS is asked). The NAS checks the source
  address against its list of Dynamic Authorization Clients (RFC 5176 §6.1), so the bind
  addresses can be set; the default lets the OS choose.
- The edge's plain non-blocking sockets: the API stays synchronous for the worker's code, and
  it works on uvloop and on asyncio's own loop alike.
- ``now`` is ``time.time()``: the client puts it in Event-Timestamp (RFC 2869 §5.3).
- Secrets are never logged; the log names the NAS, its port, the session, user and realm.
- Call everything from the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from radiusgw.client.core import AnswerDropped
from radiusgw.domain import SessionRow
from radiusgw.dynauth import DisconnectClient, DisconnectTarget, Outcome, Result, error_cause_name
from radiusgw.server.datagrams import MachineEdge


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
        on_result: Callable[[Result], None] | None = None,
    ) -> None:
        """``on_result``: also handed each finished request (the operator's disconnect waits
        for its answers: ``radiusgw.server.disconnect_once``)."""
        self.log = log
        self.on_result = on_result
        self.client = client if client is not None else DisconnectClient()
        self._bind: dict[int, str] = {socket.AF_INET: bind_v4, socket.AF_INET6: bind_v6}
        self._clock = clock
        self._edge: MachineEdge | None = None
        self._idle = asyncio.Event()
        self._closed = False

    # -- API ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running loop and open the IPv4 socket (``OSError`` if it cannot)."""
        if self._edge is not None:
            raise RuntimeError("DisconnectSender.start() called twice")
        self._edge = MachineEdge(
            asyncio.get_running_loop(),
            self.client,
            self._on_event,
            self.log,
            name="disconnect",
            bind=self._bind,
            clock=self._clock,
        )
        if not self._edge.open(socket.AF_INET):
            failure = self._edge.failure(socket.AF_INET)
            assert failure is not None
            raise failure

    @property
    def local_ports(self) -> dict[int, int]:
        """Address family -> local port of each open socket (the source port NASes see)."""
        return {} if self._edge is None else self._edge.local_ports

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
        if self._edge is None or self._closed:
            raise RuntimeError("DisconnectSender is not running: start() it, and not after close()")
        made = self.client.request(target, self._clock(), reason)
        if made:
            self._idle.clear()
            self.log.info("disconnect-request", **_fields(target), reason=reason)
            self._edge.flush()
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
        self.client.abandon_all(self._clock(), "the gateway shut down")
        if self._edge is not None:
            self._edge.flush()  # the Results, each logged; nothing is left to send
            self._edge.close()

    # -- from the client (MachineEdge.flush hands its events here) ---------------------------

    def _on_event(self, event: Result | AnswerDropped) -> None:
        if isinstance(event, AnswerDropped):
            self.log.debug("disconnect-dropped", source=event.address, reason=event.reason)
            return
        self._report(event)

    def _report(self, r: Result) -> None:
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
        if self.on_result is not None:
            self.on_result(r)
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
