"""Prometheus metrics (issue 18.1): what each worker counted, flushed into shared files.

The workers are forked, so prometheus-client runs in its multiprocess mode: every process
writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and the HTTP listener
(``radiusgw.server.health``) merges them per scrape. ``serve`` makes that directory fresh and
private before any worker starts and removes it at exit (``multiproc_dir``); the supervisor
marks a dead worker's live gauges gone (``mark_process_dead``). Counters of a dead worker stay
in its files and keep counting in the sums, so a restart does not make them go backwards.

The hot path pays nothing here: the engine counts in plain integers and dicts
(``Counters``, ``Tally``) and the worker's decision times go to ``Latency`` (compiled with
them: a short loop and a list increment). ``WorkerMetrics.flush`` runs once a second and at
exit: it takes the deltas and adds them to the shared metrics, one ``inc`` per label set.
Labels stay bounded: realm (as named in the realm files; "" for a request routed to none),
mode, reason class, upstream server, LNS, registered NAS address; never a user name. A realm
a reload removed is no longer updated.

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is imported, so this module
imports it only once ``multiproc_dir`` has set the variable (``Metrics`` is made in ``serve``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from radiusgw.auth.eap import NOT_OFFERED
from radiusgw.auth.method import DISABLED, NO_CREDENTIALS, UNKNOWN_OR_WRONG
from radiusgw.client.ids import show_destination
from radiusgw.config.model import Registry
from radiusgw.engine.core import (
    NO_USER_NAME,
    QUOTA_REACHED,
    STORE_DOWN,
    UPSTREAM_DOWN,
    UPSTREAM_REJECTED,
)
from radiusgw.engine.counters import (
    ACCEPT,
    ACCOUNTING,
    CHALLENGE,
    LATENCY_BUCKETS,
    NO_ANSWER,
    Counters,
    Latency,
)
from radiusgw.modes.vpdn import ALL_DOWN, ALL_FULL, Health
from radiusgw.proxy.upstream import RTT_BUCKETS, ServerState, Upstream
from radiusgw.router import CONTRACT_ENDED, NO_REALM, UNKNOWN_REALM

if TYPE_CHECKING:
    from radiusgw.server.worker import Worker

ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_INTERVAL = 1.0  # seconds: how stale a scrape may be, against one flush per worker

# A reject's Reply-Message reason -> its class (the label ``reason``); any other is "other".
REASON_CLASSES = {
    NO_USER_NAME.reason: "bad_request",
    NO_REALM.reason: "unknown_realm",
    UNKNOWN_REALM: "unknown_realm",
    CONTRACT_ENDED: "contract_ended",
    UNKNOWN_OR_WRONG.reason: "bad_credentials",
    DISABLED.reason: "account_disabled",
    NO_CREDENTIALS.reason: "no_credentials",
    NOT_OFFERED.reason: "method_not_offered",
    QUOTA_REACHED.reason: "quota",
    STORE_DOWN.reason: "store_down",
    ALL_FULL.reason: "lns_unavailable",
    ALL_DOWN.reason: "lns_unavailable",
    UPSTREAM_REJECTED: "upstream_reject",
    UPSTREAM_DOWN.reason: "upstream_down",
}
REASONS = (*sorted(set(REASON_CLASSES.values())), "session_limit", "other")


def reason_class(reason: str) -> str:
    known = REASON_CLASSES.get(reason)
    if known is not None:
        return known
    if "max_sessions" in reason or "session limit" in reason:  # the store's admission reasons
        return "session_limit"
    return "other"


@contextmanager
def multiproc_dir() -> Iterator[str]:
    """A fresh private directory for the metric files, named in ``ENV`` while ``serve`` runs
    (set before any worker forks), removed afterwards with what it holds."""
    previous = os.environ.get(ENV)
    path = tempfile.mkdtemp(prefix="radiusgw-metrics-")  # mode 0700
    os.environ[ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


class Metrics:
    """The metric families, made after ``multiproc_dir`` (the names are the contract in
    docs/operations.md). Registered nowhere: the listener reads the files."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, values

        # prometheus-client chose its value class when first imported, perhaps before ``ENV``
        # was set (a test that runs ``serve`` in-process), and it caches its open files per
        # class: a fresh one writes to this directory.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        registry = None

        def counter(name: str, doc: str, *labels: str) -> Any:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, mode: str, *labels: str) -> Any:
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)  # type: ignore[arg-type]

        self.access = counter(
            "radiusgw_access_requests",
            "Access-Requests decided, by realm, mode and result "
            "(accept, reject, challenge, no_answer).",
            "realm", "mode", "result",
        )  # fmt: skip
        self.rejects = counter(
            "radiusgw_access_rejects", "Access-Rejects by reason class.", "realm", "mode", "reason"
        )
        self.accounting = counter(
            "radiusgw_accounting_requests", "Accounting-Requests taken.", "realm", "mode"
        )
        self.latency = Histogram(
            "radiusgw_access_decision_seconds",
            "Time from an Access-Request's arrival to its answer being sent, by mode.",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dropped = counter("radiusgw_dropped", "Datagrams dropped, by reason.", "reason")
        self.duplicates = counter(
            "radiusgw_duplicates", "Retransmissions answered from the duplicate cache."
        )
        self.status_server = counter("radiusgw_status_server", "Status-Server requests answered.")
        self.rate_limited = counter(
            "radiusgw_rate_limited", "Requests dropped above a NAS's rate_limit.", "nas"
        )
        self.store_down = counter(
            "radiusgw_store_down_decisions",
            "Session limits the store could not check, by the realm's on_store_down action.",
            "action",
        )
        self.backlog = gauge(
            "radiusgw_accounting_backlog",
            "Accounting records journalled and acknowledged, not yet in the store.",
            "livesum",
        )
        self.pauses = counter(
            "radiusgw_accounting_pauses",
            "Times a worker stopped reading Accounting-Requests while its applier was behind.",
        )
        self.applier_lag = gauge(
            "radiusgw_accounting_applier_lag_seconds",
            "While records wait: seconds since the applier last committed; else 0.",
            "livemax",
        )
        self.upstream_state = gauge(
            "radiusgw_upstream_state",
            "1 for the state (alive, suspect, dead) a worker sees an upstream in.",
            "livemax", "server", "kind", "state",
        )  # fmt: skip
        self.upstream_sent = counter(
            "radiusgw_upstream_sent", "Datagrams sent to an upstream.", "server", "kind"
        )
        self.upstream_answered = counter(
            "radiusgw_upstream_answered", "Verified answers from an upstream.", "server", "kind"
        )
        self.upstream_retransmitted = counter(
            "radiusgw_upstream_retransmitted", "Retransmissions to an upstream.", "server", "kind"
        )
        self.upstream_failovers = counter(
            "radiusgw_upstream_failovers",
            "Requests moved away from an upstream to another.",
            "server", "kind",
        )  # fmt: skip
        self.upstream_rtt = Histogram(
            "radiusgw_upstream_rtt_seconds",
            "Round trip of an upstream's verified answers.",
            ["server", "kind"],
            buckets=RTT_BUCKETS,
            registry=registry,
        )
        self.lns_state = gauge(
            "radiusgw_lns_state",
            "1 for an LNS's health (unknown, up, down, secret-mismatch).",
            "livemax", "realm", "lns", "state",
        )  # fmt: skip
        self.lns_sessions = gauge(
            "radiusgw_lns_sessions", "Live sessions per LNS.", "livemax", "realm", "lns"
        )
        self.worker_restarts = counter(
            "radiusgw_worker_restarts", "Workers forked again after dying.", "worker"
        )
        self.start_time = gauge(
            "radiusgw_start_time_seconds", "Unix time the serving process started.", "livemax"
        )


def _add(histogram: Any, counts: list[int], total: float) -> None:
    """Add bucket counts (not cumulative) and their sum to one histogram child at once.

    The public ``observe`` takes one value and writes the shared file for each; this adds a
    second's worth with one write per bucket. It uses prometheus-client's per-bucket values
    (``_buckets``, ``_sum``: the layout ``observe`` itself writes); the metrics tests read the
    exposition back, so a change of that layout fails them."""
    buckets = histogram._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    histogram._sum.inc(total)


# From the fields, not ``__slots__``: a mypyc-compiled Counters has none.
_DROPS = tuple(f.name for f in dataclasses.fields(Counters) if f.name.startswith("dropped_"))


class WorkerMetrics:
    """One worker's flush: deltas since the last one into ``metrics`` (see the module doc)."""

    def __init__(self, metrics: Metrics, *, lns: bool) -> None:
        self.metrics = metrics
        self.latency = Latency()
        self._lns = lns  # this worker reads LNS health for the node (worker 0)
        self._last: dict[str, int] = {}
        self._upstreams: dict[int, tuple[Upstream, tuple[int, ...], list[int], float]] = {}
        self._states: set[tuple[str, str]] = set()
        self._lns_labels: set[tuple[str, str]] = set()
        self._pauses = 0  # the accounting pipeline's count at the last flush

    def flush(self, worker: Worker) -> None:
        m = self.metrics
        engine = worker.engine
        registry = engine.registry
        answers, limited = engine.tally.take()
        for (realm, outcome), n in answers.items():
            known = registry.realms.get(realm) if realm else None
            if outcome == ACCOUNTING:
                name, mode = (realm, known.mode.value) if known is not None else ("", "")
                m.accounting.labels(name, mode).inc(n)
                continue
            if outcome in (ACCEPT, CHALLENGE, NO_ANSWER):
                result, reason = outcome, ""
            else:
                result, reason = "reject", reason_class(outcome)
            if known is None or reason == "unknown_realm":  # never a name the user typed
                realm, mode = "", ""
            else:
                mode = known.mode.value
            m.access.labels(realm, mode, result).inc(n)
            if reason:
                m.rejects.labels(realm, mode, reason).inc(n)
        for nas, n in limited.items():
            if nas in registry.nas:
                m.rate_limited.labels(nas).inc(n)
        counts, sums = self.latency.take()
        by_mode: dict[str, tuple[list[int], float]] = {}
        for realm, buckets in counts.items():
            known = registry.realms.get(realm) if realm else None
            mode = known.mode.value if known is not None else ""
            merged = by_mode.get(mode)
            if merged is None:
                by_mode[mode] = (list(buckets), sums[realm])
            else:
                by_mode[mode] = ([a + b for a, b in zip(merged[0], buckets, strict=True)],
                                 merged[1] + sums[realm])  # fmt: skip
        for mode, (buckets, total) in by_mode.items():
            _add(m.latency.labels(mode), buckets, total)
        self._counters(engine.counters)
        accounting = worker.accounting
        m.backlog.set(accounting.backlog)
        if accounting.pauses > self._pauses:
            m.pauses.inc(accounting.pauses - self._pauses)
            self._pauses = accounting.pauses
        last = accounting.last_applied
        m.applier_lag.set(max(0.0, time.time() - last) if accounting.backlog and last else 0.0)
        self._upstream(worker.proxy.client.upstreams())
        if self._lns:
            self._lns_health(registry, engine.lns_health, engine.lns_sessions)

    def _counters(self, counters: Counters) -> None:
        m = self.metrics
        last = self._last
        now = counters.snapshot()
        for name in _DROPS:
            delta = now[name] - last.get(name, 0)
            if delta:
                m.dropped.labels(name.removeprefix("dropped_")).inc(delta)
        for name, metric in (
            ("duplicates", m.duplicates),
            ("status_server", m.status_server),
        ):
            delta = now[name] - last.get(name, 0)
            if delta:
                metric.inc(delta)
        for name, action in (("admitted_store_down", "admit"), ("rejected_store_down", "reject")):
            delta = now[name] - last.get(name, 0)
            if delta:
                m.store_down.labels(action).inc(delta)
        self._last = now

    def _upstream(self, upstreams: list[Upstream]) -> None:
        m = self.metrics
        seen: dict[int, tuple[Upstream, tuple[int, ...], list[int], float]] = {}
        states: set[tuple[str, str]] = set()
        for upstream in upstreams:
            labels = (show_destination(upstream.address), str(upstream.kind))
            counts = (
                upstream.sent_count,
                upstream.answered_count,
                upstream.retransmitted_count,
                upstream.failover_count,
            )
            before = self._upstreams.get(id(upstream))
            if before is None or before[0] is not upstream:
                before = (upstream, (0, 0, 0, 0), [0] * len(upstream.rtt_counts), 0.0)
            for metric, now, was in zip(
                (m.upstream_sent, m.upstream_answered, m.upstream_retransmitted,
                 m.upstream_failovers),
                counts,
                before[1],
                strict=True,
            ):  # fmt: skip
                if now > was:
                    metric.labels(*labels).inc(now - was)
            rtt = upstream.rtt_counts
            if rtt != before[2]:
                _add(
                    m.upstream_rtt.labels(*labels),
                    [a - b for a, b in zip(rtt, before[2], strict=True)],
                    upstream.rtt_sum - before[3],
                )
            seen[id(upstream)] = (upstream, counts, list(rtt), upstream.rtt_sum)
            for state in ServerState:
                m.upstream_state.labels(*labels, str(state)).set(
                    1 if upstream.state is state else 0
                )
            states.add(labels)
        for labels in self._states - states:  # no realm names it any more
            for state in ServerState:
                m.upstream_state.labels(*labels, str(state)).set(0)
        self._upstreams, self._states = seen, states

    def _lns_health(
        self, registry: Registry, health: dict[tuple[str, int], Health], sessions: Any
    ) -> None:
        m = self.metrics
        labels_now: set[tuple[str, str]] = set()
        for realm in registry.realms.values():
            for index, lns in enumerate(realm.lns):
                labels = (realm.name, show_destination((lns.address, lns.port)))
                labels_now.add(labels)
                current = health.get((realm.name, index), Health.UNKNOWN)
                for state in Health:
                    m.lns_state.labels(*labels, str(state)).set(1 if current is state else 0)
                m.lns_sessions.labels(*labels).set(sessions(realm.name, index))
        for labels in self._lns_labels - labels_now:  # left the realm files
            for state in Health:
                m.lns_state.labels(*labels, str(state)).set(0)
            m.lns_sessions.labels(*labels).set(0)
        self._lns_labels = labels_now
