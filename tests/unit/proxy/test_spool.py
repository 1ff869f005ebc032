"""radiusgw.proxy.spool: live or spool, and the replay in order; with the client and the store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from radiusgw.domain import SpoolEntry
from radiusgw.proxy.events import Failure
from radiusgw.proxy.spool import Fetch, Route, Spooler
from radiusgw.proxy.upstream import Kind
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import as_integer, decode
from radiusgw.store import SqliteStore, open_store
from tests.unit.proxy.helpers import (
    NAS,
    NAS_SECRET,
    A,
    Driven,
    accounting_request,
    answer,
    realm,
)

REALM = "globex.example"


def entry(entry_id: int, received: float = 1000.0, session: bytes = b"s") -> SpoolEntry:
    raw = accounting_request(session=session).raw
    return SpoolEntry(entry_id, REALM, raw, NAS[0], received)


# -- the policy alone ------------------------------------------------------------------------


def test_live_while_up_and_nothing_is_held() -> None:
    assert Spooler().route(REALM, up=True) is Route.LIVE


def test_spooled_while_down_and_then_while_older_entries_wait() -> None:
    s = Spooler()
    assert s.route(REALM, up=False) is Route.SPOOL
    assert s.route(REALM, up=True) is Route.SPOOL  # reserved, not yet durable: keep order
    s.written(REALM, 2)
    assert s.route(REALM, up=True) is Route.SPOOL
    assert s.backlog(REALM) == 3


def test_a_failed_write_releases_its_place() -> None:
    s = Spooler()
    s.route(REALM, up=False)
    s.write_failed(REALM)
    assert s.backlog(REALM) == 0 and s.route(REALM, up=True) is Route.LIVE


def test_nothing_is_fetched_while_down_or_empty() -> None:
    s = Spooler()
    assert s.fetch(REALM, up=True) is None
    s.restore({REALM: 4})
    assert s.fetch(REALM, up=False) is None
    assert s.pending() == [REALM]


def test_fetch_asks_for_the_window_after_the_last_entry_handed_out() -> None:
    s = Spooler(window=3)
    s.restore({REALM: 10})
    assert s.fetch(REALM, up=True) == Fetch(REALM, 0, 3)
    assert s.fetch(REALM, up=True) is None  # that read is still out
    replays, bad = s.replays(REALM, [entry(4), entry(5)], now=1000.0)
    assert [r.entry_id for r in replays] == [4, 5] and bad == []
    assert s.fetch(REALM, up=True) == Fetch(REALM, 5, 1)


def test_replay_adds_the_time_held_to_the_delay() -> None:
    s = Spooler()
    s.restore({REALM: 1})
    s.fetch(REALM, up=True)
    [replay], _ = s.replays(REALM, [entry(1, received=1000.0)], now=1042.5)
    assert replay.extra_delay == 42.5 and replay.packet.code == Code.ACCOUNTING_REQUEST
    assert replay.nas_address == NAS[0]


def test_a_damaged_entry_is_reported_not_replayed() -> None:
    s = Spooler(window=2)
    s.restore({REALM: 2})
    s.fetch(REALM, up=True)
    damaged = SpoolEntry(1, REALM, b"\x04\x00\x00", NAS[0], 1.0)
    replays, bad = s.replays(REALM, [damaged, entry(2)], now=2.0)
    assert bad == [1] and [r.entry_id for r in replays] == [2]
    s.delivered(REALM, 2)
    assert s.backlog(REALM) == 0


def test_an_empty_read_trusts_the_store() -> None:
    s = Spooler()
    s.restore({REALM: 5})
    s.fetch(REALM, up=True)
    assert s.replays(REALM, [], now=1.0) == ([], [])
    assert s.backlog(REALM) == 0 and s.route(REALM, up=True) is Route.LIVE


def test_a_failed_replay_restarts_from_the_oldest_once_nothing_is_in_flight() -> None:
    s = Spooler(window=2)
    s.restore({REALM: 3})
    s.fetch(REALM, up=True)
    s.replays(REALM, [entry(1), entry(2)], now=1.0)
    s.failed(REALM, 1)
    assert s.fetch(REALM, up=True) is None  # 2 still in flight
    s.delivered(REALM, 2)
    assert s.fetch(REALM, up=True) == Fetch(REALM, 0, 2)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Spooler(window=0)


# -- with the client and the store: an outage, a crash, the replay ---------------------------


class Edge:
    """What the asyncio edge does, minus sockets: spool on failure, replay when up."""

    def __init__(self, store: SqliteStore, spooler: Spooler) -> None:
        self.client: Driven[int | str] = Driven(2)
        self.store = store
        self.spooler = spooler
        self.realm = realm(replace(A, retries=0))
        self.upstream_got: list[tuple[bytes, int]] = []  # (session, Acct-Delay-Time)
        self.max_in_flight = 0

    def accounting(self, session: bytes, wall: float, mono: float) -> None:
        nas = accounting_request(session=session)
        if (
            self.spooler.route(REALM, self.client.realm_up(self.realm, Kind.ACCT, mono))
            is Route.LIVE
        ):
            self.client.forward(nas, NAS_SECRET, self.realm, mono, "live", source=NAS)
            _, [failed] = self.client.handle_timer(mono + 1.0)  # no answer: the server is down
            assert failed.failure is Failure.NO_ANSWER
            assert self.spooler.route(REALM, up=False) is Route.SPOOL
        self.store.spool_accounting(REALM, nas.raw, NAS[0], wall)
        self.spooler.written(REALM)

    def replay_all(self, wall: float, mono: float) -> None:
        while fetch := self.spooler.fetch(REALM, self.client.realm_up(self.realm, Kind.ACCT, mono)):
            rows = self.store.spooled(fetch.realm, fetch.limit, after=fetch.after)
            replays, bad = self.spooler.replays(REALM, rows, wall)
            assert bad == []
            outs = []
            for r in replays:
                outs += self.client.forward(
                    r.packet,
                    NAS_SECRET,
                    self.realm,
                    mono,
                    r.entry_id,
                    source=None,
                    extra_delay=r.extra_delay,
                )
            self.max_in_flight = max(self.max_in_flight, self.client.outstanding)
            for out in outs:
                request = decode(out.datagram)
                session, delay = (
                    request.get(Attr.ACCT_SESSION_ID),
                    request.get(Attr.ACCT_DELAY_TIME),
                )
                assert session is not None and delay is not None
                self.upstream_got.append((session, as_integer(delay) or 0))
                raw = answer(out.datagram, A.secret, Code.ACCOUNTING_RESPONSE)
                for done in self.client.receive(out.socket, raw, out.address, mono):
                    assert isinstance(done.context, int) and done.reply is not None
                    self.store.unspool([done.context])
                    self.spooler.delivered(REALM, done.context)


def test_outage_crash_and_replay_deliver_every_record_once_in_order(tmp_path: Path) -> None:
    db, key = tmp_path / "gw.db", tmp_path / "gw.db.key"
    with open_store(db, key) as store:
        edge = Edge(store, Spooler())
        edge.accounting(b"s-1", wall=1000.0, mono=0.0)  # live, unanswered: spooled
        assert not edge.client.realm_up(edge.realm, Kind.ACCT, 1.0)
        edge.accounting(b"s-2", wall=1010.0, mono=10.0)  # down: spooled at once
        edge.accounting(b"s-3", wall=1020.0, mono=20.0)
    # kill -9: the process and its memory are gone; the spool is not.
    with open_store(db, key) as store:
        spooler = Spooler()
        spooler.restore(store.spool_counts())
        edge = Edge(store, spooler)  # a new client: the server is presumed alive
        edge.accounting(b"s-4", wall=1030.0, mono=0.0)  # up, but older records wait: spooled
        edge.replay_all(wall=1100.0, mono=1.0)
        assert edge.upstream_got == [(b"s-1", 100), (b"s-2", 90), (b"s-3", 80), (b"s-4", 70)]
        assert edge.max_in_flight == 1  # one at a time: strict order
        assert store.spooled(REALM, 10) == [] and spooler.backlog(REALM) == 0
        assert spooler.route(REALM, up=True) is Route.LIVE
