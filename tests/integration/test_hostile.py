"""The gateway under what issue 14 found: a damaged store, spoofed and forged floods."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from radiusgw.engine.droplog import BURST, RATE
from tests.integration.gateway import Gateway, radclient, running_gateway
from tests.integration.nas import pap
from tests.unit.engine.helpers import damage_accounts_table

PAP_ALICE = 'User-Name = "alice@acme.example"\nUser-Password = "wonderland"\n'


@pytest.mark.peers
def test_a_damaged_accounts_table_gets_no_answer_and_one_error_line(realms: Path, db: Path) -> None:
    """Issue 14.10: radclient gets no answer (it would try its other server), the log one
    store-error line, and no traceback."""
    damage_accounts_table(db)
    with running_gateway(realms, db) as gw:
        for _ in range(3):
            r = radclient(gw.auth_port, "auth", "acme-secret", PAP_ALICE, retries=1, timeout=0.5)
            assert r.code is None, r.output
        assert gw.stop() == 0
        (error,) = gw.events("store-error")
        assert "malformed" in error["error"] and error["realm"] == "acme.example"
        (stopped,) = gw.events("stopped")
        assert stopped["dropped_store_error"] == 3
        summary = gw.events("drops-suppressed")
        assert sum(s.get("store_error", 0) for s in summary) == 2
        assert not any("Traceback" in line for line in gw.raw_lines)


def _flood(gw: Gateway, spoofed: int, forged: int) -> float:
    """``spoofed`` requests from as many 127.x.y.z addresses, ``forged`` ones with a wrong
    Message-Authenticator from the registered 127.0.0.1; the seconds it took."""
    request = pap("alice@acme.example", b"wonderland", b"acme-secret")
    bad = pap("alice@acme.example", b"wonderland", b"not-the-secret")
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registered:
        registered.bind(("127.0.0.1", 0))
        for i in range(spoofed):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((f"127.{100 + (i >> 16)}.{i >> 8 & 255}.{i & 255}", 0))
                s.sendto(request, ("127.0.0.1", gw.auth_port))
            if i % (spoofed // forged) == 0:
                registered.sendto(bad, ("127.0.0.1", gw.auth_port))
                time.sleep(0.0005)  # within the socket buffer
    return time.monotonic() - started


@pytest.mark.peers
def test_a_spoofed_and_forged_flood_is_logged_in_a_few_lines_and_a_summary(
    gateway: Gateway,
) -> None:
    """Issue 14.12: thousands of drops, a bounded number of ``dropped`` lines, and the
    ``drops-suppressed`` summary (written at the latest when the worker stops) counts the rest."""
    seconds = _flood(gateway, 6000, 1000)
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"
    elapsed = seconds + 1
    assert gateway.stop() == 0
    (stopped,) = gateway.events("stopped")
    drops = stopped["dropped_unknown_client"] + stopped["dropped_bad_authenticator"]
    assert drops >= 1000  # most arrive; a busy machine may lose some on loopback
    lines = gateway.events("dropped")
    assert len(lines) <= BURST + RATE * (elapsed + 15)  # the test's whole span, generously
    held = sum(s["total"] for s in gateway.events("drops-suppressed"))
    assert held + len(lines) == drops
