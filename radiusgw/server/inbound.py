"""A worker's step per datagram on its auth and acct sockets (compiled with mypyc).

The engine's answer goes out at once; what the engine defers goes to the worker, which is
interpreted and finishes it on its store threads, its proxy edge or its journal. This step
runs at the full request rate, so it is compiled with the engine it calls: as a method of the
interpreted worker, its frame, its attribute look-ups and its calls into the engine and the
socket through Python's generic call took about 5 % of a worker's CPU under group PAP (perf,
4 workers: the worker's callback 81.3 % of the samples with its callees, the engine 52.5 %,
the send 23.7 %, the rest the callback's own).

``draining`` is the worker's: once set, datagrams are read and dropped (the NAS retransmits
to another node, or to this one once it is back).
"""

from __future__ import annotations

import time
from typing import Any

from radiusgw.engine import AccountingAnswer, AccountLookup, Engine, ProxyAccounting, ProxyAuth
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.datagrams import DatagramSocket
from radiusgw.server.decisions import StoreDecisions
from radiusgw.server.proxy_edge import ProxyEdge


class AuthInbound:
    """The auth socket's datagrams: answered now, or handed on: an account the cache does not
    hold and an accept that needs a session slot to ``decisions`` (the worker's store
    threads), a proxy realm's request to ``proxy``. ``send_deferred`` sends the answers those
    decide. With ``since`` (metrics on) a deferred request's arrival is kept by (source,
    Identifier), and its decision time observed when its answer goes."""

    def __init__(self, engine: Engine, since: dict[tuple[Any, int], float] | None = None):
        self.engine = engine
        self.since = since
        # Each set by the worker's start-up, once made (each of them sends through this).
        self.socket: DatagramSocket | None = None
        self.decisions: StoreDecisions | None = None
        self.proxy: ProxyEdge | None = None
        self.draining = False

    def on_datagram(self, data: bytes, address: Any) -> None:
        if self.draining:
            return
        now = time.time()
        result = self.engine.on_auth(data, address, now)
        if result is None:
            return
        if isinstance(result, bytes):  # its decision time observed by the engine
            sock = self.socket
            if sock is not None:
                sock.sendto(result, address)
            return
        since = self.since
        if since is not None:
            since[(address, data[1])] = now
        if isinstance(result, ProxyAuth):
            proxy = self.proxy
            if proxy is not None:
                proxy.auth(result)
            return
        decisions = self.decisions
        if decisions is None:
            return
        if isinstance(result, AccountLookup):
            decisions.lookup(result)
        else:
            decisions.admit(result)

    def send_deferred(self, answer: bytes, address: Any) -> None:
        """The answer to a deferred request, just decided."""
        sock = self.socket
        if sock is not None:
            sock.sendto(answer, address)
        since = self.since
        if since is not None:
            arrived = since.pop((address, answer[1]), None)
            engine = self.engine
            realm = engine.tally.realm
            latency = engine.latency
            if arrived is not None and realm is not None and latency is not None:
                latency.observe(realm, time.time() - arrived)


class AcctInbound:
    """The acct socket's datagrams: answered now (a duplicate, Accounting-On ...), journalled
    by ``accounting`` and answered once durable (``written``), or, for a proxy realm, forwarded
    by ``proxy`` and journalled side by side (the proxy edge answers once both are durable).
    While the pipeline is ``full`` (the store far behind) they are dropped and counted: the NAS
    retries."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # Each set by the worker's start-up, once made (each of them sends through this).
        self.socket: DatagramSocket | None = None
        self.accounting: AccountingPipeline | None = None
        self.proxy: ProxyEdge | None = None
        self.draining = False

    def on_datagram(self, data: bytes, address: Any) -> None:
        accounting = self.accounting
        if self.draining or accounting is None:
            return
        if accounting.full:
            self.engine.counters.dropped_overload += 1
            return
        result = self.engine.on_acct(data, address, time.time())
        if result is None:
            return
        if isinstance(result, bytes):
            sock = self.socket
            if sock is not None:
                sock.sendto(result, address)
        elif isinstance(result, ProxyAccounting):
            proxy = self.proxy
            if proxy is not None:
                proxy.acct(result)
                accounting.submit(AccountingAnswer(result.key, result.record, b"", address, result))
        else:
            accounting.submit(result)

    def send(self, answer: bytes, address: Any) -> None:
        """An answer decided elsewhere (the proxy edge's, once upstream and journal agree)."""
        sock = self.socket
        if sock is not None:
            sock.sendto(answer, address)

    def written(self, batch: list[AccountingAnswer]) -> None:
        """A batch now in the fsync'd journal: answer each record (RFC 2866 §2: only once it
        is kept); a proxied one is answered by the proxy edge once its upstream has too."""
        engine = self.engine
        proxy = self.proxy
        replies: list[tuple[bytes, Any]] = []
        for answer in batch:
            proxied = answer.proxy
            if proxied is None:
                engine.accounting_done(answer)
                replies.append((answer.reply, answer.address))
            elif proxy is not None:
                proxy.journalled(proxied, True)
        sock = self.socket
        if sock is not None and replies:
            sock.send_many(replies)  # one system call for many (``sendmmsg``)
