"""What an account row must be before any store keeps it, and the sentences that refuse one.

Every backend (SQLite, PostgreSQL) checks rows here, so ``account add`` and ``account import``
refuse the same rows with the same sentences whatever ``--db`` names. Nothing here touches a
database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from radiusgw.domain import AccountRow
from radiusgw.errors import AccountLimitError, StoreError
from radiusgw.store.secrets import PasswordCipher

CHANGE_RETENTION = 3600.0  # seconds a change is kept; a running server polls every second or so
PROGRESS_EVERY = 5000  # rows between progress(n) calls of import_accounts

# RFC 2865 §5.1: User-Name is at most 253 octets, and it carries "user@realm".
MAX_USER_NAME = 253
# RFC 2865 §5.2: User-Password hides at most 128 octets.
MAX_PASSWORD = 128
# RFC 2865 §5.25: one Class attribute carries at most 253 octets.
MAX_CLASS = 253
# RFC 2865 §5.27/§5.28: Session-Timeout and Idle-Timeout are 32-bit unsigned seconds.
MAX_TIMEOUT = 2**32 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The checked, non-secret columns of one account: framed_ip, session_timeout, idle_timeout, class.
Extras = tuple[str | None, int | None, int | None, bytes | None]


def realm_name(realm: str) -> str:
    """The realm as stored (lower case); StoreError if it is no realm name."""
    name = realm.strip().lower()
    if not name or name != realm.lower():
        raise StoreError(f"{realm!r} is not a realm name")
    return name


def checked(realm: str, row: AccountRow) -> Extras:
    """The row's optional columns, normalised; StoreError (one sentence) if any is unusable."""
    name = row.username
    if not name:
        raise StoreError("the username is empty")
    if _CONTROL.search(name):
        raise StoreError(f"username {name!r} contains a control character")
    if len(f"{name}@{realm}".encode()) > MAX_USER_NAME:
        raise StoreError(
            f"username {name!r} is too long: user@realm must fit in {MAX_USER_NAME} octets "
            "(RFC 2865 §5.1)"
        )
    if not row.password:
        raise StoreError(f"the password of {name!r} is empty")
    if len(row.password.encode()) > MAX_PASSWORD:
        raise StoreError(
            f"the password of {name!r} is longer than {MAX_PASSWORD} octets (RFC 2865 §5.2)"
        )
    framed_ip = None
    if row.framed_ip is not None:
        try:
            framed_ip = str(ipaddress.IPv4Address(row.framed_ip))
        except ValueError:
            raise StoreError(
                f"framed_ip {row.framed_ip!r} of {name!r} is not an IPv4 address "
                "(Framed-IP-Address, RFC 2865 §5.8)"
            ) from None
    for label, value in (
        ("session_timeout", row.session_timeout),
        ("idle_timeout", row.idle_timeout),
    ):
        if value is not None and not 1 <= value <= MAX_TIMEOUT:
            raise StoreError(
                f"{label} {value} of {name!r} is not between 1 and {MAX_TIMEOUT} seconds"
            )
    if row.class_ is not None and not 1 <= len(row.class_) <= MAX_CLASS:
        raise StoreError(f"the class of {name!r} must be 1 to {MAX_CLASS} octets")
    return framed_ip, row.session_timeout, row.idle_timeout, row.class_


def exists_error(realm: str, username: str) -> StoreError:
    return StoreError(f"account {username!r} already exists in realm {realm!r}")


def missing_error(realm: str, username: str) -> StoreError:
    return StoreError(f"there is no account {username!r} in realm {realm!r}")


def limit_error(realm: str, max_accounts: int, count: int) -> AccountLimitError:
    """``account add`` past ``max_accounts`` (第7条)."""
    return AccountLimitError(
        f"realm {realm!r} allows {max_accounts} accounts (max_accounts, 第7条); it has {count}"
    )


def over_limit(here: str, realm: str, max_accounts: int, existing: int) -> AccountLimitError:
    """``account import`` past ``max_accounts`` (第7条), naming the first line that does not fit."""
    room = max(0, max_accounts - existing)
    return AccountLimitError(
        f"{here}: realm {realm!r} allows {max_accounts} accounts (max_accounts, 第7条); "
        f"it has {existing}, room for {room} more; nothing was imported"
    )


def where(index: int, row: AccountRow) -> str:
    """Where an imported row came from: its CSV line, else its position (from 1)."""
    return f"line {row.line}" if row.line is not None else f"row {index}"


def sealed_rows(
    realm: str,
    rows: Iterable[AccountRow],
    *,
    before: int,
    max_accounts: int | None,
    cipher: PasswordCipher,
    now: float,
    progress: Callable[[int], None] | None,
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """An import's rows checked and sealed, outside any lock, the same for every backend: the
    values to insert (realm, username, sealed password, the extras, created, updated) and where
    each came from. The first bad or repeated row, or the one past ``max_accounts`` counting
    the ``before`` accounts already there, refuses the whole import."""
    values: list[tuple[Any, ...]] = []
    lines: list[str] = []
    first_seen: dict[str, str] = {}
    for index, row in enumerate(rows, start=1):
        here = where(index, row)
        try:
            extras = checked(realm, row)
        except StoreError as exc:
            raise StoreError(f"{here}: {exc}; nothing was imported") from None
        if row.username in first_seen:
            raise StoreError(
                f"{here}: account {row.username!r} appears twice in the input (first at "
                f"{first_seen[row.username]}); nothing was imported"
            )
        first_seen[row.username] = here
        if max_accounts is not None and before + index > max_accounts:
            raise over_limit(here, realm, max_accounts, before)
        sealed = cipher.encrypt(realm, row.username, row.password)
        values.append((realm, row.username, sealed, *extras, now, now))
        lines.append(here)
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(index)
    return values, lines
