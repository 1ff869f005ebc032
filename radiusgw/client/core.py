"""The sans-I/O RADIUS client core that the proxy's upstream client and the Disconnect client share.

Requests in; datagrams, timers and events out (``radiusgw.machine``); answers verified
(``radiusgw.client.answers``). A client of a given job (``radiusgw.proxy.client``: forwarding,
fail-over, probes; ``radiusgw.dynauth``: Disconnect-Requests) subclasses ``RadiusClient`` and
says what a try is, when it is due and what its answer means; the core keeps the rest once:

- Identifiers (``ids``): 256 per source socket and destination (RFC 2865 §3), a freed one
  reused as late as possible;
- one timer heap whose entries are never removed, only outdated: ``_current(when, item)`` says
  whether an entry is still meant (the subclass knows);
- the outbox (``_emit``) and the events (``next_event``);
- the answer path: a datagram shorter than the RADIUS header, or with no try waiting on its
  (socket, source, Identifier) (RFC 5080 §2.2.1 keys requests so), is dropped and counted; the
  rest go to the subclass's ``_answer``, which verifies and, if that fails, calls ``_refused``.

Every drop is counted in ``counters`` and reported as an ``AnswerDropped`` event with its reason
(``matched`` says whether it came from a peer with a try outstanding: an edge may log only those).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, fields
from itertools import count
from typing import Any, Final, Generic, TypeVar

from radiusgw.client.answers import answer_problem
from radiusgw.client.ids import Destination, Identifiers
from radiusgw.machine import Datagram

T = TypeVar("T")
K = TypeVar("K", bound="ClientCounters")

HEADER: Final = 20  # RFC 2865 §3: Code, Identifier, Length, Authenticator


@dataclass(slots=True)
class ClientCounters:
    """What every RADIUS client counts; a client of a given job adds its own fields."""

    sent: int = 0  # datagrams, retransmissions (and probes) included
    retransmitted: int = 0
    dropped_bad_answer: int = 0  # did not verify: forged, tampered, wrong secret, malformed
    dropped_unknown_answer: int = 0  # no try outstanding with that Identifier from that source

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class AnswerDropped:
    """A datagram that was not used as an answer; ``reason`` is one sentence, no secret."""

    address: str
    port: int
    reason: str
    at: float
    matched: bool = True  # it came from a peer with a try outstanding under its Identifier


class RadiusClient(Generic[T, K]):
    """The shared machinery; ``T`` is what waits on an Identifier (a try, a probe), ``K`` what
    the client counts (its job's ``ClientCounters``: one attribute of one type, as mypyc
    compiles it)."""

    def __init__(self, counters: K, sockets: int = 1) -> None:
        self.counters: K = counters
        self.sockets = sockets
        self._ids: Identifiers[T] = Identifiers(sockets)
        self._timers: list[tuple[float, int, Any]] = []
        self._seq = count()
        self._outbox: list[Datagram] = []
        self._events: deque[Any] = deque()

    # -- the convention (radiusgw.machine) -----------------------------------------------

    def receive_datagram(self, data: bytes, source: Any, now: float) -> None:
        """An answer from ``source`` (``(index, address)`` with several source sockets)."""
        if self.sockets == 1:
            socket, address = 0, source
        else:
            socket, address = source
        if len(data) < HEADER:
            self.counters.dropped_bad_answer += 1
            reason = f"malformed: {len(data)} octets, shorter than the RADIUS header"
            self._events.append(AnswerDropped(str(address[0]), address[1], reason, now, False))
            return
        item = self._ids.find(socket, address, data[1])
        if item is None:
            self.counters.dropped_unknown_answer += 1
            reason = f"no request outstanding with Identifier {data[1]}"
            self._events.append(AnswerDropped(str(address[0]), address[1], reason, now, False))
            return
        self._answer(item, data, now)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out = self._outbox
        if out:
            self._outbox = []
        return out

    def get_timer(self) -> float | None:
        timers = self._timers
        while timers and not self._current(timers[0][0], timers[0][2]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def handle_timer(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, item = heapq.heappop(timers)
            if self._current(when, item):
                self._timeout(item, now)

    def next_event(self) -> Any:
        return self._events.popleft() if self._events else None

    @property
    def outstanding(self) -> int:
        """Tries waiting for an answer."""
        return len(self._ids)

    # -- for the subclass ------------------------------------------------------------------

    def _emit(self, socket: int, destination: Destination, datagram: bytes) -> None:
        self.counters.sent += 1
        self._outbox.append((datagram, destination if self.sockets == 1 else (socket, destination)))

    def _push(self, when: float, item: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), item))

    def _refused(
        self,
        destination: Destination,
        datagram: bytes,
        secret: bytes,
        authenticator: bytes,
        codes: frozenset[int],
        now: float,
        *,
        require_message_authenticator: bool = False,
    ) -> None:
        """An answer to a try of ours that did not verify: counted, and the reason queued."""
        self.counters.dropped_bad_answer += 1
        reason = answer_problem(
            datagram,
            secret,
            authenticator,
            codes,
            require_message_authenticator=require_message_authenticator,
        )
        self._events.append(AnswerDropped(destination[0], destination[1], reason, now))

    def _answer(self, item: T, datagram: bytes, now: float) -> None:
        raise NotImplementedError

    def _timeout(self, item: Any, now: float) -> None:
        raise NotImplementedError

    def _current(self, when: float, item: Any) -> bool:
        raise NotImplementedError
