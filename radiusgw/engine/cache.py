"""Accounts in memory, for the hot path: read-mostly, invalidated by the store's change log.

A look-up that misses asks the store once (one primary-key query and one AES-GCM decrypt) and
keeps the answer, a missing account included, so that a flood of requests for one unknown user
costs one query. Every ``poll`` reads the store's change log (``changes_since``) and forgets what
changed: an ``account disable`` reaches a running server within one poll interval (the issue asks
for 2 s; the default interval is 1 s).

Reply attributes are encoded once here (RFC 2865 §5.8, §5.25, §5.27, §5.28), not per answer.

A store that fails raises ``StoreError`` through ``get`` and nothing is kept, so the next request
asks again; a row whose values cannot be encoded (a damaged or hand-edited file) is a
``StoreError`` too, never a ``ValueError`` from deep inside.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from radiusgw.domain import Account, Change
from radiusgw.errors import StoreError
from radiusgw.radius.attributes import Attr
from radiusgw.radius.packet import encode_attributes


@dataclass(frozen=True, slots=True)
class CachedAccount:
    password: bytes
    enabled: bool
    reply: bytes  # wire-encoded reply attributes for Access-Accept


def reply_attributes(account: Account) -> bytes:
    attrs: list[tuple[int, bytes]] = []
    if account.framed_ip:
        attrs.append((Attr.FRAMED_IP_ADDRESS, ipaddress.IPv4Address(account.framed_ip).packed))
    if account.session_timeout is not None:
        attrs.append((Attr.SESSION_TIMEOUT, account.session_timeout.to_bytes(4, "big")))
    if account.idle_timeout is not None:
        attrs.append((Attr.IDLE_TIMEOUT, account.idle_timeout.to_bytes(4, "big")))
    if account.class_:
        attrs.append((Attr.CLASS, account.class_))
    return encode_attributes(attrs)


def cached(account: Account) -> CachedAccount:
    return CachedAccount(
        account.password.encode("utf-8"), account.enabled, reply_attributes(account)
    )


_MISSING = object()


class AccountCache:
    """realm -> username -> CachedAccount (or None for "no such account")."""

    __slots__ = ("_fetch", "_last_seq", "_max_entries", "_realms", "_size")

    def __init__(
        self,
        fetch: Callable[[str, str], Account | None],
        *,
        last_seq: int = 0,
        max_entries: int = 500_000,
    ) -> None:
        self._fetch = fetch
        self._realms: dict[str, dict[str, CachedAccount | None]] = {}
        self._last_seq = last_seq
        self._max_entries = max_entries  # a bound on memory whatever the user names sent
        self._size = 0

    def get(self, realm: str, username: str) -> CachedAccount | None:
        users = self._realms.get(realm)
        if users is None:
            users = self._realms[realm] = {}
        entry = users.get(username, _MISSING)
        if entry is not _MISSING:
            return entry  # type: ignore[return-value]
        account = self._fetch(realm, username)
        try:
            value = cached(account) if account is not None else None
        except (ValueError, OverflowError) as exc:  # not an IPv4 address, not 32 bits ...
            raise StoreError(
                f"account {username!r} of realm {realm!r} holds a value that cannot be sent: {exc}"
            ) from None
        if self._size >= self._max_entries:
            self.clear()
            users = self._realms[realm] = {}
        users[username] = value
        self._size += 1
        return value

    def apply(self, changes: list[Change]) -> None:
        """Forget what the change log says changed."""
        for change in changes:
            users = self._realms.get(change.realm)
            if users is not None:
                if change.username is None:
                    self._size -= len(users)
                    del self._realms[change.realm]
                elif users.pop(change.username, _MISSING) is not _MISSING:
                    self._size -= 1
            self._last_seq = max(self._last_seq, change.seq)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def clear(self) -> None:
        self._realms.clear()
        self._size = 0

    def __len__(self) -> int:
        return self._size
