"""Sessions from accounting and the limits of 第14条2, on the real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import decode
from tests.integration.gateway import radiusgw, running_gateway, write_realms
from tests.integration.nas import AccountingLoad, accounting, answer, pap

SECRET = b"acme-secret"

LIMITED = """
[contract]
id = "acme"
name = "ACME"

[[client]]
address = "127.0.0.1"
secret = "acme-secret"

[[client]]
address = "127.0.0.3"
secret = "flood-secret"
rate_limit = 50

[[realm]]
name = "acme.example"
mode = "group"
max_accounts = 100
max_sessions = 3
max_sessions_per_account = 1

[[realm]]
name = "quota.example"
mode = "group"
max_accounts = 10
traffic_quota = "1MB"
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    realms = write_realms(tmp_path / "realms", acme=LIMITED)
    db = tmp_path / "gw.db"
    for n in range(6):
        radiusgw(
            "account",
            "add",
            "acme.example",
            f"u{n}",
            "--password",
            "pw",
            "--db",
            str(db),
            "--realms",
            str(realms),
        )
    radiusgw(
        "account",
        "add",
        "quota.example",
        "q",
        "--password",
        "pw",
        "--db",
        str(db),
        "--realms",
        str(realms),
    )
    return realms, db


def login(
    port: int, user: str, source: str = "127.0.0.1", secret: bytes = SECRET
) -> tuple[int, bytes]:
    reply = answer(port, pap(user, b"pw", secret), secret, source=source)
    assert reply is not None, f"no answer for {user}"
    return reply.code, reply.get(Attr.REPLY_MESSAGE) or b""


def acct(
    port: int, user: str, status: AcctStatusType, session: str, octets: tuple[int, int] = (0, 0)
) -> None:
    reply = answer(port, accounting(user, SECRET, status, session, octets=octets), SECRET)
    assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE


