"""One worker: an event loop serving the auth and accounting sockets it was given.

The only asyncio in the package besides the supervisor. It moves datagrams between the sockets
and ``radiusgw.engine.Engine`` and finishes what the engine defers: accounting records go to
the journal and are answered once durable (``radiusgw.server.accounting``); an account the
cache does not hold and an accept that needs a session slot (第14条2) go to store threads, with
a deadline (``radiusgw.server.decisions``). It polls the store (account changes, LNS
health, live sessions per LNS, monthly traffic). Worker 0 also probes the LNS, closes stale
sessions and writes the node's heartbeat (``radiusgw.server.heartbeat``).

Its life has three parts, as uvicorn's ``Server.serve``: ``startup`` (the journal replay, the
sockets, the store threads, the proxy edge, the periodic tasks, then the signal handlers),
``main_loop`` (waits until a handler wakes it) and ``shutdown`` (stop taking requests, finish
the work in flight and answer it within ``Settings.drain_timeout``, close in order, exit 0).
A signal handler only notes the signal (``handle_exit``, ``handle_reload``); the main loop acts.

Realm sets (``radiusgw.server.realm_set``): under a supervisor a worker never reads the realm
files; it serves the set it was forked with and each set that arrives on its pipe from the
supervisor (``reload-applied``), and ignores SIGHUP. Alone (``--workers 1``) it is its own
supervisor: SIGHUP reads the files once, in the main loop (an invalid set keeps the old one).
Signals that come while it starts wait until its handlers are in place
(``radiusgw.server.signals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import time
from collections.abc import Awaitable
from typing import Any

import uvloop

from radiusgw.domain import SessionRow
from radiusgw.engine import AccountingAnswer, Engine
from radiusgw.engine.cache import AccountCache
from radiusgw.engine.droplog import SUMMARY_INTERVAL
from radiusgw.errors import RadiusGwError
from radiusgw.radius.dictionary import load_dictionary
from radiusgw.server import signals
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.authlog import AuthLogWriter
from radiusgw.server.datagrams import DatagramSocket
from radiusgw.server.decisions import StoreDecisions, authenticating_realms
from radiusgw.server.disconnect import DisconnectSender
from radiusgw.server.health import mark_ready
from radiusgw.server.heartbeat import Heartbeat
from radiusgw.server.inbound import AcctInbound, AuthInbound
from radiusgw.server.lns_monitor import LnsMonitor, read_health
from radiusgw.server.metrics import ENV, FLUSH_INTERVAL, Metrics, WorkerMetrics
from radiusgw.server.proxy_edge import ProxyEdge
from radiusgw.server.realm_set import FrameReader, RealmSet, reload
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.server.settings import Settings
from radiusgw.server.store_poll import StorePoll, Usage
from radiusgw.store.backend import Backend, open_backend


async def kept_from_the_collector(work: Awaitable[None]) -> None:
    """``work`` (the account cache's preload) with the cyclic collector off, then everything
    made so far frozen (``gc.freeze``), as start-up does with what it made.

    The cache's 100,000 accounts are about 400,000 objects that live as long as the worker.
    Made while the collector ran, they were promoted into the oldest generation, whose growth
    set off full collections: five of 63-95 ms each in a worker's first seconds of group PAP
    under 100,000 users (a ``gc.callbacks`` timer), the worker answering nothing meanwhile, and
    each full collection after that walked them all again. Now: one young collection of 15-38
    ms when the preload ends (it collects the cycles of the requests answered meanwhile, before
    the freeze), and full collections of 2-3 ms after it.
    """
    gc.disable()
    try:
        await work
    finally:
        gc.collect(1)
        gc.freeze()
        gc.enable()


class Worker:
    def __init__(
        self,
        settings: Settings,
        realms: RealmSet,
        log: Any,
        index: int = 0,
        *,
        updates: int | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``updates``: the read end of the pipe the supervisor sends realm sets on (None when
        this worker is alone and reloads on SIGHUP itself); ``metrics``: with
        ``--metrics-listen``, flushed every second (issue 18.1)."""
        self.metrics = None if metrics is None else WorkerMetrics(metrics, lns=index == 0)
        # Arrival time of each deferred Access-Request, by (NAS address, Identifier): its
        # decision time is measured when its answer goes (``AuthInbound.send_deferred``).
        self._since: dict[tuple[Any, int], float] = {}
        self.settings = settings
        self.index = index
        self.log = log
        # What the signal handlers note for the main loop (``handle_exit``, ``handle_reload``).
        self.should_exit = False
        self.reload_requested = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []  # the periodic work, cancelled at the end
        self.realms = realms
        self._updates = updates
        self._frames = FrameReader()
        registry = realms.registry
        # One store object per thread (radiusgw.store.backend); this one is the event loop's.
        self.store = open_backend(settings.db, settings.key_path, node=settings.node)
        cache = AccountCache(last_seq=self.store.last_change())
        tuning = settings.tuning
        self.engine = Engine(
            registry,
            cache,
            log=log,
            access_log=settings.access_log,
            dedup_window=tuning.dedup_window,
            workers=settings.workers,
            reservation_ttl=tuning.reservation_ttl,
        )
        if self.metrics is not None:
            self.engine.latency = self.metrics.latency
        # The step per datagram, compiled; the acct one once the accounting pipeline is made.
        self._auth_in = AuthInbound(self.engine, None if self.metrics is None else self._since)
        self._acct_in = AcctInbound(self.engine)
        self.engine.lns_health = read_health(self.store, registry)
        self._lns_load: dict[tuple[str, int], int] = {}
        self.engine.lns_sessions = lambda realm, index: self._lns_load.get((realm, index), 0)
        self.auth: DatagramSocket
        self.acct: DatagramSocket
        self.accounting: AccountingPipeline
        self.decisions: StoreDecisions
        self.proxy: ProxyEdge
        self.disconnects: DisconnectSender | None = None  # worker 0: RFC 5176 on quota
        self.auth_log: AuthLogWriter | None = None  # --auth-log-days > 0 (issue 18.3)

    # -- requests -----------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        """Whether the worker drains: datagrams are read and dropped (``shutdown``)."""
        return self._auth_in.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._auth_in.draining = self._acct_in.draining = value

    # -- deferred work ------------------------------------------------------------------

    def _pace_accounting(self, reading: bool) -> None:
        """The applier's flow control (``radiusgw.server.accounting``)."""
        if reading:
            self.acct.resume()
        else:
            self.acct.pause()

    def _write_failed(self, batch: list[AccountingAnswer], exc: BaseException) -> None:
        self.log.error("accounting-write-failed", records=len(batch), error=str(exc))
        for answer in batch:
            if answer.proxy is None:
                self.engine.accounting_failed(answer)
            else:
                self.proxy.journalled(answer.proxy, False)

    # -- periodic work ------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP with no supervisor: read the realm files once and serve them."""
        realms = reload(self.settings.realms, self.realms, self.log, workers=1)
        if realms is not None:
            self.apply(realms)

    def apply(self, realms: RealmSet) -> None:
        """Serve ``realms`` from now on; requests in flight finish with the old set."""
        self.engine.reload(realms.registry)
        self.proxy.reload(realms.registry)
        self.realms = realms
        self.log.info("reload-applied", digest=realms.digest)

    def _read_updates(self) -> None:
        """The supervisor's pipe is readable: (part of) a realm set, or its end."""
        assert self._updates is not None
        try:
            data = os.read(self._updates, 1 << 16)
        except BlockingIOError:
            return
        if not data:  # the supervisor is gone: serve on with the set in hand
            asyncio.get_running_loop().remove_reader(self._updates)
            self.log.warning("supervisor-gone", digest=self.realms.digest)
            return
        sets = self._frames.feed(data)
        if sets:  # several at once: only the newest matters
            self.apply(sets[-1])

    async def _poll_store(self) -> None:
        """Account changes into the cache and LNS health into the engine, every poll interval;
        quotas, LNS loads and the live sessions of realms over their quota every few seconds.

        The reads run on a thread of their own with its own store object (``_StorePoll``):
        with a shared database a round trip, or a database that stopped answering, must not
        stop the event loop. What they return is applied here, on the loop.
        """
        engine = self.engine
        cache = engine.accounts
        last_usage = 0.0
        settings = self.settings
        usage_interval = settings.tuning.usage_poll_interval
        poll = ResourceThread(
            "store-poll",
            lambda: StorePoll(open_backend(settings.db, settings.key_path, node=settings.node)),
        )
        try:
            while True:
                await asyncio.sleep(settings.cache_poll_interval)
                try:
                    now = time.time()
                    usage = now - last_usage >= usage_interval
                    found = await poll.call(
                        StorePoll.read,
                        cache.last_seq,
                        engine.registry,
                        now if usage else None,
                        self.disconnects is not None,
                    )
                    if found.changes:
                        cache.apply(found.changes)
                    engine.lns_health = found.lns_health
                    if found.usage is not None:
                        last_usage = now
                        self._usage_read(found.usage)
                except Exception as exc:  # a locked or unreachable database must not stop us
                    self.log.warning("store-poll-failed", error=str(exc))
        finally:
            await poll.close()

    def _usage_read(self, usage: Usage) -> None:
        reached = usage.reached
        newly = reached - self.engine.quota_reached
        for name in sorted(newly):
            self.log.info("quota-reached", realm=name)
        self.engine.quota_reached = reached
        self._lns_load = usage.lns_load
        if self.disconnects is not None:
            for name in sorted(reached):
                self._disconnect_realm(name, usage.live.get(name, []))

    def _disconnect_realm(self, realm: str, live: list[SessionRow]) -> None:
        """第14条2: a realm over its quota loses its live sessions where the NAS takes a
        Disconnect-Request (RFC 5176); every poll again, for sessions that started meanwhile
        (the sender skips those already asked or answered)."""
        assert self.disconnects is not None
        registry = self.engine.registry
        for row in live:
            nas = registry.nas.get(row.nas_address)
            if nas is None or not nas.coa_port:
                continue
            try:
                self.disconnects.disconnect_session(row, coa_port=nas.coa_port, secret=nas.secret)
            except RadiusGwError as exc:
                self.log.warning(
                    "disconnect-refused", session_id=row.acct_session_id, error=str(exc)
                )

    async def _expire_stale_sessions(self, sweeper: ResourceThread[Backend]) -> None:
        interim = self.settings.default_interim_interval
        interval = self.settings.tuning.stale_sweep_interval
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    closed = await sweeper.call(_expire_stale, time.time(), interim)
                except Exception as exc:
                    self.log.warning("stale-sweep-failed", error=str(exc))
                    continue
                for row in closed:
                    self.log.info(
                        "session-stale",
                        realm=row.realm,
                        user=row.username,
                        nas=row.nas_address,
                        session_id=row.acct_session_id,
                    )
        finally:
            await sweeper.close()

    def counters(self) -> dict[str, int]:
        """What this worker counted: the engine's, the sockets' refused sends, the accounting
        records its store kept aside, and its upstream client's as ``upstream_*``
        (retransmissions, failovers, answers that did not verify)."""
        snapshot = self.engine.counters.snapshot()
        snapshot["send_failures"] = self.auth.send_failures + self.acct.send_failures
        snapshot["accounting_quarantined"] = self.accounting.quarantined
        for name, value in self.proxy.client.counters.as_dict().items():
            snapshot[f"upstream_{name}"] = value
        if self.auth_log is not None:
            snapshot["auth_log_dropped"] = self.auth_log.dropped
        return snapshot

    async def _log_suppressed_drops(self) -> None:
        """The drops-suppressed summary: what the drop log held back (radiusgw.engine.droplog)."""
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL)
            self.engine.drop_log.flush()

    async def _flush_metrics(self, metrics: WorkerMetrics) -> None:
        """Deltas into the shared metrics every second; arrival times of deferred requests
        that never got an answer (dropped) are forgotten after a minute."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            metrics.flush(self)
            old = time.time() - 60.0
            since = self._since
            for key in [k for k, t in since.items() if t < old]:
                del since[key]

    async def _log_counters(self) -> None:
        last: dict[str, int] = {}
        interval = self.settings.tuning.counters_log_interval
        while True:
            await asyncio.sleep(interval)
            snapshot = self.counters()
            if snapshot != last:
                self.log.info("counters", **snapshot)
                last = snapshot

    # -- lifecycle: startup, main loop, shutdown (uvicorn's ``Server.serve``) ------------

    async def run(self, auth_sock: socket.socket, acct_sock: socket.socket) -> int:
        """Serve ``auth_sock`` and ``acct_sock`` until SIGTERM; the exit code (0 once drained)."""
        await self.startup(auth_sock, acct_sock)
        await self.main_loop()
        return await self.shutdown()

    def handle_exit(self) -> None:
        """SIGTERM or SIGINT: note it; the main loop ends and ``shutdown`` drains."""
        self.should_exit = True
        self._wake.set()

    def handle_reload(self) -> None:
        """SIGHUP with no supervisor: note it; the main loop reads the realm files."""
        self.reload_requested = True
        self._wake.set()

    async def startup(self, auth_sock: socket.socket, acct_sock: socket.socket) -> None:
        """Replay the journal, open the sockets and the store threads, start the periodic
        tasks, then take the signals (what came meanwhile is noted from here on)."""
        loop = asyncio.get_running_loop()
        settings = self.settings

        def open_store() -> Backend:  # each thread opens its own (radiusgw.store.backend)
            return open_backend(settings.db, settings.key_path, node=settings.node)

        self.accounting = AccountingPipeline(
            settings.journal_dir,
            self.index,
            open_store,
            loop,
            self.log,
            self._acct_in.written,
            self._write_failed,
            tuning=settings.tuning,
        )
        # Before serving: what an earlier run acknowledged but had not yet applied.
        replayed = self.accounting.replay(
            self.store, adopt_from=settings.workers if self.index == 0 else None
        )
        if replayed:
            self.log.info("journal-replayed", records=replayed, journal=str(settings.journal_dir))
        self._acct_in.accounting = self.accounting
        self.auth = self._auth_in.socket = DatagramSocket(
            loop, auth_sock, self._auth_in.on_datagram
        )
        self.acct = self._acct_in.socket = DatagramSocket(
            loop, acct_sock, self._acct_in.on_datagram
        )
        self.accounting.on_pace = self._pace_accounting
        self.decisions = StoreDecisions(
            self.engine,
            open_store,
            self.accounting,
            self._auth_in.send_deferred,
            loop,
            self.log,
            deadline=settings.store_deadline,
            dictionary=load_dictionary(settings.dictionaries),
            tuning=settings.tuning,
        )
        self.accounting.start()
        self.decisions.start()
        self.proxy = ProxyEdge(
            self.engine,
            open_store,
            self._auth_in.send_deferred,
            self._acct_in.send,
            self.log,
            replayer=self.index == 0,  # one process replays the spool, in order
            worker=self.index,
            status_table=open_store,
            admit=self.decisions.admit,
            tuning=settings.tuning,
        )
        self._auth_in.decisions = self.decisions
        self._auth_in.proxy = self._acct_in.proxy = self.proxy
        await self.proxy.start()
        loop.add_signal_handler(signal.SIGTERM, self.handle_exit)
        loop.add_signal_handler(signal.SIGINT, self.handle_exit)
        if self._updates is None:
            loop.add_signal_handler(signal.SIGHUP, self.handle_reload)
        else:
            os.set_blocking(self._updates, False)
            loop.add_reader(self._updates, self._read_updates)
        signals.deliver()  # what came while starting is handled from here on
        tasks = self._tasks
        tasks.extend(
            [
                asyncio.create_task(self._poll_store()),
                asyncio.create_task(self._log_counters()),
                asyncio.create_task(self._log_suppressed_drops()),
                asyncio.create_task(self.decisions.run_expiry()),
            ]
        )
        if settings.cache_preload:
            realms = authenticating_realms(self.engine.registry)
            preload = self.decisions.preload(realms, settings.cache_preload, open_store)
            tasks.append(asyncio.create_task(kept_from_the_collector(preload)))
        await self._start_auth_log(tasks)
        if self.index == 0:
            health = ResourceThread("lns-health", open_store)
            monitor = LnsMonitor(lambda: self.engine.registry, health, self.log)
            tasks.append(asyncio.create_task(monitor.run()))
            sweeper = ResourceThread("stale-sweep", open_store)
            tasks.append(asyncio.create_task(self._expire_stale_sessions(sweeper)))
            self.disconnects = DisconnectSender(self.log)
            self.disconnects.start()
            heartbeat = Heartbeat(
                settings.node,
                ResourceThread("heartbeat", open_store),
                lambda: (self.accounting.backlog, self.accounting.last_applied),
                self.log,
            )
            tasks.append(asyncio.create_task(heartbeat.run()))
        # Everything made so far (modules, dictionary, registry) lives as long as the worker:
        # kept out of the collector, a full collection no longer walks it. Measured with a
        # gc.callbacks timer under 20,000 PAP/s: full collections of 20-40 ms before, under
        # 10 ms after.
        gc.collect()
        gc.freeze()
        if self.metrics is not None:
            tasks.append(asyncio.create_task(self._flush_metrics(self.metrics)))
            mark_ready(os.environ.get(ENV), os.getpid())  # /ready (issue 18.2)
        self.log.info("worker-ready", digest=self.realms.digest)

    async def _start_auth_log(self, tasks: list[asyncio.Task[None]]) -> None:
        """The authentication log's writer process; worker 0's also prunes (issue 18.3)."""
        settings = self.settings
        if settings.auth_log_days:
            self.auth_log = AuthLogWriter(
                self.engine,
                self.log,
                db=settings.db,
                key_file=str(settings.key_path),
                node=settings.node,
                worker=self.index,
                prune_days=settings.auth_log_days if self.index == 0 else 0,
                drain_timeout=settings.drain_timeout,
                log_level=settings.log_level,
            )
            await self.auth_log.start()
            tasks.append(asyncio.create_task(self.auth_log.run()))

    async def main_loop(self) -> None:
        """Serve until SIGTERM: the signal handlers only note what came, and wake this loop,
        which acts on it (a stop first: a reload noted with it is moot)."""
        while not self.should_exit:
            await self._wake.wait()
            self._wake.clear()
            if self.reload_requested and not self.should_exit:
                self.reload_requested = False
                self.reload()

    async def shutdown(self) -> int:
        """Drain: take no new requests; finish and answer the work already in flight, within
        ``--drain-timeout``; then close everything in order. The exit code."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        tasks = self._tasks
        # Signals wait from now on: the loop's handlers go when it closes, and none may end
        # us then.
        signals.hold()
        if self._updates is not None:
            loop.remove_reader(self._updates)
            os.close(self._updates)
        self.draining = True
        in_flight = {
            "accounting": self.accounting.outstanding,
            "store_decisions": self.decisions.outstanding,
        }
        self.log.info("draining", **in_flight)
        try:
            async with asyncio.timeout(settings.drain_timeout):
                await self.proxy.drain(settings.drain_timeout)
                await self.accounting.wait_idle()
                await self.decisions.wait_idle()
        except TimeoutError:
            self.log.error(
                "drain-timeout",
                accounting=self.accounting.outstanding,
                store_decisions=self.decisions.outstanding,
            )
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=settings.drain_timeout)
        await self._close_auth_log()
        await self.proxy.close()
        if self.disconnects is not None:
            await self.disconnects.close(drain=0.0)
        self.accounting.stop()
        self.decisions.stop()
        self.auth.close()
        self.acct.close()
        with contextlib.suppress(Exception):
            self.store.close()
        self.engine.drop_log.flush()
        if self.metrics is not None:
            self.metrics.flush(self)
        self.log.info("stopped", **self.counters())
        return 0

    async def _close_auth_log(self) -> None:
        if self.auth_log is not None:
            await self.auth_log.close(self.settings.drain_timeout)


def run_worker(
    settings: Settings,
    realms: RealmSet,
    auth_sock: socket.socket,
    acct_sock: socket.socket,
    log: Any,
    index: int = 0,
    *,
    updates: int | None = None,
    metrics: Metrics | None = None,
) -> int:
    worker = Worker(settings, realms, log, index, updates=updates, metrics=metrics)
    return uvloop.run(worker.run(auth_sock, acct_sock))


def _expire_stale(store: Backend, now: float, default_interval: float) -> list[SessionRow]:
    return store.expire_stale(now, default_interval)
