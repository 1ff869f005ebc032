"""radiusgw.server.proxy_edge: a proxy realm's Accounting-Response waits for both durable writes
(the journal, and the customer's answer or the spool), in whichever order they finish."""

from __future__ import annotations

from typing import Any

import pytest

from radiusgw.config.model import Nas
from radiusgw.domain import AccountingRecord
from radiusgw.engine import ProxyAccounting
from radiusgw.engine.cache import AccountCache
from radiusgw.engine.core import Engine
from radiusgw.engine.dedup import PENDING
from radiusgw.proxy.events import Completed
from radiusgw.server.proxy_edge import ProxyEdge
from tests.unit.engine.helpers import ListLog, registry
from tests.unit.proxy.helpers import NAS, NAS_SECRET, accounting_request, realm

REPLY = b"the customer's answer, re-signed for the NAS"
NAS_ENTRY = Nas(NAS[0], NAS_SECRET, False, None, contract_id="globex")


class Edge:
    """A proxy edge on a real engine (compiled, the edge takes no stand-in), the answers it
    sent, and what the engine's accounting duplicate cache holds for a record: the answer a
    retransmission gets, or None when the NAS is left to retry."""

    def __init__(self) -> None:
        self.engine = Engine(registry(), AccountCache(), log=ListLog())
        self.sent: list[tuple[bytes, Any]] = []
        self.proxy = ProxyEdge(
            self.engine,
            open_store=None,
            send_auth=None,
            send_acct=lambda answer, address: self.sent.append((answer, address)),
            log=ListLog(),
            replayer=False,
        )

    def track(self, p: ProxyAccounting) -> ProxyAccounting:
        self.engine._acct_dedup.put(p.key, PENDING, 0.0)  # as on_acct does before forwarding
        return p

    def cached(self, p: ProxyAccounting) -> bytes | None:
        return self.engine._acct_dedup.get(p.key)


def pending() -> ProxyAccounting:
    packet = accounting_request()
    record = AccountingRecord(0.0, NAS[0], "globex.example", "alice", 1, "s-1", packet.raw)
    key = (NAS[0], NAS[1], packet.identifier, packet.authenticator)
    return ProxyAccounting(key, NAS, packet, NAS_ENTRY, realm(), record)


@pytest.mark.parametrize("journal_first", [True, False], ids=["journal-first", "forward-first"])
def test_the_nas_is_answered_once_both_writes_are_durable(journal_first: bool) -> None:
    e = Edge()
    p = e.track(pending())
    if journal_first:
        e.proxy.journalled(p, True)
        assert e.sent == [] and e.cached(p) == PENDING
    e.proxy._complete(Completed(p, REPLY))
    if not journal_first:
        assert e.sent == [] and e.cached(p) == PENDING
        e.proxy.journalled(p, True)
    assert e.sent == [(REPLY, NAS)] and e.cached(p) == REPLY


def test_a_spooled_record_is_answered_with_our_own_answer_after_the_journal() -> None:
    e = Edge()
    p = e.track(pending())
    e.proxy.spooler.route(p.realm.name, False)  # every server down: to the spool
    e.proxy._spooled([p], None)
    assert e.sent == []
    e.proxy.journalled(p, True)
    own = Engine.accounting_response(p)  # signed with the NAS's secret, not the customer's
    assert e.sent == [(own, NAS)] and e.cached(p) == own


def test_a_failed_journal_write_leaves_the_nas_unanswered_so_it_retries() -> None:
    e = Edge()
    p = e.track(pending())
    e.proxy.journalled(p, False)
    e.proxy._complete(Completed(p, REPLY))
    assert e.sent == [] and e.cached(p) is None


def test_a_failed_spool_write_leaves_the_nas_unanswered_so_it_retries() -> None:
    e = Edge()
    p = e.track(pending())
    e.proxy.spooler.route(p.realm.name, False)
    e.proxy.journalled(p, True)
    e.proxy._spool_failed([p], OSError("disk full"))
    assert e.sent == [] and e.cached(p) is None
