"""DisconnectSender over real UDP on 127.0.0.1 and ::1 against a test NAS, and radclient as a
cross-check.

The test NAS is ours (radclient can send Disconnect-Requests but not receive them): a UDP socket
on a port the OS picks that decodes each request with radiusgw's codec, verifies it as a NAS must
(RFC 5176 §2.3 Request Authenticator, §3.4 Message-Authenticator), silently discards what does
not verify, and answers per its script. radclient then checks that NAS: its Disconnect-Requests
verify there, one with a wrong secret does not, and it accepts the NAS's signed Disconnect-ACK.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
import uvloop

from radiusgw.dynauth import DisconnectClient, DisconnectTarget, Outcome, Result
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import DecodeError, Packet, decode, encode_attributes, integer
from radiusgw.server.datagrams import MachineEdge
from radiusgw.server.disconnect import DisconnectSender

SECRET = b"coa-s3cret"
ZERO16 = bytes(16)
ACK = (int(Code.DISCONNECT_ACK), None)
NAK_503 = (int(Code.DISCONNECT_NAK), 503)
SILENT = None
Answer = tuple[int, int | None] | None  # (code, Error-Cause) or None: say nothing


class Recorder:
    """A stand-in for the structlog logger: keeps what is logged, at every level."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self.seen.append((level, event, fields))

    def debug(self, event: str, **fields: Any) -> None:
        self._add("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._add("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._add("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._add("error", event, fields)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for _, e, fields in self.seen if e == event]


def verified_request(raw: bytes, secret: bytes) -> Packet | None:
    """The Disconnect-Request in ``raw`` if it verifies with ``secret``, as a NAS checks it."""
    try:
        packet = decode(raw)
    except DecodeError:
        return None
    if packet.code != Code.DISCONNECT_REQUEST:
        return None
    if not crypto.accounting_request_matches(packet.raw, secret):  # RFC 5176 §2.3
        return None
    offset = packet.message_authenticator_offset
    if offset >= 0:
        # RFC 5176 §3.4: computed with the Request Authenticator as 16 zero octets.
        zeroed = packet.raw[:4] + ZERO16 + packet.raw[20:]
        if not crypto.message_authenticator_matches(zeroed, offset, secret):
            return None
    return packet


class ScriptedNas(asyncio.DatagramProtocol):
    """Answers the n-th verified request per ``script[n]`` (the last entry repeats)."""

    def __init__(self, script: list[Answer], *, answer_secret: bytes = SECRET) -> None:
        self.script = script
        self.answer_secret = answer_secret
        self.datagrams: list[bytes] = []  # everything that arrived
        self.requests: list[Packet] = []  # what verified
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.datagrams.append(data)
        packet = verified_request(data, SECRET)
        if packet is None:
            return  # RFC 5176 §6.1: silently discarded
        self.requests.append(packet)
        action = self.script[min(len(self.requests), len(self.script)) - 1]
        if action is None:
            return
        code, cause = action
        attrs = b"" if cause is None else encode_attributes([(Attr.ERROR_CAUSE, integer(cause))])
        reply = crypto.sign_response(code, data[1], data[4:20], attrs, self.answer_secret)
        assert self.transport is not None
        self.transport.sendto(reply, addr)


@asynccontextmanager
async def scripted_nas(script: list[Answer], host: str = "127.0.0.1") -> AsyncIterator[ScriptedNas]:
    loop = asyncio.get_running_loop()
    transport, nas = await loop.create_datagram_endpoint(
        lambda: ScriptedNas(script), local_addr=(host, 0)
    )
    try:
        yield nas
    finally:
        transport.close()


def fast_client() -> DisconnectClient:
    """Retransmissions after 0.2, 0.4, 0.8 s: the real schedule, five times faster."""
    return DisconnectClient(initial_interval=0.2, jitter=0.0)


async def until(condition: Callable[[], Any], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def disconnect_alice(sender: DisconnectSender, nas: ScriptedNas, host: str = "127.0.0.1") -> bool:
    return sender.disconnect(
        host,
        nas.port,
        SECRET,
        acct_session_id="sess-1",
        user_name="alice@acme.example",
        realm="acme.example",
        nas_ip_address=host,
        framed_ip="10.0.0.5",
    )


def assert_no_secret_logged(log: Recorder) -> None:
    assert SECRET.decode() not in repr(log.seen)


async def ack_after_one_retransmission() -> None:
    log = Recorder()
    async with scripted_nas([SILENT, ACK]) as nas:
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1")
        sender.start()
        try:
            assert disconnect_alice(sender, nas)
            await until(lambda: log.named("disconnect-ack"))
        finally:
            await sender.close()
    assert len(nas.datagrams) == 2
    assert nas.datagrams[0] == nas.datagrams[1]  # a retransmission is the same datagram
    assert len(nas.requests) == 2
    request = nas.requests[0]
    assert request.get(Attr.ACCT_SESSION_ID) == b"sess-1"
    assert request.get(Attr.USER_NAME) == b"alice@acme.example"
    assert request.get(Attr.NAS_IP_ADDRESS) == socket.inet_aton("127.0.0.1")
    [ack] = log.named("disconnect-ack")
    assert {k: ack[k] for k in ("nas", "port", "session_id", "user", "realm", "tries")} == {
        "nas": "127.0.0.1",
        "port": nas.port,
        "session_id": "sess-1",
        "user": "alice@acme.example",
        "realm": "acme.example",
        "tries": 2,
    }
    assert 0.2 <= ack["seconds"] < 1.0
    assert [e for _, e, _ in log.seen if e.startswith("disconnect-")] == [
        "disconnect-request",
        "disconnect-ack",
    ]
    assert sender.client.counters.retransmitted == 1
    assert_no_secret_logged(log)


async def test_ack_is_logged_after_one_retransmission() -> None:
    await ack_after_one_retransmission()


def test_the_sender_runs_on_uvloop() -> None:
    uvloop.run(ack_after_one_retransmission())


async def test_nak_503_is_logged_with_its_error_cause_and_ends_the_retries() -> None:
    log = Recorder()
    async with scripted_nas([NAK_503]) as nas:
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1")
        sender.start()
        try:
            assert disconnect_alice(sender, nas)
            await until(lambda: log.named("disconnect-nak"))
            await asyncio.sleep(0.7)  # retransmissions would have gone at 0.2 and 0.6 s
        finally:
            await sender.close()
    assert len(nas.datagrams) == 1
    [nak] = log.named("disconnect-nak")
    assert nak["error_cause"] == 503
    assert nak["error_cause_name"] == "session-context-not-found"
    assert (nak["session_id"], nak["tries"]) == ("sess-1", 1)
    assert log.named("disconnect-abandoned") == []
    assert_no_secret_logged(log)


async def test_forged_and_garbage_answers_are_dropped_and_the_real_ack_counts() -> None:
    log = Recorder()
    async with scripted_nas([ACK]) as nas:
        nas.answer_secret = b"not-the-secret"  # the first answer does not verify
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1")
        sender.start()
        try:
            assert disconnect_alice(sender, nas)
            await until(lambda: len(log.named("disconnect-dropped")) == 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as garbage:
                garbage.sendto(b"\x29\x01\x00", ("127.0.0.1", sender.local_ports[socket.AF_INET]))
            await until(lambda: len(log.named("disconnect-dropped")) == 2)
            assert log.named("disconnect-ack") == []
            nas.answer_secret = SECRET
            await until(lambda: log.named("disconnect-ack"))
        finally:
            await sender.close()
    reasons = [d["reason"] for d in log.named("disconnect-dropped")]
    assert "Response Authenticator" in reasons[0]
    assert reasons[1].startswith("malformed")
    [ack] = log.named("disconnect-ack")
    assert ack["tries"] == 2


async def test_a_second_request_for_an_outstanding_session_is_not_sent() -> None:
    log = Recorder()
    async with scripted_nas([SILENT]) as nas:
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1")
        sender.start()
        try:
            assert disconnect_alice(sender, nas)
            assert not disconnect_alice(sender, nas)
            await until(lambda: len(nas.datagrams) == 1)
            await asyncio.sleep(0.05)
            assert len(nas.datagrams) == 1
            assert sender.outstanding == 1
        finally:
            await sender.close()
    assert len(log.named("disconnect-request")) == 1


async def test_close_waits_for_answers_then_reports_the_rest_as_abandoned() -> None:
    log = Recorder()
    async with scripted_nas([SILENT, ACK]) as answering, scripted_nas([SILENT]) as silent:
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1")
        sender.start()
        assert disconnect_alice(sender, answering)
        assert disconnect_alice(sender, silent)
        await sender.close(drain=0.5)  # the first NAS answers the retransmission at 0.2 s
    assert len(log.named("disconnect-ack")) == 1
    [abandoned] = log.named("disconnect-abandoned")
    assert abandoned["port"] == silent.port
    assert abandoned["detail"] == "the gateway shut down"
    assert sender.outstanding == 0
    with pytest.raises(RuntimeError):
        disconnect_alice(sender, silent)


def _loopback_v6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
async def test_an_ipv6_nas_gets_its_own_socket() -> None:
    log = Recorder()
    async with scripted_nas([ACK], host="::1") as nas:
        sender = DisconnectSender(log, client=fast_client(), bind_v4="127.0.0.1", bind_v6="::1")
        sender.start()
        try:
            assert socket.AF_INET6 not in sender.local_ports
            assert disconnect_alice(sender, nas, host="::1")
            await until(lambda: log.named("disconnect-ack"))
            assert socket.AF_INET6 in sender.local_ports
        finally:
            await sender.close()
    assert nas.requests[0].get(Attr.NAS_IPV6_ADDRESS) == socket.inet_pton(socket.AF_INET6, "::1")


def _radclient(port: int, secret: str) -> str:
    exe = shutil.which("radclient")
    if exe is None:
        pytest.skip("radclient is not installed (Debian package freeradius-utils)")
    lines = (
        "User-Name = alice@acme.example\nAcct-Session-Id = sess-9\nMessage-Authenticator = 0x00\n"
    )
    proc = subprocess.run(
        [exe, "-x", "-r", "1", "-t", "0.5", f"127.0.0.1:{port}", "disconnect", secret],
        input=lines,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.stdout + proc.stderr


@pytest.mark.peers
async def test_radclient_requests_verify_at_the_test_nas_and_its_ack_verifies_at_radclient() -> (
    None
):
    async with scripted_nas([ACK]) as nas:
        out = await asyncio.to_thread(_radclient, nas.port, SECRET.decode())
        assert "Received Disconnect-ACK" in out, out
        assert len(nas.requests) == 1
        assert nas.requests[0].get(Attr.ACCT_SESSION_ID) == b"sess-9"
        assert nas.requests[0].message_authenticator_offset > 0
        wrong = await asyncio.to_thread(_radclient, nas.port, "wrong-secret")
        assert "Received Disconnect-ACK" not in wrong, wrong
        assert len(nas.datagrams) >= 2
        assert len(nas.requests) == 1  # the wrong-secret request did not verify


@pytest.mark.skipif(not _loopback_v6(), reason="no IPv6 loopback here")
async def test_a_disconnect_to_a_nas_on_ipv6_loopback_goes_through_the_one_edge() -> None:
    # The edge opens what the machine's destinations need, per family: here IPv6 only.
    loop = asyncio.get_running_loop()
    client = fast_client()
    results: list[Result] = []
    log = Recorder()
    async with scripted_nas([SILENT, ACK], host="::1") as nas:
        edge = MachineEdge(
            loop,
            client,
            results.append,
            log,
            name="disconnect",
            bind={socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"},
            clock=time.time,
        )
        try:
            target = DisconnectTarget("::1", nas.port, SECRET, "sess-6", user_name="bob@acme")
            assert client.request(target, time.time(), "traffic-quota")
            edge.flush()
            await until(lambda: results)  # answered on the retransmission, by the edge's timer
            assert list(edge.local_ports) == [socket.AF_INET6]
        finally:
            edge.close()
    [result] = results
    assert (result.outcome, result.tries) == (Outcome.ACK, 2)
    assert nas.datagrams[0] == nas.datagrams[1]
    assert nas.requests[0].get(Attr.ACCT_SESSION_ID) == b"sess-6"
    assert edge.send_failures == 0 and log.seen == []
