"""The gateway's request handling, sans-I/O: a datagram and ``now`` in, the answer out.

``Engine`` owns everything a worker decides with: the registry of realm files (swapped whole on
reload), the router, the account cache, the duplicate cache and the counters. The asyncio edge
(``radiusgw.server``) only moves datagrams and runs the durable accounting writes.
"""

from radiusgw.engine.core import (
    AccountingAnswer,
    AccountLookup,
    Admission,
    Deferred,
    Engine,
    ProxyAccounting,
    ProxyAuth,
)

__all__ = [
    "AccountLookup",
    "AccountingAnswer",
    "Admission",
    "Deferred",
    "Engine",
    "ProxyAccounting",
    "ProxyAuth",
]
