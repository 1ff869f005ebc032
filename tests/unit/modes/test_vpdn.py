from __future__ import annotations

import os
from collections import Counter

import pytest

from radiusgw.config.model import Balance, CarrierType, Lns, Mode, Realm
from radiusgw.modes.vpdn import (
    ALL_DOWN,
    ALL_FULL,
    Balancer,
    Health,
    Offer,
    tunnel_attributes,
)
from radiusgw.radius import crypto
from radiusgw.radius.packet import decode

LNS = (
    Lns("192.0.2.10", b"secret-a", weight=1, preference=1),
    Lns("192.0.2.11", b"secret-b", weight=3, preference=2),
    Lns("2001:db8::12", b"secret-c", weight=1, preference=3, server_auth_id="lns-c"),
)


def realm(balance: Balance, lns: tuple[Lns, ...] = LNS, **kw: object) -> Realm:
    return Realm(
        "vpn.example",
        Mode.VPDN,
        "initech",
        "initech.toml",
        carrier=CarrierType.DOCOMO,
        balance=balance,
        lns=lns,
        **kw,  # type: ignore[arg-type]
    )


def no_sessions(_realm: str, _index: int) -> int:
    return 0


def first_choices(
    r: Realm, n: int, health: dict[tuple[str, int], Health] | None = None
) -> Counter[str]:
    b = Balancer()
    counts: Counter[str] = Counter()
    for _ in range(n):
        offers = b.offers(r, health or {}, no_sessions)
        assert not isinstance(offers, str)
        counts[offers[0].lns.address] += 1
    return counts


def test_none_offers_every_lns_at_its_preference_lowest_first() -> None:
    offers = Balancer().offers(realm(Balance.NONE), {}, no_sessions)
    assert offers == [Offer(LNS[0], 1), Offer(LNS[1], 2), Offer(LNS[2], 3)]


def test_lac_offers_every_lns_at_one_equal_preference() -> None:
    offers = Balancer().offers(realm(Balance.LAC), {}, no_sessions)
    assert not isinstance(offers, str)
    assert {o.preference for o in offers} == {1} and len(offers) == 3


def test_round_robin_spreads_1000_answers_evenly_with_backups_behind() -> None:
    counts = first_choices(realm(Balance.ROUND_ROBIN), 999)
    assert sorted(counts.values()) == [333, 333, 333]
    offers = Balancer().offers(realm(Balance.ROUND_ROBIN), {}, no_sessions)
    assert not isinstance(offers, str)
    assert [o.preference for o in offers] == [1, 2, 3]
    assert [o.lns for o in offers] == list(LNS)


def test_weighted_spreads_by_weight() -> None:
    counts = first_choices(realm(Balance.WEIGHTED), 1000)
    assert counts == {"192.0.2.10": 200, "192.0.2.11": 600, "2001:db8::12": 200}


def test_weighted_never_picks_the_heavy_one_more_than_needed_in_a_row() -> None:
    b = Balancer()
    seq = []
    for _ in range(5):
        offers = b.offers(realm(Balance.WEIGHTED), {}, no_sessions)
        assert not isinstance(offers, str)
        seq.append(offers[0].lns.address)
    assert seq.count("192.0.2.11") == 3 and seq[0] == "192.0.2.11"
    assert seq[:2] != ["192.0.2.11", "192.0.2.11"] or seq[2] != "192.0.2.11"


def test_least_sessions_picks_the_emptiest() -> None:
    load = {0: 10, 1: 3, 2: 7}
    offers = Balancer().offers(realm(Balance.LEAST_SESSIONS), {}, lambda _r, i: load[i])
    assert not isinstance(offers, str)
    assert offers[0] == Offer(LNS[1], 1)


def test_down_and_mismatched_lns_are_left_out() -> None:
    health = {("vpn.example", 0): Health.DOWN, ("vpn.example", 2): Health.SECRET_MISMATCH}
    counts = first_choices(realm(Balance.ROUND_ROBIN), 10, health)
    assert counts == {"192.0.2.11": 10}


def test_full_lns_is_left_out() -> None:
    full = (Lns("192.0.2.10", b"a", max_sessions=5), Lns("192.0.2.11", b"b", max_sessions=5))
    offers = Balancer().offers(realm(Balance.NONE, full), {}, lambda _r, i: 5 if i == 0 else 4)
    assert offers == [Offer(full[1], 1)]


