"""The gateway's one UDP edge: every socket it owns is read and written here.

- ``DatagramSocket``: one socket read and written straight from the event loop, without a
  transport object. The auth and acct listeners are two of these, called per datagram.
- ``MachineEdge``: the sockets of one sans-I/O machine (``radiusgw.machine``): the proxy's
  upstream client, the Disconnect client, an LNS probe's control connection. It opens, per
  address family, the sockets the machine's destinations need (on first use, or ahead with
  ``open``), feeds it what they receive, sends what it gives, hands its events to the owner,
  and keeps one loop timer at its ``get_timer``. The owner calls ``flush`` after calling the
  machine itself (``forward``, ``request``, ``start`` ...).

Every request crosses this edge twice (in and out; a proxied one four times), so its cost per
datagram is paid at the full request rate. Instead of uvloop's datagram transport (a callback
and a send path per datagram, and a write queue of its own), one readiness callback reads the
non-blocking socket in a loop and answers go out with a plain ``sendto``. Measured side by side
against the same code with uvloop transports (4 workers, radload closed loop, 3 rounds each,
gateway CPU over the answers): PAP 44.1 -> 39.7 µs per answer and accounting 108-126 -> 77-111
µs per record (14.7/12.7/13.1k -> 20.8/18.1/14.3k records/s, round by round); VPDN (70 -> 68)
and proxy (110 -> 119, then 107 -> 110 in a second set) within the rounds' noise.

Where ``make compiled`` built ``_mmsg`` (Linux), a readiness callback reads up to 64 datagrams
with one ``recvmmsg``, and the answers given while it handles them wait and go out together with
one ``sendmmsg`` when the burst ends (a batch of accounting answers too: ``send_many``). The
socket module has neither call: a datagram cost a ``recvfrom`` and a ``sendto``, and each
wake-up one more ``recvfrom`` that found the socket empty and raised. ``bench.profile --scenario
pap`` (4 workers, closed loop), without and with, built side by side and run alternately:
gateway CPU 23.4 / 21.4 / 19.5 / 20.9 -> 15.8 / 18.7 / 15.3 / 15.9 µs an answer (-23 %), VPDN
24.4 / 27.0 -> 22.5 / 18.0; accounting and proxy within their rounds' noise (their answers
leave from other callbacks than the burst that read the request). So every socket on a loop
holds what it sends while any of them reads a burst (``Outbox``): a proxied request's forward
and its answer go in batches too. Proxy, the same way: 56.6 / 53.7 / 54.6 -> 43.9 / 45.4 /
47.6 µs (-17 %), and PAP 19.6 / 21.5 / 19.7 -> 15.5 / 15.3 / 15.6. ``sendto`` still sends at
once outside a burst (an answer decided on the store threads, a timer's retransmission).

UDP gives no delivery guarantee and RADIUS has its own (the NAS retransmits, RFC 2865 §2.5), so
a datagram the kernel will not take now (a full send buffer) is dropped and counted rather than
queued: the retransmission is answered from the duplicate cache. That is the one send-failure
path for every socket here: the gateway's own requests are retransmitted by their machines.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from radiusgw.machine import Machine
from radiusgw.server.sockets import udp_socket

# recvmmsg/sendmmsg (``_mmsg.c``), where ``make compiled`` built it; else the socket module's
# recvfrom and sendto, one datagram per call (the pure-Python build, a platform without them).
mmsg: Any
try:
    from radiusgw.server import _mmsg as mmsg
except ImportError:  # not built
    mmsg = None

# RFC 2865 §3: a RADIUS packet is at most 4096 octets. A longer datagram arrives cut to this
# and fails the length check as malformed, which is what it is.
MAX_DATAGRAM: Final = 4096
# Datagrams read per readiness callback before the loop runs its other work (timers, the
# journal flush, other sockets): a flood on one socket cannot starve the rest. One ``recvmmsg``
# reads them all (``_mmsg.BATCH``, 64, is its most).
READ_BURST: Final = 64
# A machine on another clock than the loop's (time.time() for Event-Timestamp, time.monotonic()
# for the LNS probe) is woken this much late rather than a hair early: the clocks round apart.
_LATE: Final = 0.001
BIND: dict[int, str] = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}
# Datagrams read between two collections of the young generation (``YoungCollections``).
YOUNG_EVERY: Final = 1024


class YoungCollections:
    """A collection of the young generation at least once every ``YOUNG_EVERY`` datagrams read,
    after the burst that reaches it (its answers sent), unless the collector made one meanwhile
    or is switched off.

    CPython counts a new container towards the young generation's threshold (700) only when it
    is allocated anew: a tuple taken from the tuple free list is tracked by the collector
    without being counted (``tuple_alloc``), and freeing one to the list uncounts nothing. The
    duplicate cache (``radiusgw.engine.dedup``) frees one key tuple per request as it expires
    them and makes one, so under load nearly every key comes from the free list: the young
    generation's collections became rare, and each found tens of thousands of keys to walk,
    cold. A ``gc.callbacks`` probe in each worker under group PAP, one NAS with one port, at 80 %
    of FreeRADIUS's rate: young collections over 12,000-51,000 objects (the keys: (str, int,
    int, bytes)), taking 10-43 ms each with the worker answering nothing; meanwhile the NAS's
    256 Identifiers ran out (RFC 2865 §3) and requests went unsent. Counted here, a young
    collection walks about a thousand keys, most still in the processor's caches.
    """

    __slots__ = ("_left", "_older", "_oldest")

    def __init__(self) -> None:
        self._left = YOUNG_EVERY
        # The older generations' counts at the last look: any collection changes them (a young
        # one adds one to the middle count; an older one sets it to 0 and adds to the next).
        self._older = -1
        self._oldest = -1

    def read(self, datagrams: int) -> None:
        self._left -= datagrams
        if self._left > 0:
            return
        self._left = YOUNG_EVERY
        if not gc.isenabled():  # off on purpose (the account cache's preload): none of ours
            return
        _, older, oldest = gc.get_count()
        if older == self._older and oldest == self._oldest:
            # None since the last look, so the threshold is not being reached: under
            # accounting, whose records are counted allocations, it is, and one more young
            # collection would only add to the older generations' walks.
            gc.collect(0)
            _, older, oldest = gc.get_count()
        self._older = older
        self._oldest = oldest


# One per process: every socket's datagrams count towards the same young generation.
_YOUNG: Final = YoungCollections()


class Outbox:
    """The datagrams one event loop's sockets send while any of them reads a burst, sent at
    its end, per socket with one ``sendmmsg``. Shared by every ``DatagramSocket`` on the loop
    (``of``), so that a proxied request's forward (sent on an upstream socket while the NAS's
    socket reads) and its answer (on the NAS's socket while an upstream's reads) go in batches
    too, not only the answers a socket gives to what it reads itself."""

    __slots__ = ("holding", "waiting")

    def __init__(self) -> None:
        self.holding = 0  # bursts being read (one at a time on a loop; counted all the same)
        self.waiting: list[DatagramSocket] = []  # sockets with datagrams held

    @staticmethod
    def of(loop: asyncio.AbstractEventLoop) -> Outbox:
        outbox = _OUTBOXES.get(loop)
        if outbox is None:
            outbox = _OUTBOXES[loop] = Outbox()
        return outbox

    def release(self) -> None:
        """A burst has ended: send what the loop's sockets held, unless another is still read."""
        self.holding -= 1
        if self.holding == 0:
            waiting, self.waiting = self.waiting, []
            for sock in waiting:  # nothing is held now: their sends do not come back here
                sock.send_held()


