"""A NAS made of raw datagrams, for tests that need a chosen source address or many requests."""

from __future__ import annotations

import os
import socket

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import Packet, decode, encode_attributes


def send_raw(
    port: int, data: bytes, *, source: str = "127.0.0.1", timeout: float = 1.0
) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(4096)
        except TimeoutError:
            return None


def pap(
    user: str,
    password: bytes,
    secret: bytes,
    *,
    ma: bool = True,
    ident: int = 1,
    authenticator: bytes | None = None,
) -> bytes:
    auth = os.urandom(16) if authenticator is None else authenticator
    attrs = encode_attributes(
        [(1, user.encode()), (2, crypto.hide_password(password, secret, auth))]
    )
    return crypto.sign_request(
        Code.ACCESS_REQUEST, ident, attrs, secret, authenticator=auth, message_authenticator=ma
    )


def accounting(
    user: str,
    secret: bytes,
    status: AcctStatusType,
    session_id: str,
    *,
    ident: int = 1,
    octets: tuple[int, int] = (0, 0),
    nas_ip: str | None = None,
) -> bytes:
    attrs = [
        (Attr.ACCT_STATUS_TYPE, int(status).to_bytes(4, "big")),
        (Attr.ACCT_SESSION_ID, session_id.encode()),
        (Attr.ACCT_INPUT_OCTETS, (octets[0] % 2**32).to_bytes(4, "big")),
        (Attr.ACCT_OUTPUT_OCTETS, (octets[1] % 2**32).to_bytes(4, "big")),
        (Attr.ACCT_INPUT_GIGAWORDS, (octets[0] >> 32).to_bytes(4, "big")),
        (Attr.ACCT_OUTPUT_GIGAWORDS, (octets[1] >> 32).to_bytes(4, "big")),
    ]
    if user:
        attrs.insert(0, (Attr.USER_NAME, user.encode()))
    if nas_ip is not None:
        attrs.append((Attr.NAS_IP_ADDRESS, socket.inet_aton(nas_ip)))
    return crypto.sign_request(
        Code.ACCOUNTING_REQUEST,
        ident,
        encode_attributes(attrs),
        secret,
        message_authenticator=False,
    )


class AccountingLoad:
    """Accounting records sent in bursts from one non-blocking socket, and which of them the
    gateway acknowledged. Identifiers wrap under load, so the Response Authenticator tells
    which request an answer is for."""

    def __init__(
        self,
        sock: socket.socket,
        port: int,
        user: str,
        secret: bytes,
        status: AcctStatusType,
        prefix: str,
    ) -> None:
        self._sock, self._port, self._user, self._secret = sock, port, user, secret
        self._status, self._prefix = status, prefix
        self.sent = 0
        self.acknowledged: set[str] = set()
        self._pending: dict[int, list[tuple[str, bytes]]] = {}  # Identifier -> (session, auth)

    def burst(self, size: int) -> None:
        for _ in range(size):
            n = self.sent
            session = f"{self._prefix}-{n}"
            request = accounting(self._user, self._secret, self._status, session, ident=n % 256)
            self._pending.setdefault(n % 256, []).append((session, request[4:20]))
            self._sock.sendto(request, ("127.0.0.1", self._port))
            self.sent += 1

    def collect(self) -> None:
        """Take every answer waiting on the socket."""
        try:
            while True:
                raw = self._sock.recv(4096)
                for session, request_auth in self._pending.get(raw[1], []):
                    if crypto.response_authenticator_matches(raw, self._secret, request_auth):
                        self.acknowledged.add(session)
        except (BlockingIOError, TimeoutError):
            pass


def answer(
    port: int, request: bytes, secret: bytes, *, source: str = "127.0.0.1", timeout: float = 2.0
) -> Packet | None:
    """Send and return the verified answer, or None when none came."""
    raw = send_raw(port, request, source=source, timeout=timeout)
    if raw is None:
        return None
    assert crypto.response_authenticator_matches(raw, secret, request[4:20])
    return decode(raw)
