"""Reliable delivery of control messages (RFC 2661 §5.8): Ns/Nr, acknowledgement, retransmission.

Sans-I/O: messages go in with ``send``, received ones are classified by ``receive``, the
``(data, peer)`` pairs come out of ``datagrams_to_send(now)``, and time arrives as ``now``
(``get_timer`` / ``handle_timer``, the convention of ``radiusgw.machine``). The control
connection receives the datagrams and hands this channel the decoded messages.

Rules, from RFC 2661 §5.8:
- Every non-ZLB control message takes the next Ns; a ZLB carries the next Ns without taking it.
  Nr is the Ns expected next from the peer, and acknowledges every message before it.
- Sequence numbers are 16-bit and compared modulo 2^16: ``a`` is before ``b`` when ``b - a``
  is 1..32767 (mod 65536).
- A message with the expected Ns is new; one from before it is a duplicate, acknowledged again
  (its first ack may have been lost) and not processed twice; one from after it is dropped, as
  this side keeps no reorder queue and the peer retransmits.
- A message that is received and not answered by a message of our own is acknowledged by a ZLB.
  Nr is current at every transmission, retransmissions included.
- At most the peer's Receive Window Size messages are unacknowledged; default 4.
- Retransmission: 1 s after the first transmission, then doubling; 5 tries in all (0, 1, 3, 7,
  15 s), and 16 s after the last try the peer is given up (31 s). An acknowledgement of new
  messages starts the count again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from radiusgw.l2tp.avp import DEFAULT_RECEIVE_WINDOW, Avp
from radiusgw.l2tp.message import ControlMessage, encode

SEQUENCE_MODULUS = 1 << 16
RETRANSMIT_INITIAL = 1.0  # seconds (RFC 2661 §5.8: a recommended initial timeout of 1 s)
MAX_TRIES = 5  # transmissions of one message before the peer is given up (§5.8 default)


def seq_before(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes before ``b`` (RFC 2661 §5.8, modulo 2^16)."""
    return 0 < (b - a) % SEQUENCE_MODULUS < SEQUENCE_MODULUS // 2


class Arrival(Enum):
    """What ``ReliableChannel.receive`` made of a message."""

    NEW = "new"  # the next in sequence: process it
    ZLB = "zlb"  # an acknowledgement only
    DUPLICATE = "duplicate"  # seen before: acknowledged again, not to be processed
    OUT_OF_ORDER = "out-of-order"  # from the future: dropped


@dataclass(frozen=True, slots=True)
class _Outgoing:
    message: ControlMessage  # Nr is set at each transmission


