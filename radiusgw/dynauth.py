"""Disconnect-Requests to a NAS (RFC 5176, Dynamic Authorization): sans-I/O, time passed in.

The gateway is the Dynamic Authorization Client; the NAS listens on its ``coa_port`` (3799 by
default, the port IANA assigned). ``DisconnectClient`` is a ``radiusgw.client.core.RadiusClient``
(one source socket per address family): it takes values and ``now`` (unix time: it is also the
Event-Timestamp), and the edge (``radiusgw.server.disconnect``) drives it by the convention of
``radiusgw.machine``:

- ``request(target, now, reason)``: one Disconnect-Request for one session (True if made);
- ``receive_datagram(datagram, source, now)``: an answer from a NAS;
- ``get_timer()`` / ``handle_timer(now)``: retransmission and abandonment;
- ``datagrams_to_send(now)``: requests, retransmissions, and queued requests started when an
  Identifier came free;
- ``next_event()``: a ``Result`` per finished request, an ``AnswerDropped`` per refused answer.

The request (RFC 5176 §2.1, §3): session identification attributes (User-Name, Framed-IP-Address,
Acct-Session-Id), NAS identification attributes when known (NAS-IP-Address or NAS-IPv6-Address,
NAS-Identifier), Event-Timestamp (§6.3: replay protection; NASes check it against a window) and
Message-Authenticator (§3.4: HMAC-MD5 with the Request Authenticator as 16 zero octets). The
Request Authenticator is MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)
(§2.3), computed by ``crypto.sign_request``.

Rules:
- Identifiers (RFC 2865 §3) are per destination (NAS address, CoA port): 256 outstanding. A freed
  Identifier goes to the back of the queue, so that a late answer to an old request meets a new
  Request Authenticator and fails to verify. Requests beyond 256 wait in order for one.
- An answer counts only if it comes from the destination's address and port, carries the
  Identifier of one of the request's tries, its Response Authenticator verifies with that try's
  Request Authenticator (§2.3, RFC 2865 §3) and, if present, its Message-Authenticator too
  (§3.4) (``radiusgw.client.answers``). Anything else is dropped, counted (``counters``) and
  reported (``AnswerDropped``); the request keeps waiting.
- Disconnect-ACK finishes the request. So does Disconnect-NAK: it is the NAS's answer, with its
  Error-Cause (§3.5; 503 Session Context Not Found when the session is already gone). Neither
  is retried.
- Unanswered, a request is retransmitted after 1, 2, 4, 8, ... s, capped at 60 s, each interval
  spread by +/-10 % so that the requests of one realm do not stay in step (RFC 5080 §2.2.1).
  There is no limit on tries: the session must end. A request still unanswered ``max_age``
  (default 1 hour) after it was made is reported ``ABANDONED``: by then the NAS is gone, or the
  session with it, and the gateway's quota keeps rejecting new sessions anyway.
- A retransmission is the same datagram (same Identifier and authenticator, RFC 5080 §2.2.1), so
  that a NAS whose ACK was lost answers it from its duplicate cache (RFC 5176 §2.3) instead of
  NAKing a session it already ended. Once its Event-Timestamp is older than
  ``timestamp_refresh`` (120 s, within the 300 s window NASes commonly accept), the request is
  built again with a new Event-Timestamp, hence a new Identifier (RFC 5080 §2.2.1: content
  changed). The previous try's Identifier is kept until the next rebuild, so that its late
  answer still counts: a request holds at most two Identifiers.
- One request per (NAS address, CoA port, Acct-Session-Id) at a time: asking again while one is
  outstanding sends nothing (``counters.duplicates``), nor within ``answer_memory`` (5 min) of
  its ACK or NAK (``counters.recently_answered``): the caller may ask for every live session of
  a realm at each poll, while the NAS's Accounting-Stop for a session it ended is on its way.
  An abandoned session may be asked again at once.
"""

from __future__ import annotations

