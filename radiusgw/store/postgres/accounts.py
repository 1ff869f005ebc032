"""The accounts of a fleet in PostgreSQL: the account half of ``AccountStore``.

Same semantics and the same sentences as ``SqliteStore`` (the row rules are
``radiusgw.store.account_rows``; passwords are sealed by the same ``PasswordCipher``, bound to
their row, with the key in a file apart from the database, checked against ``meta.key_check``).

Rules:

- One ``PostgresAccountStore`` is one connection, used by one thread at a time (psycopg 3,
  synchronous: the store runs on worker threads, never on the event loop). It opens only a
  database at this radiusgw's schema version (``schema.check_schema``): ``radiusgw db migrate``
  creates and upgrades it, a node never does.
- ``max_accounts`` (第7条) holds across every node: an add or an import takes the realm's
  transaction-scoped advisory lock before it counts, so two nodes adding to one realm at once
  are serialised and the second one counts the first one's row (READ COMMITTED: each statement
  after the lock sees what committed before it).
- Every add/enable/disable/remove/import writes, in its transaction, one ``account_changes`` row
  numbered by ``account_change_counter`` (gap-free, committed in order: ``schema``) and sends
  ``NOTIFY radiusgw_accounts`` with that number; PostgreSQL delivers a notification only when
  its transaction commits. An import is one whole-realm change. Rows older than
  ``CHANGE_RETENTION`` are pruned as changes are written.
- An import is all or nothing: rows are checked and sealed first, outside any transaction, then
  one transaction checks them against the store and loads them with COPY.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from radiusgw.domain import Account, AccountRow, Change, FailedLogin, Lockout
from radiusgw.errors import StoreError
from radiusgw.store.account_rows import (
    ACCOUNT_COLUMNS,
    CHANGE_RETENTION,
    COUNT_FAILURE,
    EXTRA_COLUMNS,
    SET_LOCK,
    account,
    checked,
    exists_error,
    limit_error,
    lock_failures,
    missing_error,
    over_limit,
    realm_name,
    sealed_rows,
)
from radiusgw.store.postgres.connection import connect, translated
from radiusgw.store.postgres.schema import check_schema
from radiusgw.store.postgres.url import redacted
from radiusgw.store.secrets import PasswordCipher, open_against

CHANNEL = "radiusgw_accounts"  # LISTEN radiusgw_accounts: the payload is the change number

_GET_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE realm = %s AND username = %s"
_INSERT_ACCOUNT = (
    f"INSERT INTO accounts (realm, username, password, enabled, {EXTRA_COLUMNS}, created,"
    " updated) VALUES (%s, %s, %s, TRUE, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_COPY_ACCOUNTS = (
    f"COPY accounts (realm, username, password, {EXTRA_COLUMNS}, created, updated) FROM STDIN"
)
# The shared lockout SQL (``account_rows``) in psycopg's placeholders.
_COUNT_FAILURE = COUNT_FAILURE.replace("?", "%s")
_SET_LOCK = SET_LOCK.replace("?", "%s")


class PostgresAccountStore:
    """The accounts of ``AccountStore`` on PostgreSQL; see the module docstring for the rules."""

    def __init__(
        self,
        url: str,
        key_path: Path | str,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        conn: psycopg.Connection[tuple[Any, ...]] | None = None,
    ) -> None:
        """Connect to ``url`` and open the password key at ``key_path``.

        The database must have been migrated (``radiusgw db migrate``). ``read_only`` creates
        no key file and writes nothing (the commands that only read). ``conn``: an autocommit
        connection to ``url`` to use instead of a new one (a ``PostgresBackend``'s own).
        """
        self.url = url
        self.where = redacted(url)
        self.key_path = Path(key_path)
        self._clock = clock
        self._conn = connect(url) if conn is None else conn
        try:
            with translated(url):
                check_schema(self._conn, self.where)
                self._cipher = self._open_cipher(read_only=read_only)
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresAccountStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open_cipher(self, *, read_only: bool) -> PasswordCipher:
        return open_against(
            self.key_path,
            self.where,
            read_only=read_only,
            stored_check=self._key_check,
            store_check=self._store_key_check,
        )

    def _store_key_check(self, check: bytes) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('key_check', %s) ON CONFLICT DO NOTHING",
            (check,),
        )

    def _key_check(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        return None if row is None else bytes(row[0])

    # -- accounts ----------------------------------------------------------------------------

    def add_account(self, realm: str, row: AccountRow, *, max_accounts: int | None) -> None:
        realm = realm_name(realm)
        extras = checked(realm, row)
        sealed = self._cipher.encrypt(realm, row.username, row.password)
        now = self._clock()
        with translated(self.url), self._conn.transaction():
            self._lock_realm(realm)
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
        """Add every row or none; return how many were added (``SqliteStore.import_accounts``)."""
        realm = realm_name(realm)
        now = self._clock()
        with translated(self.url):
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
        with translated(self.url), self._conn.transaction():
            self._lock_realm(realm)
            existing = {
                str(r[0])
                for r in self._conn.execute(
                    "SELECT username FROM accounts WHERE realm = %s", (realm,)
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
                raise over_limit(lines[first_over], realm, max_accounts, len(existing))
            with self._conn.cursor() as cur, cur.copy(_COPY_ACCOUNTS) as copy:
                for v in values:
                    copy.write_row(v)
            self._record_change(realm, None, now)
        if progress is not None:
            progress(len(values))
        return len(values)

    def get_account(self, realm: str, username: str) -> Account | None:
        # The server's hot path on a cache miss: one primary-key look-up, which psycopg
        # prepares on the server once it has run a few times (prepare_threshold).
        realm = realm.lower()
        with translated(self.url):
            row = self._conn.execute(_GET_ACCOUNT, (realm, username)).fetchone()
        if row is None:
            return None
        return self._account(realm, username, row)

    def list_accounts(self, realm: str) -> list[Account]:
        realm = realm.lower()
        with translated(self.url):
            rows = self._conn.execute(
                f"SELECT username, {ACCOUNT_COLUMNS} FROM accounts WHERE realm = %s"
                ' ORDER BY username COLLATE "C"',
                (realm,),
            ).fetchall()
        return [self._account(realm, str(r[0]), r[1:]) for r in rows]

    def count_accounts(self, realm: str) -> int:
        with translated(self.url):
            return self._count(realm.lower())

    def set_enabled(self, realm: str, username: str, enabled: bool) -> None:
        realm = realm.lower()
        now = self._clock()
        with translated(self.url), self._conn.transaction():
            cur = self._conn.execute(
                "UPDATE accounts SET enabled = %s, updated = %s WHERE realm = %s AND username = %s",
                (enabled, now, realm, username),
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    def set_password(self, realm: str, username: str, password: str) -> None:
        """Replace the password (sealed as ``add_account`` seals it; the API's reset)."""
        realm = realm.lower()
        sealed = self._cipher.encrypt(realm, username, password)
        now = self._clock()
        with translated(self.url), self._conn.transaction():
            cur = self._conn.execute(
                "UPDATE accounts SET password = %s, updated = %s"
                " WHERE realm = %s AND username = %s",
                (sealed, now, realm, username),
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    def remove_account(self, realm: str, username: str) -> None:
        realm = realm.lower()
        now = self._clock()
        with translated(self.url), self._conn.transaction():
            cur = self._conn.execute(
                "DELETE FROM accounts WHERE realm = %s AND username = %s", (realm, username)
            )
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    # -- account protection (issue 17.4) -----------------------------------------------------

    def record_failures(self, failures: Sequence[FailedLogin]) -> list[Lockout]:
        """``SqliteStore.record_failures`` on PostgreSQL: one transaction; the row lock each
        UPDATE takes makes two nodes' counts of one account add up (READ COMMITTED re-reads
        the row an UPDATE waited for)."""
        if not failures:
            return []
        with translated(self.url), self._conn.transaction():
            return lock_failures(
                failures,
                self._conn.execute,
                self._record_change,
                count_sql=_COUNT_FAILURE,
                lock_sql=_SET_LOCK,
            )

    def unlock_account(self, realm: str, username: str) -> None:
        """``account unlock``: no lock and no failures counted; the change log says so."""
        realm = realm.lower()
        now = self._clock()
        with translated(self.url), self._conn.transaction():
            cur = self._conn.execute(_SET_LOCK, (None, now, realm, username))
            if cur.rowcount == 0:
                raise missing_error(realm, username)
            self._record_change(realm, username, now)

    # -- changes -----------------------------------------------------------------------------

    def last_change(self) -> int:
        """The highest change number ever issued (0 if none): numbers are never reused."""
        with translated(self.url):
            row = self._conn.execute("SELECT last FROM account_change_counter").fetchone()
        return 0 if row is None else int(row[0])

    def changes_since(self, seq: int) -> list[Change]:
        """Changes numbered above ``seq``, oldest first (kept for ``CHANGE_RETENTION`` seconds)."""
        with translated(self.url):
            rows = self._conn.execute(
                "SELECT seq, realm, username FROM account_changes WHERE seq > %s ORDER BY seq",
                (seq,),
            ).fetchall()
        return [Change(int(s), r, u) for s, r, u in rows]

    def oldest_change(self) -> int:
        """The lowest change number still kept (0 if none); see ``SqliteStore.oldest_change``."""
        with translated(self.url):
            row = self._conn.execute("SELECT MIN(seq) FROM account_changes").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    # -- helpers -----------------------------------------------------------------------------

    def _lock_realm(self, realm: str) -> None:
        """Serialise this transaction with every other one adding to ``realm`` (max_accounts)."""
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('radiusgw.accounts:' || %s, 0))",
            (realm,),
        )

    def _exists(self, realm: str, username: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM accounts WHERE realm = %s AND username = %s", (realm, username)
        ).fetchone()
        return row is not None

    def _count(self, realm: str) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM accounts WHERE realm = %s", (realm,))
        found = row.fetchone()
        return 0 if found is None else int(found[0])

    def _record_change(self, realm: str, username: str | None, now: float) -> None:
        """One change row, its number from the counter (whose row lock, held to the commit,
        orders the writers), and its notification, delivered when the transaction commits."""
        row = self._conn.execute(
            "UPDATE account_change_counter SET last = last + 1 RETURNING last"
        ).fetchone()
        assert row is not None  # the migration inserts the counter's one row
        seq = int(row[0])
        self._conn.execute(
            "INSERT INTO account_changes (seq, at, realm, username) VALUES (%s, %s, %s, %s)",
            (seq, now, realm, username),
        )
        self._conn.execute("DELETE FROM account_changes WHERE at < %s", (now - CHANGE_RETENTION,))
        self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(seq)))

    def _account(self, realm: str, username: str, row: Sequence[Any]) -> Account:
        password = self._cipher.decrypt(realm, username, bytes(row[0]))
        return account(realm, username, password, row[1:])
