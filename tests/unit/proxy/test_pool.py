"""radiusgw.proxy.pool: which server takes the next request."""

from __future__ import annotations

from collections import Counter

from radiusgw.config.model import PoolPolicy as Policy
from radiusgw.proxy.pool import Pool
from radiusgw.proxy.upstream import Kind, ServerState, Upstream
from tests.unit.proxy.helpers import A, B, C


def pool(policy: Policy, *states: ServerState) -> tuple[Pool, list[Upstream]]:
    servers = (A, B, C)[: len(states)]
    upstreams = [Upstream(s, Kind.AUTH, 0.0) for s in servers]
    for upstream, state in zip(upstreams, states, strict=True):
        upstream.state = state
    return Pool(servers, policy, tuple(upstreams)), upstreams


ALIVE, SUSPECT, DEAD = ServerState.ALIVE, ServerState.SUSPECT, ServerState.DEAD


def test_failover_takes_the_first_alive_in_order() -> None:
    p, (a, b, _c) = pool(Policy.FAILOVER, ALIVE, ALIVE, ALIVE)
    assert [p.select() for _ in range(3)] == [a, a, a]
    a.state = DEAD
    assert p.select() is b


def test_failover_prefers_a_later_alive_server_to_a_suspect_one() -> None:
    p, (_a, _b, c) = pool(Policy.FAILOVER, SUSPECT, DEAD, ALIVE)
    assert p.select() is c


def test_failover_falls_back_to_a_suspect_server_but_never_a_dead_one() -> None:
    p, (_a, b) = pool(Policy.FAILOVER, DEAD, SUSPECT)
    assert p.select() is b and p.up
    b.state = DEAD
    assert p.select() is None and not p.up


def test_excluded_servers_are_skipped() -> None:
    p, (a, b, c) = pool(Policy.FAILOVER, ALIVE, ALIVE, ALIVE)
    assert p.select([a]) is b
    assert p.select([a, b, c]) is None


def test_load_balance_spreads_idle_requests_evenly_in_turn() -> None:
    p, upstreams = pool(Policy.LOAD_BALANCE, ALIVE, ALIVE, ALIVE)
    picks = [p.select() for _ in range(9)]
    assert picks == upstreams * 3


def test_load_balance_takes_the_fewest_outstanding() -> None:
    p, (a, b, c) = pool(Policy.LOAD_BALANCE, ALIVE, ALIVE, ALIVE)
    a.outstanding, b.outstanding, c.outstanding = 5, 2, 7
    assert p.select() is b


def test_load_balance_keeps_a_busy_pool_balanced() -> None:
    p, upstreams = pool(Policy.LOAD_BALANCE, ALIVE, ALIVE, ALIVE)
    for _ in range(300):
        chosen = p.select()
        assert chosen is not None
        chosen.outstanding += 1
    assert Counter(u.outstanding for u in upstreams) == Counter({100: 3})


def test_load_balance_uses_suspect_servers_only_without_alive_ones() -> None:
    p, (a, b, _c) = pool(Policy.LOAD_BALANCE, SUSPECT, ALIVE, DEAD)
    b.outstanding = 50
    assert p.select() is b
    b.state = DEAD
    assert p.select() is a
