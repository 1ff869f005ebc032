"""VPDN mode against real peers: radclient and a test LAC ask the gateway, xl2tpd is the LNS.

Each LNS listens on its own loopback address (Tunnel-Server-Endpoint carries only an address),
on a high port that the test LAC maps it to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from radiusgw.l2tp.control import ControlConnection, State
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode, encode_attributes
from tests.integration.gateway import Gateway, radclient, running_gateway, write_realms
from tests.integration.xl2tpd import Xl2tpd, running_xl2tpd

LAC_SECRET = b"docomo-lac-secret"
TUNNEL_SECRET = "initech-tunnel-secret"
LNS_ADDRESSES = ("127.0.0.11", "127.0.0.12")

CARRIERS = """
[[carrier]]
type = "D"
address = "127.0.0.1"
secret = "docomo-lac-secret"

[[carrier]]
type = "K"
address = "127.0.0.8"
secret = "kddi-lac-secret"
"""


def vpdn_contract(lns: list[tuple[str, int, str]], balance: str = "round-robin") -> str:
    text = f"""
[contract]
id = "initech"
name = "Initech"

[[realm]]
name = "vpn.initech.example"
mode = "vpdn"
carrier = "D"
balance = "{balance}"
probe_interval = 1
"""
    for address, port, secret in lns:
        text += f"""
