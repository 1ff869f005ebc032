"""The LAC (initiator) side of an L2TPv2 control connection (RFC 2661 §5.1, §6.1-§6.5, §7.2.1).

Sans-I/O, by the convention of ``radiusgw.machine``: ``start(now)``,
``receive_datagram(data, source, now)``, ``handle_timer(now)`` and ``stop(now)`` change the
state; ``datagrams_to_send(now)`` gives the ``(data, peer)`` pairs to put on the wire,
``get_timer()`` when to call ``handle_timer`` next, and ``next_event()`` each state entered
(``StateChanged``) and each datagram dropped with its reason (``Dropped``). Nothing here reads a
clock, a socket or a log; remote garbage is dropped and counted in ``dropped``. Used by the LNS
health probe (through the one UDP edge) and by anything acting as a LAC (tests bring a tunnel up
with the Tunnel-Password the gateway hands out).

The tunnel set-up, RFC 2661 §7.2.1 (LAC side)::

    IDLE --start--> WAIT_CTL_REPLY --SCCRP ok, send SCCCN--> WAIT_CTL_CONN_ACK
         --SCCCN acknowledged--> ESTABLISHED --stop--> CLOSING --StopCCN acknowledged--> CLOSED

Rules:
- Datagrams count only from the peer's address (``peer``: an IP literal). The first valid answer
  may come from another port than the one we sent to; later messages go to that port (RFC 2661
  §8.1). xl2tpd answers from its listening port.
- SCCRQ carries Protocol Version 1.0, Framing Capabilities, Host Name, our Assigned Tunnel ID
  and Receive Window Size (§6.1), and a Challenge when there is a secret (§5.1.1).
- SCCRP must carry Protocol Version 1.0, Framing Capabilities, Host Name and a non-zero Assigned
  Tunnel ID (§6.2); from then on our messages carry that Tunnel ID. When we challenged, its
  Challenge Response must be MD5(2 + secret + our challenge), else the tunnel is not set up
  (§5.1.1) and we send StopCCN. Its own Challenge is answered in SCCCN with MD5(3 + secret +
  challenge); without a secret we cannot, and stop.
- The tunnel counts as ESTABLISHED once the SCCCN is acknowledged, not when sent: an LNS that
  challenged us checks our response only on the SCCCN. xl2tpd acknowledges the SCCCN first and
  then sends StopCCN (Result Code 2, Error 6); so a StopCCN 2/6 that is the LNS's first message
  after its SCCRP, when it challenged us, is a secret mismatch, whatever state it finds us in.
  Any other StopCCN during set-up is a refusal, with the LNS's result and error codes.
- StopCCN carries our Assigned Tunnel ID (§6.4: xl2tpd acknowledges a StopCCN without it and
  keeps the tunnel) and a Result Code, always with an Error Code (0 when there is none). The
  peer's StopCCN is acknowledged by a ZLB and closes the connection.
- Messages must carry our Tunnel ID, with one exception: while waiting for SCCRP, a StopCCN to
  any Tunnel ID is taken (xl2tpd answers an SCCRQ it cannot parse with a StopCCN to 65535).
- HELLO is acknowledged (§6.5); call (session) messages are acknowledged and ignored, as this
  side sets up tunnels only. An unknown message type or AVP with the M bit ends the tunnel with
  StopCCN (§4.1, §4.4.1); without the M bit it is ignored.
- Hidden AVPs (§4.3): with ``hide_avps`` the Challenge Response of SCCCN and the Assigned Tunnel
  ID of StopCCN travel hidden, behind a fresh Random Vector. SCCRQ is always sent in the clear:
  an LNS looks the secret up by the Host Name the SCCRQ carries. xl2tpd 1.3 reveals hidden AVPs
  only with the secret it looked up to answer our Challenge, so hide only when challenging it.
"""

from __future__ import annotations

