"""Accounting a real NAS (radclient) reports, as the running gateway stores it: counts as large as
RFC 2869 allows, kept exactly; a record the store refuses kept aside; the gateway restarting after
either."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gateway import Gateway, radclient, radiusgw, running_gateway

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
