"""Issue 15.6: what an Access-Request needs from the store is asked off the loop, and a store
that fails or stalls past the deadline is decided without (radiusgw.server.decisions).

The store is a real SQLite backend behind ``Stalling``, which holds (a database that stopped
answering) or fails (a database that is gone) the two calls the decisions make.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from radiusgw.domain import AccountRow, AdmissionRequest, AdmissionResult
from radiusgw.engine import AccountLookup, Admission, Engine
from radiusgw.engine.cache import AccountCache
from radiusgw.errors import StoreError
from radiusgw.radius.attributes import Code
from radiusgw.server.accounting import AccountingPipeline
from radiusgw.server.deadlines import Deadlines
from radiusgw.server.decisions import StoreDecisions
from radiusgw.store.backend import Backend, open_backend
from tests.unit.engine.helpers import ACME_NAS, ListLog, registry
from tests.unit.engine.test_engine import NOW, answer_of, pap_request

DEADLINE = 0.3
SECRET = b"acme-secret"


def test_deadlines_expire_oldest_first_and_a_late_finish_is_refused() -> None:
    deadlines: Deadlines[object] = Deadlines(2.0)
    a, b, c = object(), object(), object()
    deadlines.start(a, 10.0)
    deadlines.start(b, 10.5)
    deadlines.start(c, 11.0)
    assert deadlines.finish(b) and len(deadlines) == 2
    assert deadlines.expired(11.9) == []
    assert deadlines.expired(12.0) == [a]
    assert not deadlines.finish(a)  # decided at its deadline: the late answer is not wanted
    assert deadlines.waiting(c) and deadlines.expired(20.0) == [c] and len(deadlines) == 0


class Stalling:
    """A real backend whose account reads and admissions hold while ``hold`` is clear, and
    fail while ``fail`` is set."""

    def __init__(self, store: Backend, hold: threading.Event, fail: threading.Event) -> None:
        self._store = store
        self._hold = hold
        self._fail = fail

    def _wait(self) -> None:
        assert self._hold.wait(10), "the test never released the store"
        if self._fail.is_set():
            raise StoreError("cannot connect to postgresql://gw@127.0.0.1:1/gw: refused")

    def get_account(self, realm: str, username: str) -> Any:
        self._wait()
        return self._store.get_account(realm, username)

    def admit(self, requests: Sequence[AdmissionRequest], now: float) -> list[AdmissionResult]:
        self._wait()
        return self._store.admit(requests, now)

    def close(self) -> None:
        self._store.close()


class Gateway:
    """An engine and its store decisions on the running loop; answers sent are kept."""

    def __init__(self, tmp_path: Path, on_store_down: str) -> None:
        db, key = tmp_path / "gw.db", tmp_path / "gw.key"
        with open_backend(db, key) as store:
            store.add_account("acme.example", AccountRow("alice", "wonderland"), max_accounts=None)
        base = registry()
        acme = dataclasses.replace(
            base.realms["acme.example"], max_sessions=1, on_store_down=on_store_down
        )
        reg = dataclasses.replace(base, realms={**base.realms, "acme.example": acme})
        self.log = ListLog()
        self.engine = Engine(reg, AccountCache(), log=self.log)
        self.hold = threading.Event()
        self.fail = threading.Event()
        self.sent: list[bytes] = []
        loop = asyncio.get_running_loop()

        def open_store() -> Any:
            return Stalling(open_backend(db, key), self.hold, self.fail)

        self.accounting = AccountingPipeline(
            tmp_path / "journal", 0, open_store, loop, self.log, lambda b: None, lambda b, e: None
        )
        self.decisions = StoreDecisions(
            self.engine,
            open_store,
            self.accounting,
            lambda answer, _address: self.sent.append(answer),
            loop,
            self.log,
            deadline=DEADLINE,
        )

    def request(self, ident: int) -> bytes:
        req = pap_request("alice@acme.example", b"wonderland", SECRET, ident=ident)
        result = self.engine.on_auth(req, ACME_NAS, NOW)
        if isinstance(result, AccountLookup):
            self.decisions.lookup(result)
        elif isinstance(result, Admission):
            self.decisions.admit(result)
        else:
            assert isinstance(result, bytes)
            self.sent.append(result)
        return req

    async def settle(self, seconds: float) -> None:
        """Let the threads answer and the deadlines pass, as the worker's expiry task does."""
        for _ in range(int(seconds / 0.05)):
            await asyncio.sleep(0.05)
            self.decisions.expire()


