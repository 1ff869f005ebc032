"""Accounting store-and-forward for proxy realms: live or spool, and the replay, in order.

Sans-I/O: ``Spooler`` keeps counts and cursors per realm and says what to do; the edge does the
durable writes and reads (``SpoolStore``: ``spool_accounting``, ``spooled``, ``unspool``) and the
forwarding (``UpstreamClient.forward`` with ``source=None`` and ``extra_delay``).

Rules:
- A new accounting request of a proxy realm goes live to the realm's accounting servers, unless
  they are all DEAD or the realm's spool holds (or is about to hold) entries: then it is spooled,
  so that it cannot overtake older records of the same realm. A live request that fails (no
  server answered) is spooled too. Once the entry is durable the gateway answers the NAS itself:
  an Accounting-Response means the record is safe (RFC 2866 §2), and it is.
- Replay starts when the realm's accounting is up again: oldest id first, at most ``window``
  entries in flight (1 by default: strict order, and a gentle restart for a server just back),
  each with its Acct-Delay-Time increased by the time it was held (RFC 2866 §5.2). ``now`` here
  is wall-clock time, the clock of ``SpoolEntry.received``.
- An entry leaves the spool only after its upstream's verified Accounting-Response: the edge
  calls ``unspool`` and, once that committed, ``delivered``. A failed replay stops the realm's
  replay; it resumes from the oldest entry left when nothing of the realm is in flight any more
  and the realm is up.

Delivery is at-least-once, never at-most-once, and this is a choice, not an accident. The answer
arrives over UDP, outside any database transaction, so no transaction can both record "the
upstream has it" and remove the entry: a crash (``kill -9``) after the upstream stored a record
and before the delete committed - or after sending and before the answer - makes the restarted
gateway send that record again. Losing it instead would break the one promise that matters
(第12条: accounting is never lost). The window for such a duplicate is the ``window`` entries in
flight per realm at the moment of the crash; nothing else is ever sent twice by the gateway (a
replay reads each entry once per attempt, and a failed attempt is re-read only once every entry
of the realm in flight has settled). The repeated record is the same record: same
Acct-Session-Id, Acct-Status-Type, Event-Timestamp and counters, only a larger Acct-Delay-Time
(which, RFC 2866 §5.2 notes, makes it a new packet with a new Identifier). Accounting servers
recognise it by those attributes (RFC 2866 §5.5: Acct-Session-Id matches the records of one
session; FreeRADIUS's Acct-Unique-Session-Id is a hash that leaves Acct-Delay-Time out) and must
tolerate repeats anyway, since a NAS resends whenever an Accounting-Response is lost.

With several workers, one process must replay (each may spool): two replayers would send the
same entries. Order is kept per replaying process, by spool id (the order of durable writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from radiusgw.domain import SpoolEntry
from radiusgw.radius.packet import DecodeError, Packet, decode


class Route(StrEnum):
    LIVE = "live"  # forward to the upstream now
    SPOOL = "spool"  # write to the spool, answer the NAS once durable


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read ``SpoolStore.spooled(realm, limit, after=after)`` and pass it to ``replays``."""

    realm: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class Replay:
    """One spooled record to forward: ``UpstreamClient.forward(packet, ..., source=None,
    extra_delay=extra_delay)`` with a context that names ``entry_id``."""

    entry_id: int
    realm: str
    packet: Packet  # the NAS's request as received
    nas_address: str
    extra_delay: float  # seconds held in the spool


class _Backlog:
    __slots__ = ("after", "blocked", "fetching", "in_flight", "reserved", "stored")

    def __init__(self) -> None:
        self.reserved = 0  # routed to the spool, not yet durable
        self.stored = 0  # durable, not yet delivered (in flight included)
        self.in_flight: set[int] = set()
        self.after = 0  # highest id handed out for replay in this attempt
        self.fetching = False  # a Fetch is out, its replays() not back yet
        self.blocked = False  # a replay failed: restart from the oldest once settled


