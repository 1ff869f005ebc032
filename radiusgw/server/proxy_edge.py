"""Proxy mode's asyncio edge: sockets, timers and the spool around ``radiusgw.proxy``.

The sans-I/O ``UpstreamClient`` decides everything (identifiers, retransmission, fail-over,
Status-Server probes, reply verification and re-signing); this module only:
- owns ``SOURCE_SOCKETS`` UDP sockets towards the upstreams (256 requests outstanding per
  socket and server) and passes what arrives to ``receive``;
- keeps one loop timer armed at ``next_timer`` and calls ``handle_timer`` when it fires;
- answers the NAS when a request completes (or, for a realm with ``on_upstream_down =
  "reject"``, rejects when every server is down; otherwise stays silent so that the NAS's own
  fail-over to another gateway works);
- accounting of proxy realms: forwarded live, or written durably to the spool (group commit on
  the spool writer thread) and then answered by the gateway itself; worker 0 replays the spool
  in order once the realm's accounting servers are back (``radiusgw.proxy.spool``).

Upstream state changes are logged as they happen and written to the shared ``upstream_status``
view for operators (``radiusgw proxy status``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from radiusgw.config.model import Mode, Realm, Registry
from radiusgw.engine import Engine, ProxyAccounting, ProxyAuth
from radiusgw.proxy.client import UpstreamClient
from radiusgw.proxy.events import Completed, Outgoing
from radiusgw.proxy.spool import Replay, Route, Spooler
from radiusgw.proxy.upstream import Kind
from radiusgw.server.batches import BatchThread
from radiusgw.server.datagrams import DatagramSocket
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.server.sockets import udp_socket
from radiusgw.store import SqliteStore
from radiusgw.store.upstreams import UpstreamTable

SOURCE_SOCKETS = 4
REPLAY_TICK = 1.0
STATUS_PUBLISH_INTERVAL = 5.0


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
        status_table: Callable[[], UpstreamTable] | None = None,
    ) -> None:
        self.engine = engine
        self.log = log
        self._open_store = open_store
        self._send_auth = send_auth
        self._send_acct = send_acct
        self._replayer = replayer
        self._worker = worker
        # The status table's writes wait for the database's write lock: off the loop.
        self._status = (
            None if status_table is None else ResourceThread("upstream-status", status_table)
        )
        self._status_task: asyncio.Task[None] | None = None
        self._status_dirty = True
        self.client: UpstreamClient[_Context] = UpstreamClient(SOURCE_SOCKETS)
        self.spooler = Spooler()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[DatagramSocket] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._spool_writer: BatchThread[SqliteStore, ProxyAccounting] | None = None
        # Replay reads and deletes run on one thread with its own store connection.
        self._spool: ResourceThread[SqliteStore] = ResourceThread("spool", open_store)
        self._replay_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        for index in range(SOURCE_SOCKETS):
            sock = udp_socket("0.0.0.0", 0, reuse_port=False)
            self._sockets.append(DatagramSocket(loop, sock, partial(self.received, index)))
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
            counts = await self._spool.call(SqliteStore.spool_counts)
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
        if self._timer is not None:
            self._timer.cancel()
        for sock in self._sockets:
            sock.close()
        if self._spool_writer is not None:
            self._spool_writer.stop()
        await self._spool.close()

    def reload(self, registry: Registry) -> None:
        self.client.reload([r for r in registry.realms.values() if r.mode is Mode.PROXY])

    # -- from the NAS --------------------------------------------------------------------

    def auth(self, pending: ProxyAuth) -> None:
        self._send(
            self.client.forward(
                pending.packet,
                pending.nas.secret,
                pending.realm,
                self._now(),
                pending,
                source=pending.address,
            )
        )
        self._after()

    def acct(self, pending: ProxyAccounting) -> None:
        realm = pending.realm
        up = self.client.realm_up(realm, Kind.ACCT, self._now())
        if self.spooler.route(realm.name, up) is Route.SPOOL:
            assert self._spool_writer is not None
            self._spool_writer.submit(pending)
            return
        self._send(
            self.client.forward(
                pending.packet,
                pending.nas.secret,
                realm,
                self._now(),
                pending,
                source=pending.address,
            )
        )
        self._after()

    # -- from the upstreams --------------------------------------------------------------

    def received(self, index: int, data: bytes, addr: Any) -> None:
        self._complete(self.client.receive(index, data, addr, self._now()))
        self._after()

    def _on_timer(self) -> None:
        self._timer = None
        out, done = self.client.handle_timer(self._now())
        self._send(out)
        self._complete(done)
        self._after()

    def _complete(self, done: list[Completed[_Context]]) -> None:
        engine = self.engine
        for item in done:
            context = item.context
            if isinstance(context, ProxyAuth):
                pending = context
                if item.reply is not None:
                    engine.complete_auth(pending.key, item.reply)
                    self._send_auth(item.reply, pending.address)
                    continue
                self.log.info(
                    "proxy-failed",
                    client=pending.address[0],
                    realm=pending.realm.name,
                    user=pending.username,
                    reason=str(item.failure),
                    detail=item.detail,
                )
                if pending.realm.on_upstream_down == "reject":
                    reject = engine.reject_deferred(pending, "customer RADIUS servers unavailable")
                    if reject is not None:  # None: too long to send with its Proxy-State
                        self._send_auth(reject, pending.address)
                else:
                    engine.complete_auth(pending.key, None)  # silence: the NAS fails over
            elif isinstance(context, ProxyAccounting):
                record = context
                if item.reply is not None:
                    engine.complete_acct(record.key, item.reply)
                    self._send_acct(item.reply, record.address)
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

    # -- the spool -----------------------------------------------------------------------

    def _spooled(self, batch: list[ProxyAccounting], _ids: Any) -> None:
        for pending in batch:
            self.spooler.written(pending.realm.name)
            answer = self.engine.accounting_response(pending)
            self.engine.complete_acct(pending.key, answer)
            self._send_acct(answer, pending.address)
        self.log.info("accounting-spooled", records=len(batch), realm=batch[0].realm.name)

    def _spool_failed(self, batch: list[ProxyAccounting], exc: BaseException) -> None:
        self.log.error("spool-write-failed", records=len(batch), error=str(exc))
        for pending in batch:
            self.spooler.write_failed(pending.realm.name)
            self.engine.complete_acct(pending.key, None)

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(REPLAY_TICK)
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
            entries = await self._spool.call(
                SqliteStore.spooled, fetch.realm, fetch.limit, after=fetch.after
            )
            replays, unreadable = self.spooler.replays(name, entries, time.time())
            if unreadable:
                self.log.error("spool-unreadable", realm=name, ids=unreadable)
                await self._spool.call(SqliteStore.unspool, unreadable)
            for replay in replays:
                self._forward_replay(realm, replay)

    def _forward_replay(self, realm: Realm, replay: Replay) -> None:
        nas = self.engine.registry.nas.get(replay.nas_address)
        secret = nas.secret if nas is not None else b""  # only re-signs a reply nobody gets
        self._send(
            self.client.forward(
                replay.packet,
                secret,
                realm,
                self._now(),
                replay,
                source=None,
                extra_delay=replay.extra_delay,
            )
        )
        self._after()

    async def _unspool(self, replay: Replay) -> None:
        try:
            await self._spool.call(SqliteStore.unspool, [replay.entry_id])
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

    async def _publish_status(self, table: ResourceThread[UpstreamTable]) -> None:
        """This worker's view of its upstreams, for ``radiusgw proxy status``."""
        last = 0.0
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            if not self._status_dirty and now - last < STATUS_PUBLISH_INTERVAL:
                continue
            self._status_dirty = False
            last = now
            try:
                await table.call(
                    UpstreamTable.publish, self._worker, self.client.status(), now, self._now()
                )
            except Exception as exc:  # a locked database must not stop the server
                self.log.warning("upstream-status-failed", error=str(exc))

    # -- plumbing ------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _send(self, outgoing: list[Outgoing]) -> None:
        for out in outgoing:
            self._sockets[out.socket].sendto(out.datagram, out.address)

    def _after(self) -> None:
        """Log state changes and keep the timer armed at the client's next deadline."""
        for change in self.client.pop_events():
            self._status_dirty = True
            self.log.info(
                "upstream-state",
                server=change.address,
                port=change.port,
                kind=str(change.kind),
                old=str(change.old),
                new=str(change.new),
                reason=change.reason,
            )
        when = self.client.next_timer()
        if when is None:
            return
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)
