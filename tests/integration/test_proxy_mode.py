"""Proxy mode against FreeRADIUS 3.2 as the customer's RADIUS server (the real thing, on
loopback), with radclient as the NAS."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from tests.integration.freeradius import FreeRadius, free_udp_ports, running_freeradius
from tests.integration.gateway import (
    Gateway,
    radclient,
    radiusgw,
    running_gateway,
    write_realms,
)
from tests.integration.nas import accounting, answer, pap

UPSTREAM_SECRET = "upstream-secret"
USERS = """\
alice Cleartext-Password := "wonderland"
        Framed-IP-Address = 10.0.0.5,
        Tunnel-Type:1 = L2TP,
        Tunnel-Password:1 = "customer-tunnel-secret"
bob Cleartext-Password := "builder"
"""


def contract(
    servers: list[FreeRadius],
    pool: str = "failover",
    extra: str = "",
    *,
    address: str = "127.0.0.1",
    server_extra: str = "",
) -> str:
    """A proxy contract: client 127.0.0.1, realm globex.example (``extra`` in its table) with
    ``servers`` at ``address`` (``server_extra`` in each [[realm.server]])."""
    text = f"""
[contract]
id = "globex"
name = "Globex"

[[client]]
address = "127.0.0.1"
secret = "nas-secret"

[[realm]]
name = "globex.example"
mode = "proxy"
pool = "{pool}"
{extra}
"""
    for fr in servers:
        text += f"""
