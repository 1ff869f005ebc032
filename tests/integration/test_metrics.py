"""Issue 18.1-2: /metrics, /live and /ready of a running gateway, scraped with a real client.

A two-worker gateway with ``--metrics-listen 127.0.0.1:0`` (the port it got is in its
``metrics-listening`` line) gets known PAP and accounting traffic; the counters are read by
value with prometheus-client's own parser. /ready turns 503 (with the reason) while the SQLite
file cannot be opened, and 200 again after; a worker killed with SIGKILL shows in the restarts
counter.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from radiusgw.radius.attributes import AcctStatusType, Code
from tests.integration.gateway import Gateway, running_gateway
from tests.integration.nas import accounting, answer, pap

SECRET = b"acme-secret"


@contextmanager
def metered(realms: Path, db: Path, workers: int = 2) -> Iterator[tuple[Gateway, str]]:
    with running_gateway(realms, db, "--metrics-listen", "127.0.0.1:0", workers=workers) as gw:
        port = gw.wait_for("metrics-listening")[0]["port"]
        yield gw, f"http://127.0.0.1:{port}"


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def until(check: object, timeout: float = 10.0) -> None:
    """Metrics are flushed once a second: wait (bounded) for ``check()`` to hold."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert check()  # type: ignore[operator]
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_counters_match_the_traffic_sent_with_no_user_names(realms: Path, db: Path) -> None:
    with metered(realms, db) as (gw, base):
        codes = []
        for n in range(7):
            reply = answer(
                gw.auth_port, pap("alice@acme.example", b"wonderland", SECRET, ident=n), SECRET
            )
            assert reply is not None
            codes.append(reply.code)
        for n in range(3):
            reply = answer(
                gw.auth_port, pap("alice@acme.example", b"wrong", SECRET, ident=10 + n), SECRET
            )
            assert reply is not None
            codes.append(reply.code)
        reply = answer(gw.auth_port, pap("x@nowhere.example", b"pw", SECRET, ident=20), SECRET)
        assert reply is not None and reply.code == Code.ACCESS_REJECT
        assert codes.count(Code.ACCESS_ACCEPT) == 7
        for n in range(4):
            request = accounting(
                "alice@acme.example", SECRET, AcctStatusType.START, f"s{n}", ident=30 + n
            )
            assert answer(gw.acct_port, request, SECRET) is not None

        def counted() -> bool:
            found = samples(base)
            group = {"realm": "acme.example", "mode": "group"}
            return (
                value(found, "radiusgw_access_requests_total", result="accept", **group) == 7
                and value(found, "radiusgw_access_requests_total", result="reject", **group) == 3
                and value(found, "radiusgw_accounting_requests_total", **group) == 4
            )

        until(counted)
        found = samples(base)
        group = {"realm": "acme.example", "mode": "group"}
        assert value(found, "radiusgw_access_rejects_total", reason="bad_credentials", **group) == 3
        # The unknown realm is counted under no realm: never the name the user typed.
        assert (
            value(found, "radiusgw_access_requests_total", realm="", mode="", result="reject") == 1
        )
        assert (
            value(found, "radiusgw_access_rejects_total", realm="", mode="", reason="unknown_realm")
            == 1
        )
        assert value(found, "radiusgw_access_decision_seconds_count", mode="group") == 10
        assert value(found, "radiusgw_worker_restarts_total", worker="0") == 0
        text = httpx.get(f"{base}/metrics", timeout=5).text
        assert "alice" not in text and "nowhere" not in text
        assert "radiusgw_accounting_backlog" in text
        assert httpx.get(f"{base}/live", timeout=5).status_code == 200


def test_ready_is_503_with_the_reason_while_the_store_cannot_be_read(
    realms: Path, db: Path
) -> None:
    with metered(realms, db) as (_gw, base):
        until(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200)
        aside = db.with_name("gw.db.aside")
        db.rename(aside)
        db.mkdir()  # a directory where the database was: every fresh open fails
        try:
            response = httpx.get(f"{base}/ready", timeout=10)
            assert response.status_code == 503
            assert "store" in response.text
            assert httpx.get(f"{base}/live", timeout=5).status_code == 200
        finally:
            db.rmdir()
            aside.rename(db)
        response = httpx.get(f"{base}/ready", timeout=10)
        assert response.status_code == 200, response.text


def test_a_worker_killed_9_shows_in_the_restarts_counter(realms: Path, db: Path) -> None:
    with metered(realms, db) as (gw, base):
        victim = gw.worker_pids()[1]
        index = next(e["worker"] for e in gw.events("worker-ready") if e["pid"] == victim)
        os.kill(victim, signal.SIGKILL)
        gw.wait_for("worker-died", pid=victim)
        until(
            lambda: value(samples(base), "radiusgw_worker_restarts_total", worker=str(index)) == 1
        )
        gw.wait_for("worker-ready", count=3)
        until(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200)
