"""``radiusgw session disconnect`` (issue 18.5): a live session found in the store, its NAS's
coa_port and secret found in the realm files, a Disconnect-Request (RFC 5176) to a NAS stand-in
that verifies it and answers Disconnect-ACK (or NAK), and the answer printed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import encode_attributes, integer
from tests.integration.gateway import ACME, radiusgw, running_gateway, write_realms
from tests.integration.nas import accounting, send_raw
from tests.integration.test_disconnect import verified_request

SECRET = "acme-secret"


@contextmanager
def nas_answering(code: Code, cause: int | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """A NAS on 127.0.0.1 that answers each verified Disconnect-Request with ``code``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(4096)
            except TimeoutError:
                continue
            packet = verified_request(data, SECRET.encode())
            if packet is None:
                continue
            seen.append(data)
            attrs = (
                b"" if cause is None else encode_attributes([(Attr.ERROR_CAUSE, integer(cause))])
            )
            sock.sendto(
                crypto.sign_response(code, data[1], data[4:20], attrs, SECRET.encode()), addr
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], seen
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def live_session(tmp_path: Path, db: Path, coa_port: int) -> Path:
    realms = write_realms(
        tmp_path / "coa-realms",
        acme=ACME.replace(
            'secret = "acme-secret"', f'secret = "acme-secret"\ncoa_port = {coa_port}'
        ),
    )
    with running_gateway(realms, db) as gw:
        start = accounting("alice@acme.example", SECRET.encode(), AcctStatusType.START, "sess-9")
        assert send_raw(gw.acct_port, start) is not None
    return realms


def test_the_nas_ack_is_printed(tmp_path: Path, db: Path) -> None:
    with nas_answering(Code.DISCONNECT_ACK) as (port, seen):
        realms = live_session(tmp_path, db, port)
        out = radiusgw(
            "session", "disconnect", "acme.example", "alice", "--db", str(db),
            "--realms", str(realms),
        )  # fmt: skip
    assert out.stdout == "sess-9\t127.0.0.1\tack\n"
    assert len(seen) == 1 and seen[0][0] == Code.DISCONNECT_REQUEST


def test_a_nak_prints_its_error_cause_and_fails(tmp_path: Path, db: Path) -> None:
    with nas_answering(Code.DISCONNECT_NAK, 503) as (port, _):
        realms = live_session(tmp_path, db, port)
        out = radiusgw(
            "session", "disconnect", "acme.example", "alice", "--session", "sess-9",
            "--db", str(db), "--realms", str(realms), check=False,
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stdout == "sess-9\t127.0.0.1\tnak\t503 session-context-not-found\n"
    none = radiusgw(
        "session", "disconnect", "acme.example", "bob", "--db", str(db), "--realms", str(realms),
        check=False,
    )  # fmt: skip
    assert none.returncode == 1 and "no live session of 'bob'" in none.stderr
