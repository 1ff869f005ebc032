"""The worker's step per datagram (``radiusgw.server.inbound``), on real parts: an engine, a
SQLite store behind its store threads, the accounting journal, and loopback sockets, with the
NAS at its registered address. In the pure-Python pass this is the only test of that module
(the gateway's tests run it compiled)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from radiusgw.domain import AccountRow
from radiusgw.engine import Engine
from radiusgw.engine.cache import AccountCache
from radiusgw.radius.attributes import Code
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.datagrams import DatagramSocket
from radiusgw.server.decisions import StoreDecisions
from radiusgw.server.inbound import AcctInbound, AuthInbound
from radiusgw.store.backend import open_backend
from tests.unit.engine.helpers import ACME_NAS, ListLog, registry
from tests.unit.engine.test_engine import accounting_request, pap_request

SECRET = b"acme-secret"


class Node:
    """One worker's inbound steps over a real engine, store threads and journal."""

    def __init__(self, tmp_path: Path) -> None:
        db, key = tmp_path / "gw.db", tmp_path / "gw.key"
        with open_backend(db, key) as store:
            store.add_account("acme.example", AccountRow("alice", "wonderland"), max_accounts=None)
        loop = asyncio.get_running_loop()
        log = ListLog()
        self.engine = Engine(registry(), AccountCache(), log=log)

        def open_store() -> object:
            return open_backend(db, key)

        self.auth_in = AuthInbound(self.engine)
        self.acct_in = AcctInbound(self.engine)
        self.accounting = AccountingPipeline(
            tmp_path / "journal",
            0,
            open_store,  # type: ignore[arg-type]
            loop,
            log,
            self.acct_in.written,
            lambda batch, exc: None,
        )
        self.acct_in.accounting = self.accounting
        self.decisions = StoreDecisions(
            self.engine,
            open_store,  # type: ignore[arg-type]
            self.accounting,
            self.auth_in.send_deferred,
            loop,
            log,
            deadline=2.0,
        )
        self.auth_in.decisions = self.decisions
        self.auth_in.socket = self.auth = DatagramSocket(loop, _bound(), self.auth_in.on_datagram)
        self.acct_in.socket = self.acct = DatagramSocket(loop, _bound(), self.acct_in.on_datagram)

    def close(self) -> None:
        self.auth.close()
        self.acct.close()
        self.decisions.stop()
        self.accounting.stop()


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def nas() -> Iterator[socket.socket]:
    """The NAS, from its registered address (any port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ACME_NAS[0], 0))
    sock.settimeout(5.0)
    yield sock
    sock.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    gw = Node(tmp_path)
    gw.accounting.start()
    gw.decisions.start()
    yield gw
    gw.close()


async def _answer(nas: socket.socket, request: bytes, to: DatagramSocket) -> bytes:
    nas.sendto(request, to.getsockname())
    answer, _ = await asyncio.get_running_loop().run_in_executor(None, nas.recvfrom, 4096)
    assert answer[1] == request[1]  # the Identifier
    return answer


async def test_an_uncached_login_goes_through_the_store_then_the_next_is_answered_at_once(
    node: Node, nas: socket.socket
) -> None:
    first = await _answer(nas, pap_request("alice@acme.example", b"wonderland", SECRET), node.auth)
    assert first[0] == Code.ACCESS_ACCEPT
    node.decisions.stop()  # from here on only what the loop answers itself is answered
    again = pap_request("alice@acme.example", b"wonderland", SECRET, ident=2)
    assert (await _answer(nas, again, node.auth))[0] == Code.ACCESS_ACCEPT
    wrong = pap_request("alice@acme.example", b"guess", SECRET, ident=3)
    assert (await _answer(nas, wrong, node.auth))[0] == Code.ACCESS_REJECT


async def test_an_accounting_record_is_answered_once_journalled_and_then_stored(
    node: Node, nas: socket.socket
) -> None:
    answer = await _answer(nas, accounting_request(SECRET), node.acct)
    assert answer[0] == Code.ACCOUNTING_RESPONSE
    await node.accounting.wait_idle()
    assert node.accounting.outstanding == 0


async def test_a_draining_worker_reads_and_drops(node: Node, nas: socket.socket) -> None:
    node.auth_in.draining = node.acct_in.draining = True
    nas.settimeout(0.3)
    nas.sendto(pap_request("alice@acme.example", b"wonderland", SECRET), node.auth.getsockname())
    nas.sendto(accounting_request(SECRET), node.acct.getsockname())
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError):
        await asyncio.get_running_loop().run_in_executor(None, nas.recvfrom, 4096)
    assert node.engine.counters.access_requests == 0
