"""What an account row must be before any store keeps it, and the sentences that refuse one.

Every backend (SQLite, PostgreSQL) checks rows here, so ``account add`` and ``account import``
refuse the same rows with the same sentences whatever ``--db`` names. Nothing here touches a
database.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from radiusgw.domain import Account, AccountRow, FailedLogin, Lockout
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

# RFC 2865 §5.31: Calling-Station-Id is one attribute, at most 253 octets.
MAX_CALLING_STATION = 253

# The checked, non-secret columns of one account: framed_ip, session_timeout, idle_timeout,
# class, calling_station_id and reply (JSON text, issue 17).
Extras = tuple[str | None, int | None, int | None, bytes | None, str | None, str | None]
# The columns after (realm, username) that every backend reads, in this order (``account``).
ACCOUNT_COLUMNS = (
    "password, enabled, framed_ip, session_timeout, idle_timeout, class,"
    " calling_station_id, reply, locked_until"
)
# The columns ``checked`` gives values for, in the order of ``Extras``.
EXTRA_COLUMNS = "framed_ip, session_timeout, idle_timeout, class, calling_station_id, reply"

# Account protection (issue 17.4), the same SQL on every backend (``?`` placeholders; the
# PostgreSQL store writes them ``%s``). A failure counts only while the account is not locked;
# a count runs ``lockout_window`` seconds from its first failure, then the next failure starts
# a new one. Parameters: (at - window) twice, at, realm, username, at.
COUNT_FAILURE = (
    "UPDATE accounts SET"
    " failures = CASE WHEN failure_start IS NULL OR failure_start <= ? THEN 1"
    " ELSE failures + 1 END,"
    " failure_start = CASE WHEN failure_start IS NULL OR failure_start <= ? THEN ?"
    " ELSE failure_start END"
    " WHERE realm = ? AND username = ? AND (locked_until IS NULL OR locked_until <= ?)"
    " RETURNING failures"
)
# At ``lockout_after`` failures: locked until (at + lockout_time), the count starts again.
# Parameters: locked_until, updated, realm, username. Also ``account unlock`` (NULL).
SET_LOCK = (
    "UPDATE accounts SET locked_until = ?, failures = 0, failure_start = NULL, updated = ?"
    " WHERE realm = ? AND username = ?"
)


def failure_order(failures: Sequence[FailedLogin]) -> list[FailedLogin]:
    """A batch of failures in one order on every node (rows locked in the same order: no
    deadlock between two nodes' batches)."""
    return sorted(failures, key=lambda f: (f.realm, f.username, f.at))


def lock_failures(
    failures: Sequence[FailedLogin],
    execute: Callable[[str, tuple[object, ...]], Any],
    record_change: Callable[[str, str, float], None],
    *,
    count_sql: str = COUNT_FAILURE,
    lock_sql: str = SET_LOCK,
) -> list[Lockout]:
    """Both stores' ``record_failures``, run inside their transaction (``execute``: the
    connection's, ``count_sql`` and ``lock_sql``: ``COUNT_FAILURE`` and ``SET_LOCK`` in the
    driver's placeholders). Each failure is counted; an account that reaches its
    ``lockout_after`` is locked and its change recorded. The accounts locked, in order."""
    locked: list[Lockout] = []
    for f in failure_order(failures):
        start = f.at - f.lockout_window
        realm = f.realm.lower()
        row = execute(count_sql, (start, start, f.at, realm, f.username, f.at)).fetchone()
        if row is None or int(row[0]) < f.lockout_after:
            continue
        until = f.at + f.lockout_time
        execute(lock_sql, (until, f.at, realm, f.username))
        record_change(realm, f.username, f.at)
        locked.append(Lockout(realm, f.username, until))
    return locked


def stored_list(values: Sequence[Any]) -> str | None:
    """Calling-Station-Ids or reply pairs as the store keeps them: JSON text, NULL for none."""
    return json.dumps([list(v) if isinstance(v, tuple) else v for v in values]) if values else None


def account(realm: str, username: str, password: str, row: Sequence[Any]) -> Account:
    """An ``Account`` from the ``ACCOUNT_COLUMNS`` after the password (already decrypted)."""
    enabled, framed_ip, session_timeout, idle_timeout, class_, stations, reply, locked = row
    return Account(
        realm=realm,
        username=username,
        password=password,
        enabled=bool(enabled),
        framed_ip=framed_ip,
        session_timeout=session_timeout,
        idle_timeout=idle_timeout,
        class_=None if class_ is None else bytes(class_),
        calling_station_ids=tuple(json.loads(stations)) if stations else (),
        reply=tuple((str(n), str(v)) for n, v in json.loads(reply)) if reply else (),
        locked_until=None if locked is None else float(locked),
    )


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
    for station in row.calling_station_ids:
        if not station or _CONTROL.search(station) or len(station.encode()) > MAX_CALLING_STATION:
            raise StoreError(
                f"calling_station_id {station!r} of {name!r} must be 1 to "
                f"{MAX_CALLING_STATION} octets of printable text (RFC 2865 §5.31)"
            )
    # Compared case-insensitively (a MAC in either case): kept lower case, each once.
    stations = tuple(dict.fromkeys(s.lower() for s in row.calling_station_ids))
    for attribute, _ in row.reply:
        if not attribute or _CONTROL.search(attribute):
            raise StoreError(f"reply attribute {attribute!r} of {name!r} is not a name")
    return (
        framed_ip,
        row.session_timeout,
        row.idle_timeout,
        row.class_,
        stored_list(stations),
        stored_list(row.reply),
    )


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
