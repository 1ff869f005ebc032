"""Issue 18.1: the engine's per-realm tally, and the worker's flush into prometheus-client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from radiusgw.engine.counters import Tally
from radiusgw.proxy.upstream import Upstream
from radiusgw.server.metrics import (
    LATENCY_BUCKETS,
    Latency,
    Metrics,
    WorkerMetrics,
    multiproc_dir,
    reason_class,
)
from tests.integration.nas import pap
from tests.unit.engine.helpers import ACME_NAS, Accounts, engine, registry
from tests.unit.engine.test_engine import ALICE

NOW = time.time()


def test_the_engine_tallies_answers_by_realm_and_outcome() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.on_auth(pap("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS, NOW)
    assert eng.tally.realm == "acme.example"
    eng.on_auth(pap("alice@acme.example", b"nope", b"acme-secret", ident=2), ACME_NAS, NOW)
    eng.on_auth(pap("eve@elsewhere.example", b"x", b"acme-secret", ident=3), ACME_NAS, NOW)
    answers, limited = eng.tally.take()
    assert answers == {
        ("acme.example", "accept"): 1,
        ("acme.example", "unknown user or wrong password"): 1,
        ("elsewhere.example", "unknown realm"): 1,
    }
    assert limited == {}
    assert eng.tally.take() == ({}, {})  # taken: counting starts again


def test_the_engine_times_each_answer_it_sends_at_once_by_the_clock_it_is_given() -> None:
    eng, _ = engine(Accounts(ALICE))
    # The account's first request is a look-up in the store (deferred, timed by the edge that
    # sends its answer); the test helper finishes it in place.
    eng.on_auth(pap("alice@acme.example", b"wonderland", b"acme-secret", ident=9), ACME_NAS, NOW)
    eng.latency = Latency()
    eng.clock = lambda: NOW + 0.003
    first = pap("alice@acme.example", b"wonderland", b"acme-secret")
    eng.on_auth(first, ACME_NAS, NOW)
    eng.on_auth(pap("alice@acme.example", b"nope", b"acme-secret", ident=2), ACME_NAS, NOW)
    eng.on_auth(first, ACME_NAS, NOW)  # a duplicate's cached answer: no new decision
    counts, sums = eng.latency.take()
    slot = next(i for i, bound in enumerate(LATENCY_BUCKETS) if bound >= 0.003)
    assert list(counts) == ["acme.example"] and sum(counts["acme.example"]) == 2
    assert counts["acme.example"][slot] == 2
    assert sums["acme.example"] == pytest.approx(0.006, abs=1e-6)  # NOW is about 1.8e9: float


def test_accounting_is_tallied_without_changing_the_last_answered_realm() -> None:
    tally = Tally()
    tally.count("a.example", "accept")
    tally.accounting("b.example")
    tally.accounting(None)
    assert tally.realm == "a.example"
    assert tally.answers[("b.example", "accounting")] == 1
    assert tally.answers[("", "accounting")] == 1


def test_reasons_fall_in_bounded_classes() -> None:
    assert reason_class("unknown user or wrong password") == "bad_credentials"
    assert reason_class("unknown realm") == "unknown_realm"
    assert reason_class("realm session limit 5 reached (max_sessions)") == "session_limit"
    assert reason_class("user already has 2 sessions (max_sessions_per_account)") == "session_limit"
    assert reason_class("anything new") == "other"


def test_latency_counts_per_bucket_and_starts_again_when_taken() -> None:
    latency = Latency()
    latency.observe("a.example", 0.00005)
    latency.observe("a.example", 0.003)
    latency.observe("a.example", 99.0)  # above every bound: the last slot
    counts, sums = latency.take()
    buckets = counts["a.example"]
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets[0] == 1 and buckets[LATENCY_BUCKETS.index(0.005)] == 1 and buckets[-1] == 1
    assert sums["a.example"] == pytest.approx(99.00305)
    assert latency.take() == ({}, {})


@pytest.fixture
def metrics() -> Iterator[tuple[Metrics, str]]:
    with multiproc_dir() as directory:
        yield Metrics(), directory


def scrape(directory: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import CollectorRegistry, multiprocess

    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg, path=directory)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in reg.collect()
        for s in family.samples
    }


def fake_worker(eng: Any, upstreams: list[Upstream] | None = None) -> Any:
    return SimpleNamespace(
        engine=eng,
        accounting=SimpleNamespace(backlog=3, last_applied=time.time() - 5, pauses=2),
        proxy=SimpleNamespace(client=SimpleNamespace(upstreams=lambda: upstreams or [])),
    )


def test_flush_adds_deltas_by_realm_and_mode_and_never_a_typed_realm(
    metrics: tuple[Metrics, str],
) -> None:
    m, directory = metrics
    eng, _ = engine(Accounts(ALICE))
    flusher = WorkerMetrics(m, lns=True)
    for n in range(3):
        eng.on_auth(
            pap("alice@acme.example", b"wonderland", b"acme-secret", ident=n), ACME_NAS, NOW
        )
        flusher.latency.observe("acme.example", 0.0002)
    eng.on_auth(pap("eve@typed.example", b"x", b"acme-secret", ident=9), ACME_NAS, NOW)
    eng.tally.accounting("acme.example")
    worker = fake_worker(eng)
    flusher.flush(worker)
    flusher.flush(worker)  # nothing new: nothing added twice
    found = scrape(directory)
    acme = (("mode", "group"), ("realm", "acme.example"))
    assert found[("radiusgw_access_requests_total", (*acme, ("result", "accept")))] == 3
    assert found[("radiusgw_accounting_requests_total", acme)] == 1
    nowhere = (("mode", ""), ("realm", ""))
    assert found[("radiusgw_access_requests_total", (*nowhere, ("result", "reject")))] == 1
    assert found[("radiusgw_access_rejects_total", (*nowhere, ("reason", "unknown_realm")))] == 1
    assert found[("radiusgw_access_decision_seconds_count", (("mode", "group"),))] == 3
    assert (
        found[("radiusgw_access_decision_seconds_bucket", (("le", "0.00025"), ("mode", "group")))]
        == 3
    )
    assert found[("radiusgw_accounting_backlog", ())] == 3
    assert found[("radiusgw_accounting_applier_lag_seconds", ())] >= 5
    assert found[("radiusgw_accounting_pauses_total", ())] == 2  # flushed twice, counted once
    assert not any("typed" in str(key) for key in found)


def test_a_realm_removed_by_reload_is_no_longer_updated(metrics: tuple[Metrics, str]) -> None:
    m, directory = metrics
    eng, _ = engine(Accounts(ALICE))
    flusher = WorkerMetrics(m, lns=False)
    eng.tally.count("acme.example", "accept")
    flusher.flush(fake_worker(eng))
    full = registry()
    eng.reload(replace(full, realms={k: v for k, v in full.realms.items() if k != "acme.example"}))
    eng.tally.count("acme.example", "accept")  # in flight across the reload
    flusher.flush(fake_worker(eng))
    found = scrape(directory)
    acme = (("mode", "group"), ("realm", "acme.example"), ("result", "accept"))
    assert found[("radiusgw_access_requests_total", acme)] == 1


def test_upstream_counts_state_and_round_trips_per_server(metrics: tuple[Metrics, str]) -> None:
    from radiusgw.config.model import UpstreamServer
    from radiusgw.proxy.upstream import Kind

    m, directory = metrics
    eng, _ = engine(Accounts(ALICE))
    server = UpstreamServer("192.0.2.9", secret=b"s")
    upstream = Upstream(server, Kind.AUTH, NOW)
    upstream.sent_count = 4
    upstream.retransmitted_count = 1
    upstream.answered(NOW, 0.003)
    upstream.answered(NOW, 0.2)
    flusher = WorkerMetrics(m, lns=False)
    flusher.flush(fake_worker(eng, [upstream]))
    flusher.flush(fake_worker(eng, [upstream]))
    found = scrape(directory)
    labels = (("kind", "auth"), ("server", "192.0.2.9:1812"))
    assert found[("radiusgw_upstream_sent_total", labels)] == 4
    assert found[("radiusgw_upstream_answered_total", labels)] == 2
    assert found[("radiusgw_upstream_retransmitted_total", labels)] == 1
    assert found[("radiusgw_upstream_rtt_seconds_count", labels)] == 2
    assert found[("radiusgw_upstream_state", (*labels, ("state", "alive")))] == 1
    assert found[("radiusgw_upstream_state", (*labels, ("state", "dead")))] == 0