[[realm.lns]]
address = "{address}"
port = {port}
secret = "{secret}"
"""
    return text


def access_request(user: str, secret: bytes, source: str = "127.0.0.1") -> tuple[bytes, bytes]:
    auth = os.urandom(16)
    attrs = encode_attributes(
        [(1, user.encode()), (2, crypto.hide_password(b"ppp-password", secret, auth))]
    )
    return crypto.sign_request(Code.ACCESS_REQUEST, 1, attrs, secret, authenticator=auth), auth


def ask(
    gw: Gateway,
    user: str = "taro@vpn.initech.example",
    *,
    secret: bytes = LAC_SECRET,
    source: str = "127.0.0.1",
) -> tuple[int, list[tuple[int, dict[int, bytes]]], bytes]:
    """Ask as a LAC; the answer code, the tunnel attribute sets by tag, the authenticator."""
    request, auth = access_request(user, secret)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(3)
        s.sendto(request, ("127.0.0.1", gw.auth_port))
        raw = s.recv(4096)
    assert crypto.response_authenticator_matches(raw, secret, auth)
    packet = decode(raw)
    tags: dict[int, dict[int, bytes]] = {}
    for t, v in packet.attributes:
        if t in (64, 65, 67, 69, 83):
            tags.setdefault(v[0], {})[t] = v[1:]
    return packet.code, sorted(tags.items()), auth


def endpoints(gw: Gateway) -> list[str]:
    code, tags, _ = ask(gw)
    assert code == Code.ACCESS_ACCEPT
    return [attrs[Attr.TUNNEL_SERVER_ENDPOINT].decode() for _, attrs in tags]


@pytest.fixture
def two_lns(tmp_path: Path) -> Iterator[list[Xl2tpd]]:
    with ExitStack() as stack:
        servers = []
        for n, address in enumerate(LNS_ADDRESSES):
            directory = tmp_path / f"lns{n}"
            directory.mkdir()
            servers.append(
                stack.enter_context(running_xl2tpd(directory, TUNNEL_SECRET, address=address))
            )
        yield servers


@contextmanager
def gateway_for(tmp_path: Path, lns: list[tuple[str, int, str]], **kw: str) -> Iterator[Gateway]:
    realms = write_realms(tmp_path / "realms", carriers=CARRIERS, initech=vpdn_contract(lns, **kw))
    with running_gateway(realms, tmp_path / "gw.db") as gw:
        yield gw


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.25)


@pytest.mark.peers
def test_radclient_as_lac_decrypts_the_tunnel_password(
    two_lns: list[Xl2tpd], tmp_path: Path
) -> None:
    lns = [(x.address, x.port, TUNNEL_SECRET) for x in two_lns]
    with gateway_for(tmp_path, lns) as gw:
        r = radclient(
            gw.auth_port,
            "auth",
            LAC_SECRET.decode(),
            'User-Name = "taro@vpn.initech.example"\nUser-Password = "x"\n',
        )
        assert r.code == "Access-Accept", r.output
        assert r.attributes["Tunnel-Password:1"] == [TUNNEL_SECRET]
        assert r.attributes["Tunnel-Password:2"] == [TUNNEL_SECRET]
        assert r.attributes["Tunnel-Type:1"] == ["L2TP"]
        assert r.attributes["Tunnel-Medium-Type:1"] == ["IPv4"]


@pytest.mark.peers
def test_the_lac_brings_up_a_tunnel_to_the_lns_it_was_given(
    two_lns: list[Xl2tpd], tmp_path: Path
) -> None:
    ports = {x.address: x.port for x in two_lns}
    lns = [(x.address, x.port, TUNNEL_SECRET) for x in two_lns]
    with gateway_for(tmp_path, lns) as gw:
        code, tags, auth = ask(gw)
        assert code == Code.ACCESS_ACCEPT
        first = tags[0][1]
        endpoint = first[Attr.TUNNEL_SERVER_ENDPOINT].decode()
        password = crypto.salt_decrypt(first[Attr.TUNNEL_PASSWORD], LAC_SECRET, auth)
        assert password == TUNNEL_SECRET.encode()
        conn = ControlConnection(
            777, password, "test-lac", time.monotonic(), peer=(endpoint, ports[endpoint])
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.2)
            conn.start(time.monotonic())
            deadline = time.monotonic() + 10
            while conn.state is not State.ESTABLISHED and conn.failure is None:
                assert time.monotonic() < deadline, "tunnel did not come up"
                for datagram, destination in conn.datagrams_to_send(time.monotonic()):
                    s.sendto(datagram, destination)
                try:
                    conn.receive_datagram(*s.recvfrom(4096), time.monotonic())
                except TimeoutError:
                    conn.handle_timer(time.monotonic())
        assert conn.failure is None and conn.established


@pytest.mark.peers
def test_round_robin_alternates_the_first_offer(two_lns: list[Xl2tpd], tmp_path: Path) -> None:
    lns = [(x.address, x.port, TUNNEL_SECRET) for x in two_lns]
    with gateway_for(tmp_path, lns) as gw:
        firsts = [endpoints(gw)[0] for _ in range(10)]
        assert firsts.count(LNS_ADDRESSES[0]) == 5 and firsts.count(LNS_ADDRESSES[1]) == 5


@pytest.mark.peers
def test_a_stopped_lns_leaves_the_answers_and_returns_when_restarted(tmp_path: Path) -> None:
    with ExitStack() as stack:
        lns_a = stack.enter_context(
            running_xl2tpd(_dir(tmp_path, "a"), TUNNEL_SECRET, address=LNS_ADDRESSES[0])
        )
        b_dir = _dir(tmp_path, "b")
        b_stack = ExitStack()
        lns_b = b_stack.enter_context(
            running_xl2tpd(b_dir, TUNNEL_SECRET, address=LNS_ADDRESSES[1])
        )
        lns = [
            (lns_a.address, lns_a.port, TUNNEL_SECRET),
            (lns_b.address, lns_b.port, TUNNEL_SECRET),
        ]
        with gateway_for(tmp_path, lns) as gw:
            wait_until(lambda: len(endpoints(gw)) == 2, 5, "both LNS offered")
            b_stack.close()  # stop xl2tpd b by its PID
            stopped = time.monotonic()
            wait_until(lambda: endpoints(gw) == [LNS_ADDRESSES[0]], 8, "b left out")
            assert time.monotonic() - stopped < 8  # probe interval 1 s + probe timeout 2 s + poll
            gw.wait_for("lns-state", lns=LNS_ADDRESSES[1], status="down")
            with running_xl2tpd(b_dir, TUNNEL_SECRET, address=LNS_ADDRESSES[1], port=lns_b.port):
                wait_until(lambda: len(endpoints(gw)) == 2, 8, "b offered again")


@pytest.mark.peers
def test_a_wrong_tunnel_secret_shows_as_a_secret_mismatch(
    two_lns: list[Xl2tpd], tmp_path: Path
) -> None:
    good, bad = two_lns
    lns = [(good.address, good.port, TUNNEL_SECRET), (bad.address, bad.port, "not-the-secret")]
    with gateway_for(tmp_path, lns) as gw:
        gw.wait_for("lns-state", lns=bad.address, status="secret-mismatch", timeout=10)
        wait_until(lambda: endpoints(gw) == [good.address], 5, "mismatched LNS left out")
        status = subprocess.run(
            [sys.executable, "-m", "radiusgw", "lns", "status", "--db", str(gw.db)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{bad.address}:{bad.port}\tsecret-mismatch" in status
        assert f"{good.address}:{good.port}\tup" in status


@pytest.mark.peers
def test_another_carriers_lac_is_rejected(two_lns: list[Xl2tpd], tmp_path: Path) -> None:
    lns = [(x.address, x.port, TUNNEL_SECRET) for x in two_lns]
    with gateway_for(tmp_path, lns) as gw:
        code, tags, _ = ask(gw, secret=b"kddi-lac-secret", source="127.0.0.8")
        assert code == Code.ACCESS_REJECT and not tags


@pytest.mark.peers
def test_another_carriers_lac_cannot_tell_the_realm_from_an_unknown_one(tmp_path: Path) -> None:
    """Issue 14.18: radclient as carrier K's LAC asking for carrier D's realm gets what a realm
    that does not exist gets; the operator's log line says why."""
    carriers = CARRIERS.replace("127.0.0.1", "127.0.0.9").replace("127.0.0.8", "127.0.0.1")
    contract = vpdn_contract([("127.0.0.11", 1701, "a")])
    realms = write_realms(tmp_path / "realms", carriers=carriers, initech=contract)
    with running_gateway(realms, tmp_path / "gw.db") as gw:
        answers = []
        for user in ("taro@vpn.initech.example", "taro@no-such-realm.example"):
            r = radclient(
                gw.auth_port,
                "auth",
                "kddi-lac-secret",
                f'User-Name = "{user}"\nUser-Password = "x"',
            )
            answers.append((r.code, r.attributes.get("Reply-Message")))
        assert answers == [("Access-Reject", ["unknown realm"])] * 2
        (event,) = gw.wait_for("access-reject", realm="vpn.initech.example")
        assert event["reason"] == "unknown realm"
        assert event["detail"] == "a VPDN realm of carrier type D, asked by carrier type K"


