"""The plain records the engine, the server and the CLI share with a store (any backend).

Values only: no database driver, no I/O. The engine builds ``AccountingRecord`` and
``AdmissionRequest``, reads ``Account`` through its cache and ``AdmissionResult`` back; the
server and the CLI read sessions, usage, LNS health, upstream status, the proxy spool and the
quarantine as the rows here. A backend (``radiusgw.store.backend``) takes and gives these and
nothing of its own, so that importing the engine imports no database module (issue 15).

Passwords are kept encrypted by every store; ``Account.password`` is the clear text because CHAP
(RFC 2865 §5.3) needs it to recompute the digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # radiusgw.accounting imports this module's types only for checking too
    from radiusgw.accounting import AccountingEvent


@dataclass(frozen=True, slots=True)
class Account:
    realm: str  # lower case
    username: str  # as given; looked up case-sensitively
    password: str
    enabled: bool = True
    framed_ip: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    class_: bytes | None = None
    # Issue 17: the Calling-Station-Id values allowed (none: any), the reply attributes by
    # name as (name, value) text, and until when (unix time) the account is locked out.
    calling_station_ids: tuple[str, ...] = ()
    reply: tuple[tuple[str, str], ...] = ()
    locked_until: float | None = None


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One row to add: a CSV line of ``account import`` or the flags of ``account add``."""

    username: str
    password: str
    framed_ip: str | None = None
    session_timeout: int | None = None
    idle_timeout: int | None = None
    class_: bytes | None = None
    line: int | None = None  # where it came from (the CSV line), named in error messages
    calling_station_ids: tuple[str, ...] = ()  # --calling-station-id, the CSV column
    reply: tuple[tuple[str, str], ...] = ()  # --reply NAME=VALUE, the CSV column


@dataclass(frozen=True, slots=True)
class FailedLogin:
    """A wrong password for an account of a realm with ``lockout_after`` (issue 17.4): the
    store counts it and decides the lock (``Backend.record_failures``)."""

    realm: str
    username: str
    at: float  # unix time of the reject
    lockout_after: int
    lockout_window: float
    lockout_time: float


@dataclass(frozen=True, slots=True)
class Lockout:
    """An account the store locked out just now, for ``locked_until`` (unix time)."""

    realm: str
    username: str
    locked_until: float


@dataclass(frozen=True, slots=True)
class Change:
    """An account that changed; ``username`` None means every account of ``realm``."""

    seq: int
    realm: str
    username: str | None


@dataclass(slots=True)  # not frozen: built per request on the event loop; read-only
class AccountingRecord:
    """One accounting request as received (RFC 2866), kept whole so nothing is lost."""

    received: float  # unix time
    nas_address: str
    realm: str | None
    username: str | None
    status_type: int | None  # Acct-Status-Type
    session_id: str | None  # Acct-Session-Id
    packet: bytes  # the datagram as received
    # The request as the session rules read it (``radiusgw.accounting.parse``), when the engine
    # parsed it on receipt; None: the writer decodes ``packet`` itself if its type needs it.
    event: AccountingEvent | None = None


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One accounting request of a proxy realm held for its upstream (store-and-forward).

    ``packet`` is the NAS's datagram as received; ``received`` its unix time, from which the
    replay's Acct-Delay-Time grows (RFC 2866 §5.2). ``id`` orders the spool: replay goes by it.
    """

    id: int
    realm: str
    packet: bytes
    nas_address: str
    received: float


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One record kept aside: the request as received and why the store refused it."""

    id: int
    quarantined: float  # unix time it was put aside
    received: float
    nas_address: str
    realm: str | None
    username: str | None
    status_type: int | None
    session_id: str | None
    packet: bytes  # the datagram as received
    reason: str
    journal: str | None  # the journal it was replayed or applied from


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """A session about to be accepted; a limit of None is not checked."""

    realm: str
    username: str  # without the realm, as ``radiusgw.accounting.local_part`` gives it
    lns: str | None = None
    realm_max: int | None = None  # Realm.max_sessions
    account_max: int | None = None  # Realm.max_sessions_per_account (Simultaneous-Use)
    lns_max: int | None = None  # Lns.max_sessions
    reservation_ttl: float = 60.0  # seconds for the NAS to send the Start


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    """Admitted, or refused with ``reason`` (for Reply-Message) naming the limit reached."""

    admitted: bool
    reason: str | None = None
    reservation_id: int | None = None
    lns_full: bool = False  # refused only because the LNS is full: another LNS may do


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session; ``stop`` and ``closed_by`` ('stop', 'nas-restart', 'stale') None while live.

    The rules that make it are ``radiusgw.sessions``.
    """

    id: int
    realm: str
    username: str  # without the realm
    acct_session_id: str
    nas_address: str
    nas_ip_address: str | None
    nas_identifier: str | None
    lns: str | None
    framed_ip: str | None
    start: float
    last_update: float
    stop: float | None
    input_octets: int  # Gigawords × 2^32 + Acct-Input-Octets: the whole count
    output_octets: int
    session_time: int | None  # the largest Acct-Session-Time reported; None: none was
    interim_interval: int | None
    terminate_cause: int | None
    closed_by: str | None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Sessions, time and octets of one realm in one month (``radiusgw.sessions``' usage rule)."""

    realm: str
    month: str  # YYYY-MM
    sessions: int
    session_time_seconds: int
    input_octets: int
    output_octets: int


