"""The embedded account and accounting store: one SQLite file shared by processes, one key file.

Rules:

- One ``SqliteStore`` is one connection and belongs to the thread that opened it (SQLite's rule,
  enforced by ``sqlite3``). Several worker processes and CLI commands share the file: WAL lets
  readers run beside the one writer, and a writer waits up to ``BUSY_TIMEOUT`` for the lock.
- ``synchronous=FULL``: accounting is durable once ``write_accounting`` returns (第12条: accounting
  data must never be lost). Every write is one ``BEGIN IMMEDIATE`` transaction, so a writer takes
  the lock before it reads and never fails half-way on a lock upgrade.
- The schema is created or migrated on open; its version is ``PRAGMA user_version``.
- The session tables (``radiusgw.store.sessions``) are created on open, and
  ``write_accounting`` applies its records to them in the same transaction: the sessions
  never disagree with the accounting rows. A running server acknowledges accounting once it
  is in its journal (``radiusgw.store.journal``) and applies it here a moment later, with the
  journal position in the same transaction (``journal_positions``, schema version 3), so a
  record is applied exactly once. The accounting writers of the worker processes queue for
  the write lock on a ``flock`` of ``<database>.lock`` (``_writers_lock``).
- A record the store refuses (``radiusgw.store.quarantine``) is kept aside in ``quarantine``
  (schema version 4) in the transaction that applies the rest of its batch: it never holds up
  its neighbours, the journal or a start. Schema version 4 also keeps the session octets as
  Gigawords and 32-bit count (``radiusgw.store.sessions``): every count a NAS can report fits.
- Realm names are stored lower case; usernames exactly as given. Passwords are sealed by
  ``radiusgw.store.secrets`` and bound to their row (realm, username).
- Every add/enable/disable/remove/import writes, in the same transaction, a row to
  ``account_changes``: a running server polls ``changes_since`` to drop cached accounts. An
  import writes one whole-realm row. Rows older than ``CHANGE_RETENTION`` are pruned as changes
  are written.
- The accounting spool of proxy realms (``proxy_spool``, schema version 2) is as durable as
  accounting: an entry exists once ``spool_accounting`` returns, and ids only grow (AUTOINCREMENT),
  so replaying by id replays in arrival order.
- The database keeps a sealed constant (``meta.key_check``), so a wrong key file is refused when
  the store is opened, not at the first login; and a missing key file is never silently replaced
  once passwords exist.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from radiusgw.accounting import AccountingEvent
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
from radiusgw.errors import StoreError
from radiusgw.store import authlog, quarantine
from radiusgw.store.account_rows import (
    ACCOUNT_COLUMNS,
    CHANGE_RETENTION,
    EXTRA_COLUMNS,
    MAX_TIMEOUT,
    PROGRESS_EVERY,
    SET_LOCK,
    account,
    exists_error,
    limit_error,
    lock_failures,
    missing_error,
    sealed_rows,
)
from radiusgw.store.account_rows import checked as _checked
from radiusgw.store.account_rows import over_limit as _over_limit
from radiusgw.store.account_rows import realm_name as _realm
from radiusgw.store.base import accounting_values
from radiusgw.store.connection import (
    BUSY_TIMEOUT,
    SqliteConnection,
    connect_read_only,
    use_wal,
)
from radiusgw.store.journal import Position
from radiusgw.store.multirow import MultiRow
from radiusgw.store.secrets import PasswordCipher, open_against
from radiusgw.store.session_events import apply_events, session_events
from radiusgw.store.sessions import ensure_schema, migrate_to_v4

SCHEMA_VERSION = 8
# Re-exported: the row rules are every backend's (radiusgw.store.account_rows).
__all__ = ["CHANGE_RETENTION", "MAX_TIMEOUT", "PROGRESS_EVERY", "SCHEMA_VERSION", "SqliteStore"]

_SCHEMA_V1 = (
    """CREATE TABLE accounts (
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        password BLOB NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        framed_ip TEXT,
        session_timeout INTEGER,
        idle_timeout INTEGER,
        class BLOB,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (realm, username)
    ) WITHOUT ROWID""",
    """CREATE TABLE account_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        realm TEXT NOT NULL,
        username TEXT
    )""",
    "CREATE INDEX account_changes_at ON account_changes (at)",
    """CREATE TABLE accounting (
        id INTEGER PRIMARY KEY,
        received REAL NOT NULL,
        nas_address TEXT NOT NULL,
        realm TEXT,
        username TEXT,
        status_type INTEGER,
        session_id TEXT,
        packet BLOB NOT NULL
    )""",
    "CREATE INDEX accounting_realm_received ON accounting (realm, received)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
)
# Version 2: the accounting spool of proxy realms (store-and-forward). AUTOINCREMENT so that an
# id is never reused, even after the spool was emptied: replay order and a replayer's "after"
# cursor both rest on ids only ever growing.
_SCHEMA_V2 = (
    """CREATE TABLE proxy_spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        realm TEXT NOT NULL,
        nas_address TEXT NOT NULL,
        received REAL NOT NULL,
        packet BLOB NOT NULL
    )""",
    "CREATE INDEX proxy_spool_realm ON proxy_spool (realm, id)",
)
# Version 3: how far each accounting journal has been applied (radiusgw.store.journal).
_SCHEMA_V3 = (
    """CREATE TABLE journal_positions (
        name TEXT PRIMARY KEY,
        segment INTEGER NOT NULL,
        offset INTEGER NOT NULL
    ) WITHOUT ROWID""",
)
# Version 4: refused accounting records kept aside; session octets as (Gigawords, count) and
# session time NULL when never reported (a copy of the session table, when there is one).
_SCHEMA_V4 = (*quarantine.SCHEMA, migrate_to_v4)
# Version 5: account protection and reply attributes by name (issue 17): the Calling-Station-Ids
# and reply pairs as JSON text, the failure count of a lockout and the lock's end.
_SCHEMA_V5 = (
    "ALTER TABLE accounts ADD COLUMN calling_station_id TEXT",
    "ALTER TABLE accounts ADD COLUMN reply TEXT",
    "ALTER TABLE accounts ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE accounts ADD COLUMN failure_start REAL",
    "ALTER TABLE accounts ADD COLUMN locked_until REAL",
)
_Step = str | Callable[[sqlite3.Connection], None]
# Version 6: the authentication log (radiusgw.store.authlog; issue 18.3), as it was first made.
_SCHEMA_V6 = (
    """CREATE TABLE auth_log (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        node TEXT NOT NULL,
        worker INTEGER NOT NULL,
        nas TEXT NOT NULL,
        realm TEXT,
        username TEXT NOT NULL,
        method TEXT NOT NULL,
        result TEXT NOT NULL,
        reason TEXT NOT NULL,
        framed_ip TEXT,
        lns TEXT,
        upstream TEXT
    )""",
)
# Version 7: the authentication log moves to a file of its own (its lock off the store's).
_SCHEMA_V7: tuple[_Step, ...] = (authlog.move_from_store,)
# Version 8: the session indexes by user and by LNS hold live sessions only (``ensure_schema``
# makes the new ones, radiusgw.store.sessions).
_SCHEMA_V8 = ("DROP INDEX IF EXISTS sessions_user", "DROP INDEX IF EXISTS sessions_lns")
# _MIGRATIONS[n] takes a database from user_version n to n + 1: SQL, or a function of the
# connection for a step that depends on what the file holds.
_MIGRATIONS: tuple[tuple[_Step, ...], ...] = (
    _SCHEMA_V1,
    _SCHEMA_V2,
    _SCHEMA_V3,
    _SCHEMA_V4,
    _SCHEMA_V5,
    _SCHEMA_V6,
    _SCHEMA_V7,
    _SCHEMA_V8,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_GET_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE realm = ? AND username = ?"
_INSERT_ACCOUNT = (
    f"INSERT INTO accounts (realm, username, password, enabled, {EXTRA_COLUMNS}, created,"
    " updated) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SPOOL = "INSERT INTO proxy_spool (realm, nas_address, received, packet) VALUES (?, ?, ?, ?)"
# The accounting rows go in as multi-row INSERTs (radiusgw.store.multirow).
_ACCOUNTING_INSERT = MultiRow(
    "INSERT INTO accounting (received, nas_address, realm, username, status_type, session_id,"
    " packet) VALUES ",
    columns=7,
)


class SqliteStore(SqliteConnection):
    """``AccountStore`` on one SQLite file; see the module docstring for the rules."""

    def __init__(
        self,
        db_path: Path | str,
        key_path: Path | str,
        *,
        create: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or, with ``create``, create) the database and its key file.

        ``create=False`` refuses a missing database file: commands that only read or change
        existing accounts should not leave an empty database behind after a mistyped path.
        ``read_only`` opens for reading only (``connect_read_only``): nothing is created or
        migrated, and a database of another schema version is refused.
        """
        self.db_path = Path(db_path)
        self.key_path = Path(key_path)
        self._clock = clock
        self._lock_fd: int | None = None
        if read_only:
            self._conn = connect_read_only(self.db_path)
            try:
                with self._translated():
                    self._check_version()
                    self._cipher = self._open_cipher(read_only=True)
            except BaseException:
                self._conn.close()
                raise
            return
        if str(db_path) != ":memory:":
            if create:
                _create_private_file(self.db_path)
            elif not self.db_path.exists():
                raise StoreError(f"the database {self.db_path} does not exist")
        try:
            self._conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            with self._translated():
                self._configure()
                self._migrate()
                ensure_schema(self._conn)
                self._cipher = self._open_cipher()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _configure(self) -> None:
        use_wal(self._conn)
        self._conn.execute("PRAGMA synchronous = FULL")
        # The session upsert reads the table it writes, so SQLite first copies its rows into a
        # temporary table (radiusgw.store.session_events): in memory, not in a file. In a file,
        # the applier's system time went from 3.2 to 7.4 us a record.
        self._conn.execute("PRAGMA temp_store = MEMORY")
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def _migrate(self) -> None:
        migrate(self._conn, self.db_path)

    def _check_version(self) -> None:
        """Read-only: the schema must be this version's, since nothing may migrate it."""
        check_version(self._conn, self.db_path)

    def _open_cipher(self, *, read_only: bool = False) -> PasswordCipher:
        return open_against(
            self.key_path,
            str(self.db_path),
            read_only=read_only,
            stored_check=self._key_check,
            store_check=self._store_key_check,
        )

    def _store_key_check(self, check: bytes) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?)", (check,)
            )

    def _key_check(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        return None if row is None else bytes(row[0])

    # -- accounts ----------------------------------------------------------------------------

    def add_account(self, realm: str, row: AccountRow, *, max_accounts: int | None) -> None:
        realm = _realm(realm)
        extras = _checked(realm, row)
        sealed = self._cipher.encrypt(realm, row.username, row.password)
        now = self._clock()
        with self._transaction():
            if self._exists(realm, row.username):
                raise exists_error(realm, row.username)
            if max_accounts is not None:
                count = self._count(realm)
                if count + 1 > max_accounts:
                    raise limit_error(realm, max_accounts, count)
            self._conn.execute(_INSERT_ACCOUNT, (realm, row.username, sealed, *extras, now, now))
            self._record_change(realm, row.username, now)

    def import_accounts(
        self,
        realm: str,
        rows: Iterable[AccountRow],
        *,
        max_accounts: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Add every row or none; return how many were added.

        The rows are checked and sealed first, outside any lock (that is most of the time);
        then one short ``BEGIN IMMEDIATE`` transaction checks them against the store and inserts
        them all, so the server's accounting writer is held up as little as possible.
        ``progress(n)`` is told the number of rows handled so far. A refusal names the line
        (``AccountRow.line``, else the row's position) and leaves the store unchanged.
        """
        realm = _realm(realm)
        now = self._clock()
        with self._translated():
            before = self._count(realm)  # to stop early; checked again under the lock
        values, lines = sealed_rows(
            realm,
            rows,
            before=before,
            max_accounts=max_accounts,
            cipher=self._cipher,
            now=now,
            progress=progress,
        )
        if not values:
            return 0
        with self._transaction():
            existing = {
                r[0]
                for r in self._conn.execute(
                    "SELECT username FROM accounts WHERE realm = ?", (realm,)
                )
            }
            for i, v in enumerate(values):
                if v[1] in existing:
                    raise StoreError(
                        f"{lines[i]}: account {v[1]!r} already exists in realm {realm!r}; "
                        "nothing was imported"
                    )
            if max_accounts is not None and len(existing) + len(values) > max_accounts:
                first_over = max(0, max_accounts - len(existing))
                raise _over_limit(lines[first_over], realm, max_accounts, len(existing))
            self._conn.executemany(_INSERT_ACCOUNT, values)
            self._record_change(realm, None, now)
        if progress is not None:
            progress(len(values))
        return len(values)

    def get_account(self, realm: str, username: str) -> Account | None:
        # The server's hot path on a cache miss: one primary-key look-up; sqlite3 keeps the
        # statement prepared in its per-connection cache.
        realm = realm.lower()
        try:
            row = self._conn.execute(_GET_ACCOUNT, (realm, username)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None:
            return None
        return self._account(realm, username, row)

    def list_accounts(self, realm: str) -> list[Account]:
        realm = realm.lower()
        with self._translated():
            rows = self._conn.execute(
                f"SELECT username, {ACCOUNT_COLUMNS} FROM accounts WHERE realm = ?"
                " ORDER BY username",
                (realm,),
            ).fetchall()
        return [self._account(realm, r[0], r[1:]) for r in rows]

    def count_accounts(self, realm: str) -> int:
        with self._translated():
            return self._count(realm.lower())

    def set_enabled(self, realm: str, username: str, enabled: bool) -> None:
        realm = realm.lower()
        now = self._clock()
        with self._transaction():
            cur = self._conn.execute(
                "UPDATE accounts SET enabled = ?, updated = ? WHERE realm = ? AND username = ?",
                (int(enabled), now, realm, username),
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    def set_password(self, realm: str, username: str, password: str) -> None:
        """Replace the password (sealed as ``add_account`` seals it; the API's reset)."""
        realm = realm.lower()
        sealed = self._cipher.encrypt(realm, username, password)
        now = self._clock()
        with self._transaction():
            cur = self._conn.execute(
                "UPDATE accounts SET password = ?, updated = ? WHERE realm = ? AND username = ?",
                (sealed, now, realm, username),
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    def remove_account(self, realm: str, username: str) -> None:
        realm = realm.lower()
        now = self._clock()
        with self._transaction():
            cur = self._conn.execute(
                "DELETE FROM accounts WHERE realm = ? AND username = ?", (realm, username)
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    # -- account protection (issue 17.4) -----------------------------------------------------

    def record_failures(self, failures: Sequence[FailedLogin]) -> list[Lockout]:
        """Count failed logins (``account_rows.COUNT_FAILURE``) in one transaction; an account
        that reaches its ``lockout_after`` is locked, and the change log says so, so that every
        worker drops it from its cache. Returned: the accounts locked by this call."""
        if not failures:
            return []
        with self._transaction():
            return lock_failures(failures, self._conn.execute, self._record_change)

    def unlock_account(self, realm: str, username: str) -> None:
        """``account unlock``: no lock and no failures counted; the change log says so."""
        realm = realm.lower()
        now = self._clock()
        with self._transaction():
            cur = self._conn.execute(SET_LOCK, (None, now, realm, username))
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    # -- changes -----------------------------------------------------------------------------

    def last_change(self) -> int:
        """The highest change number ever issued (0 if none): AUTOINCREMENT never reuses one."""
        with self._translated():
            row = self._conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'account_changes'"
            ).fetchone()
        return 0 if row is None else int(row[0])

    def changes_since(self, seq: int) -> list[Change]:
        """Changes numbered above ``seq``, oldest first (kept for ``CHANGE_RETENTION`` seconds)."""
        with self._translated():
            rows = self._conn.execute(
                "SELECT seq, realm, username FROM account_changes WHERE seq > ? ORDER BY seq",
                (seq,),
            ).fetchall()
        return [Change(int(s), r, u) for s, r, u in rows]

    def oldest_change(self) -> int:
        """The lowest change number still kept (0 if none).

        A poller whose last seen number is below ``oldest_change() - 1`` missed pruned changes
        and must forget everything it cached.
        """
        with self._translated():
            row = self._conn.execute("SELECT MIN(seq) FROM account_changes").fetchone()
        return 0 if row[0] is None else int(row[0])

    # -- accounting --------------------------------------------------------------------------

    def write_accounting(
        self, records: Sequence[AccountingRecord], journal: tuple[str, Position] | None = None
    ) -> list[Quarantined]:
        """Insert ``records`` in one transaction and commit (durably) before returning.

        The same transaction applies them to the session table (Start, Interim-Update, Stop,
        Accounting-On/Off; ``radiusgw.store.sessions``), so a session change is durable
        exactly when its record is; and, with ``journal`` (name, position), records that
        journal's position as applied.

        Records the store refuses are kept aside, the rest applied (``radiusgw.store.quarantine``);
        returned: those kept aside, none on the happy path. A ``StoreError`` (the database
        locked, full, unwritable) leaves everything as it was.
        """
        if not records and journal is None:
            return []
        events = session_events(records)  # parsed before the lock: it holds only for the SQL
        try:
            with self._writers_lock(), self._transaction():
                try:
                    self._insert_accounting(records, events)
                except Exception as exc:
                    if quarantine.refused(exc):
                        raise _Refused from exc  # rolls back: applied apart below
                    raise
                self._record_position(journal)
            return []
        except _Refused:
            pass
        with self._writers_lock(), self._transaction():
            left_out = quarantine.apply_apart(self._conn, records, self._insert_accounting)
            kept = quarantine.put_aside(
                self._conn, left_out, None if journal is None else journal[0], self._clock()
            )
            self._record_position(journal)
        return kept

    def _insert_accounting(
        self, records: Sequence[AccountingRecord], events: Sequence[AccountingEvent] | None = None
    ) -> None:
        """The accounting rows of ``records`` and their session changes, in the caller's
        transaction; ``events`` are ``session_events(records)`` when the caller has them."""
        values: list[object] = []
        for r in records:
            values += accounting_values(r)
        _ACCOUNTING_INSERT.execute(self._conn, values)
        apply_events(self._conn, session_events(records) if events is None else events)

    def _record_position(self, journal: tuple[str, Position] | None) -> None:
        if journal is not None:
            name, (segment, offset) = journal
            self._conn.execute(
                "INSERT OR REPLACE INTO journal_positions (name, segment, offset) VALUES (?, ?, ?)",
                (name, segment, offset),
            )

    def journal_position(self, name: str) -> Position | None:
        """How far journal ``name`` has been applied; None if never."""
        with self._translated():
            row = self._conn.execute(
                "SELECT segment, offset FROM journal_positions WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else Position(int(row[0]), int(row[1]))

    @contextmanager
    def _writers_lock(self) -> Iterator[None]:
        """Queue behind the other processes' accounting writers on a blocking ``flock``.

        SQLite's busy handler polls a held write lock with sleeps of 1, 2, 5, 10 ms..., so two
        workers' writers, each committing in a millisecond or two, would mostly sleep; a
        blocked ``flock`` wakes as soon as the holder releases it. It only orders the writers:
        the transaction is still SQLite's (``BEGIN IMMEDIATE``), and others still wait as before.
        """
        if str(self.db_path) == ":memory:":
            yield  # one connection: nobody to queue behind
            return
        if self._lock_fd is None:  # opened by the first write: other commands never make it
            try:
                self._lock_fd = os.open(f"{self.db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the lock file {self.db_path}.lock: {exc.strerror}"
                ) from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def count_accounting(self) -> int:
        with self._translated():
            return int(self._conn.execute("SELECT COUNT(*) FROM accounting").fetchone()[0])

    # -- the proxy accounting spool ----------------------------------------------------------

    def spool_accounting(self, realm: str, packet: bytes, nas_address: str, received: float) -> int:
        """Hold one accounting request for ``realm``'s upstream; durable on return; its id."""
        return self.spool_accounting_many([(realm, packet, nas_address, received)])[0]

    def spool_accounting_many(self, entries: Sequence[tuple[str, bytes, str, float]]) -> list[int]:
        """Spool ``(realm, packet, nas_address, received)`` entries in one durable transaction.

        One commit (one fsync with ``synchronous=FULL``) for the batch: the writer thread's way
        to keep up with a NAS while the upstream is down. Ids grow in the order given.
        """
        ids: list[int] = []
        if not entries:
            return ids
        with self._transaction():
            for realm, packet, nas_address, received in entries:
                cur = self._conn.execute(
                    _INSERT_SPOOL, (realm.lower(), nas_address, received, packet)
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def spooled(self, realm: str, limit: int, *, after: int = 0) -> list[SpoolEntry]:
        """Up to ``limit`` entries of ``realm`` with an id above ``after``, oldest first."""
        with self._translated():
            rows = self._conn.execute(
                "SELECT id, realm, packet, nas_address, received FROM proxy_spool"
                " WHERE realm = ? AND id > ? ORDER BY id LIMIT ?",
                (realm.lower(), after, limit),
            ).fetchall()
        return [SpoolEntry(int(i), r, bytes(p), n, float(t)) for i, r, p, n, t in rows]

    def unspool(self, ids: Iterable[int]) -> int:
        """Remove delivered entries in one durable transaction; how many were there."""
        values = [(int(i),) for i in ids]
        if not values:
            return 0
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany("DELETE FROM proxy_spool WHERE id = ?", values)
            return self._conn.total_changes - before

    def spool_counts(self) -> dict[str, int]:
        """Entries held per realm (what a restarted gateway has left to replay)."""
        with self._translated():
            rows = self._conn.execute(
                "SELECT realm, COUNT(*) FROM proxy_spool GROUP BY realm"
            ).fetchall()
        return {r: int(n) for r, n in rows}

    # -- helpers -----------------------------------------------------------------------------

    def _exists(self, realm: str, username: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM accounts WHERE realm = ? AND username = ?", (realm, username)
        ).fetchone()
        return row is not None

    def _count(self, realm: str) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM accounts WHERE realm = ?", (realm,))
        return int(row.fetchone()[0])

    def _record_change(self, realm: str, username: str | None, now: float) -> None:
        self._conn.execute(
            "INSERT INTO account_changes (at, realm, username) VALUES (?, ?, ?)",
            (now, realm, username),
        )
        # Indexed on ``at``: deleting nothing costs one index probe.
        self._conn.execute("DELETE FROM account_changes WHERE at < ?", (now - CHANGE_RETENTION,))

    def _account(self, realm: str, username: str, row: Sequence[Any]) -> Account:
        password = self._cipher.decrypt(realm, username, bytes(row[0]))
        return account(realm, username, password, row[1:])


class _Refused(Exception):
    """Inside ``write_accounting``: the batch was refused; its cause is the first refusal."""


def check_version(conn: sqlite3.Connection, db_path: Path) -> None:
    """For a reader that may not migrate: the schema must be exactly this version's."""
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise _newer_schema(db_path, version)
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"the database {db_path} has schema version {version}, written by an "
            f"older radiusgw; a command that writes to it (radiusgw serve, account add) "
            f"upgrades it to version {SCHEMA_VERSION}"
        )


def _newer_schema(db_path: Path, version: int) -> StoreError:
    return StoreError(
        f"the database {db_path} has schema version {version}, written by a "
        f"newer radiusgw; this one knows versions up to {SCHEMA_VERSION}"
    )


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Bring the database to ``SCHEMA_VERSION`` in one transaction (nothing if it is there).

    Also run by readers on their own connection (``SessionTable``), so that a command run
    before the upgraded server finds the tables as it reads them.
    """
    if _user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)  # again, under the lock: another process may have won
        if version > SCHEMA_VERSION:
            raise _newer_schema(db_path, version)
        if version == 0 and conn.execute("SELECT 1 FROM sqlite_master").fetchone():
            raise StoreError(f"{db_path} is an SQLite database of something else")
        for step in _MIGRATIONS[version:]:
            for statement in step:
                if isinstance(statement, str):
                    conn.execute(statement)
                else:
                    statement(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _create_private_file(path: Path) -> None:
    """Create the database file as 0600 (SQLite gives its -wal and -shm files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create the database {path}: {exc.strerror}") from None
    os.close(fd)
