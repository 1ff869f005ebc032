"""Proxy mode's asyncio edge: sockets, timers and the spool around ``radiusgw.proxy``.

The sans-I/O ``UpstreamClient`` decides everything (identifiers, retransmission, fail-over,
Status-Server probes, reply verification and re-signing); the one UDP edge
(``radiusgw.server.datagrams.MachineEdge``) owns its ``Tuning.source_sockets`` source sockets
per address family (256 requests outstanding per socket and server) and its timer; this module
only:
- answers the NAS when a request completes (or, for a realm with ``on_upstream_down =
  "reject"``, rejects when every server is down; otherwise stays silent so that the NAS's own
  fail-over to another gateway works). An upstream Access-Accept of a realm with session limits
  first takes its slot through the worker's admission, as a group accept does (第14条2);
- accounting of proxy realms: forwarded live, or written durably to the spool (group commit on
  the spool writer thread) and then answered by the gateway itself; worker 0 replays the spool
  in order once the realm's accounting servers are back (``radiusgw.proxy.spool``). The same
  record also goes to the worker's journal for the session table (see ``journalled``).

Source sockets: one set per address family, opened when a realm file first names a server of
that family (IPv4 at 0.0.0.0, IPv6 at ::). Not one dual-stack AF_INET6 set with IPv4-mapped
addresses: that would map every IPv4 destination on each send, depend on
``net.ipv6.bindv6only``, and fail outright on a host without IPv6, which an IPv4-only
deployment must not need.

Upstream state changes are logged as they happen and written to the shared ``upstream_status``
view for operators (``radiusgw proxy status``); answers dropped because they did not verify are
logged at most once a minute per server, with the count since the last line.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from radiusgw.client.core import AnswerDropped
from radiusgw.client.ids import Destination, show_destination
from radiusgw.config.model import Mode, Realm, Registry
from radiusgw.domain import SpoolEntry
from radiusgw.engine import Admission, Engine, ProxyAccounting, ProxyAuth
from radiusgw.engine.core import UPSTREAM_DOWN
from radiusgw.engine.counters import NO_ANSWER
from radiusgw.proxy.client import UpstreamClient
from radiusgw.proxy.events import Completed, Failure
from radiusgw.proxy.spool import Replay, Route, Spooler
from radiusgw.proxy.upstream import Kind, StateChange, UpstreamStatus
from radiusgw.server.batches import BatchThread
from radiusgw.server.datagrams import MachineEdge
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.server.settings import DEFAULT_TUNING, Tuning
from radiusgw.store.backend import Backend

DROP_LOG_INTERVAL: Final = (
    60.0  # a forging or misconfigured server is logged once a minute, counted
)


# What a forwarded request completes: the engine's own objects, no wrapper built per request.
_Context = ProxyAuth | ProxyAccounting | Replay


class ProxyEdge:
    def __init__(
        self,
        engine: Engine,
        open_store: Any,
        send_auth: Any,
        send_acct: Any,
        log: Any,
        *,
        replayer: bool,
        worker: int = 0,
        status_table: Callable[[], Backend] | None = None,
        admit: Callable[[Admission], None] | None = None,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        self.engine = engine
        self._sockets = tuning.source_sockets
        self._replay_tick = tuning.replay_tick
        self._status_interval = tuning.status_publish_interval
        self.log = log
        self._open_store = open_store
        self._send_auth = send_auth
        self._send_acct = send_acct
        self._admit = admit
        self._replayer = replayer
        self._worker = worker
        # The status table's writes wait for the database's write lock: off the loop.
        self._status = (
            None if status_table is None else ResourceThread("upstream-status", status_table)
        )
        self._status_task: asyncio.Task[None] | None = None
        self._status_dirty = True
        self.client: UpstreamClient[_Context] = UpstreamClient(self._sockets)
        self.spooler = Spooler()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._edge: MachineEdge | None = None  # the client's sockets and timer, from start()
        self._drops: dict[Destination, list[float]] = {}  # [last logged, dropped since]
        self._spool_writer: BatchThread[Backend, ProxyAccounting] | None = None
        # Replay reads and deletes run on one thread with its own store connection.
        self._spool: ResourceThread[Backend] = ResourceThread("spool", open_store)
        self._replay_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._edge = MachineEdge(
            loop, self.client, self._on_event, self.log, name="proxy", sockets=self._sockets
        )
        self._spool_writer = BatchThread(
            "spool-writer",
            self._open_store,
            lambda store, batch: store.spool_accounting_many(
                [(p.realm.name, p.packet.raw, p.address[0], time.time()) for p in batch]
            ),
            loop,
            self._spooled,
            self._spool_failed,
        )
        self._spool_writer.start()
        self.reload(self.engine.registry)
        if self._status is not None:
            self._status_task = asyncio.create_task(self._publish_status(self._status))
        if self._replayer:
            counts = await self._spool.call(_spool_counts)
            self.spooler.restore(counts)
            self._replay_task = asyncio.create_task(self._replay_loop())

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for forwarded requests to complete and spool writes to land."""
        deadline = time.monotonic() + timeout
        while self.client.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._spool_writer is not None:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self._spool_writer.wait_idle()
            except TimeoutError:
                self.log.error("spool-drain-timeout", outstanding=self._spool_writer.outstanding)

    async def close(self) -> None:
        for task in (self._replay_task, self._status_task):
            if task is not None:
                task.cancel()
                await asyncio.wait([task], timeout=5)
        if self._status is not None:
            await self._status.close()
        if self._edge is not None:
            self._edge.close()
        if self._spool_writer is not None:
            self._spool_writer.stop()
        await self._spool.close()

    def reload(self, registry: Registry) -> None:
        realms = [r for r in registry.realms.values() if r.mode is Mode.PROXY]
        self.client.reload(realms)
        families = {
            socket.AF_INET6 if ":" in server.address else socket.AF_INET
            for realm in realms
            for server in realm.servers
        }
        if self._edge is not None:  # kept across reloads: requests in flight wait on them
            for family in sorted(families):
                self._edge.open(family)

    # -- from the NAS --------------------------------------------------------------------

    def auth(self, pending: ProxyAuth) -> None:
        self.client.forward(
            pending.packet,
            pending.nas.secret,
            pending.realm,
            self._now(),
            pending,
            source=pending.address,
        )
        self._flush()

    def acct(self, pending: ProxyAccounting) -> None:
        realm = pending.realm
        up = self.client.realm_up(realm, Kind.ACCT, self._now())
        if self.spooler.route(realm.name, up) is Route.SPOOL:
            assert self._spool_writer is not None
            self._spool_writer.submit(pending)
            return
        self.client.forward(
            pending.packet,
            pending.nas.secret,
            realm,
            self._now(),
            pending,
            source=pending.address,
        )
        self._flush()

    # -- from the upstream client (MachineEdge.flush hands its events here) ---------------

    def _on_event(self, event: Completed[_Context] | StateChange | AnswerDropped) -> None:
        if isinstance(event, Completed):
            self._complete(event)
        elif isinstance(event, StateChange):
            self._status_dirty = True
            self.log.info(
                "upstream-state",
                server=event.address,
                port=event.port,
                kind=str(event.kind),
                old=str(event.old),
                new=str(event.new),
                reason=event.reason,
            )
        elif event.matched:  # garbage and strays are counted only: a flood must not log
            self._answer_dropped(event)

    def _complete(self, item: Completed[_Context]) -> None:
        engine = self.engine
        context = item.context
        if isinstance(context, ProxyAuth):
            pending = context
            reply = item.reply
            if reply is not None:
                assert item.server is not None  # an answer always names its server
                answer = engine.proxied(pending, reply, item.server)
                if isinstance(answer, bytes):
                    self._send_auth(answer, pending.address)
                else:
                    assert self._admit is not None, "a realm with limits needs admission"
                    self._admit(answer)
                return
            self._log_failure(pending, item)
            if pending.realm.on_upstream_down == "reject":
                reject = engine.reject_deferred(pending, UPSTREAM_DOWN)
                if reject is not None:  # None: too long to send with its Proxy-State
                    self._send_auth(reject, pending.address)
            else:
                engine.tally.count(pending.realm.name, NO_ANSWER)
                engine.complete_auth(pending.key, None)  # silence: the NAS fails over
        elif isinstance(context, ProxyAccounting):
            record = context
            if item.reply is not None:
                self._settle(record, item.reply)
            else:
                # No server took it: keep it durably and answer for it (nothing is lost).
                self.spooler.route(record.realm.name, False)
                assert self._spool_writer is not None
                self._spool_writer.submit(record)
        else:
            replay = context
            if item.reply is not None:
                task = asyncio.create_task(self._unspool(replay))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                self.spooler.failed(replay.realm, replay.entry_id)

    def _log_failure(self, pending: ProxyAuth, item: Completed[_Context]) -> None:
        """No answer to send from upstream: say so, with the servers that were tried."""
        realm = pending.realm
        fields = {
            "client": pending.address[0],
            "realm": realm.name,
            "user": pending.username,
            "reason": str(item.failure),
        }
        if item.failure is Failure.UNFORWARDABLE:
            self.log.info("proxy-failed", detail=item.detail, **fields)
            return
        # Every server silent (tried in turn), or known dead and not tried at all.
        servers = item.tried or tuple((s.address, s.auth_port) for s in realm.servers)
        self.log.info("proxy-no-answer", servers=[show_destination(s) for s in servers], **fields)

    # -- accounting: two durable writes, one answer ----------------------------------------

    def journalled(self, pending: ProxyAccounting, ok: bool) -> None:
        """The worker's journal holds ``pending.record`` durably (``ok``), or failed to write it.

        The NAS's Accounting-Response means "kept" (RFC 2866 §2), and a proxy realm's record is
        kept twice: by the customer (forwarded and answered, or in our spool for them: 第12条)
        and in our journal, whence sessions, usage and the limits come (第14条2). So the answer
        waits for both. Either alone could lose a half after a crash: answered after the journal
        only, a record not yet forwarded nor spooled would never reach the customer (the
        journal feeds the session table, not the spool); after the forward only, our session
        table would miss a Stop and hold a slot until the stale sweep. The two run side by
        side, so the wait is the slower of them, not their sum. When one fails there is no
        answer and the NAS retries; the retry may repeat the half that succeeded, which both
        sides tolerate (RFC 2866 §5.5: the same Acct-Session-Id; the session rules ignore
        repeats).
        """
        if not ok:
            pending.failed = True
        self._settle(pending, None)

    def _settle(self, pending: ProxyAccounting, answer: bytes | None) -> None:
        """One part of ``pending`` is done: ``answer`` is the NAS's reply if it was the forward
        or the spool and it succeeded (None: the journal, or a failure). Answers when both are."""
        if answer is not None:
            pending.answer = answer
        pending.waiting -= 1
        if pending.waiting:
            return
        if pending.failed or not pending.answer:
            self.engine.complete_acct(pending.key, None)  # the NAS retries
            return
        self.engine.complete_acct(pending.key, pending.answer)
        self._send_acct(pending.answer, pending.address)

    # -- the spool -----------------------------------------------------------------------

    def _spooled(self, batch: list[ProxyAccounting], _ids: Any) -> None:
        for pending in batch:
            self.spooler.written(pending.realm.name)
            self._settle(pending, self.engine.accounting_response(pending))
        self.log.info("accounting-spooled", records=len(batch), realm=batch[0].realm.name)

    def _spool_failed(self, batch: list[ProxyAccounting], exc: BaseException) -> None:
        self.log.error("spool-write-failed", records=len(batch), error=str(exc))
        for pending in batch:
            self.spooler.write_failed(pending.realm.name)
            pending.failed = True
            self._settle(pending, None)

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self._replay_tick)
            try:
                await self._replay_once()
            except Exception as exc:  # a locked database must not end the replays
                self.log.warning("spool-replay-failed", error=str(exc))

    async def _replay_once(self) -> None:
        realms = self.engine.registry.realms
        for name in self.spooler.pending():
            realm = realms.get(name)
            if realm is None or realm.mode is not Mode.PROXY:
                continue  # the realm left the files: its entries wait for it to return
            fetch = self.spooler.fetch(name, self.client.realm_up(realm, Kind.ACCT, self._now()))
            if fetch is None:
                continue
            entries = await self._spool.call(_spooled, fetch.realm, fetch.limit, after=fetch.after)
            replays, unreadable = self.spooler.replays(name, entries, time.time())
            if unreadable:
                self.log.error("spool-unreadable", realm=name, ids=unreadable)
                await self._spool.call(_unspool, unreadable)
            for replay in replays:
                self._forward_replay(realm, replay)

    def _forward_replay(self, realm: Realm, replay: Replay) -> None:
        nas = self.engine.registry.nas.get(replay.nas_address)
        secret = nas.secret if nas is not None else b""  # only re-signs a reply nobody gets
        self.client.forward(
            replay.packet,
            secret,
            realm,
            self._now(),
            replay,
            source=None,
            extra_delay=replay.extra_delay,
        )
        self._flush()

    async def _unspool(self, replay: Replay) -> None:
        try:
            await self._spool.call(_unspool, [replay.entry_id])
        except Exception as exc:
            self.log.error("unspool-failed", realm=replay.realm, id=replay.entry_id, error=str(exc))
            self.spooler.failed(replay.realm, replay.entry_id)
            return
        self.spooler.delivered(replay.realm, replay.entry_id)
        self.log.info(
            "accounting-replayed",
            realm=replay.realm,
            id=replay.entry_id,
            held=round(replay.extra_delay, 3),
        )

    async def _publish_status(self, table: ResourceThread[Backend]) -> None:
        """This worker's view of its upstreams, for ``radiusgw proxy status``."""
        last = 0.0
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            if not self._status_dirty and now - last < self._status_interval:
                continue
            self._status_dirty = False
            last = now
            try:
                await table.call(_publish, self._worker, self.client.status(), now, self._now())
            except Exception as exc:  # a locked database must not stop the server
                self.log.warning("upstream-status-failed", error=str(exc))

    def _answer_dropped(self, event: AnswerDropped) -> None:
        """A warning per server at most every ``DROP_LOG_INTERVAL`` (a flood of forged answers
        must not flood the log too), with how many were dropped since the last one."""
        where = (event.address, event.port)
        seen = self._drops.get(where)
        if seen is None:
            seen = self._drops[where] = [event.at - DROP_LOG_INTERVAL, 0]
        seen[1] += 1
        if event.at - seen[0] < DROP_LOG_INTERVAL:
            return
        self.log.warning(
            "upstream-answer-dropped",
            server=show_destination(where),
            reason=event.reason,
            dropped=int(seen[1]),
        )
        seen[0], seen[1] = event.at, 0

    # -- plumbing ------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _flush(self) -> None:
        assert self._edge is not None
        self._edge.flush()


# The store's operations as the ResourceThreads call them (store first): a Protocol's methods
# cannot be taken unbound from the Protocol class.
def _spool_counts(store: Backend) -> dict[str, int]:
    return store.spool_counts()


def _spooled(store: Backend, realm: str, limit: int, *, after: int = 0) -> list[SpoolEntry]:
    return store.spooled(realm, limit, after=after)


def _unspool(store: Backend, ids: Iterable[int]) -> int:
    return store.unspool(ids)


def _publish(
    store: Backend, worker: int, statuses: Iterable[UpstreamStatus], now: float, monotonic: float
) -> None:
    store.publish_upstreams(worker, statuses, now, monotonic)
