"""The gateway as a group-mode RADIUS server, against FreeRADIUS's radclient and pyrad."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from pyrad.client import Client
from pyrad.packet import AccessAccept, AccessRequest

from radiusgw.radius.attributes import Code
from radiusgw.radius.dictionary import load_dictionary
from radiusgw.radius.packet import decode
from radiusgw.store import journal
from tests.integration.gateway import (
    ACME,
    Gateway,
    radclient,
    radiusgw,
    running_gateway,
    write_realms,
)
from tests.integration.nas import pap, send_raw

PAP_ALICE = 'User-Name = "alice@acme.example"\nUser-Password = "wonderland"\n'


@pytest.mark.peers
def test_radclient_pap_accept_with_framed_ip(gateway: Gateway) -> None:
    r = radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE)
    assert r.code == "Access-Accept", r.output
    assert r.attributes["Framed-IP-Address"] == ["10.0.0.5"]


@pytest.mark.peers
def test_radclient_chap_accept(gateway: Gateway) -> None:
    r = radclient(
        gateway.auth_port,
        "auth",
        "acme-secret",
        'User-Name = "bob@acme.example"\nCHAP-Password = "builder"\n',
    )
    assert r.code == "Access-Accept", r.output


@pytest.mark.peers
def test_radclient_wrong_password_is_rejected_with_reply_message(gateway: Gateway) -> None:
    r = radclient(
        gateway.auth_port,
        "auth",
        "acme-secret",
        'User-Name = "alice@acme.example"\nUser-Password = "guess"\n',
    )
    assert r.code == "Access-Reject", r.output
    assert r.attributes["Reply-Message"] == ["unknown user or wrong password"]
    reject = gateway.wait_for("access-reject", user="alice@acme.example")[0]
    assert reject["client"] == "127.0.0.1" and reject["realm"] == "acme.example"
    assert "guess" not in "".join(gateway.raw_lines)
    assert "acme-secret" not in "".join(gateway.raw_lines)


@pytest.mark.peers
def test_radclient_unknown_realm_is_rejected(gateway: Gateway) -> None:
    r = radclient(
        gateway.auth_port,
        "auth",
        "acme-secret",
        'User-Name = "alice@nowhere.example"\nUser-Password = "x"\n',
    )
    assert (r.code, r.attributes.get("Reply-Message")) == ("Access-Reject", ["unknown realm"])


@pytest.mark.peers
def test_radclient_another_contracts_realm_is_rejected(gateway: Gateway) -> None:
    r = radclient(
        gateway.auth_port,
        "auth",
        "acme-secret",
        'User-Name = "carol@globex.example"\nUser-Password = "x"\n',
    )
    assert (r.code, r.attributes.get("Reply-Message")) == ("Access-Reject", ["unknown realm"])


def test_unregistered_address_gets_no_answer(gateway: Gateway) -> None:
    request = pap("alice@acme.example", b"wonderland", b"acme-secret")
    assert send_raw(gateway.auth_port, request, source="127.0.0.66") is None
    dropped = gateway.wait_for("dropped", client="127.0.0.66")[0]
    assert "not a registered NAS" in dropped["reason"]


def test_missing_message_authenticator_where_required_gets_no_answer(gateway: Gateway) -> None:
    request = pap("alice@acme.example", b"wonderland", b"acme-secret", ma=False)
    assert send_raw(gateway.auth_port, request) is None
    gateway.wait_for("dropped", reason="Message-Authenticator required but missing")


def test_legacy_nas_without_message_authenticator_is_answered(gateway: Gateway) -> None:
    request = pap("old@legacy.example", b"timer", b"legacy-secret", ma=False)
    answer = send_raw(gateway.auth_port, request, source="127.0.0.6")
    assert answer is not None and decode(answer).code == Code.ACCESS_ACCEPT


@pytest.mark.peers
def test_garbage_datagrams_are_dropped_and_the_server_keeps_answering(gateway: Gateway) -> None:
    for junk in (
        b"",
        b"\x01",
        os.urandom(64),
        b"\x01\x00\x00\x30" + bytes(20),
        b"\x01\x00\x10\x01" * 8,
    ):
        assert send_raw(gateway.auth_port, junk, timeout=0.2) is None
        assert send_raw(gateway.acct_port, junk, timeout=0.2) is None
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"
    assert gateway.stop() == 0
    stopped = gateway.wait_for("stopped")[0]
    assert stopped["dropped_malformed"] >= 8


@pytest.mark.peers
def test_status_server_is_answered_on_both_ports(gateway: Gateway) -> None:
    auth = radclient(gateway.auth_port, "status", "acme-secret", "")
    assert auth.code == "Access-Accept", auth.output
    acct = radclient(gateway.acct_port, "status", "acme-secret", "")
    assert acct.code == "Accounting-Response", acct.output


def test_retransmission_gets_the_same_answer_and_is_counted_once(gateway: Gateway) -> None:
    request = pap("alice@acme.example", b"wonderland", b"acme-secret", ident=77)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        s.sendto(request, ("127.0.0.1", gateway.auth_port))
        first = s.recv(4096)
        s.sendto(request, ("127.0.0.1", gateway.auth_port))
        second = s.recv(4096)
    assert first == second
    assert decode(first).code == Code.ACCESS_ACCEPT
    assert gateway.stop() == 0
    stopped = gateway.wait_for("stopped")[0]
    assert (stopped["access_requests"], stopped["duplicates"]) == (1, 1)


def test_pyrad_client_is_a_second_peer(gateway: Gateway) -> None:
    client = Client(
        server="127.0.0.1",
        authport=gateway.auth_port,
        acctport=gateway.acct_port,
        secret=b"acme-secret",
        dict=load_dictionary(),
        enforce_ma=True,
    )
    client.timeout = 3
    client.retries = 3  # a loaded CI machine may be slow to schedule the server
    req = client.CreateAuthPacket(code=AccessRequest, User_Name="alice@acme.example")
    req["User-Password"] = req.PwCrypt("wonderland")
    try:
        reply = client.SendPacket(req)
    finally:
        client._CloseSocket()  # pyrad keeps its socket open between packets
    assert reply.code == AccessAccept
    assert reply["Framed-IP-Address"] == ["10.0.0.5"]


@pytest.mark.peers
def test_disabling_an_account_takes_effect_on_the_running_server_within_two_seconds(
    gateway: Gateway,
) -> None:
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"
    radiusgw("account", "disable", "acme.example", "alice", "--db", str(gateway.db))
    disabled_at = time.monotonic()
    while True:
        r = radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE)
        if r.code == "Access-Reject":
            break
        assert time.monotonic() - disabled_at < 2.5, "still accepted after 2 s"
        time.sleep(0.1)
    assert r.attributes["Reply-Message"] == ["account disabled"]
    radiusgw("account", "enable", "acme.example", "alice", "--db", str(gateway.db))
    time.sleep(2.0)
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"


@pytest.mark.peers
def test_accounting_is_acknowledged_and_kept(gateway: Gateway) -> None:
    r = radclient(
        gateway.acct_port,
        "acct",
        "acme-secret",
        'User-Name = "alice@acme.example"\nAcct-Status-Type = Start\n'
        'Acct-Session-Id = "sess-42"\nNAS-IP-Address = 127.0.0.1\n',
    )
    assert r.code == "Accounting-Response", r.output
    # Acknowledged means journalled (fdatasync'd) already...
    journalled = [
        (rec.realm, rec.username, rec.status_type, rec.session_id)
        for name in journal.names(Path(f"{gateway.db}.journal"))
        for records, _ in journal.read(Path(f"{gateway.db}.journal"), name, None)
        for rec in records
    ]
    wanted = ("acme.example", "alice@acme.example", 1, "sess-42")
    assert wanted in journalled
    # ...and the store has it a moment later (the applier's next transaction).
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(gateway.db) as conn:
            rows = conn.execute(
                "SELECT realm, username, status_type, session_id FROM accounting"
            ).fetchall()
        if wanted in rows or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert wanted in rows


@pytest.mark.peers
def test_sighup_reloads_and_an_invalid_set_keeps_the_old_one(
    gateway: Gateway, tmp_path: Path
) -> None:
    realms = gateway.realms
    # A new contract appears: its client is served after SIGHUP.
    write_realms(
        realms,
        newco="""
        [contract]
        id = "newco"
        name = "NewCo"
        [[client]]
        address = "127.0.0.7"
        secret = "newco-secret"
        [[realm]]
        name = "newco.example"
        mode = "group"
        max_accounts = 5
    """,
    )
    radiusgw(
        "account",
        "add",
        "newco.example",
        "nina",
        "--password",
        "pw1",
        "--db",
        str(gateway.db),
        "--realms",
        str(realms),
    )
    request = pap("nina@newco.example", b"pw1", b"newco-secret")
    assert send_raw(gateway.auth_port, request, source="127.0.0.7") is None
    gateway.signal(signal.SIGHUP)
    gateway.wait_for("reloaded")
    answer = send_raw(
        gateway.auth_port, pap("nina@newco.example", b"pw1", b"newco-secret"), source="127.0.0.7"
    )
    assert answer is not None and decode(answer).code == Code.ACCESS_ACCEPT
    # A broken file: the reload is refused, the old set keeps answering.
    (realms / "broken.toml").write_text('[contract]\nid = "x"\nnmae = "typo"\n')
    gateway.signal(signal.SIGHUP)
    refused = gateway.wait_for("reload-refused")[0]
    assert any("broken.toml" in p for p in refused["problems"])
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"


@pytest.mark.peers
def test_sigterm_drains_and_exits_zero(gateway: Gateway) -> None:
    assert radclient(gateway.auth_port, "auth", "acme-secret", PAP_ALICE).code == "Access-Accept"
    assert gateway.stop() == 0
    gateway.wait_for("stopped")


def test_serve_refuses_an_invalid_realm_set(tmp_path: Path) -> None:
    realms = write_realms(
        tmp_path / "bad", acme=ACME + '\n[[client]]\naddress = "10.0.0.0/24"\nsecret = "x"\n'
    )
    r = radiusgw(
        "serve",
        "--realms",
        str(realms),
        "--db",
        str(tmp_path / "x.db"),
        "--auth-port",
        "0",
        "--acct-port",
        "0",
        "--listen",
        "127.0.0.1",
        check=False,
    )
    assert r.returncode == 1
    assert "acme.toml" in r.stderr and "client[1].address" in r.stderr


def test_two_workers_share_one_nas_source_port(realms: Path, db: Path) -> None:
    with running_gateway(realms, db, workers=2) as gw:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))  # one source port, as a carrier LAC would use
            s.settimeout(2)
            for i in range(200):
                s.sendto(
                    pap("alice@acme.example", b"wonderland", b"acme-secret", ident=i % 256),
                    ("127.0.0.1", gw.auth_port),
                )
                assert decode(s.recv(4096)).code == Code.ACCESS_ACCEPT
        assert gw.stop() == 0
        per_worker = [e["access_requests"] for e in gw.wait_for("stopped", count=2)]
    assert sum(per_worker) == 200
    assert min(per_worker) > 40, per_worker  # spread by authenticator, not by 4-tuple


def test_a_killed_worker_is_forked_again_and_its_share_is_answered(realms: Path, db: Path) -> None:
    # 第12条: no single crash may stop answering. The supervisor keeps the dead worker's socket,
    # so the requests the BPF program sends its way wait and are answered by its replacement.
    with running_gateway(realms, db, workers=2) as gw:
        victim = gw.wait_for("worker-ready", count=2)[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        gw.wait_for("worker-died", pid=victim)
        gw.wait_for("worker-ready", count=3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(3)
            for i in range(50):
                s.sendto(
                    pap("alice@acme.example", b"wonderland", b"acme-secret", ident=i),
                    ("127.0.0.1", gw.auth_port),
                )
                assert decode(s.recv(4096)).code == Code.ACCESS_ACCEPT
        assert gw.stop() == 0
        per_worker = [e["access_requests"] for e in gw.wait_for("stopped", count=2)]
    assert sum(per_worker) == 50 and min(per_worker) > 0


def _loopback_v6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.peers
@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
def test_an_ipv6_nas_is_answered_on_an_ipv6_listener(tmp_path: Path) -> None:
    # The UDP edge hands the engine IPv6 source addresses as 4-tuples (address, port, flow
    # info, scope): the duplicate cache, the answer's destination and the journal use them.
    realms = write_realms(
        tmp_path / "realms", acme=ACME + '\n[[client]]\naddress = "::1"\nsecret = "v6-secret"\n'
    )
    db = tmp_path / "gw.db"
    radiusgw(
        "account", "add", "acme.example", "alice", "--password", "wonderland",
        "--framed-ip", "10.0.0.5", "--db", str(db), "--realms", str(realms),
    )  # fmt: skip
    with running_gateway(realms, db, "--listen", "::1", workers=2) as gw:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
            s.settimeout(3)
            request = pap("alice@acme.example", b"wonderland", b"v6-secret", ident=9)
            answers = []
            for data in (request, request, pap("alice@acme.example", b"nope", b"v6-secret")):
                s.sendto(data, ("::1", gw.auth_port))
                answers.append(s.recv(4096))
        assert answers[0] == answers[1]  # the retransmission: the cached answer
        assert [decode(a).code for a in answers] == [
            Code.ACCESS_ACCEPT,
            Code.ACCESS_ACCEPT,
            Code.ACCESS_REJECT,
        ]
        r = radclient(gw.acct_port, "status", "v6-secret", "", host="::1")
        assert r.code == "Accounting-Response", r.output
        assert gw.stop() == 0
        stopped = gw.wait_for("stopped", count=2)
    assert sum(e["access_requests"] for e in stopped) == 2
    assert sum(e["duplicates"] for e in stopped) == 1