def test_all_down_fails_open_with_the_configured_list() -> None:
    health = {("vpn.example", i): Health.DOWN for i in range(3)}
    offers = Balancer().offers(realm(Balance.ROUND_ROBIN), health, no_sessions)
    assert offers == [Offer(LNS[0], 1), Offer(LNS[1], 2), Offer(LNS[2], 3)]


def test_all_down_rejects_when_the_realm_says_so() -> None:
    health = {("vpn.example", i): Health.DOWN for i in range(3)}
    r = realm(Balance.ROUND_ROBIN, on_all_down="reject")
    assert Balancer().offers(r, health, no_sessions) == ALL_DOWN


def test_every_answering_lns_full_is_a_reject_that_says_so() -> None:
    full = (Lns("192.0.2.10", b"a", max_sessions=2), Lns("192.0.2.11", b"b", max_sessions=2))
    health = {("vpn.example", 1): Health.DOWN}
    assert Balancer().offers(realm(Balance.NONE, full), health, lambda _r, _i: 2) == ALL_FULL
    assert Balancer().offers(realm(Balance.NONE, full), {}, lambda _r, _i: 2) == ALL_FULL


def test_failing_open_leaves_out_a_full_lns() -> None:
    lns = (Lns("192.0.2.10", b"a", max_sessions=1), Lns("192.0.2.11", b"b"))
    health = {("vpn.example", 0): Health.DOWN, ("vpn.example", 1): Health.DOWN}
    offers = Balancer().offers(realm(Balance.NONE, lns), health, lambda _r, i: 1 - i)
    assert offers == [Offer(lns[1], 1)]


def test_tunnel_attributes_are_tagged_and_the_password_decrypts() -> None:
    auth = os.urandom(16)
    offers = [Offer(LNS[0], 1), Offer(LNS[2], 2)]
    body = tunnel_attributes(offers, b"lac-secret", auth)
    raw = bytes((2, 1)) + (20 + len(body)).to_bytes(2, "big") + bytes(16) + body
    attrs = decode(raw).attributes
    by_tag: dict[int, dict[int, bytes]] = {}
    for t, v in attrs:
        by_tag.setdefault(v[0], {})[t] = v[1:]
    assert set(by_tag) == {1, 2}  # tags 1..n, never 0
    one, two = by_tag[1], by_tag[2]
    assert one[64] == (3).to_bytes(3, "big")  # Tunnel-Type L2TP
    assert one[65] == (1).to_bytes(3, "big") and two[65] == (2).to_bytes(3, "big")
    assert one[67] == b"192.0.2.10" and two[67] == b"2001:db8::12"
    assert crypto.salt_decrypt(one[69], b"lac-secret", auth) == b"secret-a"
    assert crypto.salt_decrypt(two[69], b"lac-secret", auth) == b"secret-c"
    assert one[69][:2] != two[69][:2]  # salts unique within the packet
    assert one[83] == (1).to_bytes(3, "big") and two[83] == (2).to_bytes(3, "big")
    assert two[91] == b"lns-c" and 91 not in one


@pytest.mark.parametrize("size", [0, 1, 14, 15, 16, 17, 31, 32, 100])
def test_tunnel_password_decrypts_for_every_secret_length(size: int) -> None:
    # 15 octets still fit one block with the length octet (the inline path); 16 take two.
    secret = bytes(range(65, 65 + size))
    auth = os.urandom(16)
    body = tunnel_attributes([Offer(Lns("192.0.2.1", secret), 1)], b"lac-secret", auth)
    raw = bytes((2, 1)) + (20 + len(body)).to_bytes(2, "big") + bytes(16) + body
    (hidden,) = [v[1:] for t, v in decode(raw).attributes if t == 69]
    assert len(hidden) == 2 + (size + 1 + 15) // 16 * 16
    assert crypto.salt_decrypt(hidden, b"lac-secret", auth) == secret
    if size:  # (an empty one "decrypts" under a wrong key once in 256: its length octet)
        assert crypto.salt_decrypt(hidden, b"lac-secret", os.urandom(16)) != secret


@pytest.mark.parametrize("n", [31, 40])
def test_at_most_31_tags(n: int) -> None:
    lns = Lns("192.0.2.1", b"x")
    body = tunnel_attributes([Offer(lns, 1)] * n, b"s", bytes(16))
    raw = bytes((2, 1)) + (20 + len(body)).to_bytes(2, "big") + bytes(16) + body
    assert max(v[0] for _, v in decode(raw).attributes) == 31
