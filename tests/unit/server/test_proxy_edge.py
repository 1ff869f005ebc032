"""radiusgw.server.proxy_edge: a proxy realm's Accounting-Response waits for both durable writes
(the journal, and the customer's answer or the spool), in whichever order they finish."""

from __future__ import annotations

from typing import Any

import pytest

from radiusgw.domain import AccountingRecord
from radiusgw.engine import ProxyAccounting
from radiusgw.proxy.events import Completed
from radiusgw.server.proxy_edge import ProxyEdge
from tests.unit.engine.helpers import ListLog
from tests.unit.proxy.helpers import NAS, accounting_request, realm

REPLY = b"the customer's answer, re-signed for the NAS"
OWN = b"the gateway's own answer to a spooled record"


class FakeEngine:
    """What the edge asks of the engine for accounting: the dedup completion, its own answer."""

    def __init__(self) -> None:
        self.completed: list[tuple[Any, bytes | None]] = []

    def complete_acct(self, key: Any, answer: bytes | None) -> None:
        self.completed.append((key, answer))

    @staticmethod
    def accounting_response(_pending: ProxyAccounting) -> bytes:
        return OWN


def edge() -> tuple[ProxyEdge, FakeEngine, list[tuple[bytes, Any]]]:
    engine, sent = FakeEngine(), []
    proxy = ProxyEdge(
        engine,  # type: ignore[arg-type]  # a stand-in: the edge calls only the two above
        open_store=None,
        send_auth=None,
        send_acct=lambda answer, address: sent.append((answer, address)),
        log=ListLog(),
        replayer=False,
    )
    return proxy, engine, sent


def pending() -> ProxyAccounting:
    packet = accounting_request()
    record = AccountingRecord(0.0, NAS[0], "globex.example", "alice", 1, "s-1", packet.raw)
    key = (NAS[0], NAS[1], packet.identifier, packet.authenticator)
    return ProxyAccounting(key, NAS, packet, None, realm(), record)  # type: ignore[arg-type]


@pytest.mark.parametrize("journal_first", [True, False], ids=["journal-first", "forward-first"])
def test_the_nas_is_answered_once_both_writes_are_durable(journal_first: bool) -> None:
    proxy, engine, sent = edge()
    p = pending()
    if journal_first:
        proxy.journalled(p, True)
        assert sent == [] and engine.completed == []
    proxy._complete(Completed(p, REPLY))
    if not journal_first:
        assert sent == [] and engine.completed == []
        proxy.journalled(p, True)
    assert sent == [(REPLY, NAS)] and engine.completed == [(p.key, REPLY)]


def test_a_spooled_record_is_answered_with_our_own_answer_after_the_journal() -> None:
    proxy, engine, sent = edge()
    p = pending()
    proxy.spooler.route(p.realm.name, False)  # every server down: to the spool
    proxy._spooled([p], None)
    assert sent == []
    proxy.journalled(p, True)
    assert sent == [(OWN, NAS)] and engine.completed == [(p.key, OWN)]


def test_a_failed_journal_write_leaves_the_nas_unanswered_so_it_retries() -> None:
    proxy, engine, sent = edge()
    p = pending()
    proxy.journalled(p, False)
    proxy._complete(Completed(p, REPLY))
    assert sent == [] and engine.completed == [(p.key, None)]


def test_a_failed_spool_write_leaves_the_nas_unanswered_so_it_retries() -> None:
    proxy, engine, sent = edge()
    p = pending()
    proxy.spooler.route(p.realm.name, False)
    proxy.journalled(p, True)
    proxy._spool_failed([p], OSError("disk full"))
    assert sent == [] and engine.completed == [(p.key, None)]