@pytest.fixture
async def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    gw = Gateway(tmp_path, getattr(request, "param", "admit"))
    gw.decisions.start()
    yield gw
    gw.hold.set()
    gw.decisions.stop()


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait for what a store thread does (a loaded machine may take its time)."""
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the store thread never answered")


def codes(gw: Gateway) -> list[int]:
    return [answer[0] for answer in gw.sent]


async def test_a_look_up_and_an_admission_go_through_the_store_when_it_answers(
    gateway: Gateway,
) -> None:
    gateway.hold.set()
    req = gateway.request(1)
    await until(lambda: len(gateway.sent) == 1)
    (answer,) = gateway.sent
    assert answer_of(answer, req, SECRET)[0] == Code.ACCESS_ACCEPT
    gateway.request(2)  # max_sessions = 1: the first holds the slot (a reservation)
    await until(lambda: len(gateway.sent) == 2)
    assert codes(gateway) == [Code.ACCESS_ACCEPT, Code.ACCESS_REJECT]
    assert gateway.engine.counters.admitted_store_down == 0


async def test_a_stalled_store_drops_an_uncached_account_at_the_deadline(
    gateway: Gateway,
) -> None:
    gateway.request(1)
    await asyncio.sleep(0.05)
    assert gateway.decisions.outstanding == 1 and gateway.sent == []  # the loop runs on
    await gateway.settle(DEADLINE + 0.2)
    assert gateway.sent == [] and gateway.decisions.outstanding == 0
    assert gateway.engine.counters.dropped_store_error == 1
    (error,) = [e for e in gateway.log.events if e["event"] == "store-error"]
    assert "did not answer within 0.3 s" in error["error"] and error["action"] == "dropped"
    gateway.hold.set()  # the late answer is not sent: the request was dropped at its deadline
    await gateway.settle(0.2)
    assert gateway.sent == []


@pytest.mark.parametrize(
    ("gateway", "answer", "counter"),
    [
        ("admit", Code.ACCESS_ACCEPT, "admitted_store_down"),
        ("reject", Code.ACCESS_REJECT, "rejected_store_down"),
    ],
    indirect=["gateway"],
)
async def test_an_admission_the_stalled_store_cannot_decide_follows_on_store_down(
    gateway: Gateway, answer: Code, counter: str
) -> None:
    gateway.hold.set()  # the account is read, and cached ...
    gateway.request(1)
    await until(lambda: len(gateway.sent) == 1)
    gateway.sent.clear()
    gateway.hold.clear()  # ... then the database stops answering
    req = gateway.request(2)
    await gateway.settle(DEADLINE + 0.2)
    (sent,) = gateway.sent
    assert answer_of(sent, req, SECRET)[0] == answer
    assert getattr(gateway.engine.counters, counter) == 1
    (error,) = [e for e in gateway.log.events if e["event"] == "admission-store-down"]
    assert error["action"] == ("admitted" if answer == Code.ACCESS_ACCEPT else "rejected")
    assert gateway.engine.on_auth(req, ACME_NAS, NOW) == sent  # a retransmission: the same
    gateway.hold.set()
    await gateway.settle(0.2)
    assert len(gateway.sent) == 1  # the store's late decision is not sent as well


async def test_a_failing_store_decides_an_admission_at_once(gateway: Gateway) -> None:
    gateway.hold.set()
    gateway.request(1)
    await until(lambda: len(gateway.sent) == 1)
    gateway.fail.set()  # the database is gone: connections are refused
    gateway.request(2)
    await until(lambda: len(gateway.sent) == 2)  # no expire() here: the failure decided it
    assert codes(gateway) == [Code.ACCESS_ACCEPT, Code.ACCESS_ACCEPT]
    assert gateway.engine.counters.admitted_store_down == 1


async def test_a_failing_store_drops_an_uncached_account(gateway: Gateway) -> None:
    gateway.fail.set()
    gateway.hold.set()
    gateway.request(1)
    await until(lambda: gateway.engine.counters.dropped_store_error == 1)
    assert gateway.sent == []
    gateway.fail.clear()  # back: the NAS's retry is answered
    gateway.request(1)
    await until(lambda: bool(gateway.sent))
    assert codes(gateway) == [Code.ACCESS_ACCEPT]


async def test_a_preload_fills_the_cache_up_to_its_limit_without_the_store_per_login(
    gateway: Gateway, tmp_path: Path
) -> None:
    """A worker that starts reads its realms' accounts in the background, so that its first
    logins do not each wait for the store (here the store then stops answering)."""
    from radiusgw.engine.cache import MISS

    db, key = tmp_path / "gw.db", tmp_path / "gw.key"
    with open_backend(db, key) as store:
        for n in range(30):
            store.add_account("globex.example", AccountRow(f"g{n}", "pw"), max_accounts=None)
    gateway.hold.set()
    cache = gateway.engine.accounts
    realms = gateway.engine.registry.realms
    await gateway.decisions.preload(
        [realms["acme.example"], realms["globex.example"]], 20, lambda: open_backend(db, key)
    )
    assert len(cache) == 20  # alice, then 19 of globex's 30: the limit
    assert cache.get("acme.example", "alice") is not MISS
    (done,) = [e for e in gateway.log.events if e["event"] == "accounts-preloaded"]
    assert done["accounts"] == 20
    req = pap_request("alice@acme.example", b"wonderland", SECRET)
    decided = gateway.engine.on_auth(req, ACME_NAS, NOW)  # no look-up: straight to its slot
    assert isinstance(decided, Admission)


def test_a_preload_keeps_nothing_read_before_a_change_and_never_overwrites() -> None:
    from radiusgw.domain import Account, Change
    from radiusgw.engine.cache import cached

    cache = AccountCache(last_seq=5)
    alice = cached(Account("acme.example", "alice", "new"))
    assert cache.put("acme.example", "alice", alice, 5)  # a look-up read it meanwhile
    old = cached(Account("acme.example", "alice", "old"))
    bob = cached(Account("acme.example", "bob", "pw"))
    assert cache.put_many("acme.example", [("alice", old), ("bob", bob)], 5) == 1
    assert cache.get("acme.example", "alice") == alice
    cache.apply([Change(6, "acme.example", "bob")])
    carol = cached(Account("acme.example", "carol", "pw"))
    assert cache.put_many("acme.example", [("carol", carol)], 5) == 0  # read before change 6
