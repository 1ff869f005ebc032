"""A carrier LAC emulator: VPDN requests to the gateway, then real L2TP tunnels to the LNS given.

For each of ``--sessions`` users it asks the gateway (as a registered carrier access server) for
``user@realm``, decodes the RFC 2868 tunnel attributes of the Access-Accept, decrypts the
Tunnel-Password with its own secret and the request's authenticator (RFC 2868 §3.5) and, with
``--tunnels``, brings an L2TPv2 control connection up to the first LNS offered (SCCRQ, SCCRP
with challenge, SCCCN) and closes it (StopCCN). This is what a LAC does with the answer, so it
checks the whole chain end to end. Prints JSON: answers, tunnels up, failures by kind, rates.

    python -m bench.lac --port 1812 --secret docomo-lac-secret --realm vpn.initech.example \\
        --sessions 200 --tunnels --lns-port 127.0.0.11=1701
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

from radiusgw.l2tp.control import ControlConnection, State
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import decode, encode_attributes


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


async def ask(host: str, port: int, secret: bytes, user: str) -> tuple[str, bytes] | str:
    """The first offered LNS and its tunnel secret, or why not."""
    loop = asyncio.get_running_loop()
    auth = os.urandom(16)
    attrs = encode_attributes(
        [
            (Attr.USER_NAME, user.encode()),
            (Attr.USER_PASSWORD, crypto.hide_password(b"x", secret, auth)),
        ]
    )
    request = crypto.sign_request(Code.ACCESS_REQUEST, 1, attrs, secret, authenticator=auth)
    transport, proto = await loop.create_datagram_endpoint(_Udp, remote_addr=(host, port))
    try:
        transport.sendto(request)
        raw = await asyncio.wait_for(proto.queue.get(), 3)
    except TimeoutError:
        return "no answer"
    finally:
        transport.close()
    if not crypto.response_authenticator_matches(raw, secret, auth):
        return "bad response authenticator"
    packet = decode(raw)
    if packet.code != Code.ACCESS_ACCEPT:
        return "reject"
    tagged: dict[int, dict[int, bytes]] = {}
    for t, v in packet.attributes:
        if t in (Attr.TUNNEL_SERVER_ENDPOINT, Attr.TUNNEL_PASSWORD, Attr.TUNNEL_PREFERENCE):
            tagged.setdefault(v[0], {})[t] = v[1:]
    best = min(tagged.values(), key=lambda a: a.get(Attr.TUNNEL_PREFERENCE, b"\xff\xff\xff"))
    password = crypto.salt_decrypt(best[Attr.TUNNEL_PASSWORD], secret, auth)
    if password is None:
        return "undecryptable Tunnel-Password"
    return best[Attr.TUNNEL_SERVER_ENDPOINT].decode(), password


async def tunnel(address: str, port: int, secret: bytes, host_name: str) -> str:
    """Bring a tunnel up and stop it: "up", or the failure kind."""
    loop = asyncio.get_running_loop()
    lns = (address, port)
    conn = ControlConnection(
        int.from_bytes(os.urandom(2)) or 1, secret, host_name, time.monotonic(), peer=lns
    )
    transport, proto = await loop.create_datagram_endpoint(_Udp, remote_addr=(address, port))
    try:
        conn.start(time.monotonic())
        deadline = time.monotonic() + 10
        while conn.state is not State.CLOSED and time.monotonic() < deadline:
            for datagram, _ in conn.datagrams_to_send(time.monotonic()):
                transport.sendto(datagram)  # connected to the LNS
            if conn.state is State.ESTABLISHED:
                conn.stop(time.monotonic())
                continue
            timer = conn.get_timer()
            wait = max(0.0, (timer or deadline) - time.monotonic())
            try:
                data = await asyncio.wait_for(proto.queue.get(), wait)
                conn.receive_datagram(data, lns, time.monotonic())
            except TimeoutError:
                conn.handle_timer(time.monotonic())
        for datagram, _ in conn.datagrams_to_send(time.monotonic()):
            transport.sendto(datagram)
    finally:
        transport.close()
    if conn.failure is not None:
        return conn.failure.kind.name.lower()
    return "up" if conn.established else "timeout"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = dict(item.split("=") for item in args.lns_port)
    secret = args.secret.encode()
    outcomes: Counter[str] = Counter()
    sem = asyncio.Semaphore(args.concurrency)
    start = time.perf_counter()

    async def one(n: int) -> None:
        async with sem:
            got = await ask(args.host, args.port, secret, f"user{n}@{args.realm}")
            if isinstance(got, str):
                outcomes[f"answer: {got}"] += 1
                return
            outcomes["answered"] += 1
            if args.tunnels:
                endpoint, password = got
                result = await tunnel(
                    endpoint, int(ports.get(endpoint, 1701)), password, "bench-lac"
                )
                outcomes[f"tunnel: {result}"] += 1

    await asyncio.gather(*(one(n) for n in range(args.sessions)))
    elapsed = time.perf_counter() - start
    return {
        "sessions": args.sessions,
        "elapsed_s": round(elapsed, 2),
        "per_s": round(args.sessions / elapsed, 1),
        **dict(outcomes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1812)
    ap.add_argument("--secret", required=True, help="the LAC's RADIUS secret (carriers.toml)")
    ap.add_argument("--realm", required=True)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--tunnels", action="store_true", help="also bring the L2TP tunnels up")
    ap.add_argument(
        "--lns-port",
        action="append",
        default=[],
        metavar="ADDRESS=PORT",
        help="the L2TP port of an LNS address (default 1701)",
    )
    print(json.dumps(asyncio.run(run(ap.parse_args()))))


if __name__ == "__main__":
    main()
