"""NAS requests and upstream answers built by hand, and the client driven as the edge does, for
the sans-I/O proxy tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from radiusgw.client.core import AnswerDropped
from radiusgw.config.model import Mode, PoolPolicy, Realm, UpstreamServer
from radiusgw.proxy.client import UpstreamClient
from radiusgw.proxy.events import Completed
from radiusgw.proxy.upstream import StateChange
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import Packet, decode, encode_attributes, integer

NAS = ("198.51.100.9", 40000)
NAS_SECRET = b"nas-secret"
A = UpstreamServer("203.0.113.20", b"secret-a")
B = UpstreamServer("203.0.113.21", b"secret-b")
C = UpstreamServer("203.0.113.22", b"secret-c")

Attrs = Sequence[tuple[int, bytes]]
Ctx = TypeVar("Ctx")


def realm(
    *servers: UpstreamServer,
    pool: PoolPolicy = PoolPolicy.FAILOVER,
    strip: bool = True,
    name: str = "globex.example",
) -> Realm:
    return Realm(name, Mode.PROXY, "globex", "globex.toml", strip=strip, pool=pool, servers=servers)


def access_request(
    *,
    identifier: int = 7,
    user: bytes = b"alice@globex.example",
    password: bytes | None = b"correct horse",
    extra: Attrs = (),
    message_authenticator: bool = True,
) -> Packet:
    """An Access-Request as a NAS signs it with ``NAS_SECRET``."""
    authenticator = os.urandom(16)
    attrs: list[tuple[int, bytes]] = [(Attr.USER_NAME, user)]
    if password is not None:
        hidden = crypto.hide_password(password, NAS_SECRET, authenticator)
        attrs.append((Attr.USER_PASSWORD, hidden))
    attrs.extend(extra)
    raw = crypto.sign_request(
        Code.ACCESS_REQUEST,
        identifier,
        encode_attributes(attrs),
        NAS_SECRET,
        authenticator=authenticator,
        message_authenticator=message_authenticator,
    )
    return decode(raw)


def accounting_request(
    *, identifier: int = 9, session: bytes = b"s-1", status: int = 1, extra: Attrs = ()
) -> Packet:
    attrs: list[tuple[int, bytes]] = [
        (Attr.USER_NAME, b"alice@globex.example"),
        (Attr.ACCT_STATUS_TYPE, integer(status)),
        (Attr.ACCT_SESSION_ID, session),
        *extra,
    ]
    raw = crypto.sign_request(
        Code.ACCOUNTING_REQUEST,
        identifier,
        encode_attributes(attrs),
        NAS_SECRET,
        message_authenticator=False,
    )
    return decode(raw)


def answer(
    datagram: bytes,
    secret: bytes,
    code: int = Code.ACCESS_ACCEPT,
    attrs: Attrs = (),
    *,
    message_authenticator: bool | None = None,
) -> bytes:
    """What a correct upstream server answers: Proxy-State echoed in order (RFC 2865 §5.33)."""
    request = decode(datagram)
    echoed = [(int(Attr.PROXY_STATE), v) for v in request.get_all(Attr.PROXY_STATE)]
    if message_authenticator is None:
        message_authenticator = code != Code.ACCOUNTING_RESPONSE
    return crypto.sign_response(
        code,
        request.identifier,
        request.authenticator,
        encode_attributes([*attrs, *echoed]),
        secret,
        message_authenticator=message_authenticator,
    )


def tunnel_password(plain: bytes, secret: bytes, authenticator: bytes, tag: int = 1) -> bytes:
    salt = crypto.SaltSource().next()
    return bytes((tag,)) + crypto.salt_encrypt(plain, secret, authenticator, salt)


def ms_key(sub_type: int, key: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """A Microsoft VSA (RFC 2548) with one salt-encrypted MS-MPPE key."""
    body = crypto.salt_encrypt(key, secret, authenticator, crypto.SaltSource().next())
    return (311).to_bytes(4, "big") + bytes((sub_type, len(body) + 2)) + body


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One datagram the client gave, as the tests read it."""

    socket: int
    address: tuple[str, int]
    datagram: bytes


class Driven(Generic[Ctx]):
    """An ``UpstreamClient`` driven as the edge drives it (``radiusgw.machine``), with each
    call's output gathered: the datagrams it gave, and the requests it completed. The other
    events wait for ``pop_events`` (strays and garbage, which the edge only counts, left out).
    Everything else is the client's own."""

    def __init__(self, sockets: int = 1) -> None:
        self.client: UpstreamClient[Ctx] = UpstreamClient(sockets)
        self._events: list[StateChange | AnswerDropped] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def forward(self, *args: Any, **kwargs: Any) -> list[Outgoing]:
        self.client.forward(*args, **kwargs)
        self._gather()
        return self._sent()

    def receive(
        self, socket: int, datagram: bytes, source: tuple[Any, ...], now: float
    ) -> list[Completed[Ctx]]:
        where = source if self.client.sockets == 1 else (socket, source)
        self.client.receive_datagram(datagram, where, now)
        return self._gather()

    def handle_timer(self, now: float) -> tuple[list[Outgoing], list[Completed[Ctx]]]:
        self.client.handle_timer(now)
        done = self._gather()
        return self._sent(), done

    def next_timer(self) -> float | None:
        return self.client.get_timer()

    def pop_events(self) -> list[StateChange | AnswerDropped]:
        events, self._events = self._events, []
        return events

    def _sent(self) -> list[Outgoing]:
        out = []
        for data, destination in self.client.datagrams_to_send(0.0):
            socket, address = (0, destination) if self.client.sockets == 1 else destination
            out.append(Outgoing(socket, address, data))
        return out

    def _gather(self) -> list[Completed[Ctx]]:
        done = []
        while (event := self.client.next_event()) is not None:
            if isinstance(event, Completed):
                done.append(event)
            elif not isinstance(event, AnswerDropped) or event.matched:
                self._events.append(event)
        return done
