"""One worker: an event loop serving the auth and accounting sockets it was given.

The only asyncio in the package besides the supervisor. It moves datagrams between the sockets
and ``radiusgw.engine.Engine``, runs the accounting writer, polls the store's change log into the
account cache, and handles SIGHUP (reload the realm files; an invalid set keeps the old one) and
SIGTERM (stop taking requests, finish the durable writes in flight and answer them, exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from typing import Any

import uvloop

from radiusgw.config import load_registry
from radiusgw.config.model import Registry
from radiusgw.engine import AccountingAnswer, Engine
from radiusgw.errors import ConfigError
from radiusgw.server.accounting_writer import AccountingWriter
from radiusgw.server.lns_monitor import LnsMonitor, read_health
from radiusgw.server.settings import Settings
from radiusgw.store import open_store
from radiusgw.store.cache import AccountCache
from radiusgw.store.health import HealthTable

COUNTERS_LOG_INTERVAL = 60.0


class _AuthProtocol(asyncio.DatagramProtocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        worker = self.worker
        if worker.draining:
            return
        answer = worker.engine.on_auth(data, addr, time.time())
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from a NAS that went away
        self.worker.log.debug("socket-error", port="auth", error=str(exc))


class _AcctProtocol(_AuthProtocol):
    def datagram_received(self, data: bytes, addr: Any) -> None:
        worker = self.worker
        if worker.draining:
            return
        result = worker.engine.on_acct(data, addr, time.time())
        if result is None:
            return
        if isinstance(result, bytes):
            if self.transport is not None:
                self.transport.sendto(result, addr)
        else:
            worker.writer.submit(result)

    def written(self, batch: list[AccountingAnswer]) -> None:
        engine = self.worker.engine
        transport = self.transport
        for answer in batch:
            engine.accounting_done(answer)
            if transport is not None:
                transport.sendto(answer.reply, answer.address)

    def failed(self, batch: list[AccountingAnswer], exc: BaseException) -> None:
        self.worker.log.error("accounting-write-failed", records=len(batch), error=str(exc))
        for answer in batch:
            self.worker.engine.accounting_failed(answer)


class Worker:
    def __init__(self, settings: Settings, registry: Registry, log: Any, index: int = 0) -> None:
        self.settings = settings
        self.index = index  # worker 0 also probes the LNS of VPDN realms
        self.log = log
        self.draining = False
        self.store = open_store(settings.db, settings.key_path)
        cache = AccountCache(self.store.get_account, last_seq=self.store.last_change())
        self.engine = Engine(registry, cache, log=log, access_log=settings.access_log)
        self.health = HealthTable(settings.db)
        self.engine.lns_health = read_health(self.health, registry)
        self.writer: AccountingWriter

    def reload(self) -> None:
        try:
            registry = load_registry(self.settings.realms)
        except ConfigError as exc:
            self.log.error("reload-refused", problems=exc.problems, kept="previous realm files")
            return
        self.engine.reload(registry)
        self.log.info(
            "reloaded",
            contracts=len(registry.contracts),
            realms=len(registry.realms),
            nas=len(registry.nas),
        )

    async def _poll_store(self) -> None:
        """Account changes into the cache, LNS health into the engine, every poll interval."""
        engine = self.engine
        cache = engine.accounts
        while True:
            await asyncio.sleep(self.settings.cache_poll_interval)
            try:
                changes = self.store.changes_since(cache.last_seq)
                engine.lns_health = read_health(self.health, engine.registry)
            except Exception as exc:  # a locked database must not stop the server
                self.log.warning("store-poll-failed", error=str(exc))
                continue
            if changes:
                cache.apply(changes)

    async def _log_counters(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(COUNTERS_LOG_INTERVAL)
            snapshot = self.engine.counters.snapshot()
            if snapshot != last:
                self.log.info("counters", **snapshot)
                last = snapshot

    async def run(self, auth_sock: socket.socket, acct_sock: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        auth_transport, _ = await loop.create_datagram_endpoint(
            lambda: _AuthProtocol(self), sock=auth_sock
        )
        acct_transport, acct = await loop.create_datagram_endpoint(
            lambda: _AcctProtocol(self), sock=acct_sock
        )
        settings = self.settings
        self.writer = AccountingWriter(
            lambda: open_store(settings.db, settings.key_path), loop, acct.written, acct.failed
        )
        self.writer.start()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        tasks = [
            asyncio.create_task(self._poll_store()),
            asyncio.create_task(self._log_counters()),
        ]
        if self.index == 0:
            monitor = LnsMonitor(lambda: self.engine.registry, HealthTable(settings.db), self.log)
            tasks.append(asyncio.create_task(monitor.run()))
        self.log.info("worker-ready")
        await stop.wait()
        # Drain: take no new requests; answer the accounting records already being written.
        self.draining = True
        self.log.info("draining", accounting_in_flight=self.writer.outstanding)
        try:
            await asyncio.wait_for(self.writer.wait_idle(), settings.drain_timeout)
        except TimeoutError:
            self.log.error("drain-timeout", accounting_in_flight=self.writer.outstanding)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.writer.stop()
        auth_transport.close()
        acct_transport.close()
        self.store.close()
        self.health.close()
        self.log.info("stopped", **self.engine.counters.snapshot())
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
