"""The gateway's own RADIUS client towards every upstream: sans-I/O, time passed in.

A ``radiusgw.client.core.RadiusClient`` over N source sockets: the edge drives it by the
convention of ``radiusgw.machine`` (addresses name the socket: ``(index, (host, port))``):

- ``forward(...)`` takes a verified NAS request; its datagrams come out of ``datagrams_to_send``;
- ``receive_datagram(data, (index, source), now)`` takes whatever arrived on socket ``index``;
- ``get_timer()`` says when to call ``handle_timer(now)``, which retransmits, fails over, probes
  and completes failed requests;
- ``next_event()`` gives ``Completed`` (the NAS reply ready to send, or a failure),
  ``StateChange`` and ``AnswerDropped``.

Rules:
- Identifiers (RFC 2865 §3) are per (source socket, destination): 256 outstanding per socket and
  upstream, so N sockets carry 256 x N (``ids``).
- A try that gets no verified answer within the server's ``response_window`` is retransmitted,
  the same datagram with the same Identifier and authenticator (RFC 5080 §2.2.1), up to
  ``retries`` times; then, or as soon as the server is DEAD, the request moves to the next server
  the pool offers (a new Identifier and authenticator; for accounting, Acct-Delay-Time counts the
  time spent, RFC 2866 §5.2). When no server is left it completes as failed, and the edge drops
  or rejects per ``on_upstream_down`` (or spools, for accounting).
- A NAS retransmission (same source, Identifier, Request Authenticator: RFC 5080 §2.2.2) of a
  request still outstanding is not forwarded again; ``forward`` returns nothing for it and no
  ``Completed`` either: the first copy's answer serves both.
- An answer is used only after ``rewrite.nas_reply`` verified it; forged, tampered and late
  answers, and Access-* answers without the Message-Authenticator their server's
  ``require_message_authenticator`` asks for, are dropped and counted (``counters``), and the
  request keeps waiting for the real one.
- Health (``upstream.Upstream``) learns from every try; state changes and dropped answers (with
  the reason) are events; ``status()`` is the operators' snapshot, one entry per realm and
  server.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, TypeVar

from radiusgw.client.answers import ACCESS_ANSWERS, ACCOUNTING_ANSWERS, verify_answer
from radiusgw.client.core import ClientCounters, RadiusClient
from radiusgw.config.model import Realm, UpstreamServer
from radiusgw.proxy import rewrite
from radiusgw.proxy.events import Completed, Failure
from radiusgw.proxy.pool import Pool
from radiusgw.proxy.upstream import (
    Kind,
    ProbeKind,
    ServerState,
    StateChange,
    Upstream,
    UpstreamStatus,
)
from radiusgw.radius.attributes import Code
from radiusgw.radius.packet import Packet

C = TypeVar("C")

_ACCESS_REQUEST: Final = int(Code.ACCESS_REQUEST)
_ACCOUNTING_REQUEST: Final = int(Code.ACCOUNTING_REQUEST)
# Request Authenticators are cut from one getrandom() of this many octets: one system call per
# 256 forwarded requests instead of one each, the values as unpredictable (RFC 2865 §3).
_RANDOM_BLOCK: Final = 16 * 256


@dataclass(slots=True)
class ProxyCounters(ClientCounters):
    forwarded: int = 0  # NAS requests taken
    duplicates: int = 0  # NAS retransmissions of an outstanding request, not forwarded
    failovers: int = 0  # a request moved to another server
    answered: int = 0
    failed: int = 0
    probes_sent: int = 0
    probes_answered: int = 0


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet)
@dataclass(init=False, slots=True, eq=False)
class _Request:
    """One NAS request being forwarded; identity-hashed. Not generic in the edge's context
    type (``Any`` here, ``C`` in the client's API): mypyc compiles no generic dataclass."""

    packet: Packet
    nas_secret: bytes
    pool: Pool
    strip: bool
    context: Any
    key: Hashable | None  # the NAS duplicate key, None for spool replays
    proxy_state: bytes
    extra_delay: float
    started: float
    tried: list[Upstream] = field(default_factory=list)
    upstream: Upstream | None = None  # None: not waiting on any server
    socket: int = 0
    identifier: int = 0
    tries: int = 0  # sends to the current server
    datagram: bytes = b""
    authenticator: bytes = b""
    sent_at: float = 0.0
    due: float = 0.0

    def __init__(
        self,
        packet: Packet,
        nas_secret: bytes,
        pool: Pool,
        strip: bool,
        context: Any,
        key: Hashable | None,
        proxy_state: bytes,
        extra_delay: float,
        started: float,
        upstream: Upstream | None = None,
        socket: int = 0,
        identifier: int = 0,
        tries: int = 0,
        datagram: bytes = b"",
        authenticator: bytes = b"",
        sent_at: float = 0.0,
        due: float = 0.0,
    ) -> None:
        self.packet = packet
        self.nas_secret = nas_secret
        self.pool = pool
        self.strip = strip
        self.context = context
        self.key = key
        self.proxy_state = proxy_state
        self.extra_delay = extra_delay
        self.started = started
        self.tried = []
        self.upstream = upstream
        self.socket = socket
        self.identifier = identifier
        self.tries = tries
        self.datagram = datagram
        self.authenticator = authenticator
        self.sent_at = sent_at
        self.due = due


@dataclass(slots=True, eq=False)
class _Probe:
    upstream: Upstream
    kind: ProbeKind
    sent_at: float
    socket: int = 0
    identifier: int = 0
    authenticator: bytes = b""
    due: float | None = None  # None once answered or given up


_Timer = _Request | _Probe | Upstream


class UpstreamClient(RadiusClient["_Request | _Probe", "ProxyCounters"], Generic[C]):
    """See the module docstring. ``C`` is the edge's context type, handed back in ``Completed``."""

    def __init__(self, sockets: int = 1) -> None:
        super().__init__(ProxyCounters(), sockets)
        self._by_nas: dict[Hashable, _Request] = {}
        self._on: dict[Upstream, set[_Request]] = {}
        self._pools: dict[tuple[str, Kind], Pool] = {}
        self._upstreams: dict[tuple[Kind, UpstreamServer], Upstream] = {}
        self._ready: list[Completed[C]] = []
        self._ready_at = 0.0
        self._dead: list[Upstream] = []
        self._proxy_prefix = os.urandom(4)
        self._proxy_serial = 0
        self._random = b""
        self._random_at = _RANDOM_BLOCK

    # -- the edge's calls ----------------------------------------------------------------

    def forward(
        self,
        nas_packet: Packet,
        nas_secret: bytes,
        realm: Realm,
        now: float,
        context: C,
        *,
        source: Hashable | None,
        extra_delay: float = 0.0,
    ) -> None:
        """Start forwarding a verified Access-Request or Accounting-Request of ``realm``.

        ``source`` is the NAS's (address, port): with the Identifier and Request Authenticator
        it recognises a retransmission (None for spool replays, which are never duplicates).
        ``extra_delay`` is added to Acct-Delay-Time (spool replays). A request that cannot even
        start (every server down, not forwardable) completes as failed at the next
        ``handle_timer``, which ``get_timer`` then makes due at once.
        """
        key = None
        if source is not None:
            key = (source, nas_packet.identifier, nas_packet.authenticator)
            if key in self._by_nas:
                self.counters.duplicates += 1
                return
        self.counters.forwarded += 1
        kind = Kind.ACCT if nas_packet.code == _ACCOUNTING_REQUEST else Kind.AUTH
        pool = self.pool(realm, kind, now)
        self._proxy_serial = (self._proxy_serial + 1) & 0xFFFFFFFF
        proxy_state = self._proxy_prefix + self._proxy_serial.to_bytes(4, "big")
        request = _Request(
            nas_packet, nas_secret, pool, realm.strip, context, key, proxy_state, extra_delay, now
        )
        if key is not None:
            self._by_nas[key] = request
        if nas_packet.code not in (_ACCESS_REQUEST, _ACCOUNTING_REQUEST):
            self._fail(request, Failure.UNFORWARDABLE, now, f"code {nas_packet.code}")
            return
        self._assign(request, now)

    def _answer(self, item: _Request | _Probe, datagram: bytes, now: float) -> None:
        """A datagram with the Identifier of ``item``'s try, from its server: the answer?"""
        if isinstance(item, _Probe):
            self._probe_answer(item, datagram, now)
            return
        upstream = item.upstream
        assert upstream is not None  # waiting requests always have one
        server = upstream.server
        reply = rewrite.nas_reply(
            datagram,
            server.secret,
            item.authenticator,
            item.packet,
            item.nas_secret,
            item.proxy_state,
            require_message_authenticator=server.require_message_authenticator,
        )
        if reply is None:
            self._dropped(upstream, datagram, item.authenticator, now)
            return
        self._detach(item)
        self._note(upstream, upstream.answered(now, now - item.sent_at))
        self._finish(item)
        self.counters.answered += 1
        self._events.append(Completed(item.context, reply, server=upstream.address))

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due (possibly already past), or None."""
        if self._ready:
            return self._ready_at
        return super().get_timer()

    def handle_timer(self, now: float) -> None:
        """Retransmit, fail over, probe and complete whatever is due at ``now``."""
        super().handle_timer(now)
        while self._dead:  # a DEAD server's requests do not wait for their own timers
            upstream = self._dead.pop()
            for request in sorted(self._on.get(upstream, ()), key=lambda r: r.due):
                self._detach(request)
                request.tried.append(upstream)
                self.counters.failovers += 1
                upstream.failover_count += 1
                self._assign(request, now)
        if self._ready:
            self._events.extend(self._ready)
            self._ready = []

    def _timeout(self, item: _Timer, now: float) -> None:
        if isinstance(item, _Request):
            self._request_timeout(item, now)
        elif isinstance(item, _Probe):
            self._probe_timeout(item, now)
        else:
            self._probe_due(item, now)

    # -- pools and operators -------------------------------------------------------------

    def pool(self, realm: Realm, kind: Kind, now: float) -> Pool:
        """The realm's pool for ``kind``, rebuilt when a reload changed its servers or policy."""
        key = (realm.name, kind)
        pool = self._pools.get(key)
        if (
            pool is not None
            and pool.policy is realm.pool
            and (pool.servers is realm.servers or pool.servers == realm.servers)
        ):
            return pool
        upstreams = []
        for server in realm.servers:
            upstream = self._upstreams.get((kind, server))
            if upstream is None:
                upstream = self._upstreams[(kind, server)] = Upstream(server, kind, now)
            upstreams.append(upstream)
        pool = self._pools[key] = Pool(realm.servers, realm.pool, tuple(upstreams))
        return pool

    def realm_up(self, realm: Realm, kind: Kind, now: float) -> bool:
        """Some server of the realm's ``kind`` pool is not DEAD (the spooler asks this)."""
        return self.pool(realm, kind, now).up

    def reload(self, realms: Iterable[Realm]) -> None:
        """Forget pools and servers no proxy realm names any more (they are no longer probed).

        Requests in flight to a forgotten server finish normally.
        """
        wanted = {(r.name, kind): r for r in realms for kind in Kind}
        for key, pool in list(self._pools.items()):
            realm = wanted.get(key)
            if realm is None or pool.servers != realm.servers or pool.policy is not realm.pool:
                del self._pools[key]  # rebuilt at the realm's next request
        servers = {(kind, s) for (_, kind), r in wanted.items() for s in r.servers}
        for server in [k for k in self._upstreams if k not in servers]:
            self._upstreams.pop(server).probe_due = None

    def upstreams(self) -> list[Upstream]:
        """Every destination a proxy realm names and a request has reached (the metrics read
        their counts and state: issue 18.1)."""
        return list(self._upstreams.values())

    def status(self) -> list[UpstreamStatus]:
        """One entry per realm and server that has carried a request: a server that two realms
        name shows once under each (the same health: one ``Upstream`` serves both)."""
        return [
            replace(upstream.status(), realm=name)
            for (name, _), pool in self._pools.items()
            for upstream in pool.upstreams
        ]

    # -- requests ------------------------------------------------------------------------

    def _assign(self, request: _Request, now: float) -> None:
        """Send ``request`` to the next server its pool offers, or complete it as failed."""
        busy = False
        while True:
            upstream = request.pool.select(request.tried)
            if upstream is None:
                if busy:
                    failure = Failure.BUSY
                elif request.tried:
                    failure = Failure.NO_ANSWER
                else:
                    failure = Failure.DOWN
                self._fail(request, failure, now)
                return
            slot = self._ids.take(upstream.address, request)
            if slot is None:
                busy = True
                request.tried.append(upstream)
                continue
            socket, identifier = slot
            try:
                datagram, authenticator = rewrite.upstream_request(
                    request.packet,
                    request.nas_secret,
                    upstream.server,
                    strip=request.strip,
                    identifier=identifier,
                    proxy_state=request.proxy_state,
                    extra_delay=request.extra_delay + (now - request.started),
                    authenticator=self._authenticator(),
                )
            except rewrite.RewriteError as exc:
                self._ids.give_back(socket, upstream.address, identifier)
                self._fail(request, Failure.UNFORWARDABLE, now, str(exc))
                return
            request.upstream = upstream
            request.socket, request.identifier = socket, identifier
            request.datagram, request.authenticator = datagram, authenticator
            request.tries = 1
            waiting = self._on.get(upstream)
            if waiting is None:
                waiting = self._on[upstream] = set()
            waiting.add(request)
            upstream.outstanding += 1
            self._send(request, now)
            return

    def _authenticator(self) -> bytes:
        """16 fresh random octets for a new Request Authenticator (RFC 2865 §3)."""
        at = self._random_at
        if at >= _RANDOM_BLOCK:
            self._random, at = os.urandom(_RANDOM_BLOCK), 0
        self._random_at = at + 16
        return self._random[at : at + 16]

    def _send(self, request: _Request, now: float) -> None:
        upstream = request.upstream
        assert upstream is not None
        request.sent_at = now
        request.due = now + upstream.server.response_window
        self._push(request.due, request)
        upstream.sent_count += 1
        self._emit(request.socket, upstream.address, request.datagram)

    def _request_timeout(self, request: _Request, now: float) -> None:
        upstream = request.upstream
        assert upstream is not None
        self._note(upstream, upstream.missed(request.sent_at, now))
        if upstream.state is not ServerState.DEAD and request.tries <= upstream.server.retries:
            request.tries += 1
            self.counters.retransmitted += 1
            upstream.retransmitted_count += 1
            self._send(request, now)
            return
        self._detach(request)
        request.tried.append(upstream)
        self.counters.failovers += 1
        upstream.failover_count += 1
        self._assign(request, now)

    def _detach(self, request: _Request) -> None:
        """Stop waiting on the request's current server (answered, timed out, or server dead)."""
        upstream = request.upstream
        assert upstream is not None
        self._ids.give_back(request.socket, upstream.address, request.identifier)
        self._on[upstream].discard(request)
        upstream.outstanding -= 1
        request.upstream = None

    def _finish(self, request: _Request) -> None:
        if request.key is not None:
            self._by_nas.pop(request.key, None)

    def _fail(self, request: _Request, failure: Failure, now: float, detail: str = "") -> None:
        self._finish(request)
        self.counters.failed += 1
        if not self._ready:
            self._ready_at = now
        tried = tuple(u.address for u in request.tried)
        self._ready.append(Completed(request.context, None, failure, detail, tried=tried))

    # -- probes --------------------------------------------------------------------------

    def _probe_due(self, upstream: Upstream, now: float) -> None:
        upstream.probe_due = None
        if upstream.server.status_check == "none":
            self._note(upstream, upstream.revive_unchecked(now))
            return
        probe = _Probe(upstream, upstream.next_probe(), now)
        slot = self._ids.take(upstream.address, probe)
        if slot is None:  # every identifier busy: the server is answering something; try later
            upstream.probe_due = now + upstream.server.response_window
            self._push(upstream.probe_due, upstream)
            return
        probe.socket, probe.identifier = slot
        secret = upstream.server.secret
        if probe.kind is ProbeKind.STATUS_SERVER:
            datagram, probe.authenticator = rewrite.status_server(secret, identifier=slot[1])
        else:
            datagram, probe.authenticator = rewrite.probe_request(
                secret, identifier=slot[1], accounting=upstream.kind is Kind.ACCT
            )
        upstream.probe_sent(now)
        probe.due = now + upstream.server.response_window
        self._push(probe.due, probe)
        self.counters.probes_sent += 1
        self._emit(probe.socket, upstream.address, datagram)

    def _probe_answer(self, probe: _Probe, datagram: bytes, now: float) -> None:
        upstream = probe.upstream
        codes = ACCOUNTING_ANSWERS if upstream.kind is Kind.ACCT else ACCESS_ANSWERS
        server = upstream.server
        # Any verified answer proves the server alive, a reject to the probe user included.
        if (
            verify_answer(
                datagram,
                server.secret,
                probe.authenticator,
                codes,
                require_message_authenticator=server.require_message_authenticator,
            )
            is None
        ):
            self._dropped(upstream, datagram, probe.authenticator, now)
            return
        self._end_probe(probe)
        self.counters.probes_answered += 1
        self._note(upstream, upstream.probe_answered(probe.kind, now))
        self._reschedule(upstream)

    def _probe_timeout(self, probe: _Probe, now: float) -> None:
        self._end_probe(probe)
        upstream = probe.upstream
        self._note(upstream, upstream.probe_missed(probe.kind, probe.sent_at, now))
        self._reschedule(upstream)

    def _end_probe(self, probe: _Probe) -> None:
        self._ids.give_back(probe.socket, probe.upstream.address, probe.identifier)
        probe.due = None

    # -- bookkeeping ---------------------------------------------------------------------

    def _dropped(
        self, upstream: Upstream, datagram: bytes, authenticator: bytes, now: float
    ) -> None:
        server = upstream.server
        self._refused(
            upstream.address,
            datagram,
            server.secret,
            authenticator,
            ACCOUNTING_ANSWERS if upstream.kind is Kind.ACCT else ACCESS_ANSWERS,
            now,
            require_message_authenticator=server.require_message_authenticator,
        )

    def _note(self, upstream: Upstream, change: StateChange | None) -> None:
        if change is None:
            return
        self._events.append(change)
        if change.new is ServerState.DEAD:
            self._dead.append(upstream)
        self._reschedule(upstream)

    def _reschedule(self, upstream: Upstream) -> None:
        # A server no realm names any more (``reload``) is no longer probed.
        if self._upstreams.get((upstream.kind, upstream.server)) is not upstream:
            return
        if upstream.probe_due is not None and not upstream.probe_in_flight:
            self._push(upstream.probe_due, upstream)

    def _current(self, when: float, item: _Timer) -> bool:
        """Is this heap entry still meant? (Entries are never removed, only outdated.)"""
        if isinstance(item, _Request):
            return item.upstream is not None and item.due == when
        if isinstance(item, _Probe):
            return item.due == when
        return item.probe_due == when and not item.probe_in_flight
