"""Accounts in memory, for the hot path: read-mostly, invalidated by the store's change log.

The event loop never reads the store (issue 15.6: with a shared database a round trip, or a
database that stopped answering, would stop every request behind it). ``get`` answers from
memory or says ``MISS``; the engine then hands the request to the worker's look-up thread
(``AccountLookup``), which reads the account (one primary-key query and one AES-GCM decrypt,
``load``) and gives it back with ``put``. A missing account is kept too, so a flood for one
unknown user costs one query. Every ``poll`` reads the store's change log (``changes_since``)
and forgets what changed: an ``account disable`` reaches a running server within one poll
interval (default 1 s).

A look-up races the poll: read before a change, put after the poll forgot the name, it would
keep the old account until the next change. ``put`` therefore keeps an answer only when no
change arrived since the look-up began (``last_seq`` unchanged); otherwise the request is
decided with it and the next one reads again.

Preload: a worker that starts fills its cache in the background with the accounts of its group
(and authenticating VPDN) realms, up to ``--cache-preload`` accounts (``put_many``; the server's
``StoreDecisions.preload``), so that its first logins, like FreeRADIUS's from its users file, do
not each wait for the store.

Bounds: at most ``max_entries`` names (500,000 by default, about 200 bytes each); at the bound
the cache is emptied and refilled from the store. While the store cannot be read the entries
stay: known accounts keep authenticating, an unknown one gets no answer (the NAS retries or
fails over), and a change made meanwhile takes effect when the change log can be read again.

Reply attributes are encoded once here (RFC 2865 §5.8, §5.25, §5.27, §5.28), not per answer:
the account's columns, its reply attributes by name (``radiusgw.radius.reply``, with the
worker's dictionary), then the realm's ``[realm.reply]`` that the account does not set by name
(issue 17.5). A realm whose reply attributes change in a reload is forgotten
(``forget_realm``). A row whose values cannot be encoded (a damaged or hand-edited database, an
attribute the worker's dictionary lacks) is a ``StoreError``, never a ``ValueError`` from deep
inside, and nothing is kept for it.

Account protection (issue 17.4) rides along: the Calling-Station-Ids allowed and the end of a
lockout, so that the hot path checks them without the store; a lock the store decides is in
its change log, and every worker reads the account again within a poll.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pyrad.dictionary import Dictionary

from radiusgw.domain import Account, Change
from radiusgw.errors import StoreError
from radiusgw.radius.attributes import Attr
from radiusgw.radius.dictionary import DictionaryError, load_dictionary
from radiusgw.radius.packet import attribute_value
from radiusgw.radius.reply import Encoded, encode_all, merged

_FRAMED_IP_ADDRESS: Final = int(Attr.FRAMED_IP_ADDRESS)


@dataclass(frozen=True, slots=True)
class CachedAccount:
    password: bytes
    enabled: bool
    reply: bytes  # wire-encoded reply attributes for Access-Accept
    calling_stations: frozenset[str] = frozenset()  # lower case; empty: any caller
    locked_until: float = 0.0  # unix time; 0: not locked
    # The Framed-IP-Address in ``reply`` (RFC 2865 §5.8), four octets, for the authentication
    # log: read once here, not out of each answer (``Engine._accept``).
    framed_ip: bytes | None = None


def _own(code: Attr, value: bytes) -> Encoded:
    return Encoded((0, int(code)), bytes((int(code), len(value) + 2)) + value)


def reply_attributes(
    account: Account,
    realm_reply: Sequence[Encoded] = (),
    dictionary: Dictionary | None = None,
) -> bytes:
    """The account's reply attributes, then the realm's it does not set by name."""
    attrs: list[Encoded] = []
    if account.framed_ip:
        attrs.append(_own(Attr.FRAMED_IP_ADDRESS, ipaddress.IPv4Address(account.framed_ip).packed))
    if account.session_timeout is not None:
        attrs.append(_own(Attr.SESSION_TIMEOUT, account.session_timeout.to_bytes(4, "big")))
    if account.idle_timeout is not None:
        attrs.append(_own(Attr.IDLE_TIMEOUT, account.idle_timeout.to_bytes(4, "big")))
    if account.class_:
        attrs.append(_own(Attr.CLASS, account.class_))
    if account.reply:
        attrs.extend(encode_all(dictionary or load_dictionary(), account.reply))
    return merged(attrs, realm_reply)


def cached(
    account: Account, realm_reply: Sequence[Encoded] = (), dictionary: Dictionary | None = None
) -> CachedAccount:
    reply = reply_attributes(account, realm_reply, dictionary)
    return CachedAccount(
        account.password.encode("utf-8"),
        account.enabled,
        reply,
        frozenset(account.calling_station_ids),
        account.locked_until or 0.0,
        framed_ip_of(reply),
    )


def framed_ip_of(octets: bytes, start: int = 0) -> bytes | None:
    """The first Framed-IP-Address (RFC 2865 §5.8) in wire-encoded attributes from ``start``
    (``HEADER_LENGTH`` for a whole packet), as its four octets; None when there is none or it
    is not four octets."""
    value = attribute_value(octets, _FRAMED_IP_ADDRESS, start)
    return value if value is not None and len(value) == 4 else None


class Miss(enum.Enum):
    """``AccountCache.get``'s answer for a name it holds nothing about (an enum: a type
    checker narrows ``is MISS``)."""

    MISS = "miss"


MISS: Final = Miss.MISS


def load(
    account: Account | None,
    realm: str,
    username: str,
    realm_reply: Sequence[Encoded] = (),
    dictionary: Dictionary | None = None,
) -> CachedAccount | None:
    """What the look-up thread makes of the store's row (``StoreError`` if it cannot be sent):
    ``realm_reply`` is the realm's ``[realm.reply]``, ``dictionary`` the worker's."""
    if account is None:
        return None
    try:
        return cached(account, realm_reply, dictionary)
    except (ValueError, OverflowError, DictionaryError) as exc:  # not IPv4, not 32 bits ...
        raise StoreError(
            f"account {username!r} of realm {realm!r} holds a value that cannot be sent: {exc}"
        ) from None


class AccountCache:
    """realm -> username -> CachedAccount (or None for "no such account")."""

    __slots__ = ("_last_seq", "_max_entries", "_realms", "_size")

    def __init__(self, *, last_seq: int = 0, max_entries: int = 500_000) -> None:
        self._realms: dict[str, dict[str, CachedAccount | None]] = {}
        self._last_seq = last_seq
        self._max_entries = max_entries  # a bound on memory whatever the user names sent
        self._size = 0

    def get(self, realm: str, username: str) -> CachedAccount | Miss | None:
        users = self._realms.get(realm)
        if users is None:
            return MISS
        return users.get(username, MISS)

    def put(self, realm: str, username: str, value: CachedAccount | None, seq: int) -> bool:
        """Keep what a look-up begun at change ``seq`` read, unless a change came since."""
        if seq != self._last_seq:
            return False
        if self._size >= self._max_entries:
            self.clear()
        users = self._realms.get(realm)
        if users is None:
            users = self._realms[realm] = {}
        if username not in users:
            self._size += 1
        users[username] = value
        return True

    def put_many(self, realm: str, entries: list[tuple[str, CachedAccount]], seq: int) -> int:
        """Keep a preload's accounts (``put``'s rule for the change position); a name already
        held stays as it is (a look-up may have read it since). How many were kept."""
        if seq != self._last_seq:
            return 0
        users = self._realms.get(realm)
        if users is None:
            users = self._realms[realm] = {}
        room = self._max_entries - self._size
        kept = 0
        for username, value in entries:
            if kept >= room:
                break
            if username not in users:
                users[username] = value
                kept += 1
        self._size += kept
        return kept

    def apply(self, changes: list[Change]) -> None:
        """Forget what the change log says changed."""
        for change in changes:
            users = self._realms.get(change.realm)
            if users is not None:
                if change.username is None:
                    self._size -= len(users)
                    del self._realms[change.realm]
                elif users.pop(change.username, MISS) is not MISS:
                    self._size -= 1
            self._last_seq = max(self._last_seq, change.seq)

    def forget_realm(self, realm: str) -> None:
        """Forget every account of ``realm`` (its reply attributes changed in a reload)."""
        users = self._realms.pop(realm, None)
        if users is not None:
            self._size -= len(users)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def clear(self) -> None:
        self._realms.clear()
        self._size = 0

    def __len__(self) -> int:
        return self._size