@dataclass(frozen=True, slots=True)
class LnsState:
    """One LNS's health as the probes last saw it (``radiusgw lns status``)."""

    realm: str
    index: int
    address: str
    port: int
    status: str  # radiusgw.modes.vpdn.Health values
    detail: str
    checked_at: float
    changed_at: float


@dataclass(frozen=True, slots=True)
class UpstreamRow:
    """One realm's upstream server port as one worker sees it (``radiusgw proxy status``)."""

    worker: int
    realm: str
    address: str
    port: int
    kind: str
    state: str
    since: float  # unix time
    outstanding: int
    sent: int
    answered: int
    unanswered: int
    updated: float
    node: str | None = None  # whose worker, in a fleet's shared database; None: one node's file


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One gateway node's last heartbeat (``radiusgw fleet status``; issue 15.7)."""

    name: str  # --node
    version: str  # the radiusgw it runs
    started: float  # unix time
    last_seen: float  # unix time of this heartbeat
    journal_backlog: int  # accounting records acknowledged (journalled), not yet applied
    last_applied: float | None  # unix time its applier last wrote to the store; None: never


class AuthLogRow(NamedTuple):
    """One Access-Request's outcome in the authentication log (``radiusgw authlog``; issue 18.3).

    A named tuple, not a dataclass: the stores bind it as it is. The writer process makes the
    plain ``AuthLogValues`` instead; the readers give this."""

    time: float  # unix time of the answer
    node: str  # --node of the gateway that answered
    worker: int
    nas: str  # the NAS's source address
    realm: str | None  # None: no realm could be read from User-Name
    username: str  # User-Name as sent ("" when there was none)
    method: str  # "pap", "chap", "mschap", "mschapv2", "eap", "none"
    result: str  # "accept", "reject" or "challenge"
    reason: str  # a reject's Reply-Message; "" for an accept
    framed_ip: str | None  # Framed-IP-Address of an accept
    lns: str | None  # the LNS offered first (VPDN)
    upstream: str | None  # the customer server that answered (proxy), "address:port"


# The values the engine records per answer for the authentication log
# (``radiusgw.authlog_records``), and the flat list of them per answer that the records are
# read back into, in this order: time (None: the worker's hand-off time), NAS address,
# User-Name, method, result, reason, the Framed-IP-Address's four octets, LNS address, upstream
# (host, port; kept as its text). The Framed-IP stays raw: the readers make its text
# (``radiusgw.store.authlog.rows_of``), not the answer's path.
AUTH_LOG_FIELDS = 9


# One realm's records of a hand-off as the worker takes them (``radiusgw.authlog_records``) and
# a chunk keeps them: the least and greatest time among them, how many answers, and the
# records' octets. A plain tuple: marshal takes no named tuple.
PackedEntries = tuple[float, float, int, bytes]


class AuthLogBatch(NamedTuple):
    """One worker's hand-off to the authentication log, as the writer process gives it to the
    store: per realm (lower case, as routed; None: no realm could be read), its answers'
    values, packed. ``radiusgw.store.authlog.batches_of`` lowers the realms of rows it is given."""

    node: str
    worker: int
    taken: float  # when the worker took them: the time of the answers recorded without one
    entries: dict[str | None, PackedEntries]


# An ``AuthLogRow``'s values as a plain tuple, in its order: what ``rows_of`` makes for the
# PostgreSQL backend's COPY. A named tuple is built by a Python-level ``__new__`` (about 1 us);
# a tuple literal in compiled code costs a tenth of that, and there is one per answer.
AuthLogValues = tuple[
    float, str, int, str, str | None, str, str, str, str, str | None, str | None, str | None
]
