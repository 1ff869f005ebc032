"""The management API of a running gateway (issue 18.4): an account added over HTTP then logs
in with a real NAS (radclient); a contract's token is refused another contract's realm; a
session disconnect reaches a NAS stand-in on its coa_port and its ACK is reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from radiusgw.radius.attributes import AcctStatusType, Code
from tests.integration.gateway import ACME, GLOBEX, radclient, running_gateway, write_realms
from tests.integration.nas import accounting, send_raw
from tests.integration.test_session_disconnect import SECRET, nas_answering

OPERATOR = "operator-token-0123456789"
GLOBEX_TOKEN = "globex-portal-token-01234"


def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(
        f'[[token]]\nname = "noc"\ntoken = "{OPERATOR}"\n\n'
        f'[[token]]\nname = "globex"\ntoken = "{GLOBEX_TOKEN}"\ncontract = "globex"\n'
    )
    os.chmod(path, 0o600)
    return path


def client(port: int, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )


@pytest.mark.peers
def test_an_account_added_over_the_api_logs_in_and_a_session_is_disconnected(
    tmp_path: Path,
) -> None:
    with nas_answering(Code.DISCONNECT_ACK) as (coa_port, seen):
        acme = ACME.replace(
            'secret = "acme-secret"', f'secret = "acme-secret"\ncoa_port = {coa_port}'
        )
        realms = write_realms(tmp_path / "realms", acme=acme, globex=GLOBEX)
        db = tmp_path / "gw.db"
        extra = ("--api-listen", "127.0.0.1:0", "--api-tokens", str(tokens(tmp_path)))
        with running_gateway(realms, db, *extra, workers=2) as gw:
            port = gw.wait_for("api-listening")[0]["port"]
            with client(port, GLOBEX_TOKEN) as c:
                refused = c.post(
                    "/realms/acme.example/accounts", json={"username": "eve", "password": "x"}
                )
                assert refused.status_code == 403
            with client(port, OPERATOR) as c:
                r = c.post(
                    "/realms/acme.example/accounts",
                    json={"username": "zoe", "password": "zebra", "framed_ip": "10.0.0.8"},
                )
                assert r.status_code == 201
                # A running gateway sees a new account at once (its cache asks the store).
                login = radclient(
                    gw.auth_port,
                    "auth",
                    SECRET,
                    'User-Name = "zoe@acme.example"\nUser-Password = "zebra"',
                )
                assert login.code == "Access-Accept"
                assert login.attributes["Framed-IP-Address"] == ["10.0.0.8"]
                start = accounting("zoe@acme.example", SECRET.encode(), AcctStatusType.START, "z-1")
                assert send_raw(gw.acct_port, start) is not None
                deadline = time.monotonic() + 15  # the journal is applied moments later
                while not (sessions := c.get("/realms/acme.example/sessions").json()):
                    assert time.monotonic() < deadline, "the session never showed"
                    time.sleep(0.1)
                [live] = sessions
                assert live["acct_session_id"] == "z-1"
                answer = c.post("/realms/acme.example/sessions/z-1/disconnect").json()
                assert answer["outcome"] == "ack" and answer["nas_address"] == "127.0.0.1"
                assert c.post("/realms/acme.example/sessions/nope/disconnect").status_code == 404
            changes = gw.events("api-change")
    assert len(seen) == 1
    assert [(e["token"], e["status"]) for e in changes] == [("noc", 201), ("noc", 200)]
