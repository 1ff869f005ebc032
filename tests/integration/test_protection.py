"""Account protection and reply attributes by name, with a real gateway (issue 17.4, 17.5):
a lockout decided in the store holds across two workers and ``account unlock`` lifts it; a
wrong Calling-Station-Id is rejected with its reason; radclient shows the realm's and the
account's reply attributes decoded by name, the account's winning; ``check`` refuses an
unknown attribute name."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode
from tests.integration.gateway import (
    ACME,
    RadclientResult,
    radclient,
    radiusgw,
    running_gateway,
    write_realms,
)
from tests.integration.nas import pap

LOCKOUT = ACME + "lockout_after = 4\nlockout_window = 60\nlockout_time = 600\n"
REPLY = (
    ACME
    + """
[realm.reply]
"Filter-Id" = "std-filter"
"Cisco-AVPair" = "ip:addr-pool=realm"
"Session-Timeout" = 7200
"""
)
SECRET = b"acme-secret"


def add(db: Path, realms: Path, user: str, password: str, *extra: str) -> None:
    radiusgw(
        "account", "add", "acme.example", user, "--password", password,
        "--db", str(db), "--realms", str(realms), *extra,
    )  # fmt: skip


def answers(port: int, password: bytes, workers: int = 2) -> list[tuple[Code, bytes | None]]:
    """One PAP login of alice aimed at each worker (the BPF program picks the worker by the
    authenticator's first four octets, radiusgw.server.sockets): (code, Reply-Message)."""
    out: list[tuple[Code, bytes | None]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        for n in range(workers):
            auth = n.to_bytes(4, "big") + os.urandom(12)
            s.sendto(pap("alice@acme.example", password, SECRET, ident=n, authenticator=auth),
                     ("127.0.0.1", port))  # fmt: skip
            reply = decode(s.recv(4096))
            out.append((Code(reply.code), reply.get(int(Attr.REPLY_MESSAGE))))
    return out


def until(port: int, password: bytes, expected: list[tuple[Code, bytes | None]]) -> None:
    """Both workers answer ``expected`` within a few cache polls (1 s each)."""
    deadline = time.monotonic() + 15
    while (got := answers(port, password)) != expected:
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def test_lockout_holds_across_two_workers_and_unlock_lifts_it(tmp_path: Path) -> None:
    realms = write_realms(tmp_path / "realms", acme=LOCKOUT)
    db = tmp_path / "gw.db"
    add(db, realms, "alice", "wonderland")
    with running_gateway(realms, db, workers=2) as gw:
        wrong = (Code.ACCESS_REJECT, b"unknown user or wrong password")
        for _ in range(2):  # four failures, two through each worker
            assert answers(gw.auth_port, b"guess") == [wrong, wrong]
        [locked] = gw.wait_for("account-locked")
        assert (locked["realm"], locked["user"]) == ("acme.example", "alice")
        # Every worker drops its cached account within a poll; the right password is refused.
        until(gw.auth_port, b"wonderland", [(Code.ACCESS_REJECT, b"account locked")] * 2)
        radiusgw("account", "unlock", "acme.example", "alice", "--db", str(db))
        until(gw.auth_port, b"wonderland", [(Code.ACCESS_ACCEPT, None)] * 2)
        assert len(gw.events("account-locked")) == 1  # logged once, by the store's decision
        assert gw.stop() == 0
    assert not any("Traceback" in line for line in gw.raw_lines)


@pytest.mark.peers
def test_radclient_sees_calling_station_refusals_and_reply_attributes_by_name(
    tmp_path: Path,
) -> None:
    realms = write_realms(tmp_path / "realms", acme=REPLY)
    db = tmp_path / "gw.db"
    add(db, realms, "bob", "builder", "--calling-station-id", "00-11-22-AA-BB-CC")
    add(
        db, realms, "carol", "pw",
        "--reply", "Framed-Route=192.0.2.0/24 0.0.0.0 1",
        "--reply", "Cisco-AVPair=ip:addr-pool=carol",
    )  # fmt: skip
    with running_gateway(realms, db) as gw:
        port = gw.auth_port

        def login(user: str, password: str, station: str | None) -> RadclientResult:
            extra = "" if station is None else f'Calling-Station-Id = "{station}"'
            return radclient(
                port, "auth", "acme-secret",
                f'User-Name = "{user}@acme.example"\nUser-Password = "{password}"\n{extra}',
            )  # fmt: skip

        ok = login("bob", "builder", "00-11-22-aa-bb-cc")
        assert ok.code == "Access-Accept", ok.output
        refused = login("bob", "builder", "66-77-88-99-AA-BB")
        assert refused.code == "Access-Reject"
        assert refused.attributes["Reply-Message"] == ["calling station not allowed"]
        absent = login("bob", "builder", None)
        assert absent.attributes["Reply-Message"] == ["no Calling-Station-Id"]

        carol = login("carol", "pw", None)
        assert carol.code == "Access-Accept", carol.output
        attrs = carol.attributes
        assert attrs["Framed-Route"] == ["192.0.2.0/24 0.0.0.0 1"]  # the account's
        assert attrs["Filter-Id"] == ["std-filter"]  # the realm's
        assert attrs["Cisco-AVPair"] == ["ip:addr-pool=carol"]  # the account's wins
        assert attrs["Session-Timeout"] == ["7200"]
        assert gw.stop() == 0


def test_check_refuses_an_unknown_attribute_naming_file_and_key(tmp_path: Path) -> None:
    realms = write_realms(tmp_path / "realms", acme=ACME + '[realm.reply]\n"Filter-ID" = "x"\n')
    result = radiusgw("check", "--realms", str(realms), check=False)
    assert result.returncode == 1
    assert result.stdout == (
        f"{realms / 'acme.toml'}: realm[0].reply.Filter-ID: realm 'acme.example': attribute "
        "'Filter-ID' is not in the dictionary\n"
    )