class Spooler:
    def __init__(self, *, window: int = 1) -> None:
        if window < 1:
            raise ValueError("the replay window is at least one entry")
        self.window = window
        self._realms: dict[str, _Backlog] = {}

    def _backlog(self, realm: str) -> _Backlog:
        realm = realm.lower()
        backlog = self._realms.get(realm)
        if backlog is None:
            backlog = self._realms[realm] = _Backlog()
        return backlog

    # -- new requests ----------------------------------------------------------------------

    def restore(self, counts: Mapping[str, int]) -> None:
        """At start-up: what the store still holds per realm (``SpoolStore.spool_counts()``)."""
        for realm, held in counts.items():
            self._backlog(realm).stored = held

    def route(self, realm: str, up: bool) -> Route:
        """Live or spool for a new accounting request; ``up``: ``UpstreamClient.realm_up``.

        SPOOL reserves a place: answer it with ``written`` or ``write_failed``.
        """
        backlog = self._backlog(realm)
        if up and not backlog.reserved and not backlog.stored:
            return Route.LIVE
        backlog.reserved += 1
        return Route.SPOOL

    def written(self, realm: str, count: int = 1) -> None:
        """``count`` reserved entries are durable (the NAS may be answered)."""
        backlog = self._backlog(realm)
        backlog.reserved = max(0, backlog.reserved - count)
        backlog.stored += count

    def write_failed(self, realm: str, count: int = 1) -> None:
        """The write failed: nothing was stored and the NAS, unanswered, will send again."""
        backlog = self._backlog(realm)
        backlog.reserved = max(0, backlog.reserved - count)

    # -- replay ----------------------------------------------------------------------------

    def fetch(self, realm: str, up: bool) -> Fetch | None:
        """What to read from the spool now for ``realm``, or None (nothing, or not yet)."""
        backlog = self._backlog(realm)
        if backlog.fetching or not up:
            return None
        if backlog.blocked:
            if backlog.in_flight:
                return None
            backlog.blocked = False
            backlog.after = 0  # the oldest entry left is the one that failed
        room = min(self.window - len(backlog.in_flight), backlog.stored - len(backlog.in_flight))
        if room <= 0:
            return None
        backlog.fetching = True
        return Fetch(realm.lower(), backlog.after, room)

    def replays(
        self, realm: str, entries: Sequence[SpoolEntry], now: float
    ) -> tuple[list[Replay], list[int]]:
        """The records to forward from what a ``Fetch`` read, and ids unfit to replay.

        An id in the second list holds a datagram that no longer decodes (the store was damaged):
        the edge logs it as an error and unspools it rather than block the realm for ever.
        """
        backlog = self._backlog(realm)
        backlog.fetching = False
        if not entries:
            # Fewer entries than counted (another process unspooled, or a count drifted): trust
            # the store, or fetch() would ask again and again.
            backlog.stored = len(backlog.in_flight)
            return [], []
        out: list[Replay] = []
        unreadable: list[int] = []
        for entry in entries:
            if entry.id in backlog.in_flight:
                continue
            backlog.after = max(backlog.after, entry.id)
            try:
                packet = decode(entry.packet)
            except DecodeError:
                unreadable.append(entry.id)
                backlog.stored = max(0, backlog.stored - 1)
                continue
            backlog.in_flight.add(entry.id)
            held = max(0.0, now - entry.received)
            out.append(Replay(entry.id, entry.realm, packet, entry.nas_address, held))
        return out, unreadable

    def delivered(self, realm: str, entry_id: int) -> None:
        """The upstream acknowledged ``entry_id`` and ``unspool`` committed."""
        backlog = self._backlog(realm)
        if entry_id in backlog.in_flight:
            backlog.in_flight.discard(entry_id)
            backlog.stored = max(0, backlog.stored - 1)

    def failed(self, realm: str, entry_id: int) -> None:
        """No server acknowledged ``entry_id``: it stays, and the realm's replay pauses."""
        backlog = self._backlog(realm)
        backlog.in_flight.discard(entry_id)
        backlog.blocked = True

    # -- for operators and the edge's loop -------------------------------------------------

    def backlog(self, realm: str) -> int:
        """Entries of ``realm`` held or about to be (0 when it is forwarded live)."""
        backlog = self._realms.get(realm.lower())
        return 0 if backlog is None else backlog.stored + backlog.reserved

    def pending(self) -> list[str]:
        """Realms with something to replay: call ``fetch`` for these when they are up."""
        return [realm for realm, b in self._realms.items() if b.stored > len(b.in_flight)]
