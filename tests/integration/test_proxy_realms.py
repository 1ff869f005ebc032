"""Proxy realms are realms like the others (issue 14): sessions, usage and limits from their
accounting, outcome logs, EAP through ``strip``, signed upstream answers, IPv6 customer servers
and the status of a server that two realms share. FreeRADIUS 3.2 is the customer's server,
radclient, eapol_test and raw datagrams the NAS."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from tests.integration.freeradius import FreeRadius, free_udp_ports
from tests.integration.gateway import radclient, radiusgw, running_gateway, write_realms
from tests.integration.nas import accounting, answer, pap
from tests.integration.test_proxy_mode import PAP, contract, gateway_for, upstream

pytestmark = pytest.mark.peers

NAS_SECRET = b"nas-secret"
REALM = "globex.example"


def login(port: int, user: str, password: bytes) -> tuple[int, bytes]:
    reply = answer(port, pap(user, password, NAS_SECRET), NAS_SECRET, timeout=5)
    assert reply is not None, f"no answer for {user}"
    return reply.code, reply.get(Attr.REPLY_MESSAGE) or b""


def acct(
    port: int,
    user: str,
    status: AcctStatusType,
    session: str,
    octets: tuple[int, int] = (0, 0),
    ident: int = 1,
) -> None:
    request = accounting(user, NAS_SECRET, status, session, octets=octets, ident=ident)
    reply = answer(port, request, NAS_SECRET, timeout=5)
    assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE


def eventually(read: Any, check: Any, timeout: float = 10.0) -> Any:
    """``read()`` until ``check(value)`` holds (the store follows the answers by ~0.1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def sessions(db: Path) -> list[dict[str, Any]]:
    out = radiusgw("session", "list", "--realm", REALM, "--db", str(db), "--format", "json")
    return [json.loads(line) for line in out.stdout.splitlines()]


def usage(db: Path) -> dict[str, Any]:
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    args = ("usage", "--realm", REALM, "--month", month, "--db", str(db), "--format", "json")
    return dict(json.loads(radiusgw(*args).stdout))


# -- 1. sessions, usage and limits -------------------------------------------------------------


def test_proxy_accounting_is_forwarded_and_shows_in_session_list_and_usage(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        with gateway_for(tmp_path, [fr]) as gw:
            user = f"alice@{REALM}"
            acct(gw.acct_port, user, AcctStatusType.START, "p-1", ident=1)
            live = eventually(lambda: sessions(gw.db), lambda rows: len(rows) == 1)
            assert (live[0]["user"], live[0]["acct_session_id"]) == ("alice", "p-1")
            acct(gw.acct_port, user, AcctStatusType.INTERIM_UPDATE, "p-1", (1_000, 2_000), 2)
            acct(gw.acct_port, user, AcctStatusType.STOP, "p-1", (5_000, 7_000), 3)
            eventually(lambda: sessions(gw.db), lambda rows: rows == [])
            used = eventually(lambda: usage(gw.db), lambda u: u["sessions"] == 1)
            assert (used["input_octets"], used["output_octets"]) == (5_000, 7_000)
            # Forwarded as before: the customer's server has all three.
            detail = eventually(fr.detail, lambda text: text.count('"p-1"') == 3)
            assert "Interim-Update" in detail and "Stop" in detail


def test_max_sessions_of_a_proxy_realm_rejects_the_second_login_until_a_stop(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        with gateway_for(tmp_path, [fr], extra="max_sessions = 1") as gw:
            assert login(gw.auth_port, f"alice@{REALM}", b"wonderland")[0] == Code.ACCESS_ACCEPT
            acct(gw.acct_port, f"alice@{REALM}", AcctStatusType.START, "limit-1")
            # FreeRADIUS accepts bob; the gateway refuses the slot, signed for the NAS.
            code, message = login(gw.auth_port, f"bob@{REALM}", b"builder")
            assert (code, message) == (
                Code.ACCESS_REJECT,
                b"realm session limit 1 reached (max_sessions)",
            )
            acct(gw.acct_port, f"alice@{REALM}", AcctStatusType.STOP, "limit-1", ident=2)
            assert login(gw.auth_port, f"bob@{REALM}", b"builder")[0] == Code.ACCESS_ACCEPT


def test_a_proxy_realm_over_its_traffic_quota_is_rejected(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        with gateway_for(tmp_path, [fr], extra='traffic_quota = "1MB"') as gw:
            assert login(gw.auth_port, f"alice@{REALM}", b"wonderland")[0] == Code.ACCESS_ACCEPT
            acct(gw.acct_port, f"alice@{REALM}", AcctStatusType.START, "q-1")
            stop = AcctStatusType.STOP
            acct(gw.acct_port, f"alice@{REALM}", stop, "q-1", (600_000, 500_000), ident=2)
            gw.wait_for("quota-reached", realm=REALM, timeout=15)
            code, message = login(gw.auth_port, f"alice@{REALM}", b"wonderland")
            assert (code, message) == (Code.ACCESS_REJECT, b"monthly traffic quota reached")


# -- 2. logs -----------------------------------------------------------------------------------


def test_access_log_names_the_upstream_of_every_proxy_outcome(tmp_path: Path) -> None:
    silent_auth, silent_acct = free_udp_ports(2)  # nobody listens there
    silent = FreeRadius(silent_auth, silent_acct, None, tmp_path)  # type: ignore[arg-type]
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        server = f"127.0.0.1:{fr.auth_port}"
        with gateway_for(tmp_path, [fr]) as gw:  # without --access-log
            assert login(gw.auth_port, f"alice@{REALM}", b"wonderland")[0] == Code.ACCESS_ACCEPT
            assert login(gw.auth_port, f"bob@{REALM}", b"wrong")[0] == Code.ACCESS_REJECT
            [rejected] = gw.wait_for("access-reject", user=f"bob@{REALM}")
            assert (rejected["upstream"], rejected["realm"]) == (server, REALM)
            assert gw.events("access-accept") == []
        with gateway_for(tmp_path / "with-log", [fr, silent], "--access-log") as gw:
            assert login(gw.auth_port, f"alice@{REALM}", b"wonderland")[0] == Code.ACCESS_ACCEPT
            [accepted] = gw.wait_for("access-accept", user=f"alice@{REALM}")
            assert accepted["upstream"] == server and accepted["client"] == "127.0.0.1"
            assert accepted["realm"] == REALM
        with gateway_for(tmp_path / "silent", [silent], "--access-log") as gw:
            request = pap(f"alice@{REALM}", b"wonderland", NAS_SECRET)
            assert answer(gw.auth_port, request, NAS_SECRET, timeout=3) is None
            [failed] = gw.wait_for("proxy-no-answer", timeout=10)
            assert failed["servers"] == [f"127.0.0.1:{silent_auth}"]
            assert (failed["realm"], failed["user"]) == (REALM, f"alice@{REALM}")


# -- 3. EAP and strip --------------------------------------------------------------------------


def test_eap_through_a_proxy_realm_with_strip_reaches_freeradius_whole(tmp_path: Path) -> None:
    eapol_test = shutil.which("eapol_test")
    if eapol_test is None:
        pytest.skip("eapol_test is not installed (Debian package eapoltest; `make peers`)")
    users = f'"alice@{REALM}" Cleartext-Password := "wonderland"\n'
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr", users=users, eap=True)
        with gateway_for(tmp_path, [fr]) as gw:  # strip = true, the default
            conf = tmp_path / "eapol.conf"
            conf.write_text(
                "network={\n  key_mgmt=IEEE8021X\n  eap=MD5\n"
                f'  identity="alice@{REALM}"\n  password="wonderland"\n}}\n'
            )
            target = ("-a", "127.0.0.1", "-p", str(gw.auth_port), "-s", NAS_SECRET.decode())
            run = subprocess.run(
                [eapol_test, "-c", str(conf), *target, "-n", "-t", "10"],
                capture_output=True,
                text=True,
                timeout=60,
            )
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout[-3000:]
    assert "does not match User-Name" not in fr.log()


# -- 4. BlastRADIUS on the upstream side --------------------------------------------------------


def test_unsigned_upstream_accepts_are_dropped_unless_the_server_is_exempted(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        # Debian's FreeRADIUS 3.2.1 on its own signs no Access-Accept.
        fr = upstream(stack, tmp_path, "fr", sign_replies=False)
        with gateway_for(tmp_path, [fr], extra='on_upstream_down = "reject"') as gw:
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP, timeout=5)
            assert r.code == "Access-Reject", r.output  # no usable answer: every server failed
            [dropped] = gw.wait_for("upstream-answer-dropped")
            assert dropped["server"] == f"127.0.0.1:{fr.auth_port}"
            assert "Message-Authenticator missing" in dropped["reason"]
            assert gw.stop() == 0
            stopped = gw.wait_for("stopped")[0]
            assert stopped["upstream_dropped_bad_answer"] >= 1
            assert stopped["upstream_answered"] == 0
        exempt = "require_message_authenticator = false"
        with gateway_for(tmp_path / "exempt", [fr], server_extra=exempt) as gw:
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP)
            assert r.code == "Access-Accept", r.output


# -- 5. IPv6 customer servers --------------------------------------------------------------------


def test_a_customer_server_on_ipv6_loopback_answers(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr6", listen="::1")
        with gateway_for(tmp_path, [fr], address="::1") as gw:
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP)
            assert r.code == "Access-Accept", r.output
            acct(gw.acct_port, f"alice@{REALM}", AcctStatusType.START, "v6-1")
            eventually(fr.detail, lambda text: '"v6-1"' in text)


# -- 6. one server, two realms -------------------------------------------------------------------


def test_two_realms_on_one_server_each_have_a_status_line(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        # The same server; the second realm's timers differ, so each realm has its own health.
        second = contract([fr]).split("[[realm]]", 1)[1].replace(REALM, "globex2.example")
        second = second.replace("response_window = 0.5", "response_window = 0.7")
        realms = write_realms(tmp_path / "realms", globex=contract([fr]) + "[[realm]]" + second)
        with running_gateway(realms, tmp_path / "gw.db") as gw:
            for realm in (REALM, "globex2.example"):
                assert login(gw.auth_port, f"alice@{realm}", b"wonderland")[0] == (
                    Code.ACCESS_ACCEPT
                )

            def status() -> list[dict[str, Any]]:
                out = radiusgw("proxy", "status", "--db", str(gw.db), "--format", "json")
                return [json.loads(line) for line in out.stdout.splitlines()]

            def answered_in_both(rows: list[dict[str, Any]]) -> bool:
                done = {r["realm"] for r in rows if r["answered"] >= 1}
                return done == {REALM, "globex2.example"}

            rows = eventually(status, answered_in_both, timeout=15)
            server = f"127.0.0.1:{fr.auth_port}"
            assert {(r["realm"], r["server"], r["kind"]) for r in rows} == {
                (REALM, server, "auth"),
                ("globex2.example", server, "auth"),
            }
            assert gw.events("upstream-status-failed") == []
