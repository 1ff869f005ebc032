"""Engine: one worker's request handling, from datagram to answer, without I/O.

Order of checks for every datagram, cheapest first, so that garbage costs little:
1. the source address must be a registered NAS (client or carrier LAC), else drop (第1条);
2. a retransmission (RFC 5080 §2.2.2) gets the cached answer, with no further work;
3. the header must be valid (RFC 2865 §3) and the code one this port serves;
4. the request must authenticate before its attributes are decoded: the Message-Authenticator
   (RFC 3579 §3.2) when present, and required when the NAS's registration says so (BlastRADIUS)
   and in Status-Server (RFC 5997 §3); the accounting Request Authenticator (RFC 2866 §3). A
   forged packet costs an HMAC and at most a walk over attribute headers, not a decode;
5. then the attributes are decoded, routed, decided, and the answer signed.
Failures are dropped silently and counted; their log lines are bounded per worker
(``radiusgw.engine.droplog``). Nothing raises out of the engine: a failing store drops the
request (the NAS retries, or fails over to its other server), an answer that cannot fit in
4,096 octets is not sent.

Every Access-Accept/Reject carries a Message-Authenticator; every reject a Reply-Message; every
answer the request's Proxy-State attributes in order (RFC 2865 §5.33).

The engine knows no transport. A request comes with an opaque peer (``addr``): its first item
names the client in the registry (the source address for UDP; a TLS client would be registered
by its certificate's identity the same way) and the whole peer keys duplicates and says where
the answer goes. UDP feeds each port's entry (``on_auth``, ``on_acct``: RFC 2865 §3 and RFC 2866
§3 give each port its codes, and a Status-Server's answer depends on the port, RFC 5997 §3); a
stream that carries both (RADIUS over TLS, RFC 6614 §2.3) feeds ``on_stream``, which dispatches
by packet code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from radiusgw.accounting import EVENT_TYPES, parse
from radiusgw.addresses import unmapped
from radiusgw.auth.method import UNKNOWN_OR_WRONG, Outcome
from radiusgw.authlog_records import AuthLog
from radiusgw.client.ids import Destination, show_destination
from radiusgw.config.model import Lns, Mode, Nas, Realm, Registry
from radiusgw.domain import AccountingRecord, AdmissionRequest, AdmissionResult, FailedLogin
from radiusgw.engine.cache import MISS, AccountCache, CachedAccount, framed_ip_of
from radiusgw.engine.counters import ACCEPT, CHALLENGE, NO_ANSWER, Counters, Latency, Tally
from radiusgw.engine.dedup import PENDING, DuplicateCache, Key
from radiusgw.engine.droplog import STORE_ERROR_INTERVAL, DropLog, Recent
from radiusgw.errors import StoreError
from radiusgw.modes import group, vpdn
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import (
    HEADER_LENGTH,
    DecodeError,
    Packet,
    decode,
    frame,
)
from radiusgw.refusal import Refusal
from radiusgw.router import Router, realm_name

# Wire numbers bound once: no enum or dictionary look-up per packet.
_ACCESS_REQUEST: Final = int(Code.ACCESS_REQUEST)
_ACCESS_ACCEPT: Final = int(Code.ACCESS_ACCEPT)
_ACCESS_REJECT: Final = int(Code.ACCESS_REJECT)
_ACCOUNTING_REQUEST: Final = int(Code.ACCOUNTING_REQUEST)
_ACCOUNTING_RESPONSE: Final = int(Code.ACCOUNTING_RESPONSE)
_STATUS_SERVER: Final = int(Code.STATUS_SERVER)
_USER_NAME: Final = int(Attr.USER_NAME)
_PROXY_STATE: Final = int(Attr.PROXY_STATE)
_REPLY_MESSAGE: Final = int(Attr.REPLY_MESSAGE)
_ACCT_STATUS_TYPE: Final = int(Attr.ACCT_STATUS_TYPE)
_ACCT_SESSION_ID: Final = int(Attr.ACCT_SESSION_ID)
_CALLING_STATION_ID: Final = int(Attr.CALLING_STATION_ID)
_ACCEPT: Final = Outcome.ACCEPT
_BAD_CREDENTIALS: Final = Outcome.BAD_CREDENTIALS

# The engine's own refusals (``radiusgw.refusal``), built once.
NO_USER_NAME: Final = Refusal("no User-Name")
QUOTA_REACHED: Final = Refusal("monthly traffic quota reached")  # 第14条2
SESSION_LIMIT: Final = Refusal("session limit reached")  # when the store gave no words of its own
STORE_DOWN: Final = Refusal(
    "session limit cannot be checked"
)  # on_store_down = "reject" (issue 15.6)
UPSTREAM_DOWN: Final = Refusal(
    "customer RADIUS servers unavailable"
)  # proxy: on_upstream_down = "reject"
# Account protection (issue 17.4): what the NAS is told.
LOCKED: Final = Refusal("account locked")
NO_CALLING_STATION: Final = Refusal("no Calling-Station-Id")
CALLING_STATION_REFUSED: Final = Refusal("calling station not allowed")
UPSTREAM_REJECTED: Final = (
    "rejected by the customer's server"  # logged; the NAS gets its own answer
)
UNKNOWN_CLIENT_LOG_INTERVAL: Final = 60.0  # log an unregistered source at most once a minute
_UNKNOWN_CLIENT_MEMORY: Final = 10_000  # bound on remembered sources under a spoofed flood


def _proxy_states(states: list[bytes] | tuple[bytes, ...]) -> bytes:
    return b"".join(bytes((_PROXY_STATE, len(v) + 2)) + v for v in states)


def _accounting_response(packet: Packet, proxy_states: list[bytes], secret: bytes) -> bytes:
    """An Accounting-Response (RFC 2866 §4.2): no attributes but the request's Proxy-State."""
    reply = crypto.sign_response(
        _ACCOUNTING_RESPONSE,
        packet.identifier,
        packet.authenticator,
        _proxy_states(proxy_states) if proxy_states else b"",
        secret,
        message_authenticator=False,
    )
    # It always fits: its request (at most 4,096 octets) carried the same Proxy-State and more.
    assert reply is not None
    return reply