import ipaddress
import random as _random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Final

from radiusgw.client.answers import DISCONNECT_ANSWERS, verify_answer
from radiusgw.client.core import ClientCounters, RadiusClient
from radiusgw.client.ids import Destination
from radiusgw.errors import RadiusGwError
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import as_integer, encode_attributes, integer

DEFAULT_COA_PORT: Final = 3799  # assigned by IANA to RFC 5176 Dynamic Authorization
INITIAL_INTERVAL: Final = 1.0  # first retransmission after 1 s, then doubling (RFC 5080 §2.2.1)
MAX_INTERVAL: Final = 60.0  # a NAS that is down is asked once a minute
MAX_AGE: Final = 3600.0  # an hour without an answer: reported as abandoned
ANSWER_MEMORY: Final = 300.0  # an answered session is not asked again for 5 min (its Stop is due)
TIMESTAMP_REFRESH: Final = (
    120.0  # Event-Timestamp age that triggers a rebuild (NAS window: often 300 s)
)
JITTER: Final = 0.1

_DISCONNECT_REQUEST: Final = int(Code.DISCONNECT_REQUEST)
_ACK: Final = int(Code.DISCONNECT_ACK)
_MAX_VALUE: Final = 253  # RFC 2865 §5: an attribute value is at most 253 octets

_Key = tuple[str, int, str]  # NAS address, CoA port, Acct-Session-Id


class DynauthError(RadiusGwError):
    """A Disconnect-Request cannot be made for these values (one sentence saying why)."""


class ErrorCause(IntEnum):
    """Error-Cause values of RFC 5176 §3.5 (2xx success, 4xx client error, 5xx NAS error)."""

    RESIDUAL_SESSION_CONTEXT_REMOVED = 201
    INVALID_EAP_PACKET = 202
    UNSUPPORTED_ATTRIBUTE = 401
    MISSING_ATTRIBUTE = 402
    NAS_IDENTIFICATION_MISMATCH = 403
    INVALID_REQUEST = 404
    UNSUPPORTED_SERVICE = 405
    UNSUPPORTED_EXTENSION = 406
    INVALID_ATTRIBUTE_VALUE = 407
    ADMINISTRATIVELY_PROHIBITED = 501
    REQUEST_NOT_ROUTABLE = 502
    SESSION_CONTEXT_NOT_FOUND = 503
    SESSION_CONTEXT_NOT_REMOVABLE = 504
    OTHER_PROXY_PROCESSING_ERROR = 505
    RESOURCES_UNAVAILABLE = 506
    REQUEST_INITIATED = 507
    MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508


def error_cause_name(value: int | None) -> str | None:
    """``"session-context-not-found"`` for 503; None for None; the number for unknown values."""
    if value is None:
        return None
    try:
        return ErrorCause(value).name.lower().replace("_", "-")
    except ValueError:
        return str(value)


class Outcome(Enum):
    ACK = "ack"  # Disconnect-ACK: the NAS ended the session
    NAK = "nak"  # Disconnect-NAK: the NAS answered no; see ``Result.error_cause``
    ABANDONED = "abandoned"  # no verified answer within max_age, or the client shut down


