"""Proxy mode (第1条 プロキシ): the gateway as a RADIUS client of the customer's own servers.

Sans-I/O, like the rest of the core: bytes, values and ``now`` in; datagrams and decisions out.

- ``rewrite``: a NAS request into an upstream request and the upstream answer into a NAS reply
  (secrets, authenticators, Proxy-State, salt-encrypted attributes);
- ``upstream`` and ``pool``: each server's health (alive, suspect, dead; RFC 5997 probes) and
  which server takes the next request (``failover`` or ``load-balance``);
- ``client``: ``UpstreamClient``, retransmission, failover, duplicate suppression: the proxy's
  job on the shared RADIUS client core (``radiusgw.client``); ``events`` what it completes;
- ``spool``: ``Spooler``, the store-and-forward policy for accounting.
"""

from __future__ import annotations

from radiusgw.proxy.client import ProxyCounters, UpstreamClient
from radiusgw.proxy.events import Completed, Failure
from radiusgw.proxy.pool import Pool
from radiusgw.proxy.rewrite import RewriteError, nas_reply, upstream_request
from radiusgw.proxy.spool import Fetch, Replay, Route, Spooler
from radiusgw.proxy.upstream import Kind, ServerState, StateChange, UpstreamStatus

__all__ = [
    "Completed",
    "Failure",
    "Fetch",
    "Kind",
    "Pool",
    "ProxyCounters",
    "Replay",
    "RewriteError",
    "Route",
    "ServerState",
    "Spooler",
    "StateChange",
    "UpstreamClient",
    "UpstreamStatus",
    "nas_reply",
    "upstream_request",
]
