"""One worker: an event loop serving the auth and accounting sockets it was given.

The only asyncio in the package besides the supervisor. It moves datagrams between the sockets
and ``radiusgw.engine.Engine`` and finishes what the engine defers: accounting records go to
the journal and are answered once durable (``radiusgw.server.accounting``); accepts that need
a session slot go to the admission thread (第14条2). It polls the store (account changes, LNS
health, live sessions per LNS, monthly traffic), and handles SIGHUP (reload the realm files; an
invalid set keeps the old one) and SIGTERM (stop taking requests, finish the work in flight
and answer it, exit 0). Worker 0 also probes the LNS and closes stale sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import time
from typing import Any

import uvloop

from radiusgw.config import load_registry
from radiusgw.config.model import Mode, Registry
from radiusgw.engine import AccountingAnswer, Admission, Engine, ProxyAccounting
from radiusgw.engine.droplog import SUMMARY_INTERVAL
from radiusgw.errors import ConfigError, RadiusGwError
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.batches import BatchThread
from radiusgw.server.datagrams import DatagramSocket
from radiusgw.server.disconnect import DisconnectSender
from radiusgw.server.lns_monitor import LnsMonitor, read_health
from radiusgw.server.proxy_edge import ProxyEdge
from radiusgw.server.resource_thread import ResourceThread
from radiusgw.server.settings import Settings
from radiusgw.store import open_store
from radiusgw.store.cache import AccountCache
from radiusgw.store.health import HealthTable
from radiusgw.store.sessions import AdmissionResult, SessionTable
from radiusgw.store.upstreams import UpstreamTable

COUNTERS_LOG_INTERVAL = 60.0
USAGE_POLL_INTERVAL = 2.0  # how often quotas and LNS loads are re-read
STALE_SWEEP_INTERVAL = 60.0


class Worker:
    def __init__(self, settings: Settings, registry: Registry, log: Any, index: int = 0) -> None:
        self.settings = settings
        self.index = index
        self.log = log
        self.draining = False
        self.store = open_store(settings.db, settings.key_path)
        cache = AccountCache(self.store.get_account, last_seq=self.store.last_change())
        self.engine = Engine(
            registry, cache, log=log, access_log=settings.access_log, workers=settings.workers
        )
        self.health = HealthTable(settings.db)
        self.sessions = SessionTable(settings.db)
        self.engine.lns_health = read_health(self.health, registry)
        self._lns_load: dict[tuple[str, int], int] = {}
        self.engine.lns_sessions = lambda realm, index: self._lns_load.get((realm, index), 0)
        self.auth: DatagramSocket
        self.acct: DatagramSocket
        self.accounting: AccountingPipeline
        self.admission: BatchThread[SessionTable, Admission]
        self.proxy: ProxyEdge
        self.disconnects: DisconnectSender | None = None  # worker 0: RFC 5176 on quota

    # -- requests -----------------------------------------------------------------------

    def _on_auth(self, data: bytes, address: Any) -> None:
        if self.draining:
            return
        result = self.engine.on_auth(data, address, time.time())
        if result is None:
            return
        if isinstance(result, bytes):
            self.auth.sendto(result, address)
        elif isinstance(result, Admission):
            self.admit(result)
        else:
            self.proxy.auth(result)

    def _on_acct(self, data: bytes, address: Any) -> None:
        if self.draining:
            return
        if self.accounting.full:  # the store is far behind: shed load, the NAS retries
            self.engine.counters.dropped_overload += 1
            return
        result = self.engine.on_acct(data, address, time.time())
        if result is None:
            return
        if isinstance(result, bytes):
            self.acct.sendto(result, address)
        elif isinstance(result, ProxyAccounting):
            self.proxy.acct(result)
        else:
            self.accounting.submit(result)

    # -- deferred work ------------------------------------------------------------------

    def _send_auth(self, answer: bytes, address: Any) -> None:
        self.auth.sendto(answer, address)

    def _written(self, batch: list[AccountingAnswer]) -> None:
        engine = self.engine
        send = self.acct.sendto
        for answer in batch:
            engine.accounting_done(answer)
            send(answer.reply, answer.address)

    def _write_failed(self, batch: list[AccountingAnswer], exc: BaseException) -> None:
        self.log.error("accounting-write-failed", records=len(batch), error=str(exc))
        for answer in batch:
            self.engine.accounting_failed(answer)

    def admit(self, pending: Admission) -> None:
        """Decide ``pending`` after the accounting this worker acknowledged is applied."""
        self.accounting.after_applied(lambda: self.admission.submit(pending))

    def _admitted(self, batch: list[Admission], results: list[AdmissionResult]) -> None:
        for pending, result in zip(batch, results, strict=True):
            answer = self.engine.admitted(pending, result)
            if isinstance(answer, Admission):  # its LNS filled up meanwhile: try the next one
                self.admit(answer)
            elif answer is not None:  # None: a reject too long to send (counted)
                self._send_auth(answer, pending.address)

    def _admission_failed(self, batch: list[Admission], exc: BaseException) -> None:
        # No answer: the NAS retries, and the retry is decided afresh.
        self.log.error("admission-failed", requests=len(batch), error=str(exc))
        for pending in batch:
            self.engine.complete_auth(pending.key, None)

    def _send_acct(self, answer: bytes, address: Any) -> None:
        self.acct.sendto(answer, address)

    # -- periodic work ------------------------------------------------------------------

    def reload(self) -> None:
        try:
            registry = load_registry(self.settings.realms)
        except ConfigError as exc:
            self.log.error("reload-refused", problems=exc.problems, kept="previous realm files")
            return
        self.engine.reload(registry)
        self.proxy.reload(registry)
        self.log.info(
            "reloaded",
            contracts=len(registry.contracts),
            realms=len(registry.realms),
            nas=len(registry.nas),
        )

    async def _poll_store(self) -> None:
        """Account changes into the cache and LNS health into the engine, every poll interval;
        quotas and LNS loads every few seconds."""
        engine = self.engine
        cache = engine.accounts
        last_usage = 0.0
        while True:
            await asyncio.sleep(self.settings.cache_poll_interval)
            try:
                changes = self.store.changes_since(cache.last_seq)
                if changes:
                    cache.apply(changes)
                engine.lns_health = read_health(self.health, engine.registry)
                now = time.time()
                if now - last_usage >= USAGE_POLL_INTERVAL:
                    last_usage = now
                    self._read_usage(now)
            except Exception as exc:  # a locked database must not stop the server
                self.log.warning("store-poll-failed", error=str(exc))

    def _read_usage(self, now: float) -> None:
        registry = self.engine.registry
        reached = set()
        load: dict[tuple[str, int], int] = {}
        for realm in registry.realms.values():
            if realm.traffic_quota is not None:
                used = self.sessions.month_octets(realm.name, now)
                if used >= realm.traffic_quota:
                    reached.add(realm.name)
            if realm.mode is Mode.VPDN:
                for index, lns in enumerate(realm.lns):
                    load[(realm.name, index)] = self.sessions.count_live(
                        lns=lns.address, reserved_at=now
                    )
        newly = reached - self.engine.quota_reached
        for name in sorted(newly):
            self.log.info("quota-reached", realm=name)
        self.engine.quota_reached = frozenset(reached)
        self._lns_load = load
        if self.disconnects is not None:
            for name in sorted(reached):
                self._disconnect_realm(name)

    def _disconnect_realm(self, realm: str) -> None:
        """第14条2: a realm over its quota loses its live sessions where the NAS takes a
        Disconnect-Request (RFC 5176); every poll again, for sessions that started meanwhile
        (the sender skips those already asked or answered)."""
        assert self.disconnects is not None
        registry = self.engine.registry
        for row in self.sessions.live_sessions(realm):
            nas = registry.nas.get(row.nas_address)
            if nas is None or not nas.coa_port:
                continue
            try:
                self.disconnects.disconnect_session(row, coa_port=nas.coa_port, secret=nas.secret)
            except RadiusGwError as exc:
                self.log.warning(
                    "disconnect-refused", session_id=row.acct_session_id, error=str(exc)
                )

    async def _expire_stale_sessions(self, sweeper: ResourceThread[SessionTable]) -> None:
        interim = self.settings.default_interim_interval
        try:
            while True:
                await asyncio.sleep(STALE_SWEEP_INTERVAL)
                try:
                    closed = await sweeper.call(SessionTable.expire_stale, time.time(), interim)
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
        """What this worker counted: the engine's, the sockets' refused sends, and its upstream
        client's as ``upstream_*`` (retransmissions, failovers, answers that did not verify)."""
        snapshot = self.engine.counters.snapshot()
        snapshot["send_failures"] = self.auth.send_failures + self.acct.send_failures
        for name, value in self.proxy.client.counters.as_dict().items():
            snapshot[f"upstream_{name}"] = value
        return snapshot

    async def _log_suppressed_drops(self) -> None:
        """The drops-suppressed summary: what the drop log held back (radiusgw.engine.droplog)."""
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL)
            self.engine.drop_log.flush()

    async def _log_counters(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(COUNTERS_LOG_INTERVAL)
            snapshot = self.counters()
            if snapshot != last:
                self.log.info("counters", **snapshot)
                last = snapshot

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, auth_sock: socket.socket, acct_sock: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        settings = self.settings
        self.accounting = AccountingPipeline(
            settings.journal_dir,
            self.index,
            lambda: open_store(settings.db, settings.key_path),
            loop,
            self.log,
            self._written,
            self._write_failed,
        )
        # Before serving: what an earlier run acknowledged but had not yet applied.
        replayed = self.accounting.replay(
            self.store, adopt_from=settings.workers if self.index == 0 else None
        )
        if replayed:
            self.log.info("journal-replayed", records=replayed, journal=str(settings.journal_dir))
        self.auth = DatagramSocket(loop, auth_sock, self._on_auth)
        self.acct = DatagramSocket(loop, acct_sock, self._on_acct)
        self.admission = BatchThread(
            "admission",
            lambda: SessionTable(settings.db),
            lambda table, batch: table.admit([p.request for p in batch], time.time()),
            loop,
            self._admitted,
            self._admission_failed,
        )
        self.accounting.start()
        self.admission.start()
        self.proxy = ProxyEdge(
            self.engine,
            lambda: open_store(settings.db, settings.key_path),
            self._send_auth,
            self._send_acct,
            self.log,
            replayer=self.index == 0,  # one process replays the spool, in order
            worker=self.index,
            status_table=lambda: UpstreamTable(settings.db),
        )
        await self.proxy.start()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        tasks = [
            asyncio.create_task(self._poll_store()),
            asyncio.create_task(self._log_counters()),
            asyncio.create_task(self._log_suppressed_drops()),
        ]
        if self.index == 0:
            health = ResourceThread("lns-health", lambda: HealthTable(settings.db))
            monitor = LnsMonitor(lambda: self.engine.registry, health, self.log)
            tasks.append(asyncio.create_task(monitor.run()))
            sweeper = ResourceThread("stale-sweep", lambda: SessionTable(settings.db))
            tasks.append(asyncio.create_task(self._expire_stale_sessions(sweeper)))
            self.disconnects = DisconnectSender(self.log)
            self.disconnects.start()
        # Everything made so far (modules, dictionary, registry) lives as long as the worker:
        # kept out of the collector, a full collection no longer walks it. Measured with a
        # gc.callbacks timer under 20,000 PAP/s: full collections of 20-40 ms before, under
        # 10 ms after.
        gc.collect()
        gc.freeze()
        self.log.info("worker-ready")
        await stop.wait()
        # Drain: take no new requests; finish and answer the work already in flight.
        self.draining = True
        in_flight = {
            "accounting": self.accounting.outstanding,
            "admission": self.admission.outstanding,
        }
        self.log.info("draining", **in_flight)
        try:
            async with asyncio.timeout(settings.drain_timeout):
                await self.proxy.drain(settings.drain_timeout)
                await self.accounting.wait_idle()
                await self.admission.wait_idle()
        except TimeoutError:
            self.log.error(
                "drain-timeout",
                accounting=self.accounting.outstanding,
                admission=self.admission.outstanding,
            )
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=settings.drain_timeout)
        await self.proxy.close()
        if self.disconnects is not None:
            await self.disconnects.close(drain=0.0)
        self.accounting.stop()
        self.admission.stop()
        self.auth.close()
        self.acct.close()
        for resource in (self.store, self.health, self.sessions):
            with contextlib.suppress(Exception):
                resource.close()
        self.engine.drop_log.flush()
        self.log.info("stopped", **self.counters())
        return 0


def run_worker(
    settings: Settings,
    registry: Registry,
    auth_sock: socket.socket,
    acct_sock: socket.socket,
    log: Any,
    index: int = 0,
) -> int:
    worker = Worker(settings, registry, log, index)
    return uvloop.run(worker.run(auth_sock, acct_sock))
