"""What the gateway needs from a store, as one Protocol; SQLite is the embedded default.

A store object belongs to one thread (SQLite connections do): the server opens one for the event
loop (account look-ups, cache invalidation) and one for the accounting writer thread.

Passwords are kept encrypted (AES-GCM, key apart from the data); ``get_account`` returns them
decrypted because CHAP (RFC 2865 §5.3) needs the clear text to recompute the digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # radiusgw.accounting imports this module's types only for checking too
    from radiusgw.accounting import AccountingEvent
    from radiusgw.store.quarantine import Quarantined


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
class Change:
    """An account that changed; ``username`` None means every account of ``realm``."""

    seq: int
    realm: str
    username: str | None


class AccountStore(Protocol):
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

    def last_change(self) -> int: ...

    def changes_since(self, seq: int) -> list[Change]: ...

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