def _normalise(host: str) -> str:
    """An IP literal in its canonical text; an IPv4-mapped IPv6 address as IPv4 (RFC 4291)."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@dataclass(frozen=True, slots=True)
class DisconnectTarget:
    """One live session and the NAS to ask: what goes into a Disconnect-Request (RFC 5176 §3).

    ``nas_address`` is where the NAS sends from (the sessions table's ``nas_address``), an IP
    literal; ``nas_ip_address`` is the NAS-IP-Address it reported, if any. ``user_name`` must be
    the User-Name as the NAS knows it: a NAS may NAK (503) a request whose identification
    attributes do not all match the session (§3). ``realm`` is for the log; it is never sent.
    """

    nas_address: str
    coa_port: int
    secret: bytes = field(repr=False)
    acct_session_id: str
    user_name: str | None = None
    nas_ip_address: str | None = None
    nas_identifier: str | None = None
    framed_ip: str | None = None
    realm: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "nas_address", _normalise(self.nas_address))
        except ValueError:
            raise DynauthError(f"NAS address {self.nas_address!r} is not an IP address") from None
        if not 1 <= self.coa_port <= 65535:
            raise DynauthError(f"CoA port {self.coa_port} is outside 1..65535")
        if not self.secret:
            raise DynauthError(f"no shared secret for NAS {self.nas_address}")
        if not self.acct_session_id:
            raise DynauthError("a Disconnect-Request needs the session's Acct-Session-Id")
        for name in ("nas_ip_address", "framed_ip"):
            value = getattr(self, name)
            if value is not None:
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    raise DynauthError(f"{name} {value!r} is not an IP address") from None
        for name in ("acct_session_id", "user_name", "nas_identifier"):
            value = getattr(self, name)
            if value is not None and len(value.encode("utf-8")) > _MAX_VALUE:
                raise DynauthError(f"{name} is longer than 253 octets (RFC 2865 §5)")

    @property
    def destination(self) -> Destination:
        return (self.nas_address, self.coa_port)


def request_attributes(target: DisconnectTarget, event_timestamp: int) -> bytes:
    """The wire attributes of the request, Message-Authenticator excepted (RFC 5176 §3)."""
    attrs: list[tuple[int, bytes]] = []
    if target.user_name is not None:
        attrs.append((Attr.USER_NAME, target.user_name.encode("utf-8")))
    if target.nas_ip_address is not None:
        nas_ip = ipaddress.ip_address(target.nas_ip_address)
        if nas_ip.version == 4:
            attrs.append((Attr.NAS_IP_ADDRESS, nas_ip.packed))
        else:
            attrs.append((Attr.NAS_IPV6_ADDRESS, nas_ip.packed))  # RFC 3162 §2.1
    if target.nas_identifier is not None:
        attrs.append((Attr.NAS_IDENTIFIER, target.nas_identifier.encode("utf-8")))
    if target.framed_ip is not None:
        framed = ipaddress.ip_address(target.framed_ip)
        if framed.version == 4:  # Framed-IP-Address is IPv4 only (RFC 2865 §5.8)
            attrs.append((Attr.FRAMED_IP_ADDRESS, framed.packed))
    attrs.append((Attr.ACCT_SESSION_ID, target.acct_session_id.encode("utf-8")))
    attrs.append((Attr.EVENT_TIMESTAMP, integer(event_timestamp & 0xFFFFFFFF)))  # RFC 2869 §5.3
    return encode_attributes(attrs)


@dataclass(frozen=True, slots=True)
class Result:
    """A finished request: ``tries`` datagrams sent over ``age`` seconds."""

    outcome: Outcome
    target: DisconnectTarget
    reason: str
    tries: int
    age: float
    error_cause: int | None = None  # RFC 5176 §3.5, from the ACK or NAK
    detail: str = ""


@dataclass(slots=True)
class DisconnectCounters(ClientCounters):
    requested: int = 0
    duplicates: int = 0  # asked again while outstanding: not sent
    recently_answered: int = 0  # asked again within answer_memory of its ACK/NAK: not sent
    rebuilt: int = 0  # new Event-Timestamp and Identifier
    acked: int = 0
    naked: int = 0
    abandoned: int = 0


@dataclass(slots=True, eq=False)
class _Request:
    target: DisconnectTarget
    reason: str
    created: float
    deadline: float
    identifier: int | None = None  # None while waiting for a free Identifier
    authenticator: bytes = b""
    datagram: bytes = b""
    built_at: float = 0.0
    previous: tuple[int, bytes] | None = None  # the try before a rebuild: (Identifier, auth)
    tries: int = 0
    interval: float = 0.0
    due: float = 0.0
    done: bool = False


class DisconnectClient(RadiusClient[_Request, DisconnectCounters]):
    """See the module docstring. All times are unix seconds."""

    def __init__(
        self,
        *,
        initial_interval: float = INITIAL_INTERVAL,
        max_interval: float = MAX_INTERVAL,
        max_age: float = MAX_AGE,
        timestamp_refresh: float = TIMESTAMP_REFRESH,
        answer_memory: float = ANSWER_MEMORY,
        jitter: float = JITTER,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not 0 < initial_interval <= max_interval:
            raise ValueError("need 0 < initial_interval <= max_interval")
        if not 0 <= jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        self.initial_interval = initial_interval
        self.max_interval = max_interval
        self.max_age = max_age
        self.timestamp_refresh = timestamp_refresh
        self.answer_memory = answer_memory
        self.jitter = jitter
        self._random = random
        super().__init__(DisconnectCounters())
        self._queues: dict[Destination, deque[_Request]] = {}  # waiting for an Identifier
        self._by_key: dict[_Key, _Request] = {}
        self._answered: dict[_Key, float] = {}  # when each recently answered session was
        self._answered_order: deque[tuple[float, _Key]] = deque()

    # -- the edge's calls ---------------------------------------------------------------------

    def request(self, target: DisconnectTarget, now: float, reason: str = "") -> bool:
        """Ask the NAS to end ``target``'s session; True if a request was made.

        Nothing is sent when a request for the same session is outstanding (``is_outstanding``)
        or was answered less than ``answer_memory`` ago; ``counters.requested`` does not move.
        """
        key = (*target.destination, target.acct_session_id)
        if key in self._by_key:
            self.counters.duplicates += 1
            return False
        self._forget_answers(now)
        if key in self._answered:
            self.counters.recently_answered += 1
            return False
        self.counters.requested += 1
        request = _Request(target, reason, now, now + self.max_age)
        self._by_key[key] = request
        queue = self._queues.get(target.destination)
        if queue or not self._start(request, now):
            if queue is None:
                queue = self._queues[target.destination] = deque()
            queue.append(request)
            self._schedule(request, request.deadline)
        return True

    def is_outstanding(self, target: DisconnectTarget) -> bool:
        return (*target.destination, target.acct_session_id) in self._by_key

    def __len__(self) -> int:
        """Requests outstanding (sent and unanswered, or waiting for an Identifier)."""
        return len(self._by_key)

    def abandon_all(self, now: float, detail: str) -> None:
        """Give up every outstanding request (the gateway is shutting down): a ``Result`` each."""
        for request in list(self._by_key.values()):
            self.counters.abandoned += 1
            self._finish(request, Outcome.ABANDONED, now, None, detail, start_queued=False)
        self._timers.clear()
        self._outbox.clear()

    # -- the client core's hooks --------------------------------------------------------------

    def _answer(self, request: _Request, datagram: bytes, now: float) -> None:
        """A datagram from the NAS with the Identifier of one of ``request``'s tries."""
        if datagram[1] == request.identifier:
            authenticator = request.authenticator
        else:
            assert request.previous is not None  # a request holds only current and previous
            authenticator = request.previous[1]
        secret = request.target.secret
        # RFC 5176 §2.3: the NAS signs with the shared secret; a mismatch is a wrong secret or a
        # forgery. §3.4: a Message-Authenticator, when present, must verify too.
        packet = verify_answer(datagram, secret, authenticator, DISCONNECT_ANSWERS)
        if packet is None:
            self._refused(
                request.target.destination, datagram, secret, authenticator, DISCONNECT_ANSWERS, now
            )
            return
        cause_value = packet.get(Attr.ERROR_CAUSE)
        cause = None if cause_value is None else as_integer(cause_value)
        if packet.code == _ACK:
            self.counters.acked += 1
            outcome = Outcome.ACK
        else:
            self.counters.naked += 1
            outcome = Outcome.NAK
        self._finish(request, outcome, now, cause)

    def _current(self, when: float, request: _Request) -> bool:
        return not request.done and request.due == when

    def _timeout(self, request: _Request, now: float) -> None:
        """Retransmit what is due; report what is abandoned."""
        if now >= request.deadline:
            self.counters.abandoned += 1
            detail = f"no answer within {self.max_age:g} s"
            self._finish(request, Outcome.ABANDONED, now, None, detail)
        else:
            self._retransmit(request, now)

    # -- internals ---------------------------------------------------------------------------

    def _forget_answers(self, now: float) -> None:
        order = self._answered_order
        while order and order[0][0] + self.answer_memory <= now:
            at, key = order.popleft()
            if self._answered.get(key) == at:
                del self._answered[key]

    def _start(self, request: _Request, now: float) -> bool:
        """Send ``request``'s first try; False when every Identifier to its NAS is in use."""
        slot = self._ids.take(request.target.destination, request)
        if slot is None:
            return False
        self._build(request, slot[1], now)
        request.interval = self.initial_interval
        self._send(request, now)
        return True

    def _build(self, request: _Request, identifier: int, now: float) -> None:
        """A fresh datagram: new Identifier, Event-Timestamp ``now``, authenticator (§2.3)."""
        request.identifier = identifier
        request.datagram = crypto.sign_request(
            _DISCONNECT_REQUEST,
            identifier,
            request_attributes(request.target, int(now)),
            request.target.secret,
            authenticator=None,  # RFC 5176 §2.3: computed over the packet, as accounting does
            message_authenticator=True,
        )
        request.authenticator = request.datagram[4:20]
        request.built_at = now

    def _send(self, request: _Request, now: float) -> None:
        request.tries += 1
        self._emit(0, request.target.destination, request.datagram)
        spread = 1.0 + self.jitter * (2.0 * self._random() - 1.0)
        self._schedule(request, min(now + request.interval * spread, request.deadline))
        request.interval = min(request.interval * 2, self.max_interval)

    def _retransmit(self, request: _Request, now: float) -> None:
        self.counters.retransmitted += 1
        if now - request.built_at > self.timestamp_refresh:
            self._rebuild(request, now)
        self._send(request, now)

    def _rebuild(self, request: _Request, now: float) -> None:
        """New Event-Timestamp, so a new Identifier (RFC 5080 §2.2.1); the try before is kept."""
        destination = request.target.destination
        if request.previous is not None:
            self._ids.give_back(0, destination, request.previous[0])
            request.previous = None
        slot = self._ids.take(destination, request)
        if slot is None:
            return  # every Identifier in use: resend as it is, rebuild at the next try
        assert request.identifier is not None
        request.previous = (request.identifier, request.authenticator)
        self._build(request, slot[1], now)
        self.counters.rebuilt += 1

    def _schedule(self, request: _Request, due: float) -> None:
        request.due = due
        self._push(due, request)

    def _finish(
        self,
        request: _Request,
        outcome: Outcome,
        now: float,
        cause: int | None,
        detail: str = "",
        *,
        start_queued: bool = True,
    ) -> None:
        """Forget ``request``, free its Identifiers, start queued requests in their place, and
        report it (a ``Result`` event)."""
        request.done = True
        target = request.target
        destination = target.destination
        key = (*destination, target.acct_session_id)
        del self._by_key[key]
        if outcome is not Outcome.ABANDONED:
            self._answered[key] = now
            self._answered_order.append((now, key))
        if request.identifier is None:  # still queued
            self._queues[destination].remove(request)
        else:
            self._ids.give_back(0, destination, request.identifier)
            if request.previous is not None:
                self._ids.give_back(0, destination, request.previous[0])
        self._events.append(
            Result(
                outcome, target, request.reason, request.tries, now - request.created, cause, detail
            )
        )
        queue = self._queues.get(destination)
        while start_queued and queue:
            if not self._start(queue[0], now):
                break
            queue.popleft()
