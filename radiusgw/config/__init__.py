"""Realm files -> one immutable ``Registry``, with the service terms' rules enforced.

- ``model``: the frozen objects the rest of the gateway reads;
- ``fields``: a typed TOML-table reader that records problems instead of raising;
- ``loader``: the file schema (docs/operations.md, "Realm files") and ``load_registry``;
- ``realm``: one ``[[realm]]`` table, its mode's keys, servers and LNS;
- ``rules``: the terms' rules (第5条, 第6条 ...) across contracts and files.

``load_registry(directory)`` returns a ``Registry`` or raises ``ConfigError`` listing every
problem, one line each naming the file and the key; ``check_directory`` returns those lines.
"""

from radiusgw.config.loader import check_directory, load_registry
from radiusgw.config.model import (
    Balance,
    Carrier,
    CarrierType,
    Client,
    Contract,
    Lns,
    Mode,
    Nas,
    PoolPolicy,
    Realm,
    Registry,
    UpstreamServer,
)

__all__ = [
    "Balance",
    "Carrier",
    "CarrierType",
    "Client",
    "Contract",
    "Lns",
    "Mode",
    "Nas",
    "PoolPolicy",
    "Realm",
    "Registry",
    "UpstreamServer",
    "check_directory",
    "load_registry",
]
