"""Codec micro-benchmark: radiusgw's packet codec and crypto against pyrad's, same packets.

Each case does the same job both ways, on the same bytes, and the two results are checked
against each other first (a faster wrong answer is no answer): decoding an Access-Request,
checking it (Message-Authenticator, User-Password), building a signed Access-Accept, decoding a
VPDN Access-Accept with two tagged tunnels, and the whole server path (decode, check, answer).
Times are the best of several repeats, in microseconds per operation.

    python -m bench.codec
"""

from __future__ import annotations

import json
import os
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrad.packet import AuthPacket, Packet

from radiusgw.radius import crypto
from radiusgw.radius.attributes import Code
from radiusgw.radius.dictionary import load_dictionary
from radiusgw.radius.packet import decode, encode_attributes

SECRET = b"bench-secret"
PASSWORD = b"wonderland"
USER = b"alice@group.bench"
FRAMED_IP = bytes((10, 0, 0, 5))


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    radiusgw: Callable[[], Any]
    pyrad: Callable[[], Any]


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _access_request() -> tuple[bytes, bytes]:
    auth = os.urandom(16)
    attrs = encode_attributes(
        [
            (1, USER),
            (2, crypto.hide_password(PASSWORD, SECRET, auth)),
            (4, bytes((127, 0, 0, 1))),
            (5, _u32(7)),  # NAS-Port
            (61, _u32(5)),  # NAS-Port-Type = Virtual
        ]
    )
    return crypto.sign_request(Code.ACCESS_REQUEST, 7, attrs, SECRET, authenticator=auth), auth


def _vpdn_accept(request_auth: bytes) -> bytes:
    attrs: list[tuple[int, bytes]] = []
    for tag, (address, salt) in enumerate(((b"127.0.0.11", 0x8001), (b"127.0.0.12", 0x8002)), 1):
        t = bytes((tag,))
        attrs += [
            (64, t + (3).to_bytes(3, "big")),  # Tunnel-Type L2TP (RFC 2868 §3.1)
            (65, t + (1).to_bytes(3, "big")),  # Tunnel-Medium-Type IPv4
            (67, t + address),  # Tunnel-Server-Endpoint
            (83, t + (1).to_bytes(3, "big")),  # Tunnel-Preference
            (
                69,
                t + crypto.salt_encrypt(b"tunnel-secret", SECRET, request_auth, _u32(salt)[2:]),
            ),
        ]
    return crypto.sign_response(
        Code.ACCESS_ACCEPT, 7, request_auth, encode_attributes(attrs), SECRET
    )


def cases() -> list[Case]:
    dictionary = load_dictionary()
    raw, auth = _access_request()
    vpdn = _vpdn_accept(auth)
    reply_attrs = [(8, FRAMED_IP), (27, _u32(3600)), (25, b"bench")]

    # radiusgw: the server's path, with the codec's own functions.
    def rg_decode() -> Any:
        return decode(raw)

    def rg_check() -> bytes | None:
        p = decode(raw)
        if not crypto.message_authenticator_matches(p.raw, p.message_authenticator_offset, SECRET):
            return None
        hidden = p.get(2)
        return None if hidden is None else crypto.unhide_password(hidden, SECRET, p.authenticator)

    def rg_accept() -> bytes:
        return crypto.sign_response(
            Code.ACCESS_ACCEPT, 7, auth, encode_attributes(reply_attrs), SECRET
        )

    def rg_vpdn() -> Any:
        return decode(vpdn)

    def rg_server() -> bytes | None:
        p = decode(raw)
        if not crypto.message_authenticator_matches(p.raw, p.message_authenticator_offset, SECRET):
            return None
        hidden = p.get(2)
        if hidden is None or crypto.unhide_password(hidden, SECRET, p.authenticator) != PASSWORD:
            return None
        return crypto.sign_response(
            Code.ACCESS_ACCEPT,
            p.identifier,
            p.authenticator,
            encode_attributes(reply_attrs),
            SECRET,
        )

    # pyrad 2.6: its Packet classes with the same dictionary.
    def py_decode() -> Any:
        return AuthPacket(packet=raw, dict=dictionary, secret=SECRET)

    def py_check() -> bytes | None:
        p = AuthPacket(packet=raw, dict=dictionary, secret=SECRET)
        if not p.verify_message_authenticator():
            return None
        password: str = p.PwDecrypt(p["User-Password"][0])
        return password.encode()

    request = AuthPacket(packet=raw, dict=dictionary, secret=SECRET)

    def py_accept() -> bytes:
        reply = request.CreateReply()
        reply["Framed-IP-Address"] = "10.0.0.5"
        reply["Session-Timeout"] = 3600
        reply["Class"] = b"bench"
        return reply.ReplyPacket()  # type: ignore[no-any-return]

    def py_vpdn() -> Any:
        return Packet(packet=vpdn, dict=dictionary, secret=SECRET)

    def py_server() -> bytes | None:
        p = AuthPacket(packet=raw, dict=dictionary, secret=SECRET)
        if not p.verify_message_authenticator():
            return None
        if p.PwDecrypt(p["User-Password"][0]).encode() != PASSWORD:
            return None
        reply = p.CreateReply()
        reply["Framed-IP-Address"] = "10.0.0.5"
        reply["Session-Timeout"] = 3600
        reply["Class"] = b"bench"
        return reply.ReplyPacket()  # type: ignore[no-any-return]

    # Both sides must agree before either is timed.
    assert rg_check() == py_check() == PASSWORD
    for answer in (rg_accept(), py_accept(), rg_server(), py_server()):
        assert answer is not None
        assert crypto.response_authenticator_matches(answer, SECRET, auth)
        p = decode(answer)
        assert crypto.response_message_authenticator_matches(
            answer, p.message_authenticator_offset, SECRET, auth
        )
        assert sorted((t, v) for t, v in p.attributes if t != 80) == sorted(reply_attrs)
    endpoints = [v[1:] for t, v in rg_vpdn().attributes if t == 67]
    assert endpoints == [e.encode() for e in py_vpdn()["Tunnel-Server-Endpoint"]]
    return [
        Case("decode Access-Request (PAP, 6 attributes)", rg_decode, py_decode),
        Case("check it: Message-Authenticator + User-Password", rg_check, py_check),
        Case("build a signed Access-Accept (3 attributes)", rg_accept, py_accept),
        Case("decode a VPDN Access-Accept (2 tagged tunnels)", rg_vpdn, py_vpdn),
        Case("server path: decode, check, answer", rg_server, py_server),
    ]


def _best_us(fn: Callable[[], Any], budget: float) -> float:
    timer = timeit.Timer(fn)
    number, took = timer.autorange()
    number = max(1, int(number * (budget / 5) / max(took, 1e-9)))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def measure(budget: float = 0.5) -> list[dict[str, Any]]:
    """Each case both ways; ``budget`` seconds per side and case, roughly."""
    rows = []
    for case in cases():
        ours = _best_us(case.radiusgw, budget)
        theirs = _best_us(case.pyrad, budget)
        rows.append(
            {
                "case": case.name,
                "radiusgw_us": round(ours, 2),
                "pyrad_us": round(theirs, 2),
                "speedup": round(theirs / ours, 1),
            }
        )
    return rows


def main() -> None:
    rows = measure()
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':<{width}}  radiusgw µs  pyrad µs  pyrad/radiusgw")
    for r in rows:
        print(
            f"{r['case']:<{width}}  {r['radiusgw_us']:>11.2f}  {r['pyrad_us']:>8.2f}"
            f"  {r['speedup']:>13.1f}x"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
