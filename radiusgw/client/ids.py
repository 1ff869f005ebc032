"""RADIUS Identifiers of the gateway's upstream client, and what waits on each.

RFC 2865 §3: the Identifier is one octet, so one source (address, port) can have 256 requests
outstanding towards one destination. The gateway has several source sockets (the edge opens them;
they are known here by index), which gives 256 per socket and destination; the sockets are taken
in turn. A freed Identifier goes to the back of its queue, so it is reused as late as possible: a
late answer to the old request then meets a new Request Authenticator and fails to verify,
instead of being taken for the new request's answer.

An answer is matched by the socket it came in on, its source (address, port) and its Identifier
(RFC 5080 §2.2.1 keys requests the same way).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, Generic, TypeVar

from radiusgw.addresses import unmapped

T = TypeVar("T")
Destination = tuple[str, int]

IDENTIFIERS: Final = 256  # RFC 2865 §3: one octet


def show_destination(address: Destination) -> str:
    """``host:port`` for logs and operators; an IPv6 host in brackets (RFC 3986 §3.2.2)."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Identifiers(Generic[T]):
    __slots__ = ("_free", "_next_socket", "_waiting", "sockets")

    def __init__(self, sockets: int) -> None:
        if sockets < 1:
            raise ValueError("the upstream client needs at least one socket")
        self.sockets = sockets
        self._free: dict[tuple[int, Destination], deque[int]] = {}
        self._waiting: dict[tuple[int, str, int, int], T] = {}
        self._next_socket = 0

    def take(self, address: Destination, item: T) -> tuple[int, int] | None:
        """A free (socket, Identifier) towards ``address``, now held by ``item``; None if all
        ``256 x sockets`` are in use."""
        sockets = self.sockets
        start = self._next_socket
        for offset in range(sockets):
            socket = (start + offset) % sockets
            free = self._free.get((socket, address))
            if free is None:
                free = self._free[(socket, address)] = deque(range(IDENTIFIERS))
            if free:
                identifier = free.popleft()
                self._next_socket = (socket + 1) % sockets
                self._waiting[(socket, address[0], address[1], identifier)] = item
                return socket, identifier
        return None

    def give_back(self, socket: int, address: Destination, identifier: int) -> None:
        """The try is over (answered, given up): its Identifier is free again."""
        del self._waiting[(socket, address[0], address[1], identifier)]
        self._free[(socket, address)].append(identifier)

    def find(self, socket: int, source: tuple[Any, ...], identifier: int) -> T | None:
        """What waits for an answer from ``source`` (as the socket reports it) on ``socket``."""
        host = unmapped(str(source[0]))
        return self._waiting.get((socket, host, source[1], identifier))

    def __len__(self) -> int:
        return len(self._waiting)