def _reply_message(reason: str) -> bytes:
    value = reason.encode("utf-8")[:253]  # RFC 2865 §5.18, §5: at most 253 octets
    return bytes((_REPLY_MESSAGE, len(value) + 2)) + value


def _protection(
    account: CachedAccount, first: dict[int, bytes], now: float
) -> tuple[Outcome, Refusal] | None:
    """Why a protected account is refused before its password is checked, or None."""
    if account.locked_until > now:
        return Outcome.LOCKED, LOCKED
    station = first.get(_CALLING_STATION_ID)
    if station is None:  # RFC 2865 §5.31: the caller's number or MAC, as the NAS saw it
        return Outcome.NOT_PERMITTED, NO_CALLING_STATION
    if station.decode("utf-8", "replace").lower() not in account.calling_stations:
        return Outcome.NOT_PERMITTED, CALLING_STATION_REFUSED
    return None


def _proxy_states_of(packet: Packet, first: dict[int, bytes]) -> list[bytes]:
    """Every Proxy-State, in order (RFC 2865 §5.33); no walk when there is none."""
    if _PROXY_STATE not in first:
        return []
    return [v for t, v in packet.attributes if t == _PROXY_STATE]


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet)
@dataclass(init=False, slots=True)  # not frozen: built per request; read-only
class AccountingAnswer:
    """An accounting request to make durable before ``reply`` may be sent (RFC 2866 §2).

    ``proxy`` is set for a proxy realm's record: the journal is then one of its two durable
    writes, and the proxy edge sends the answer (``reply`` is empty)."""

    key: Key
    record: AccountingRecord
    reply: bytes
    address: Any  # where the reply goes
    proxy: ProxyAccounting | None = None

    def __init__(
        self,
        key: Key,
        record: AccountingRecord,
        reply: bytes,
        address: Any,
        proxy: ProxyAccounting | None = None,
    ) -> None:
        self.key = key
        self.record = record
        self.reply = reply
        self.address = address
        self.proxy = proxy


@dataclass(frozen=True, slots=True)
class Admission:
    """An accept that waits for a session slot (第14条2): ``accept`` goes if admitted."""

    key: Key
    address: Any
    request: AdmissionRequest
    accept: bytes
    packet: Packet
    nas: Nas
    proxy_states: tuple[bytes, ...]
    realm: str
    username: str
    excluded: frozenset[str] = frozenset()  # LNS found full at admission: offer the others
    upstream: Destination | None = None  # a proxy realm: the customer server that accepted
    method_reply: bytes = b""  # what the method added (MS-CHAP2-Success ...): kept on a re-offer


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet)
@dataclass(init=False, slots=True)  # not frozen: built per request; read-only
class ProxyAuth:
    """An Access-Request for a proxy realm: the proxy edge forwards it upstream."""

    key: Key
    address: Any
    packet: Packet
    nas: Nas
    realm: Realm
    username: str

    def __init__(
        self,
        key: Key,
        address: Any,
        packet: Packet,
        nas: Nas,
        realm: Realm,
        username: str,
    ) -> None:
        self.key = key
        self.address = address
        self.packet = packet
        self.nas = nas
        self.realm = realm
        self.username = username


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet). Not frozen: the proxy edge keeps the join of its two writes.
@dataclass(init=False, slots=True)
class ProxyAccounting:
    """An Accounting-Request for a proxy realm: forwarded upstream or spooled (never lost), and
    ``record`` journalled for the session table as a group realm's is (第14条2).

    The NAS is answered once both are settled (``radiusgw.server.proxy_edge``): ``waiting``
    counts the parts not yet settled, ``failed`` says one of them failed (then no answer, and
    the NAS retries), ``answer`` is the reply for the NAS once the forward or spool succeeded.
    """

    key: Key
    address: Any
    packet: Packet
    nas: Nas
    realm: Realm
    record: AccountingRecord
    waiting: int = 2
    failed: bool = False
    answer: bytes = b""

    def __init__(
        self,
        key: Key,
        address: Any,
        packet: Packet,
        nas: Nas,
        realm: Realm,
        record: AccountingRecord,
        waiting: int = 2,
        failed: bool = False,
        answer: bytes = b"",
    ) -> None:
        self.key = key
        self.address = address
        self.packet = packet
        self.nas = nas
        self.realm = realm
        self.record = record
        self.waiting = waiting
        self.failed = failed
        self.answer = answer


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet)
@dataclass(init=False, slots=True)  # not frozen: built per request; read-only
class AccountLookup:
    """An Access-Request whose account is not in the cache: the worker's look-up thread reads
    it from the store and hands it to ``Engine.looked_up`` (issue 15.6)."""

    key: Key
    address: Any
    packet: Packet
    nas: Nas
    realm: Realm
    username: str
    local: str  # the user name without "@realm": the account's name
    seq: int  # the cache's change position when the look-up began (``AccountCache.put``)
    proxy_states: list[bytes]

    def __init__(
        self,
        key: Key,
        address: Any,
        packet: Packet,
        nas: Nas,
        realm: Realm,
        username: str,
        local: str,
        seq: int,
        proxy_states: list[bytes],
    ) -> None:
        self.key = key
        self.address = address
        self.packet = packet
        self.nas = nas
        self.realm = realm
        self.username = username
        self.local = local
        self.seq = seq
        self.proxy_states = proxy_states


Deferred = Admission | ProxyAuth | AccountLookup