[[realm.server]]
address = "{address}"
auth_port = {fr.auth_port}
acct_port = {fr.acct_port}
secret = "{UPSTREAM_SECRET}"
response_window = 0.5
retries = 1
revive_interval = 1.0
{server_extra}
"""
    return text


@contextmanager
def gateway_for(
    tmp_path: Path, servers: list[FreeRadius], *args: str, **kw: str
) -> Iterator[Gateway]:
    """The gateway on ``contract(servers, **kw)``; ``args`` are more ``serve`` flags."""
    realms = write_realms(tmp_path / "realms", globex=contract(servers, **kw))
    with running_gateway(realms, tmp_path / "gw.db", *args) as gw:
        yield gw


def upstream(
    stack: ExitStack, tmp_path: Path, name: str, users: str = USERS, **kw: Any
) -> FreeRadius:
    """A FreeRADIUS whose answers name it in Class, so a test sees which server answered."""
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    users += f'carol Cleartext-Password := "x"\n        Class = "{name}"\n'
    return stack.enter_context(
        running_freeradius(directory, secret=UPSTREAM_SECRET, users=users, **kw)
    )


PAP = 'User-Name = "alice@globex.example"\nUser-Password = "wonderland"\n'


@pytest.mark.peers
def test_pap_and_chap_through_the_proxy(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        with gateway_for(tmp_path, [fr]) as gw:
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP)
            assert r.code == "Access-Accept", r.output
            assert r.attributes["Framed-IP-Address"] == ["10.0.0.5"]
            chap = radclient(
                gw.auth_port,
                "auth",
                "nas-secret",
                'User-Name = "bob@globex.example"\nCHAP-Password = "builder"\n',
            )
            assert chap.code == "Access-Accept", chap.output
            wrong = radclient(
                gw.auth_port,
                "auth",
                "nas-secret",
                'User-Name = "bob@globex.example"\nUser-Password = "nope"\n',
            )
            assert wrong.code == "Access-Reject"


@pytest.mark.peers
def test_tunnel_password_is_re_encrypted_for_the_nas(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr")
        with gateway_for(tmp_path, [fr]) as gw:
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP)
            # radclient decrypts it with the NAS's secret: only right if we re-encrypted it.
            assert r.attributes["Tunnel-Password:1"] == ["customer-tunnel-secret"], r.output


@pytest.mark.peers
def test_failover_when_the_first_server_stops_and_return_when_it_is_back(tmp_path: Path) -> None:
    with ExitStack() as stack:
        first_stack = ExitStack()
        first = upstream(first_stack, tmp_path, "first")
        second = upstream(stack, tmp_path, "second")
        with gateway_for(tmp_path, [first, second]) as gw:
            assert radclient(gw.auth_port, "auth", "nas-secret", PAP).code == "Access-Accept"
            first_stack.close()  # stop the first server by its PID
            started = time.monotonic()
            r = radclient(gw.auth_port, "auth", "nas-secret", PAP, retries=1, timeout=5)
            assert r.code == "Access-Accept", r.output  # answered by the second, in one NAS try
            assert time.monotonic() - started < 4
            gw.wait_for("upstream-state", port=first.auth_port, new="dead", timeout=10)
            # Operators see it too.
            deadline = time.monotonic() + 8
            line = f"127.0.0.1:{first.auth_port}\tauth\tdead"
            while line not in radiusgw("proxy", "status", "--db", str(gw.db)).stdout:
                assert time.monotonic() < deadline, "proxy status does not show the dead server"
                time.sleep(0.5)
            # The first comes back on the same ports: probed with Status-Server and revived.
            upstream(stack, tmp_path, "first", auth_port=first.auth_port, acct_port=first.acct_port)
            gw.wait_for("upstream-state", port=first.auth_port, new="alive", timeout=15)


def test_load_balance_spreads_over_both_servers(tmp_path: Path) -> None:
    answered_by: list[bytes] = []
    with ExitStack() as stack:
        servers = [upstream(stack, tmp_path, "one"), upstream(stack, tmp_path, "two")]
        with gateway_for(tmp_path, servers, pool="load-balance") as gw:
            for n in range(20):
                reply = answer(
                    gw.auth_port,
                    pap("carol@globex.example", b"x", b"nas-secret", ident=n),
                    b"nas-secret",
                )
                assert reply is not None and reply.code == Code.ACCESS_ACCEPT
                answered_by.append(reply.get(Attr.CLASS) or b"")
    assert answered_by.count(b"one") >= 5 and answered_by.count(b"two") >= 5, answered_by


@pytest.mark.peers
def test_accounting_is_spooled_while_the_customer_is_down_and_delivered_after(
    tmp_path: Path,
) -> None:
    auth_port, acct_port = free_udp_ports(2)
    fake = FreeRadius(auth_port, acct_port, None, tmp_path)  # type: ignore[arg-type]
    with ExitStack() as stack:
        with gateway_for(tmp_path, [fake]) as gw:
            for n in range(5):  # nobody listens: the gateway keeps them and answers
                reply = answer(
                    gw.acct_port,
                    accounting(
                        "alice@globex.example",
                        b"nas-secret",
                        AcctStatusType.START,
                        f"spooled-{n}",
                        ident=n,
                    ),
                    b"nas-secret",
                    timeout=6,
                )
                assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE
            fr = upstream(stack, tmp_path, "fr", auth_port=auth_port, acct_port=acct_port)
            deadline = time.monotonic() + 20
            while fr.detail().count("spooled-") < 5:
                assert time.monotonic() < deadline, fr.detail()
                time.sleep(0.2)
        detail = fr.detail()
    order = [int(m) for m in re.findall(r'Acct-Session-Id = "spooled-(\d)"', detail)]
    assert order == sorted(order) and set(order) == set(range(5))
    assert "Acct-Delay-Time" in detail


@pytest.mark.peers
def test_spooled_accounting_survives_kill_9_of_the_gateway(tmp_path: Path) -> None:
    auth_port, acct_port = free_udp_ports(2)
    fake = FreeRadius(auth_port, acct_port, None, tmp_path)  # type: ignore[arg-type]
    realms = write_realms(tmp_path / "realms", globex=contract([fake]))
    db = tmp_path / "gw.db"
    with running_gateway(realms, db) as gw:
        for n in range(3):
            reply = answer(
                gw.acct_port,
                accounting(
                    "alice@globex.example",
                    b"nas-secret",
                    AcctStatusType.STOP,
                    f"killed-{n}",
                    ident=n,
                ),
                b"nas-secret",
                timeout=6,
            )
            assert reply is not None
        gw.process.send_signal(signal.SIGKILL)
        gw.process.wait()
    with ExitStack() as stack:
        fr = upstream(stack, tmp_path, "fr", auth_port=auth_port, acct_port=acct_port)
        with running_gateway(realms, db):
            deadline = time.monotonic() + 20
            while fr.detail().count("killed-") < 3:
                assert time.monotonic() < deadline, fr.detail()
                time.sleep(0.2)
            time.sleep(1.5)  # and nothing more arrives: no duplicates
            assert fr.detail().count("killed-") == 3


@pytest.mark.peers
def test_a_forged_upstream_answer_is_dropped(tmp_path: Path) -> None:
    # A "customer server" that answers with the wrong secret: the gateway must not relay it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rogue:
        rogue.bind(("127.0.0.1", 0))
        port = rogue.getsockname()[1]
        fake = FreeRadius(port, port + 1 if port < 65535 else port - 1, None, tmp_path)  # type: ignore[arg-type]
        with gateway_for(tmp_path, [fake], extra='on_upstream_down = "reject"') as gw:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
                nas.bind(("127.0.0.1", 0))
                nas.settimeout(5)
                request = pap("alice@globex.example", b"wonderland", b"nas-secret")
                nas.sendto(request, ("127.0.0.1", gw.auth_port))
                rogue.settimeout(3)
                forwarded, source = rogue.recvfrom(4096)
                from radiusgw.radius import crypto

                forged = crypto.sign_response(
                    Code.ACCESS_ACCEPT,
                    forwarded[1],
                    forwarded[4:20],
                    b"",
                    b"not-the-upstream-secret",
                )
                rogue.sendto(forged, source)
                reply = nas.recv(4096)  # what the NAS gets: a reject once no server answered
            assert reply[0] == Code.ACCESS_REJECT
            assert gw.stop() == 0
            # The operator's counters say what happened upstream: the forged answer, and the
            # retransmission (retries = 1) that the rogue left unanswered too.
            stopped = gw.wait_for("stopped")[0]
            assert stopped["upstream_forwarded"] == 1
            assert stopped["upstream_dropped_bad_answer"] == 1
            assert stopped["upstream_retransmitted"] == 1
            assert stopped["upstream_answered"] == 0 and stopped["upstream_failed"] == 1