def _dir(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    return directory


def test_weighted_distribution_over_1000_answers(tmp_path: Path) -> None:
    # Probing off (the LNS need not exist): the choice alone is under test.
    realms = write_realms(
        tmp_path / "realms",
        carriers=CARRIERS,
        initech=vpdn_contract(
            [("127.0.0.11", 1701, "a"), ("127.0.0.12", 1701, "b")], balance="weighted"
        ).replace("probe_interval = 1", "probe_interval = 0"),
    )
    text = (realms / "initech.toml").read_text()
    text = text.replace('secret = "b"', 'secret = "b"\nweight = 3')
    (realms / "initech.toml").write_text(text)
    with running_gateway(realms, tmp_path / "gw.db") as gw:
        firsts = [endpoints(gw)[0] for _ in range(1000)]
    assert firsts.count("127.0.0.11") == 250 and firsts.count("127.0.0.12") == 750


def test_a_full_lns_is_never_chosen_and_the_next_one_is_offered(tmp_path: Path) -> None:
    contract = vpdn_contract(
        [("127.0.0.11", 1701, "a"), ("127.0.0.12", 1701, "b")], balance="least-sessions"
    ).replace("probe_interval = 1", "probe_interval = 0")
    contract = contract.replace('secret = "a"', 'secret = "a"\nmax_sessions = 1')
    realms = write_realms(tmp_path / "realms", carriers=CARRIERS, initech=contract)
    with running_gateway(realms, tmp_path / "gw.db") as gw:
        first = endpoints(gw)
        assert first[0] == "127.0.0.11"  # both empty: the first in order
        # At once, before any load is re-read: the reservation fills 127.0.0.11 exactly.
        for _ in range(3):
            assert endpoints(gw) == ["127.0.0.12"]