# The authentication log (issue 18.3): per answer, one record of its final values added to
# ``Engine.auth_log`` (``radiusgw.authlog_records``: their order and why octets). A time of None
# is stamped when the worker takes the records (the deferred answers, decided without a clock).
# The records go as they are to the writer process and from it into the store, one chunk per
# realm (``radiusgw.store.authlog``): nothing is done per answer outside this engine. So the
# engine records final values, each cheap here: the method by the name of the one that checked
# the user, else by a walk over the request's octets that stops at a User-Password
# (``group.method_of``); the Framed-IP as its four octets, the account's as the cache holds
# them (``CachedAccount.framed_ip``), a proxied or deferred answer's read out of it; the
# readers make its text. Each of the two reads cost 80-100 ns an accept, of a group PAP
# answer's 6.6 us in the engine. The NAS is its registered address (``Nas.address``, the
# registry's key), not the source's: the same object for every answer, so that the records'
# cache of encoded values finds it.


def _framed_ip(answer: bytes | None) -> bytes | None:
    """The Framed-IP-Address of an answer the engine signed, as four octets."""
    return None if answer is None else framed_ip_of(answer, HEADER_LENGTH)


class Engine:
    def __init__(
        self,
        registry: Registry,
        accounts: AccountCache,
        *,
        log: Any,
        access_log: bool = False,
        dedup_window: float = 5.0,
        workers: int = 1,
        reservation_ttl: float = 60.0,
    ) -> None:
        self.accounts = accounts
        self.counters = Counters()
        self.tally = Tally()  # per realm, for the metrics (issue 18.1)
        # The decision time of each answer sent at once, per realm (issue 18.1): ``clock() -
        # now`` when the edge gives a ``Latency`` (``--metrics-listen``). Here, compiled, not in
        # the worker's interpreted datagram callback: there it added 320-365 ns an answer to the
        # compiled engine's 7.0-7.2 us (cached PAP users in a loop), here 130-200 ns. Deferred
        # answers are timed by the edge, which sends them.
        self.latency: Latency | None = None
        self.clock: Callable[[], float] = time.time
        self.log = log
        self.access_log = access_log
        self._auth_dedup = DuplicateCache(dedup_window)
        self._acct_dedup = DuplicateCache(dedup_window)
        self.drop_log = DropLog(log)  # the worker flushes its summary periodically
        self._unknown_logged = Recent(UNKNOWN_CLIENT_LOG_INTERVAL, _UNKNOWN_CLIENT_MEMORY)
        self._store_down_logged = Recent(STORE_ERROR_INTERVAL, _UNKNOWN_CLIENT_MEMORY)
        self._reply_messages: dict[str, bytes] = {}
        self.balancer = vpdn.Balancer()
        # Fed by the edge: LNS health from the L2TP probes, live sessions per LNS.
        self.lns_health: dict[tuple[str, int], vpdn.Health] = {}
        self.lns_sessions: vpdn.SessionCount = lambda _realm, _index: 0
        # Realms whose monthly traffic quota is used up (第14条2), fed by the edge.
        self.quota_reached: frozenset[str] = frozenset()
        self.workers = max(1, workers)  # a NAS's rate_limit is shared by this many workers
        self.reservation_ttl = reservation_ttl
        self._buckets: dict[str, list[float]] = {}  # NAS address -> [tokens, last refill]
        # A wrong password for an account of a realm with lockout_after: the edge records it
        # off the loop, fire and forget (``radiusgw.server.decisions``; issue 17.4).
        self.failed_login: Callable[[FailedLogin], None] = lambda _failure: None
        # The authentication log (issue 18.3): one record per answer (above ``class Engine``),
        # taken off in batches by the worker (``radiusgw.server.authlog``); None: not kept.
        self.auth_log: AuthLog | None = None
        self.reload(registry)

    def reload(self, registry: Registry) -> None:
        """Swap in a new registry (SIGHUP); requests in flight finish with the old one.
        Cached accounts of a realm whose reply attributes changed are read again."""
        old = getattr(self, "registry", None)
        if old is not None:
            for name, realm in registry.realms.items():
                before = old.realms.get(name)
                if before is not None and before.reply != realm.reply:
                    self.accounts.forget_realm(name)
        self.registry = registry
        self._nas = registry.nas
        self._router = Router(registry)

    # -- the authentication port --------------------------------------------------------

    def _lookup_nas(self, source: str) -> Nas | None:
        """The NAS of a source the first look-up missed: a dual-stack socket's IPv4 sender."""
        return self._nas.get(unmapped(source))

    def _first_checks(
        self, data: bytes, addr: Any, now: float, dedup: DuplicateCache
    ) -> tuple[Nas, Key] | bytes | None:
        """Checks 1 and 2 of both ports: (NAS, key) for new work, the cached answer of a
        retransmission, or None when the datagram is dropped."""
        nas = self._nas.get(addr[0]) or self._lookup_nas(addr[0])
        if nas is None:
            self._unknown_client(addr, now)
            return None
        key: Key = (addr[0], addr[1], data[1] if len(data) > 1 else -1, data[4:20])
        answer = dedup.get(key)
        if answer is None:
            return nas, key
        if answer is PENDING:  # the first copy is still being processed
            self.counters.dropped_in_progress += 1
            return None
        self.counters.duplicates += 1
        return answer

    def on_auth(self, data: bytes, addr: Any, now: float) -> bytes | Deferred | None:
        """The answer to send now, a ``Deferred`` the edge finishes, or None (dropped).
        ``tally.realm`` says afterwards which realm's answer this was (None: no new answer)."""
        self.tally.realm = None
        first = self._first_checks(data, addr, now, self._auth_dedup)
        if not isinstance(first, tuple):
            return first
        nas, key = first
        if nas.rate_limit is not None and not self._within_rate(nas, now):
            return None
        try:
            code = data[0] if data else -1
            if code != _ACCESS_REQUEST and code != _STATUS_SERVER:
                frame(data)  # a broken header is malformed, whatever its code
                self._unexpected_code(addr, code, "auth", now)
                return None
            # Both take the datagram as it came and check its header (RFC 2865 §3).
            if nas.require_message_authenticator or code == _STATUS_SERVER:
                verdict = crypto.request_message_authenticator(data, nas.secret)
                if verdict < 0:
                    self._unsigned(verdict, code, addr, now)
                    return None
                packet = decode(data)
            else:  # a legacy NAS: a Message-Authenticator is checked only when present
                packet = decode(data)
                offset = packet.message_authenticator_offset
                if offset >= 0 and not crypto.message_authenticator_matches(
                    packet.raw, offset, nas.secret
                ):
                    self._bad_authenticator(addr, "Message-Authenticator does not match", now)
                    return None
        except DecodeError as exc:
            self._malformed(addr, exc, now)
            return None
        if code == _ACCESS_REQUEST:
            self.counters.access_requests += 1
            result = self._access_request(packet, nas, addr, now, key)
            if result is not None:
                self._auth_dedup.put(key, result if isinstance(result, bytes) else PENDING, now)
                latency = self.latency
                if latency is not None and isinstance(result, bytes):
                    # Through a local, not ``self.tally.realm``: mypy keeps that expression
                    # narrowed to None by the assignment above (calls do not undo it), and
                    # mypyc then checks at run time that it is None ("None object expected").
                    tally = self.tally
                    realm = tally.realm
                    if realm is not None:
                        latency.observe(realm, self.clock() - now)
            return result
        return self._status_server(packet, nas, _ACCESS_ACCEPT)

    def on_stream(
        self, data: bytes, peer: Any, now: float
    ) -> bytes | Deferred | AccountingAnswer | ProxyAccounting | None:
        """A request from a transport that carries authentication and accounting together
        (RFC 6614 §2.3): dispatched by its code. Status-Server is answered as on the
        authentication port (RFC 6614 §2.3, RFC 5997 §3)."""
        if data and data[0] == _ACCOUNTING_REQUEST:
            return self.on_acct(data, peer, now)
        return self.on_auth(data, peer, now)

    def _unsigned(self, verdict: int, code: int, addr: Any, now: float) -> None:
        """Drop a request whose Message-Authenticator is wrong, or absent where required: by
        the NAS's registration (RFC 3579 §3.2, the BlastRADIUS advice), or in a Status-Server
        (RFC 5997 §3)."""
        status = code == _STATUS_SERVER
        if verdict == crypto.MA_WRONG:
            self._bad_authenticator(
                addr,
                "Status-Server Message-Authenticator does not match"
                if status
                else "Message-Authenticator does not match",
                now,
            )
            return
        self.counters.dropped_missing_message_authenticator += 1
        self.drop_log.dropped(
            "missing_message_authenticator",
            now,
            debug=status,
            client=addr[0],
            reason="Status-Server without Message-Authenticator"
            if status
            else "Message-Authenticator required but missing",
        )

    def _access_request(
        self, packet: Packet, nas: Nas, addr: Any, now: float, key: Key
    ) -> bytes | Deferred | None:
        first = packet.first_values()
        user_name = first.get(_USER_NAME)
        proxy_states = _proxy_states_of(packet, first)
        if user_name is None:
            return self._reject(packet, nas, addr, proxy_states, NO_USER_NAME, None, "", now)
        username = user_name.decode("utf-8", "replace")
        target = self._router.route(nas, username, now)
        if isinstance(target, Refusal):
            realm = target.realm
            return self._reject(packet, nas, addr, proxy_states, target, realm, username, now)
        mode = target.mode
        if mode is Mode.GROUP or (mode is Mode.VPDN and target.authenticate):
            local = username[: username.rfind("@")]
            cache = self.accounts
            account = cache.get(target.name, local)
            if account is MISS:  # the look-up thread reads it; the loop never waits on the store
                return AccountLookup(
                    key, addr, packet, nas, target, username, local, cache.last_seq, proxy_states
                )
            return self._authenticate(
                packet,
                first,
                nas,
                addr,
                key,
                target,
                username,
                account,
                proxy_states,
                now,
            )
        if mode is Mode.VPDN:
            return self._tunnel(packet, nas, addr, key, target, username, proxy_states, now)
        # Proxy realms: the proxy edge forwards to the customer's servers (第1条 プロキシ); the
        # quota of 第14条2 holds for them too, so a realm over it is refused before forwarding.
        quota_reached = self.quota_reached
        if quota_reached and target.name in quota_reached:
            return self._reject(
                packet, nas, addr, proxy_states, QUOTA_REACHED, target.name, username, now
            )
        return ProxyAuth(key, addr, packet, nas, target, username)

    def _authenticate(
        self,
        packet: Packet,
        first: dict[int, bytes],
        nas: Nas,
        addr: Any,
        key: Key,
        target: Realm,
        username: str,
        account: CachedAccount | None,
        proxy_states: list[bytes],
        now: float,
    ) -> bytes | Admission | None:
        """A group realm's (or an authenticating VPDN realm's) decision, account in hand: the
        method the request's attributes name gives the verdict and the attributes it adds
        (``radiusgw.auth``); the account's own reply attributes are added here.

        An account locked out, or limited to Calling-Station-Ids the request does not carry,
        is refused before its password is checked (issue 17.4): a lock answers the same to
        every guess. Two attribute reads when neither is configured."""
        if account is not None and (account.locked_until > now or account.calling_stations):
            protection = _protection(account, first, now)
            if protection is not None:
                outcome, refusal = protection
                method = group.choose(packet, first)
                refused = method.refuse(packet, first, outcome, refusal)
                return self._reject(
                    packet,
                    nas,
                    addr,
                    proxy_states,
                    refusal,
                    target.name,
                    username,
                    now,
                    extra=refused.reply,
                )
        method = group.choose(packet, first)
        verdict = method.verify(packet, first, nas.secret, account)
        if verdict.outcome is not _ACCEPT or account is None:
            if (
                verdict.outcome is _BAD_CREDENTIALS
                and account is not None
                and target.lockout_after is not None
            ):
                self.failed_login(
                    FailedLogin(
                        target.name,
                        username[: username.rfind("@")],
                        now,
                        target.lockout_after,
                        target.lockout_window,
                        target.lockout_time,
                    )
                )
            refused_by = verdict.refusal
            if refused_by is None:  # an accept with no account: no method gives one
                refused_by = UNKNOWN_OR_WRONG
            return self._reject(
                packet,
                nas,
                addr,
                proxy_states,
                refused_by,
                target.name,
                username,
                now,
                extra=verdict.reply,
            )
        if target.mode is Mode.GROUP:
            attrs = account.reply + verdict.reply if verdict.reply else account.reply
            return self._admit(
                key,
                packet,
                nas,
                addr,
                proxy_states,
                attrs,
                target,
                username,
                None,
                now,
                method.name,
                account.framed_ip,
            )
        return self._tunnel(
            packet, nas, addr, key, target, username, proxy_states, now, verdict.reply, method.name
        )

    def _tunnel(
        self,
        packet: Packet,
        nas: Nas,
        addr: Any,
        key: Key,
        target: Realm,
        username: str,
        proxy_states: list[bytes],
        now: float,
        method_reply: bytes = b"",
        method: str = "",
    ) -> bytes | Admission | None:
        # RFC 2809: the LAC opens the tunnel; with authenticate = false the LNS checks the user.
        # ``method_reply``: what the method that checked the user adds (MS-CHAP2-Success ...);
        # ``method``: its name ("": none checked the user).
        offers = self.balancer.offers(target, self.lns_health, self.lns_sessions)
        if isinstance(offers, Refusal):
            return self._reject(packet, nas, addr, proxy_states, offers, target.name, username, now)
        attrs = vpdn.tunnel_attributes(offers, nas.secret, packet.authenticator)
        if method_reply:
            attrs += method_reply
        result = self._admit(
            key,
            packet,
            nas,
            addr,
            proxy_states,
            attrs,
            target,
            username,
            offers[0].lns,
            now,
            method,
        )
        if method_reply and isinstance(result, Admission):
            return replace(result, method_reply=method_reply)
        return result

    def looked_up(
        self, lookup: AccountLookup, account: CachedAccount | StoreError | None, now: float
    ) -> bytes | Admission | None:
        """Finish a request whose account the look-up thread read (or failed to read): the
        answer to send, an ``Admission`` to decide, or None (dropped; counted and logged)."""
        if isinstance(account, StoreError):
            self._store_error(lookup.address, lookup.realm.name, lookup.username, account, now)
            self.complete_auth(lookup.key, None)
            return None
        realm = self.registry.realms.get(lookup.realm.name, lookup.realm)  # reloaded meanwhile
        self.accounts.put(realm.name, lookup.local, account, lookup.seq)
        result = self._authenticate(
            lookup.packet,
            lookup.packet.first_values(),
            lookup.nas,
            lookup.address,
            lookup.key,
            realm,
            lookup.username,
            account,
            lookup.proxy_states,
            now,
        )
        if not isinstance(result, Admission):
            self.complete_auth(lookup.key, result)
        return result

    def _admit(
        self,
        key: Key,
        packet: Packet,
        nas: Nas,
        addr: Any,
        proxy_states: list[bytes],
        attrs: bytes,
        realm: Realm,
        username: str,
        lns: Lns | None,
        now: float,
        method: str = "",
        framed_ip: bytes | None = None,
    ) -> bytes | Admission | None:
        """Accept now, or after a session slot is reserved when the realm has limits.
        ``method`` and ``framed_ip``: for the authentication log (``_accept``)."""
        if realm.name in self.quota_reached:
            return self._reject(
                packet, nas, addr, proxy_states, QUOTA_REACHED, realm.name, username, now
            )
        lns_max = lns.max_sessions if lns is not None else None
        if realm.max_sessions is None and realm.max_sessions_per_account is None and not lns_max:
            return self._accept(
                packet,
                nas,
                addr,
                proxy_states,
                attrs,
                realm.name,
                username,
                now,
                None if lns is None else lns.address,
                method,
                framed_ip,
            )
        request = AdmissionRequest(
            realm.name,
            username[: username.rfind("@")],
            lns.address if lns is not None else None,
            realm.max_sessions,
            realm.max_sessions_per_account,
            lns_max,
            self.reservation_ttl,
        )
        if proxy_states:
            attrs += _proxy_states(proxy_states)
        accept = crypto.sign_response(
            _ACCESS_ACCEPT, packet.identifier, packet.authenticator, attrs, nas.secret
        )
        if accept is None:  # found before a session slot is reserved for it
            self._oversized(addr, attrs, now)
            return None
        return Admission(
            key, addr, request, accept, packet, nas, tuple(proxy_states), realm.name, username
        )

    def admitted(self, pending: Admission, result: AdmissionResult) -> bytes | Admission | None:
        """The answer once the session store has decided (None: a reject too long to send);
        copies now get it too.

        When the LNS offered first turned out full (another worker filled it since the loads
        were last read), the request is offered again without it: an Admission to decide anew.
        """
        if not result.admitted and result.lns_full and pending.request.lns is not None:
            retry = self._reoffer(pending, pending.excluded | {pending.request.lns})
            if retry is not None:
                return retry
        if result.admitted:
            self.counters.access_accepts += 1
            self.tally.count(pending.realm, ACCEPT)
            self._log_deferred(pending, "accept", "")
            if self.access_log:
                where = (
                    {"lns": pending.request.lns}
                    if pending.upstream is None
                    else {"upstream": show_destination(pending.upstream)}
                )
                self.log.info(
                    "access-accept",
                    client=pending.address[0],
                    realm=pending.realm,
                    user=pending.username,
                    **where,
                )
            reply: bytes | None = pending.accept
        else:
            reply = self._reject(
                pending.packet,
                pending.nas,
                pending.address,
                list(pending.proxy_states),
                SESSION_LIMIT if result.reason is None else Refusal(result.reason),
                pending.realm,
                pending.username,
                None,
            )
        self.complete_auth(pending.key, reply)
        return reply

    def store_down(self, pending: Admission, error: str, now: float) -> bytes | None:
        """The answer when the store cannot decide ``pending`` (failed, or past the deadline):
        the realm's ``on_store_down`` (issue 15.6) admits it unchecked or rejects it. Logged
        (``admission-store-down``, once per ``STORE_ERROR_INTERVAL`` per realm) and counted
        either way; None: a reject too long to send."""
        realm = self.registry.realms.get(pending.realm)
        admit = realm is None or realm.on_store_down == "admit"
        if self._store_down_logged.first(pending.realm, now):  # each realm's policy shows
            self.log.warning(
                "admission-store-down",
                client=pending.address[0],
                realm=pending.realm,
                user=pending.username,
                error=error,
                action="admitted" if admit else "rejected",
            )
        reply: bytes | None
        if admit:
            self.counters.admitted_store_down += 1
            self.counters.access_accepts += 1
            self.tally.count(pending.realm, ACCEPT)
            self._log_deferred(pending, "accept", "store down: admitted unchecked")
            reply = pending.accept
        else:
            self.counters.rejected_store_down += 1
            reply = self._reject(
                pending.packet,
                pending.nas,
                pending.address,
                list(pending.proxy_states),
                STORE_DOWN,
                pending.realm,
                pending.username,
                now,
            )
        self.complete_auth(pending.key, reply)
        return reply

    def _reoffer(self, pending: Admission, excluded: frozenset[str]) -> Admission | None:
        realm = self.registry.realms.get(pending.realm)
        if realm is None or realm.mode is not Mode.VPDN:
            return None
        kept = [i for i, lns in enumerate(realm.lns) if lns.address not in excluded]
        if not kept:
            return None
        narrowed = replace(realm, lns=tuple(realm.lns[i] for i in kept))
        health = {
            (realm.name, n): self.lns_health.get((realm.name, i), vpdn.Health.UNKNOWN)
            for n, i in enumerate(kept)
        }
        load = self.lns_sessions
        offers = self.balancer.offers(narrowed, health, lambda r, n: load(r, kept[n]))
        if isinstance(offers, Refusal):
            return None
        packet = pending.packet
        attrs = vpdn.tunnel_attributes(offers, pending.nas.secret, packet.authenticator)
        attrs += pending.method_reply
        if pending.proxy_states:
            attrs += _proxy_states(pending.proxy_states)
        accept = crypto.sign_response(
            _ACCESS_ACCEPT, packet.identifier, packet.authenticator, attrs, pending.nas.secret
        )
        if accept is None:  # too long with these LNS: the reject goes instead
            return None
        first = offers[0].lns
        request = replace(pending.request, lns=first.address, lns_max=first.max_sessions)
        return replace(pending, request=request, accept=accept, excluded=excluded)

    def proxied(self, pending: ProxyAuth, reply: bytes, server: Destination) -> bytes | Admission:
        """The customer server's verified answer, re-signed for the NAS: the answer to send, or
        an ``Admission`` when the realm limits sessions (第14条2: an upstream Access-Accept
        takes a session slot as a group accept does, decided in the store, before it goes).

        Logged as group answers are: every reject, and every accept with ``--access-log``,
        naming the server that answered.
        """
        code = reply[0]
        realm = pending.realm
        if code == _ACCESS_ACCEPT:
            if realm.max_sessions is not None or realm.max_sessions_per_account is not None:
                username = pending.username
                request = AdmissionRequest(
                    realm.name,
                    username[: username.rfind("@")],
                    None,
                    realm.max_sessions,
                    realm.max_sessions_per_account,
                    None,
                    self.reservation_ttl,
                )
                packet = pending.packet
                return Admission(
                    pending.key,
                    pending.address,
                    request,
                    reply,
                    packet,
                    pending.nas,
                    tuple(packet.get_all(_PROXY_STATE)),
                    realm.name,
                    username,
                    upstream=server,
                )
            self.counters.access_accepts += 1
            self.tally.count(realm.name, ACCEPT)
            self._log_proxied(pending, "accept", "", reply, server)
            if self.access_log:
                self.log.info(
                    "access-accept",
                    client=pending.address[0],
                    realm=realm.name,
                    user=pending.username,
                    upstream=show_destination(server),
                )
        elif code == _ACCESS_REJECT:
            self.counters.access_rejects += 1
            self.tally.count(realm.name, UPSTREAM_REJECTED)
            self._log_proxied(pending, "reject", "rejected by the customer's server", None, server)
            self.log.info(
                "access-reject",
                client=pending.address[0],
                realm=realm.name,
                user=pending.username,
                reason=UPSTREAM_REJECTED,
                upstream=show_destination(server),
            )
        else:  # an Access-Challenge (RFC 2865 §4.4): the customer's server asks for more
            self.tally.count(realm.name, CHALLENGE)
            self._log_proxied(pending, "challenge", "", None, server)
        self._auth_dedup.complete(pending.key, reply)
        return reply

    def _log_deferred(self, pending: Admission, result: str, reason: str) -> None:
        log = self.auth_log
        if log is not None:
            log.add(
                pending.realm,
                None,
                pending.nas.address,
                pending.username,
                group.method_of(pending.packet.raw),
                result,
                reason,
                _framed_ip(pending.accept),
                pending.request.lns,
                pending.upstream,
            )

    def _log_proxied(
        self, pending: ProxyAuth, result: str, reason: str, reply: bytes | None, server: Any
    ) -> None:
        log = self.auth_log
        if log is not None:
            log.add(
                pending.realm.name,
                None,
                pending.nas.address,
                pending.username,
                group.method_of(pending.packet.raw),
                result,
                reason,
                _framed_ip(reply),
                None,
                server,
            )

    def complete_auth(self, key: Key, answer: bytes | None) -> None:
        """A deferred request's answer (None: none will be sent, so a retry is new work)."""
        if answer is None:
            self._auth_dedup.forget(key)
        else:
            self._auth_dedup.complete(key, answer)

    def reject_deferred(self, pending: ProxyAuth, refusal: Refusal) -> bytes | None:
        """An Access-Reject for a deferred request (a proxy realm whose servers are down);
        None when it cannot fit in 4,096 octets (nothing is sent)."""
        proxy_states = pending.packet.get_all(_PROXY_STATE)
        reply = self._reject(
            pending.packet,
            pending.nas,
            pending.address,
            proxy_states,
            refusal,
            pending.realm.name,
            pending.username,
            None,
        )
        self.complete_auth(pending.key, reply)
        return reply

    def _within_rate(self, nas: Nas, now: float) -> bool:
        """Token bucket per NAS (第14条2): requests above ``rate_limit``/s are dropped, and the
        NAS retries. Each worker holds its share; the BPF program spreads a NAS evenly."""
        rate = (nas.rate_limit or 0) / self.workers
        bucket = self._buckets.get(nas.address)
        if bucket is None:
            bucket = self._buckets[nas.address] = [rate, now]
        tokens = min(rate, bucket[0] + (now - bucket[1]) * rate)  # burst: one second's worth
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            self.counters.dropped_rate_limited += 1
            limited = self.tally.rate_limited
            limited[nas.address] = limited.get(nas.address, 0) + 1
            return False
        bucket[0] = tokens - 1.0
        return True

    def _accept(
        self,
        packet: Packet,
        nas: Nas,
        addr: Any,
        proxy_states: list[bytes],
        attrs: bytes,
        realm: str,
        username: str,
        now: float,
        lns: str | None = None,
        method: str = "",
        framed_ip: bytes | None = None,
    ) -> bytes | None:
        """An Access-Accept with ``attrs``. For the authentication log, ``method`` is the name
        of the method that checked the user ("": none did, or the caller does not know: read
        from the request) and ``framed_ip`` the Framed-IP-Address in ``attrs`` (the
        account's, read once into the cache; no other accept carries one)."""
        if proxy_states:
            attrs += _proxy_states(proxy_states)
        reply = crypto.sign_response(
            _ACCESS_ACCEPT, packet.identifier, packet.authenticator, attrs, nas.secret
        )
        if reply is None:
            self._oversized(addr, attrs, now)
            return None
        self.counters.access_accepts += 1
        self.tally.count(realm, ACCEPT)
        log = self.auth_log
        if log is not None:
            log.add(
                realm,
                now,
                nas.address,
                username,
                method or group.method_of(packet.raw),
                "accept",
                "",
                framed_ip,
                lns,
                None,
            )
        if self.access_log:
            where = {} if lns is None else {"lns": lns}
            self.log.info("access-accept", client=addr[0], realm=realm, user=username, **where)
        return reply

    def _reject(
        self,
        packet: Packet,
        nas: Nas,
        addr: Any,
        proxy_states: list[bytes],
        refusal: Refusal,
        realm: str | None,
        username: str,
        now: float | None,
        *,
        extra: bytes = b"",
    ) -> bytes | None:
        """An Access-Reject saying ``refusal.reason`` in Reply-Message; its ``detail`` goes to
        the log only (what the NAS may not learn: why a realm it may not use is "unknown");
        ``extra``: the attributes the authentication method adds (MS-CHAP-Error, EAP-Message)."""
        reason = refusal.reason
        detail = refusal.detail
        message = self._reply_messages.get(reason)
        if message is None:
            message = self._reply_messages[reason] = _reply_message(reason)
        if extra:
            message += extra
        attrs = message + _proxy_states(proxy_states) if proxy_states else message
        reply = crypto.sign_response(
            _ACCESS_REJECT, packet.identifier, packet.authenticator, attrs, nas.secret
        )
        if reply is None:
            self._oversized(addr, attrs, now)
            return None
        self.counters.access_rejects += 1
        self.tally.count(realm, reason)
        log = self.auth_log
        if log is not None:
            method = group.method_of(packet.raw)
            log.add(realm, now, nas.address, username, method, "reject", reason, None, None, None)
        if detail is None:
            self.log.info(
                "access-reject", client=addr[0], realm=realm, user=username, reason=reason
            )
        else:  # what the NAS was not told (radiusgw.router)
            self.log.info(
                "access-reject",
                client=addr[0],
                realm=realm,
                user=username,
                reason=reason,
                detail=detail,
            )
        return reply

    def _status_server(self, packet: Packet, nas: Nas, code: int) -> bytes | None:
        """RFC 5997: its Message-Authenticator was checked before it was decoded. (The answer,
        38 octets, always fits.)"""
        self.counters.status_server += 1
        return crypto.sign_response(code, packet.identifier, packet.authenticator, b"", nas.secret)

    # -- the accounting port ------------------------------------------------------------

    def on_acct(
        self, data: bytes, addr: Any, now: float
    ) -> bytes | AccountingAnswer | ProxyAccounting | None:
        """An answer to send now, an ``AccountingAnswer`` to make durable first, or None."""
        first = self._first_checks(data, addr, now, self._acct_dedup)
        if not isinstance(first, tuple):
            return first
        nas, key = first
        try:
            code = data[0] if data else -1
            if code == _ACCOUNTING_REQUEST:
                # RFC 2866 §3: an MD5 over the octets as they came, before any decoding.
                if not crypto.accounting_request_matches(data, nas.secret):
                    self._bad_authenticator(
                        addr, "accounting Request Authenticator does not match", now
                    )
                    return None
            elif code == _STATUS_SERVER:
                verdict = crypto.request_message_authenticator(data, nas.secret)
                if verdict < 0:
                    self._unsigned(verdict, code, addr, now)
                    return None
            else:
                frame(data)  # a broken header is malformed, whatever its code
                self._unexpected_code(addr, code, "acct", now)
                return None
            packet = decode(data)
        except DecodeError as exc:
            self._malformed(addr, exc, now)
            return None
        if code == _ACCOUNTING_REQUEST:
            self.counters.accounting_requests += 1
            pending = self._accounting_request(packet, nas, addr, key, now)
            if pending is not None:
                self._acct_dedup.put(key, PENDING, now)
            return pending
        return self._status_server(packet, nas, _ACCOUNTING_RESPONSE)

    def _accounting_request(
        self, packet: Packet, nas: Nas, addr: Any, key: Key, now: float
    ) -> AccountingAnswer | ProxyAccounting | None:
        raw = packet.raw
        secret = nas.secret
        offset = packet.message_authenticator_offset
        if offset >= 0 and not crypto.response_message_authenticator_matches(
            raw, offset, secret, crypto.ZERO16
        ):
            # In an Accounting-Request the authenticator field counts as zeros for the HMAC.
            self._bad_authenticator(addr, "Message-Authenticator does not match", now)
            return None
        first = packet.first_values()  # parse below reads it too
        get = first.get
        value = get(_USER_NAME)
        user_name = None if value is None else value.decode("utf-8", "replace")
        value = get(_ACCT_STATUS_TYPE)
        status = int.from_bytes(value, "big") if value is not None and len(value) == 4 else None
        value = get(_ACCT_SESSION_ID)
        session_id = None if value is None else value.decode("utf-8", "replace")
        proxy_states = _proxy_states_of(packet, first)
        realm: str | None = None
        proxy: Realm | None = None
        if user_name is not None:
            target = self._router.route(nas, user_name, now)
            if isinstance(target, Refusal):
                # Kept (nothing acknowledged is lost) but counted against no realm.
                detail = {} if target.detail is None else {"detail": target.detail}
                self.log.info(
                    "accounting-unrouted",
                    client=addr[0],
                    user=user_name,
                    realm=realm_name(user_name),
                    reason=target.reason,
                    **detail,
                )
            else:
                realm = target.name
                if target.mode is Mode.PROXY:
                    proxy = target
        self.tally.accounting(realm)
        # Parsed here, once, from the packet already decoded: the writer thread then only
        # runs the SQL (and holds the GIL the event loop needs for less time).
        event = (
            parse(packet, nas_address=addr[0], received=now, realm=realm, first=first)
            if status in EVENT_TYPES
            else None
        )
        record = AccountingRecord(
            received=now,
            nas_address=addr[0],
            realm=realm,
            username=user_name,
            status_type=status,
            session_id=session_id,
            packet=raw,
            event=event,
        )
        if proxy is not None:
            # The customer's server keeps these (第1条 プロキシ): the edge forwards or spools
            # them. The record is journalled too, for sessions, usage and limits (第14条2).
            return ProxyAccounting(key, addr, packet, nas, proxy, record)
        reply = _accounting_response(packet, proxy_states, secret)
        return AccountingAnswer(key, record, reply, addr)

    def accounting_done(self, answer: AccountingAnswer) -> None:
        """The record is durable: its reply may go, and copies now get it too."""
        self.counters.accounting_responses += 1
        self._acct_dedup.complete(answer.key, answer.reply)

    def complete_acct(self, key: Key, answer: bytes | None) -> None:
        """A proxied accounting request's answer (None: none sent, the NAS retries)."""
        if answer is None:
            self._acct_dedup.forget(key)
        else:
            self.counters.accounting_responses += 1
            self._acct_dedup.complete(key, answer)

    @staticmethod
    def accounting_response(pending: ProxyAccounting) -> bytes:
        """The gateway's own Accounting-Response to a record it spooled durably (RFC 2866 §2):
        signed with the NAS's secret, its Proxy-State echoed (RFC 2865 §5.33); it always fits."""
        packet = pending.packet
        return _accounting_response(packet, packet.get_all(_PROXY_STATE), pending.nas.secret)

    def accounting_failed(self, answer: AccountingAnswer) -> None:
        """The write failed: no answer, so the NAS retries and nothing is lost."""
        self._acct_dedup.forget(answer.key)

    # -- drops --------------------------------------------------------------------------

    def _unknown_client(self, addr: Any, now: float) -> None:
        self.counters.dropped_unknown_client += 1
        source = addr[0]
        if self._unknown_logged.first(source, now):  # each source at most once a minute
            self.drop_log.dropped(
                "unknown_client",
                now,
                client=source,
                reason="source address is not a registered NAS",
            )

    def _malformed(self, addr: Any, exc: DecodeError, now: float) -> None:
        self.counters.dropped_malformed += 1
        self.drop_log.dropped(
            "malformed", now, debug=True, client=addr[0], reason=f"malformed: {exc}"
        )

    def _unexpected_code(self, addr: Any, code: int, port: str, now: float) -> None:
        self.counters.dropped_unexpected_code += 1
        self.drop_log.dropped(
            "unexpected_code",
            now,
            debug=True,
            client=addr[0],
            reason=f"code {code} on the {port} port",
        )

    def _bad_authenticator(self, addr: Any, reason: str, now: float) -> None:
        self.counters.dropped_bad_authenticator += 1
        self.drop_log.dropped("bad_authenticator", now, client=addr[0], reason=reason)

    def _oversized(self, addr: Any, attrs: bytes, now: float | None) -> None:
        """An answer that cannot fit with every Proxy-State echoed (RFC 2865 §3, §5.33): not
        sent, so the request counts as dropped, not as answered."""
        self.counters.dropped_oversized_answer += 1
        self.tally.count(None, NO_ANSWER)
        octets = 20 + len(attrs) + 18  # header, attributes, Message-Authenticator
        self.drop_log.dropped(
            "oversized_answer",
            now,
            client=addr[0],
            reason=f"answer of {octets} octets with the request's Proxy-State exceeds 4096",
        )

    def _store_error(
        self, addr: Any, realm: str, username: str, exc: StoreError, now: float
    ) -> None:
        """The store failed to read an account: drop, so that the NAS retries or fails over to
        its other server, as for a server that is down; a reject would be an answer."""
        self.counters.dropped_store_error += 1
        self.tally.count(realm, NO_ANSWER)
        self.drop_log.store_error(
            now, client=addr[0], realm=realm, user=username, error=str(exc), action="dropped"
        )