# One per event loop (an API thread's loop has its own), gone with the loop.
_OUTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
    weakref.WeakKeyDictionary()
)


class DatagramSocket:
    """Calls ``on_datagram(data, address)`` for every datagram ``sock`` receives."""

    __slots__ = (
        "_batched",
        "_fd",
        "_held",
        "_loop",
        "_on_datagram",
        "_outbox",
        "_reading",
        "_sock",
        "receive_errors",
        "send_failures",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_datagram: Callable[[bytes, Any], None],
        *,
        batched: bool = True,
    ) -> None:
        """``batched``: with ``recvmmsg``/``sendmmsg`` where they are built (False: the socket
        module's calls, one datagram each, as where they are not)."""
        sock.setblocking(False)
        self._batched = batched and mmsg is not None
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._on_datagram = on_datagram
        self.send_failures = 0  # datagrams the kernel refused; the peer retransmits
        self.receive_errors = 0  # errors reported by the socket (an ICMP error, for one)
        self._reading = True
        # While a burst is read, answers wait here and go together at its end (``sendmmsg``).
        self._outbox = Outbox.of(loop)
        self._held: list[tuple[bytes, Any]] = []
        loop.add_reader(self._fd, self._readable)

    def pause(self) -> None:
        """Stop reading: what arrives waits in the kernel's receive buffer (and past it is
        dropped there, as any datagram a full buffer meets; the NAS retransmits)."""
        if self._reading and self._fd >= 0:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume(self) -> None:
        if not self._reading and self._fd >= 0:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _readable(self) -> None:
        if self._batched:
            self._read_batches()
        else:
            self._read_each()

    def _read_each(self) -> None:
        receive = self._sock.recvfrom
        handle = self._on_datagram
        read = 0
        for _ in range(READ_BURST):
            try:
                data, address = receive(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # a pending socket error, reported once: keep reading
                self.receive_errors += 1
                continue
            handle(data, address)
            read += 1
        _YOUNG.read(read)

    def _read_batches(self) -> None:
        """``_read_each`` with one ``recvmmsg`` for the whole burst (``READ_BURST`` is
        ``mmsg.BATCH``), and the datagrams the loop's sockets send meanwhile sent together."""
        try:
            received = mmsg.receive(self._fd, READ_BURST)
        except OSError:  # a pending socket error, reported once: the next callback reads on
            self.receive_errors += 1
            return
        handle = self._on_datagram
        outbox = self._outbox
        outbox.holding += 1
        try:
            for data, address in received:
                handle(data, address)
        finally:
            outbox.release()
        _YOUNG.read(len(received))

    def sendto(self, data: bytes, address: Any) -> None:
        """Send now, or with the other datagrams of the burst being read (``Outbox``)."""
        if self._batched and self._outbox.holding:
            if not self._held:
                self._outbox.waiting.append(self)
            self._held.append((data, address))
            return
        try:
            self._sock.sendto(data, address)
        except OSError:  # a full send buffer, or the peer's address unreachable now
            self.send_failures += 1

    def send_many(self, datagrams: list[tuple[bytes, Any]]) -> None:
        """Send each (data, address), several per system call where ``sendmmsg`` is built; a
        closed socket refuses each (EBADF), counted as any other refusal."""
        if self._batched:
            self.send_failures += mmsg.send(self._fd, datagrams)
        else:
            for data, address in datagrams:
                self.sendto(data, address)

    def send_held(self) -> None:
        """Send what waited for the end of a burst (``Outbox.release``)."""
        held, self._held = self._held, []
        self.send_many(held)

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def close(self) -> None:
        if self._fd >= 0:
            if self._reading:
                self._loop.remove_reader(self._fd)
            self._fd = -1
            self._sock.close()


class MachineEdge:
    """The sockets, the timer and the pump of one sans-I/O machine; see the module docstring.

    ``sockets`` is how many source sockets the machine spreads its requests over, per family
    (their addresses then name the socket: ``(index, (host, port))``, see ``radiusgw.machine``).
    ``clock`` is the machine's ``now``; ``on_event`` gets each of its events. A family whose
    sockets cannot be opened is logged once as ``{name}-sockets-failed`` and its datagrams count
    as ``send_failures``. Call everything from the loop's thread.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        machine: Machine,
        on_event: Callable[[Any], None],
        log: Any,
        *,
        name: str,
        sockets: int = 1,
        bind: dict[int, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.machine = machine
        self.name = name
        self.log = log
        self._loop = loop
        self._on_event = on_event
        self._width = sockets
        self._bind = BIND if bind is None else bind
        self._clock = loop.time if clock is None else clock
        self._own_clock = clock is not None and clock is not loop.time
        self._sockets: dict[int, list[DatagramSocket]] = {}
        self._unusable: dict[int, OSError] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._dropped = 0  # datagrams to a family without sockets
        self._closed = False

    def open(self, family: int) -> bool:
        """The family's sockets, opened once (kept until ``close``: tries in flight wait on
        them); False when they cannot be."""
        if family in self._sockets:
            return True
        if family in self._unusable or self._closed:
            return False
        made: list[DatagramSocket] = []
        try:
            for index in range(self._width):
                sock = udp_socket(self._bind[family], 0, reuse_port=False)
                receive = self._received if self._width == 1 else partial(self._received_on, index)
                made.append(DatagramSocket(self._loop, sock, receive))
        except OSError as exc:  # no IPv6 on this host, say
            for done in made:
                done.close()
            self._unusable[family] = exc
            self.log.error(f"{self.name}-sockets-failed", family=self._bind[family], error=str(exc))
            return False
        self._sockets[family] = made
        return True

    def failure(self, family: int) -> OSError | None:
        """Why ``family``'s sockets could not be opened, if they could not."""
        return self._unusable.get(family)

    @property
    def local_ports(self) -> dict[int, int]:
        """Address family -> local port of its first socket (the source port peers see)."""
        return {family: socks[0].getsockname()[1] for family, socks in self._sockets.items()}

    @property
    def send_failures(self) -> int:
        refused = sum(s.send_failures for socks in self._sockets.values() for s in socks)
        return refused + self._dropped

    def flush(self) -> None:
        """Hand out the machine's events, send its datagrams and re-arm the timer."""
        machine = self.machine
        event = machine.next_event()
        while event is not None:
            self._on_event(event)
            event = machine.next_event()
        for data, destination in machine.datagrams_to_send(self._clock()):
            if self._width == 1:
                index, address = 0, destination
            else:
                index, address = destination
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            socks = self._sockets.get(family)
            if socks is None and self.open(family):
                socks = self._sockets[family]
            if socks is None:
                self._dropped += 1  # logged when the family failed: the try goes unanswered
                continue
            socks[index].sendto(data, address)
        self._arm()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for socks in self._sockets.values():
            for sock in socks:
                sock.close()
        self._sockets.clear()

    # -- the pump ----------------------------------------------------------------------------

    def _received(self, data: bytes, address: Any) -> None:
        self.machine.receive_datagram(data, address, self._clock())
        self.flush()

    def _received_on(self, index: int, data: bytes, address: Any) -> None:
        self.machine.receive_datagram(data, (index, address), self._clock())
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.machine.handle_timer(self._clock())
        self.flush()

    def _arm(self) -> None:
        """One loop timer at the machine's next deadline. One armed earlier stays (it finds
        nothing due, and re-arms): no cancel per request."""
        when = self.machine.get_timer()
        if when is None or self._closed:
            return
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        at = when
        if self._own_clock:
            at = self._loop.time() + max(0.0, when - self._clock()) + _LATE
        self._timer = self._loop.call_at(at, self._on_timer)
