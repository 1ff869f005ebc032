"""What the gateway needs from a store, as one Protocol; SQLite is the embedded default.

A store object belongs to one thread (SQLite connections do): the server opens one for the event
loop (account look-ups, cache invalidation) and one for the accounting writer thread.

Passwords are kept encrypted (AES-GCM, key apart from the data); ``get_account`` returns them
decrypted because CHAP (RFC 2865 §5.3) needs the clear text to recompute the digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

# The records moved to radiusgw.domain (issue 15.1); they are re-exported here so that code
# written against ``radiusgw.store.base`` (the PostgreSQL backend's branch, until it is merged)
# keeps working. New code imports them from radiusgw.domain.
from radiusgw.domain import (
    Account,
    AccountingRecord,
    AccountRow,
    Change,
    FailedLogin,
    Lockout,
    Quarantined,
    SpoolEntry,
)

__all__ = [
    "Account",
    "AccountRow",
    "AccountStore",
    "AccountingRecord",
    "Accounts",
    "AccountsThrough",
    "Change",
    "Quarantined",
    "SpoolEntry",
    "SpoolStore",
    "accounting_values",
]


def accounting_values(r: AccountingRecord) -> tuple[object, ...]:
    """The columns of ``r`` that both stores' accounting tables keep, in their order (received,
    nas_address, realm, username, status_type, session_id, packet): the realm lower-cased as
    routed, the packet as bytes (a replayed record's may be a view of the journal's octets)."""
    return (
        r.received,
        r.nas_address,
        None if r.realm is None else r.realm.lower(),
        r.username,
        r.status_type,
        r.session_id,
        bytes(r.packet),
    )


class Accounts(Protocol):
    """The accounts and their change feed, as both stores keep them."""

    def add_account(self, realm: str, row: AccountRow, *, max_accounts: int | None) -> None: ...

    def import_accounts(
        self,
        realm: str,
        rows: Iterable[AccountRow],
        *,
        max_accounts: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> int: ...

    def get_account(self, realm: str, username: str) -> Account | None: ...

    def list_accounts(self, realm: str) -> list[Account]: ...

    def count_accounts(self, realm: str) -> int: ...

    def set_enabled(self, realm: str, username: str, enabled: bool) -> None: ...

    def remove_account(self, realm: str, username: str) -> None: ...
    def set_password(self, realm: str, username: str, password: str) -> None: ...

    # Account protection (issue 17.4): failures counted and the lock decided in the store.
    def record_failures(self, failures: Sequence[FailedLogin]) -> list[Lockout]: ...

    def unlock_account(self, realm: str, username: str) -> None: ...

    def last_change(self) -> int: ...

    def changes_since(self, seq: int) -> list[Change]: ...


class AccountStore(Accounts, Protocol):
    def write_accounting(self, records: Sequence[AccountingRecord]) -> list[Quarantined]: ...

    def close(self) -> None: ...


class SpoolStore(Protocol):
    """The durable accounting spool of proxy realms (``radiusgw.proxy.spool`` decides its use).

    An entry is durable when ``spool_accounting`` returns (the NAS may then be answered) and is
    removed by ``unspool`` only once its upstream has acknowledged it: at-least-once delivery.
    """

    def spool_accounting(
        self, realm: str, packet: bytes, nas_address: str, received: float
    ) -> int: ...

    def spool_accounting_many(
        self, entries: Sequence[tuple[str, bytes, str, float]]
    ) -> list[int]: ...

    def spooled(self, realm: str, limit: int, *, after: int = 0) -> list[SpoolEntry]: ...

    def unspool(self, ids: Iterable[int]) -> int: ...

    def spool_counts(self) -> dict[str, int]: ...


class AccountsThrough:
    """A backend's accounts and their change feed, handed to the account store it holds
    (``_account_store``): written once for the SQLite and the PostgreSQL backend."""

    def _account_store(self) -> Accounts:
        raise NotImplementedError

    def add_account(self, realm: str, row: AccountRow, *, max_accounts: int | None) -> None:
        self._account_store().add_account(realm, row, max_accounts=max_accounts)

    def import_accounts(
        self,
        realm: str,
        rows: Iterable[AccountRow],
        *,
        max_accounts: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        return self._account_store().import_accounts(
            realm, rows, max_accounts=max_accounts, progress=progress
        )

    def get_account(self, realm: str, username: str) -> Account | None:
        return self._account_store().get_account(realm, username)

    def list_accounts(self, realm: str) -> list[Account]:
        return self._account_store().list_accounts(realm)

    def count_accounts(self, realm: str) -> int:
        return self._account_store().count_accounts(realm)

    def set_enabled(self, realm: str, username: str, enabled: bool) -> None:
        self._account_store().set_enabled(realm, username, enabled)

    def set_password(self, realm: str, username: str, password: str) -> None:
        self._account_store().set_password(realm, username, password)

    def remove_account(self, realm: str, username: str) -> None:
        self._account_store().remove_account(realm, username)

    def record_failures(self, failures: Sequence[FailedLogin]) -> list[Lockout]:
        return self._account_store().record_failures(failures)

    def unlock_account(self, realm: str, username: str) -> None:
        self._account_store().unlock_account(realm, username)

    def last_change(self) -> int:
        return self._account_store().last_change()

    def changes_since(self, seq: int) -> list[Change]:
        return self._account_store().changes_since(seq)
