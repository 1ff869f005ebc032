"""Accounting a real NAS (radclient) reports, as the running gateway stores it: counts as large as
RFC 2869 allows, kept exactly; a record the store refuses kept aside; the gateway restarting after
either."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.server.settings import DEFAULT_TUNING
from tests.integration.gateway import Gateway, radclient, radiusgw, running_gateway
from tests.integration.nas import accounting

pytestmark = pytest.mark.peers


def account(gateway: Gateway, status: str, session_id: str, *extra: str) -> None:
    lines = [
        'User-Name = "alice@acme.example"',
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session_id}"',
        "NAS-IP-Address = 127.0.0.1",
        *extra,
    ]
    r = radclient(gateway.acct_port, "acct", "acme-secret", "\n".join(lines))
    assert r.code == "Accounting-Response", r.output


def live_session(db: Path, session_id: str, **wanted: Any) -> dict[str, Any]:
    """The session as ``session list`` shows it, once the applier has stored what is wanted."""
    deadline = time.monotonic() + 10
    while True:
        out = radiusgw("session", "list", "--db", str(db), "--format", "json").stdout
        for line in out.splitlines():
            session = json.loads(line)
            if session["acct_session_id"] == session_id and all(
                session[k] == v for k, v in wanted.items()
            ):
                return session
        assert time.monotonic() < deadline, f"{session_id} {wanted} never stored: {out}"
        time.sleep(0.05)


def test_an_interim_past_63_bits_is_stored_exactly_and_the_gateway_restarts(
    gateway: Gateway, realms: Path, db: Path
) -> None:
    account(gateway, "Start", "big-1")
    account(
        gateway,
        "Interim-Update",
        "big-1",
        "Acct-Input-Gigawords = 2147483648",  # 2^63 octets: one past SQLite's largest integer
        "Acct-Input-Octets = 5",
        "Acct-Output-Gigawords = 4294967295",
        "Acct-Output-Octets = 4294967295",
        "Acct-Session-Time = 900",
    )
    session = live_session(db, "big-1", session_time=900)
    assert (session["input_octets"], session["output_octets"]) == (2**63 + 5, 2**64 - 1)
    month = session["last_update"][:7]
    usage = json.loads(
        radiusgw(
            "usage",
            "--realm",
            "acme.example",
            "--month",
            month,
            "--db",
            str(db),
            "--format",
            "json",
        ).stdout
    )
    assert (usage["input_octets"], usage["output_octets"]) == (2**63 + 5, 2**64 - 1)
    assert usage["session_time_seconds"] == 900  # what the NAS said, not the 0.1 s between
    assert gateway.events("accounting-apply-stopped") == []
    assert gateway.stop() == 0
    with running_gateway(realms, db) as again:  # the start-up replay has nothing to choke on
        account(again, "Stop", "big-1", "Acct-Session-Time = 960")
        assert again.events("accounting-quarantined") == []


def test_a_record_the_store_refuses_is_kept_aside_and_the_rest_stored(
    realms: Path, db: Path
) -> None:
    conn = sqlite3.connect(db)  # a store that refuses one record, whatever the reason
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON accounting WHEN NEW.session_id = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'refused here'); END"
    )
    conn.commit()
    conn.close()
    with running_gateway(realms, db) as gateway:
        account(gateway, "Start", "good-1")
        account(gateway, "Start", "poison")  # acknowledged: it is in the journal
        account(gateway, "Interim-Update", "good-1", "Acct-Session-Time = 60")
        live_session(db, "good-1", session_time=60)  # not held up behind the refused one
        [told] = gateway.wait_for("accounting-quarantined")
        assert (told["session_id"], told["reason"]) == ("poison", "IntegrityError: refused here")
    listed = radiusgw("accounting", "quarantine", "--db", str(db), "--format", "json").stdout
    [entry] = [json.loads(line) for line in listed.splitlines()]
    assert (entry["acct_session_id"], entry["user"]) == ("poison", "alice@acme.example")
    assert entry["nas_address"] == "127.0.0.1" and entry["journal"] == "acct-0"
    with running_gateway(realms, db) as again:  # starts, and takes nothing aside twice
        account(again, "Stop", "good-1", "Acct-Session-Time = 90")
        assert again.events("accounting-quarantined") == []
    listed = radiusgw("accounting", "quarantine", "--db", str(db), "--format", "json").stdout
    assert len(listed.splitlines()) == 1


def test_a_worker_stops_reading_accounting_while_its_store_is_behind_and_loses_nothing(
    gateway: Gateway, db: Path
) -> None:
    """Flow control seen from a NAS. The applier queues behind another writer (the writers'
    lock held here, as a long operator command holds the database), so after about
    ``pause_backlog`` records the gateway stops answering; once the lock goes, every record
    the NAS retransmits is answered, and each is stored once."""
    total = DEFAULT_TUNING.pause_backlog + 2_000
    secret = b"acme-secret"
    requests = [
        accounting("alice@acme.example", secret, AcctStatusType.START, f"fc-{n}", ident=n % 256)
        for n in range(total)
    ]
    by_ident: dict[int, list[int]] = {}
    for n, request in enumerate(requests):
        by_ident.setdefault(request[1], []).append(n)
    answered: set[int] = set()

    def collect(sock: socket.socket, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                raw = sock.recv(4096)
            except TimeoutError:
                continue
            for n in by_ident.get(raw[1], []):
                if crypto.response_authenticator_matches(raw, secret, requests[n][4:20]):
                    answered.add(n)

    lock = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.settimeout(0.05)
        try:
            for start in range(0, total, 250):  # as fast as the gateway takes them
                for request in requests[start : start + 250]:
                    sock.sendto(request, ("127.0.0.1", gateway.acct_port))
                collect(sock, 0.02)
            collect(sock, 1.5)
            held = len(answered)
            assert DEFAULT_TUNING.pause_backlog <= held < total, held
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)
        deadline = time.monotonic() + 60
        while len(answered) < total:  # the NAS retransmits what went unanswered
            assert time.monotonic() < deadline, f"{total - len(answered)} never answered"
            for n in range(total):
                if n not in answered:
                    sock.sendto(requests[n], ("127.0.0.1", gateway.acct_port))
            collect(sock, 1.0)
    deadline = time.monotonic() + 30
    while True:
        with sqlite3.connect(db) as conn:
            stored = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT session_id) FROM accounting"
                " WHERE session_id LIKE 'fc-%'"
            ).fetchone()
        if stored[0] == total or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert tuple(stored) == (total, total)  # every record once, retransmissions and all
