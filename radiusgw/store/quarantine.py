"""Accounting records the store refused, kept aside instead of blocking every record behind them.

An acknowledged record is never lost (第12条, RFC 2866 §2), and one record that the store cannot
take must not hold up the others, nor the journal, nor the next start. So:

- ``refused(exc)`` tells a refusal of the data (a value SQLite cannot bind, a constraint) from
  trouble with the database itself (locked, busy, full, read-only, an I/O error, a corrupt or
  missing file, or SQL this version does not match): only a refusal is the records' fault.
  The trouble is retried with the whole batch, as before; a refusal would fail again.
- After a refused batch, ``apply_apart`` applies it again in one transaction, halving the
  parts that fail (each under a savepoint) until the refused records stand alone: the others
  are applied, in order, at a cost of about log2(batch) partial tries per refused record. The
  happy path pays nothing: this runs only after a failure.
- ``put_aside`` keeps each refused record whole in the ``quarantine`` table (schema version 4),
  with why and from which journal, in the same transaction that applies its neighbours and
  records the journal position past them all. ``radiusgw accounting quarantine`` lists them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import astuple, replace
from pathlib import Path
from typing import Any, Protocol, overload

from radiusgw.domain import AccountingRecord, Quarantined
from radiusgw.store.connection import SqliteConnection, connect_read_only, has_table

SCHEMA = (
    """CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        quarantined REAL NOT NULL,
        received REAL NOT NULL,
        nas_address TEXT NOT NULL,
        realm TEXT,
        username TEXT,
        status_type INTEGER,
        session_id TEXT,
        packet BLOB NOT NULL,
        reason TEXT NOT NULL,
        journal TEXT
    )""",
)

# SQLite's primary result codes that say the data was refused (sqlite3.h): CONSTRAINT (a
# trigger's RAISE too), MISMATCH, TOOBIG, RANGE. Every other code is the database's trouble.
_REFUSING_CODES = frozenset({18, 19, 20, 25})
# Raised by sqlite3 while binding a value (an int beyond 64 bits, text that will not encode)
# or by building a record's parameters: the record's fault.
_REFUSING_ERRORS = (OverflowError, ValueError, TypeError, sqlite3.DataError, sqlite3.IntegrityError)
_INSERT = (
    "INSERT INTO quarantine (quarantined, received, nas_address, realm, username, status_type,"
    " session_id, packet, reason, journal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def refused(exc: BaseException) -> bool:
    """Whether ``exc``, raised applying records, refuses the data rather than the database."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _REFUSING_CODES  # extended codes keep the primary one low
    return isinstance(exc, _REFUSING_ERRORS)


def reason_of(exc: BaseException) -> str:
    """Why a record was refused, in one line: the error's class and the server's own message.

    PostgreSQL's errors (psycopg) read as the primary message only: their text goes on over
    lines of CONTEXT that quote the refused row (COPY's line), which the record kept aside
    holds already.
    """
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    return f"{type(exc).__name__}: {primary or exc}"


class _Executes(Protocol):
    def execute(self, sql: Any, /) -> Any: ...


def apply_apart(
    conn: _Executes,
    records: Sequence[AccountingRecord],
    apply: Callable[[Sequence[AccountingRecord]], None],
    is_refused: Callable[[BaseException], bool] = refused,
) -> list[tuple[AccountingRecord, str]]:
    """Apply ``records`` with ``apply`` inside the caller's transaction, refused ones left out;
    the refused records with the reason, in order. A non-refusal error propagates.

    Backend-neutral: ``conn`` is any connection that runs SAVEPOINT statements (sqlite3's,
    psycopg's), ``is_refused`` the backend's ``refused``."""
    left_out: list[tuple[AccountingRecord, str]] = []
    parts = [records]
    while parts:
        part = parts.pop()
        conn.execute("SAVEPOINT apart")
        try:
            apply(part)
        except Exception as exc:
            conn.execute("ROLLBACK TO apart")
            conn.execute("RELEASE apart")
            if not is_refused(exc):
                raise
            if len(part) == 1:
                left_out.append((part[0], reason_of(exc)))
            else:
                half = len(part) // 2
                parts += (part[half:], part[:half])  # the first half is popped, applied first
        else:
            conn.execute("RELEASE apart")
    return left_out


def put_aside(
    conn: sqlite3.Connection,
    left_out: Sequence[tuple[AccountingRecord, str]],
    journal: str | None,
    now: float,
) -> list[Quarantined]:
    """Insert the refused records into ``quarantine`` in the caller's transaction."""
    kept = []
    for record, reason in left_out:
        entry = entry_of(record, reason, journal, now)
        cursor = conn.execute(_INSERT, astuple(entry)[1:])
        kept.append(replace(entry, id=int(cursor.lastrowid or 0)))
    return kept


def entry_of(record: AccountingRecord, reason: str, journal: str | None, now: float) -> Quarantined:
    """The quarantine row of a refused ``record`` (its id 0 until stored), its text made safe
    to bind: a refused record's fields may be why it was refused."""
    return Quarantined(
        id=0,
        quarantined=now,
        received=float(record.received),
        nas_address=_safe(record.nas_address),
        realm=_safe(record.realm),
        username=_safe(record.username),
        status_type=record.status_type,
        session_id=_safe(record.session_id),
        packet=bytes(record.packet),
        reason=_safe(reason),
        journal=journal,
    )


@overload
def _safe(text: str) -> str: ...
@overload
def _safe(text: str | None) -> str | None: ...
def _safe(text: str | None) -> str | None:
    """Text that binds whatever it holds, in SQLite and PostgreSQL (whose text has no NUL)."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


class QuarantineTable(SqliteConnection):
    """The kept-aside records, read on a connection of its own (``accounting quarantine``)."""

    def __init__(self, db_path: Path | str) -> None:
        # Read-only (connect_read_only): a command that only reads creates and switches nothing.
        self.db_path = Path(db_path)
        self._conn = connect_read_only(self.db_path)

    def rows(self) -> list[Quarantined]:
        """Every record kept aside, oldest first (none in a database older than the table)."""
        with self._translated():
            if not has_table(self._conn, "quarantine"):
                return []
            rows = self._conn.execute(
                "SELECT id, quarantined, received, nas_address, realm, username, status_type,"
                " session_id, packet, reason, journal FROM quarantine ORDER BY id"
            ).fetchall()
        return [_entry(row) for row in rows]

    def close(self) -> None:
        self._conn.close()


def _entry(row: Sequence[Any]) -> Quarantined:
    i, at, received, nas, realm, username, status, session_id, packet, reason, journal = row
    return Quarantined(
        id=int(i),
        quarantined=float(at),
        received=float(received),
        nas_address=str(nas),
        realm=realm,
        username=username,
        status_type=status,
        session_id=session_id,
        packet=bytes(packet),
        reason=str(reason),
        journal=journal,
    )