def test_exactly_max_sessions_are_admitted_and_a_stop_frees_a_slot(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        for n in range(3):
            assert login(gw.auth_port, f"u{n}@acme.example")[0] == Code.ACCESS_ACCEPT
            acct(gw.acct_port, f"u{n}@acme.example", AcctStatusType.START, f"s{n}")
        code, message = login(gw.auth_port, "u3@acme.example")
        assert code == Code.ACCESS_REJECT
        assert b"max_sessions" in message
        acct(gw.acct_port, "u0@acme.example", AcctStatusType.STOP, "s0")
        assert login(gw.auth_port, "u3@acme.example")[0] == Code.ACCESS_ACCEPT


def test_simultaneous_use_refuses_a_second_session_of_one_account(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        assert login(gw.auth_port, "u1@acme.example")[0] == Code.ACCESS_ACCEPT
        acct(gw.acct_port, "u1@acme.example", AcctStatusType.START, "a")
        code, message = login(gw.auth_port, "u1@acme.example")
        assert code == Code.ACCESS_REJECT and b"max_sessions_per_account" in message


def test_accounting_on_clears_the_nas_sessions(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        for n in range(3):
            assert login(gw.auth_port, f"u{n}@acme.example")[0] == Code.ACCESS_ACCEPT
            acct(gw.acct_port, f"u{n}@acme.example", AcctStatusType.START, f"s{n}")
        assert login(gw.auth_port, "u4@acme.example")[0] == Code.ACCESS_REJECT
        acct(gw.acct_port, "", AcctStatusType.ACCOUNTING_ON, "nas-reboot")
        assert login(gw.auth_port, "u4@acme.example")[0] == Code.ACCESS_ACCEPT


def test_limits_are_exact_across_two_workers(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db, workers=2) as gw:
        # Six different users ask at once from one source port. The BPF program spreads them by
        # the authenticator's first four octets modulo 2: chosen so that each worker gets three.
        codes = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(3)
            for n in range(6):
                auth = (n % 2).to_bytes(4, "big") + os.urandom(12)
                request = pap(f"u{n}@acme.example", b"pw", SECRET, ident=n, authenticator=auth)
                s.sendto(request, ("127.0.0.1", gw.auth_port))
            for _ in range(6):
                codes.append(decode(s.recv(4096)).code)
        assert codes.count(Code.ACCESS_ACCEPT) == 3 and codes.count(Code.ACCESS_REJECT) == 3
        assert gw.stop() == 0
        per_worker = [e["access_requests"] for e in gw.wait_for("stopped", count=2)]
    assert min(per_worker) > 0, per_worker  # both workers decided some of them


def test_a_flooding_client_is_held_at_its_rate_while_another_is_served(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    radiusgw(
        "account",
        "add",
        "acme.example",
        "f",
        "--password",
        "pw",
        "--db",
        str(db),
        "--realms",
        str(realms),
    )
    with running_gateway(realms, db) as gw:
        stop = threading.Event()
        flood_answers = []

        def flood() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.3", 0))
                s.settimeout(0.001)
                n = 0
                while not stop.is_set():
                    s.sendto(
                        pap("f@acme.example", b"pw", b"flood-secret", ident=n % 256),
                        ("127.0.0.1", gw.auth_port),
                    )
                    n += 1
                    try:
                        while True:
                            flood_answers.append(s.recv(4096))
                    except (TimeoutError, BlockingIOError):
                        pass

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:
            time.sleep(0.5)
            start = time.monotonic()
            served = 0
            for n in range(100):  # the other client is answered every time
                reply = answer(gw.auth_port, pap(f"u{n % 6}@acme.example", b"nope", SECRET), SECRET)
                assert reply is not None
                served += 1
            window = time.monotonic() - start
            before = len(flood_answers)
            time.sleep(1.0)
            per_second = len(flood_answers) - before
        finally:
            stop.set()
            flooder.join()
        assert served == 100
        assert per_second <= 50 * 1.5, per_second  # held near rate_limit = 50/s
        assert window < 10
        assert gw.stop() == 0
        assert gw.wait_for("stopped")[0]["dropped_rate_limited"] > 0


def test_quota_reached_rejects_new_sessions(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        assert login(gw.auth_port, "q@quota.example")[0] == Code.ACCESS_ACCEPT
        acct(gw.acct_port, "q@quota.example", AcctStatusType.START, "q1")
        acct(gw.acct_port, "q@quota.example", AcctStatusType.STOP, "q1", octets=(600_000, 500_000))
        gw.wait_for("quota-reached", realm="quota.example", timeout=15)
        code, message = login(gw.auth_port, "q@quota.example")
        assert (code, message) == (Code.ACCESS_REJECT, b"monthly traffic quota reached")


def test_session_list_shows_live_sessions(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        assert login(gw.auth_port, "u2@acme.example")[0] == Code.ACCESS_ACCEPT
        acct(gw.acct_port, "u2@acme.example", AcctStatusType.START, "live-1", octets=(5, 7))
        out = radiusgw("session", "list", "--db", str(db), "--format", "json").stdout
    sessions = [json.loads(line) for line in out.splitlines()]
    assert len(sessions) == 1
    assert sessions[0]["acct_session_id"] == "live-1" and sessions[0]["realm"] == "acme.example"


def test_kill_9_under_accounting_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    realms, db = setup(tmp_path)
    with running_gateway(realms, db) as gw:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            load = AccountingLoad(
                s, gw.acct_port, "u0@acme.example", SECRET, AcctStatusType.INTERIM_UPDATE, "load"
            )
            acknowledged = load.acknowledged
            deadline = time.monotonic() + 20
            # Load until several hundred records are acknowledged, then kill -9 with a burst
            # in flight: some of it written and answered, some not.
            while len(acknowledged) < 300 and time.monotonic() < deadline:
                load.burst(64)
                time.sleep(0.002)
                load.collect()
            load.burst(64)
            os.kill(gw.process.pid, signal.SIGKILL)
            time.sleep(0.3)
            load.collect()  # answers sent before the kill
        gw.process.wait()
    n = load.sent
    assert len(acknowledged) >= 300, f"only {len(acknowledged)} acknowledged of {n}"
    # Restart: everything acknowledged is in the store.
    with running_gateway(realms, db), sqlite3.connect(db) as conn:
        kept = {row[0] for row in conn.execute("SELECT session_id FROM accounting")}
    assert acknowledged <= kept, sorted(acknowledged - kept)[:5]


def test_quota_crossing_sends_disconnect_request_to_the_nas_coa_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as coa:
        coa.bind(("127.0.0.1", 0))
        coa.settimeout(15)
        contract = LIMITED.replace(
            'secret = "acme-secret"\n',
            f'secret = "acme-secret"\ncoa_port = {coa.getsockname()[1]}\n',
        )
        realms = write_realms(tmp_path / "realms", acme=contract)
        db = tmp_path / "gw.db"
        radiusgw(
            "account",
            "add",
            "quota.example",
            "q",
            "--password",
            "pw",
            "--db",
            str(db),
            "--realms",
            str(realms),
        )
        with running_gateway(realms, db) as gw:
            assert login(gw.auth_port, "q@quota.example")[0] == Code.ACCESS_ACCEPT
            acct(gw.acct_port, "q@quota.example", AcctStatusType.START, "over-1")
            acct(
                gw.acct_port,
                "q@quota.example",
                AcctStatusType.INTERIM_UPDATE,
                "over-1",
                octets=(900_000, 300_000),
            )
            raw, source = coa.recvfrom(4096)  # the Disconnect-Request, at the NAS's CoA port
            request = decode(raw)
            assert request.code == Code.DISCONNECT_REQUEST
            assert crypto.accounting_request_matches(raw, SECRET)  # RFC 5176 §2.3
            assert request.get(Attr.ACCT_SESSION_ID) == b"over-1"
            ack = crypto.sign_response(
                Code.DISCONNECT_ACK, request.identifier, request.authenticator, b"", SECRET
            )
            coa.sendto(ack, source)
            gw.wait_for("disconnect-ack", session_id="over-1")
