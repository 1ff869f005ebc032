"""The one output convention of every sans-I/O machine in the tree (aioquic's ``QuicConnection``).

A machine knows no socket, no clock and no log. The edge (``radiusgw.server.datagrams``) or a
test calls, always passing the time:

- ``receive_datagram(data, source, now)``: a datagram arrived from ``source``;
- ``datagrams_to_send(now)``: the ``(data, destination)`` pairs to put on the wire, in order;
- ``get_timer()``: when ``handle_timer`` is next due (possibly past), or None;
- ``handle_timer(now)``: retransmit, give up, probe: whatever is due at ``now``;
- ``next_event()``: what happened, one event at a time, oldest first; None when there is none.

The machine's own calls (``forward``, ``request``, ``start``, ``stop`` ...) likewise return no
datagrams: their output is collected the same way. After any call the edge sends what
``datagrams_to_send`` gives, handles the events and re-arms its one timer at ``get_timer``.

Addresses are what the socket module uses, ``(host, port)``. A machine that spreads its requests
over several source sockets (the proxy's upstream client: 256 Identifiers per socket and
destination, RFC 2865 §3) names the socket in both directions: ``(index, (host, port))``.
"""

from __future__ import annotations

from typing import Any, Protocol

Datagram = tuple[bytes, Any]  # (data, destination)


class Machine(Protocol):
    def receive_datagram(self, data: bytes, source: Any, now: float) -> None: ...

    def datagrams_to_send(self, now: float) -> list[Datagram]: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def next_event(self) -> Any: ...