class ReliableChannel:
    """The sequencing half of a control connection; one per tunnel."""

    __slots__ = (
        "_ack_pending",
        "_deadline",
        "_interval",
        "_outbox",
        "_queued",
        "_secret",
        "_tries",
        "_unacked",
        "exhausted",
        "expected_ns",
        "initial_timeout",
        "max_tries",
        "next_ns",
        "peer",
        "peer_tunnel_id",
        "peer_window",
    )

    def __init__(
        self,
        secret: bytes | None = None,
        *,
        peer: tuple[str, int],
        initial_timeout: float = RETRANSMIT_INITIAL,
        max_tries: int = MAX_TRIES,
    ) -> None:
        self._secret = secret
        self.peer = peer  # where our messages go (the connection moves it, RFC 2661 §8.1)
        self.initial_timeout = initial_timeout
        self.max_tries = max_tries
        self.next_ns = 0  # Ns of our next non-ZLB message
        self.expected_ns = 0  # the Nr we send: the peer's next Ns
        self.peer_window = DEFAULT_RECEIVE_WINDOW
        self.peer_tunnel_id = 0  # the Tunnel ID our messages carry: 0 until the peer assigns one
        self.exhausted = False  # the peer was given up after max_tries
        self._unacked: deque[_Outgoing] = deque()
        self._queued: deque[_Outgoing] = deque()  # waiting for room in the peer's window
        self._outbox: list[tuple[bytes, Any]] = []
        self._deadline: float | None = None
        self._interval = initial_timeout
        self._tries = 0
        self._ack_pending = False

    # -- sending ----------------------------------------------------------------------------

    def send(self, avps: tuple[Avp, ...], now: float, session_id: int = 0) -> int:
        """Queue a non-ZLB message for reliable delivery; it takes the next Ns, returned."""
        ns = self.next_ns
        message = ControlMessage(self.peer_tunnel_id, session_id, ns, 0, avps)
        self.next_ns = (self.next_ns + 1) % SEQUENCE_MODULUS
        self._queued.append(_Outgoing(message))
        self._fill_window(now)
        return ns

    def acknowledge(self) -> None:
        """Send a ZLB now if a received message still waits for its acknowledgement."""
        if self._ack_pending:
            self._zlb()

    def _zlb(self) -> None:
        self._ack_pending = False
        zlb = ControlMessage(self.peer_tunnel_id, 0, self.next_ns, self.expected_ns)
        self._outbox.append((encode(zlb, self._secret), self.peer))

    def _transmit(self, item: _Outgoing) -> None:
        # Nr is current at every transmission; it acknowledges whatever was pending.
        self._ack_pending = False
        message = replace(item.message, nr=self.expected_ns)
        self._outbox.append((encode(message, self._secret), self.peer))

    def _fill_window(self, now: float) -> None:
        while self._queued and len(self._unacked) < max(self.peer_window, 1):
            item = self._queued.popleft()
            self._unacked.append(item)
            self._transmit(item)
            if self._deadline is None:
                self._restart_timer(now)

    def _restart_timer(self, now: float) -> None:
        self._tries = 1
        self._interval = self.initial_timeout
        self._deadline = now + self._interval

    # -- receiving --------------------------------------------------------------------------

    def receive(self, message: ControlMessage, now: float) -> Arrival:
        """Take the peer's acknowledgement from ``message`` and classify it by its Ns."""
        self._take_ack(message.nr, now)
        if message.is_zlb:
            return Arrival.ZLB
        if message.ns == self.expected_ns:
            self.expected_ns = (self.expected_ns + 1) % SEQUENCE_MODULUS
            self._ack_pending = True
            return Arrival.NEW
        if seq_before(message.ns, self.expected_ns):
            self._zlb()
            return Arrival.DUPLICATE
        return Arrival.OUT_OF_ORDER

    def _take_ack(self, nr: int, now: float) -> None:
        if not self._unacked:
            return
        # Nr must lie between our oldest unacknowledged Ns and the Ns after the last one we
        # transmitted; anything else is stale or bogus and acknowledges nothing.
        oldest = self._unacked[0].message.ns
        limit = self._queued[0].message.ns if self._queued else self.next_ns
        if seq_before(nr, oldest) or seq_before(limit, nr):
            return
        progressed = False
        while self._unacked and seq_before(self._unacked[0].message.ns, nr):
            self._unacked.popleft()
            progressed = True
        if progressed:
            self._deadline = None
            self._fill_window(now)
            if self._unacked and self._deadline is None:
                self._restart_timer(now)

    # -- time -------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        return None if self.exhausted else self._deadline

    def handle_timer(self, now: float) -> None:
        """Retransmit what is unacknowledged, or give the peer up after ``max_tries``."""
        if self._deadline is None or now < self._deadline or self.exhausted:
            return
        if self._tries >= self.max_tries:
            self.exhausted = True
            self._deadline = None
            return
        for item in self._unacked:
            self._transmit(item)
        self._tries += 1
        self._interval *= 2
        self._deadline = now + self._interval

    # -- state ------------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Messages sent or queued and not acknowledged yet."""
        return len(self._unacked) + len(self._queued)

    def is_acknowledged(self, ns: int) -> bool:
        """Whether our message with ``ns`` has been acknowledged by the peer."""
        return all(item.message.ns != ns for item in (*self._unacked, *self._queued))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        out, self._outbox = self._outbox, []
        return out