import ipaddress
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from radiusgw.l2tp.avp import (
    DEFAULT_RECEIVE_WINDOW,
    FRAMING_ASYNC,
    FRAMING_SYNC,
    PROTOCOL_VERSION_1_0,
    Avp,
    AvpType,
    GeneralError,
    MessageType,
    ResultCode,
    StopCcnResult,
    as_text,
    as_u16,
    known,
    message_type_avp,
    u16,
    u32,
)
from radiusgw.l2tp.crypto import challenge_response, response_matches
from radiusgw.l2tp.message import ControlMessage, L2tpDecodeError, decode
from radiusgw.l2tp.reliable import MAX_TRIES, RETRANSMIT_INITIAL, Arrival, ReliableChannel

CHALLENGE_LENGTH = 16
RANDOM_VECTOR_LENGTH = 16
_CALL_MESSAGES = frozenset(
    {
        MessageType.OCRQ,
        MessageType.OCRP,
        MessageType.OCCN,
        MessageType.ICRQ,
        MessageType.ICRP,
        MessageType.ICCN,
        MessageType.CDN,
        MessageType.WEN,
        MessageType.SLI,
    }
)


class State(Enum):
    IDLE = "idle"
    WAIT_CTL_REPLY = "wait-ctl-reply"  # SCCRQ sent
    WAIT_CTL_CONN_ACK = "wait-ctl-conn-ack"  # SCCCN sent, not acknowledged yet
    ESTABLISHED = "established"
    CLOSING = "closing"  # our StopCCN sent, not acknowledged yet
    CLOSED = "closed"


