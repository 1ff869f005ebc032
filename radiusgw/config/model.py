"""Frozen objects built from the realm files: what the rest of the gateway reads.

Nothing here parses or validates; ``radiusgw.config.loader`` builds these and
``radiusgw.config.rules`` checks the service terms' rules over them. A ``Registry`` is
immutable: a SIGHUP reload builds a new one and swaps the reference.

Addresses are kept as the normalised text ``str(ipaddress.ip_address(x))`` so that the hot path
can look a datagram's source (``addr[0]`` from the socket) up in a plain dict.

Compiled with mypyc (the Makefile's ``COMPILED``): the engine reads these on every request, and
an attribute of an interpreted object is a generic look-up (a type's MRO, then a slot's
descriptor), one of a compiled class a field of a C struct. The compiled engine answering 2,000
cached PAP users in a loop went from 7.04-7.17 to 6.15-6.35 us a request. Compiled, their
pickling goes through the constructor (``_reduce``, registered with ``copyreg``): the realm set
crosses the supervisor's pipe to the workers pickled (``radiusgw.server.realm_set``), and the
``__setstate__`` mypyc generates assigns each field through the frozen ``__setattr__``, which
refuses (``FrozenInstanceError``).
"""

from __future__ import annotations

import copyreg
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from radiusgw.radius.reply import Encoded


class Mode(StrEnum):
    GROUP = "group"
    PROXY = "proxy"
    VPDN = "vpdn"


class CarrierType(StrEnum):
    """第2条: the three carrier networks whose LACs send VPDN requests."""

    DOCOMO = "D"
    KDDI = "K"
    SOFTBANK = "E"


class PoolPolicy(StrEnum):
    FAILOVER = "failover"
    LOAD_BALANCE = "load-balance"


class Balance(StrEnum):
    """第8条 負荷分散オプション: how a VPDN realm spreads sessions over its LNS."""

    NONE = "none"
    LAC = "lac"
    ROUND_ROBIN = "round-robin"
    WEIGHTED = "weighted"
    LEAST_SESSIONS = "least-sessions"


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """One of the customer's RADIUS servers behind a proxy realm (第5条3(5))."""

    address: str
    secret: bytes
    auth_port: int = 1812
    acct_port: int = 1813
    # Timers (seconds). Defaults fail over well inside a NAS's 3-5 s retry window.
    response_window: float = 1.0
    retries: int = 2
    revive_interval: float = 5.0
    status_check: str = "status-server"  # "status-server" | "request" | "none"
    # BlastRADIUS: an Access-Accept/Reject/Challenge from this server without a
    # Message-Authenticator (RFC 3579 §3.2) is dropped as a forged one would be.
    require_message_authenticator: bool = True


@dataclass(frozen=True, slots=True)
class Lns:
    """One of the customer's L2TP network servers behind a VPDN realm (第5条3(3))."""

    address: str
    secret: bytes
    port: int = 1701
    preference: int = 1
    weight: int = 1
    max_sessions: int | None = None
    client_auth_id: str | None = None
    server_auth_id: str | None = None
    assignment_id: str | None = None

    def __hash__(self) -> int:
        # A VPDN answer looks its encoded tunnel attributes up by LNS; the generated hash
        # hashed all nine fields on every look-up. Equal objects still hash equal.
        return hash((self.address, self.port, self.secret))


@dataclass(frozen=True, slots=True)
class Realm:
    name: str  # lower case; matched against the text after the last '@'
    mode: Mode
    contract_id: str
    source: str  # the file it came from, for messages
    max_accounts: int | None = None
    max_sessions: int | None = None
    max_sessions_per_account: int | None = None
    traffic_quota: int | None = None  # octets per calendar month
    # A session limit's admission when the store cannot decide it (down, or past the
    # deadline): "admit" answers the accept unchecked, "reject" refuses (issue 15.6).
    on_store_down: str = "admit"
    # group (and vpdn with authenticate): account protection and reply attributes (issue 17)
    lockout_after: int | None = None  # failed logins within lockout_window that lock; None: off
    lockout_window: float = 300.0  # seconds a count of failures runs from its first failure
    lockout_time: float = 900.0  # seconds an account stays locked
    reply: tuple[Encoded, ...] = ()  # [realm.reply], encoded at load; an account's win by name
    # proxy
    strip: bool = True
    pool: PoolPolicy = PoolPolicy.FAILOVER
    servers: tuple[UpstreamServer, ...] = ()
    on_upstream_down: str = "drop"  # "drop" | "reject"
    # vpdn
    carrier: CarrierType | None = None
    balance: Balance = Balance.NONE
    authenticate: bool = False
    probe_interval: float = 10.0
    on_all_down: str = "answer"  # "answer" (fail open) | "reject"
    lns: tuple[Lns, ...] = ()


@dataclass(frozen=True, slots=True)
class Client:
    """クライアント: one registered terminal = one IP address (第5条2), owned by a contract."""

    address: str
    secret: bytes
    contract_id: str
    source: str
    require_message_authenticator: bool = True
    rate_limit: int | None = None
    coa_port: int | None = None


@dataclass(frozen=True, slots=True)
class Carrier:
    """A carrier's access server (LAC), registered by the operator (第2条)."""

    type: CarrierType
    address: str
    secret: bytes
    source: str
    require_message_authenticator: bool = True
    rate_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    name: str
    source: str
    ends: dt.date | None = None
    clients: tuple[Client, ...] = ()
    realms: tuple[Realm, ...] = ()

    def active_on(self, day: dt.date) -> bool:
        """第9条: after its end date a contract's realms are answered with Access-Reject."""
        return self.ends is None or day <= self.ends


@dataclass(frozen=True, slots=True)
class Nas:
    """Whoever may send us requests, as the hot path needs it: one dict lookup per datagram.

    Exactly one of ``contract_id`` (a customer's client) and ``carrier`` (a carrier LAC) is set.
    """

    address: str
    secret: bytes
    require_message_authenticator: bool
    rate_limit: int | None
    contract_id: str | None = None
    carrier: CarrierType | None = None
    coa_port: int | None = None


@dataclass(frozen=True)
class Registry:
    """Everything the realm files say, indexed for the hot path."""

    contracts: Mapping[str, Contract] = field(default_factory=dict)
    realms: Mapping[str, Realm] = field(default_factory=dict)  # key: lower-case name
    carriers: tuple[Carrier, ...] = ()
    nas: Mapping[str, Nas] = field(default_factory=dict)  # key: normalised address
    files: tuple[str, ...] = ()


def _reduce(obj: Any) -> tuple[Any, tuple[object, ...]]:
    """How pickle rebuilds one of the classes above: their constructor, given every field."""
    return type(obj), tuple(getattr(obj, f.name) for f in fields(obj))


for _frozen in (UpstreamServer, Lns, Realm, Client, Carrier, Contract, Nas, Registry):
    copyreg.pickle(_frozen, _reduce)