class FailureKind(Enum):
    TIMEOUT = "timeout"  # the peer did not acknowledge after every retransmission
    SECRET_MISMATCH = "secret-mismatch"  # tunnel authentication failed, either way
    REFUSED = "refused"  # the peer sent StopCCN during set-up
    PROTOCOL_ERROR = "protocol-error"  # the peer broke RFC 2661; we sent StopCCN


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the connection did not come up, or did not close cleanly."""

    kind: FailureKind
    detail: str
    result: ResultCode | None = None  # the peer's StopCCN Result Code, when it sent one


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: State


@dataclass(frozen=True, slots=True)
class Dropped:
    """A datagram that was not taken, with the reason (one sentence)."""

    reason: str


class ControlConnection:
    """One tunnel's control connection to ``peer`` (host, port), from the LAC side."""

    def __init__(
        self,
        local_tunnel_id: int,
        secret: bytes | None,
        host_name: str,
        now: float,
        *,
        peer: tuple[str, int],
        challenge: bool = True,
        hide_avps: bool = False,
        receive_window: int = DEFAULT_RECEIVE_WINDOW,
        framing: int = FRAMING_SYNC | FRAMING_ASYNC,
        random: Callable[[int], bytes] = os.urandom,
        initial_timeout: float = RETRANSMIT_INITIAL,
        max_tries: int = MAX_TRIES,
    ) -> None:
        if not 1 <= local_tunnel_id <= 0xFFFF:
            raise ValueError("the Assigned Tunnel ID is 1..65535 (RFC 2661 §4.4.3)")
        if not 1 <= receive_window <= 0xFFFF:
            raise ValueError("the Receive Window Size is 1..65535 (RFC 2661 §4.4.3)")
        if hide_avps and not secret:
            raise ValueError("hiding AVPs needs the tunnel secret (RFC 2661 §4.3)")
        self.local_tunnel_id = local_tunnel_id
        self.peer = peer
        self._peer_ip = ipaddress.ip_address(peer[0])  # ValueError for a name: never looked up
        self._peer_locked = False
        self.host_name = host_name
        self.state = State.IDLE
        self.failure: Failure | None = None
        self.peer_tunnel_id: int | None = None
        self.peer_host_name: str | None = None
        self.peer_result: ResultCode | None = None  # from the peer's StopCCN
        self.created_at = now
        self.started_at: float | None = None
        self.reply_at: float | None = None  # SCCRP received
        self.established_at: float | None = None
        self.closed_at: float | None = None
        self.dropped = 0
        self._events: deque[StateChanged | Dropped] = deque()
        self._secret = secret or None
        self._challenge_peer = challenge and self._secret is not None
        self._hide = hide_avps
        self._receive_window = receive_window
        self._framing = framing
        self._random = random
        self._channel = ReliableChannel(
            self._secret, peer=peer, initial_timeout=initial_timeout, max_tries=max_tries
        )
        self._our_challenge: bytes | None = None
        self._peer_challenged = False
        self._sccrp_ns: int | None = None
        self._scccn_ns: int | None = None
        self._stopccn_ns: int | None = None

    # -- the caller's side ------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send SCCRQ (RFC 2661 §6.1)."""
        if self.state is not State.IDLE:
            raise RuntimeError(f"start() in state {self.state.value}")
        avps = [
            message_type_avp(MessageType.SCCRQ),
            Avp(AvpType.PROTOCOL_VERSION, PROTOCOL_VERSION_1_0),
            Avp(AvpType.FRAMING_CAPABILITIES, u32(self._framing)),
            Avp(AvpType.HOST_NAME, self.host_name.encode("utf-8")),
            Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(self.local_tunnel_id)),
            Avp(AvpType.RECEIVE_WINDOW_SIZE, u16(self._receive_window)),
        ]
        if self._challenge_peer:
            self._our_challenge = self._random(CHALLENGE_LENGTH)
            avps.append(Avp(AvpType.CHALLENGE, self._our_challenge))
        self._channel.send(tuple(avps), now)
        self.started_at = now
        self._enter(State.WAIT_CTL_REPLY)

    def stop(self, now: float, result: ResultCode | None = None) -> None:
        """Send StopCCN (§6.4) and wait for its acknowledgement; default result: clear (1, 0)."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if self.state is State.IDLE:
            self._close(now)
            return
        result = result or ResultCode(StopCcnResult.CLEAR, GeneralError.NONE)
        if result.error is None:
            result = ResultCode(result.result, GeneralError.NONE, result.message)
        avps = [message_type_avp(MessageType.STOPCCN)]
        if self._hide:
            avps.append(Avp(AvpType.RANDOM_VECTOR, self._random(RANDOM_VECTOR_LENGTH)))
        avps.append(Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(self.local_tunnel_id), hidden=self._hide))
        avps.append(Avp(AvpType.RESULT_CODE, result.to_bytes()))
        self._stopccn_ns = self._channel.send(tuple(avps), now)
        self._enter(State.CLOSING)

    def hello(self, now: float) -> None:
        """Send HELLO (§6.5): a keepalive; a peer that does not acknowledge it times out."""
        if self.state is State.ESTABLISHED:
            self._channel.send((message_type_avp(MessageType.HELLO),), now)

    def receive_datagram(self, data: bytes, source: Any, now: float) -> None:
        """Handle one datagram from ``source``; garbage is dropped and counted."""
        try:
            ours = ipaddress.ip_address(source[0]) == self._peer_ip
        except ValueError:
            ours = False
        if not ours:
            self._drop(f"from {source[0]}, not the LNS")
            return
        dropped = self.dropped
        self._receive(data, now)
        if self.dropped == dropped and not self._peer_locked:
            self.peer = self._channel.peer = (self.peer[0], source[1])  # RFC 2661 §8.1
            self._peer_locked = True

    def _receive(self, datagram: bytes, now: float) -> None:
        if self.state is State.IDLE:
            self._drop("datagram before start()")
            return
        try:
            message = decode(datagram, self._secret)
        except L2tpDecodeError as exc:
            self._drop(str(exc))
            return
        if message.tunnel_id != self.local_tunnel_id and not (
            self.state is State.WAIT_CTL_REPLY and message.message_type == MessageType.STOPCCN
        ):
            self._drop(f"Tunnel ID {message.tunnel_id} is not ours ({self.local_tunnel_id})")
            return
        arrival = self._channel.receive(message, now)
        if arrival is Arrival.OUT_OF_ORDER:
            self._drop(f"Ns {message.ns} is ahead of the expected {self._channel.expected_ns}")
        elif arrival is Arrival.NEW and self.state is not State.CLOSED:
            self._handle(message, now)
        self._channel.acknowledge()
        self._progress(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        return self._channel.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        return None if self.state in (State.IDLE, State.CLOSED) else self._channel.get_timer()

    def next_event(self) -> StateChanged | Dropped | None:
        return self._events.popleft() if self._events else None

    def handle_timer(self, now: float) -> None:
        """Retransmit, or give the peer up after the last try (RFC 2661 §5.8)."""
        if self.state in (State.IDLE, State.CLOSED):
            return
        self._channel.handle_timer(now)
        if not self._channel.exhausted:
            return
        tries = self._channel.max_tries
        if self.state is State.CLOSING:
            detail = f"StopCCN not acknowledged after {tries} tries"
        elif self.state is State.WAIT_CTL_REPLY:
            detail = f"no answer to SCCRQ after {tries} tries"
        elif self.state is State.WAIT_CTL_CONN_ACK:
            detail = f"SCCCN not acknowledged after {tries} tries"
        else:
            detail = f"a control message was not acknowledged after {tries} tries"
        self._set_failure(FailureKind.TIMEOUT, detail)
        self._close(now)

    @property
    def established(self) -> bool:
        """Whether the tunnel came up at some point (it may have been stopped since)."""
        return self.established_at is not None

    # -- protocol ---------------------------------------------------------------------------

    def _handle(self, message: ControlMessage, now: float) -> None:
        mtype = message.message_type
        if mtype == MessageType.STOPCCN:
            self._on_stopccn(message, now)
            return
        if self.state is State.CLOSING:
            return  # only the peer's StopCCN or acknowledgement matters now
        if not isinstance(mtype, MessageType):
            if message.avps[0].mandatory:  # §4.4.1: M on an unknown message type ends the tunnel
                self._protocol_error(now, f"unknown message type {mtype} with the M bit set")
            return
        for avp in message.avps[1:]:
            if avp.mandatory and not known(avp.attr_type, avp.vendor_id):
                self._protocol_error(
                    now,
                    f"unknown AVP {avp.attr_type} (vendor {avp.vendor_id}) with the M bit set",
                    GeneralError.UNKNOWN_MANDATORY_AVP,
                )
                return
        if mtype == MessageType.SCCRP and self.state is State.WAIT_CTL_REPLY:
            self._on_sccrp(message, now)
        elif mtype == MessageType.HELLO or mtype in _CALL_MESSAGES:
            return  # acknowledged by the caller of _handle
        else:
            self._protocol_error(
                now, f"{mtype.name} in state {self.state.value}", result=StopCcnResult.FSM_ERROR
            )

    def _on_sccrp(self, message: ControlMessage, now: float) -> None:
        self.reply_at = now
        self._sccrp_ns = message.ns
        version = message.get(AvpType.PROTOCOL_VERSION)
        peer_tunnel_id = as_u16(message.get(AvpType.ASSIGNED_TUNNEL_ID))
        host_name = message.get(AvpType.HOST_NAME)
        if version is None or message.get(AvpType.FRAMING_CAPABILITIES) is None:
            self._protocol_error(now, "SCCRP without Protocol Version or Framing Capabilities")
            return
        if host_name is None or not peer_tunnel_id:
            self._protocol_error(now, "SCCRP without Host Name or a non-zero Assigned Tunnel ID")
            return
        self.peer_tunnel_id = peer_tunnel_id
        self.peer_host_name = as_text(host_name)
        self._channel.peer_tunnel_id = peer_tunnel_id
        window = as_u16(message.get(AvpType.RECEIVE_WINDOW_SIZE))
        if window:
            self._channel.peer_window = window
        if version != PROTOCOL_VERSION_1_0:
            self._protocol_error(
                now,
                f"SCCRP with protocol version {version.hex()}, not 1.0",
                error=int.from_bytes(PROTOCOL_VERSION_1_0, "big"),
                result=StopCcnResult.BAD_VERSION,
            )
            return
        if self._our_challenge is not None and self._secret is not None:
            response = message.get(AvpType.CHALLENGE_RESPONSE)
            if response is None:
                self._auth_failure(now, "the LNS did not answer our Challenge")
                return
            if not response_matches(response, MessageType.SCCRP, self._secret, self._our_challenge):
                self._auth_failure(now, "the LNS's Challenge Response does not match our secret")
                return
        peer_challenge = message.get(AvpType.CHALLENGE)
        avps = [message_type_avp(MessageType.SCCCN)]
        if peer_challenge is not None:
            if self._secret is None:
                self._auth_failure(now, "the LNS sent a Challenge and no secret is configured")
                return
            self._peer_challenged = True
            if self._hide:
                avps.append(Avp(AvpType.RANDOM_VECTOR, self._random(RANDOM_VECTOR_LENGTH)))
            answer = challenge_response(MessageType.SCCCN, self._secret, peer_challenge)
            avps.append(Avp(AvpType.CHALLENGE_RESPONSE, answer, hidden=self._hide))
        self._scccn_ns = self._channel.send(tuple(avps), now)
        self._enter(State.WAIT_CTL_CONN_ACK)

    def _on_stopccn(self, message: ControlMessage, now: float) -> None:
        result = message.result_code()
        self.peer_result = result
        said = str(result) if result is not None else "no Result Code"
        first_after_reply = (
            self._sccrp_ns is not None and message.ns == (self._sccrp_ns + 1) % 0x10000
        )
        auth_refusal = result is not None and (result.result, result.error) == (
            StopCcnResult.GENERAL_ERROR,
            GeneralError.VENDOR_SPECIFIC,
        )
        if first_after_reply and self._peer_challenged and auth_refusal:
            self._set_failure(
                FailureKind.SECRET_MISMATCH,
                f"the LNS refused our Challenge Response ({said})",
                result,
            )
        if self.state in (State.WAIT_CTL_REPLY, State.WAIT_CTL_CONN_ACK) or first_after_reply:
            self._set_failure(FailureKind.REFUSED, f"the LNS refused the tunnel ({said})", result)
        self._close(now)

    def _auth_failure(self, now: float, detail: str) -> None:
        self._set_failure(FailureKind.SECRET_MISMATCH, detail)
        # As xl2tpd does: General error, vendor-specific, with the reason in words.
        refusal = ResultCode(StopCcnResult.GENERAL_ERROR, GeneralError.VENDOR_SPECIFIC, detail)
        self.stop(now, refusal)

    def _protocol_error(
        self,
        now: float,
        detail: str,
        error: int = GeneralError.VENDOR_SPECIFIC,
        result: int = StopCcnResult.GENERAL_ERROR,
    ) -> None:
        self._set_failure(FailureKind.PROTOCOL_ERROR, detail)
        self.stop(now, ResultCode(result, error, detail))

    def _progress(self, now: float) -> None:
        """Move on when our SCCCN or StopCCN has been acknowledged."""
        if (
            self.state is State.WAIT_CTL_CONN_ACK
            and self._scccn_ns is not None
            and self._channel.is_acknowledged(self._scccn_ns)
        ):
            self.established_at = now
            self._enter(State.ESTABLISHED)
        elif (
            self.state is State.CLOSING
            and self._stopccn_ns is not None
            and self._channel.is_acknowledged(self._stopccn_ns)
        ):
            self._close(now)

    def _set_failure(
        self, kind: FailureKind, detail: str, result: ResultCode | None = None
    ) -> None:
        if self.failure is None:  # the first cause is the one that counts
            self.failure = Failure(kind, detail, result)

    def _close(self, now: float) -> None:
        self.closed_at = now
        self._enter(State.CLOSED)

    def _enter(self, state: State) -> None:
        self.state = state
        self._events.append(StateChanged(state))

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self._events.append(Dropped(reason))
