"""The PostgreSQL schema of a fleet: versioned migrations, applied by ``radiusgw db migrate``.

Rules:

- ``MIGRATIONS[n]`` takes a database from version n to n + 1; each applied step is a row of
  ``schema_version`` (version, when, by which radiusgw), and the schema's version is the highest.
- ``migrate`` applies the missing steps in one transaction under an advisory lock, so two nodes
  (or a node and an operator) migrating at once apply each step once: the second waits, then
  finds nothing to do. A failed step leaves the database as it was.
- A node only checks (``check_schema``): it never migrates on start, and refuses a schema it
  does not know with one sentence (none yet, an older one, a newer one).
- The tables mirror the SQLite store's schema (version 3 its version 6:
  ``radiusgw.store.sqlite``, ``sessions``, ``health``, ``upstreams``, ``quarantine``,
  ``authlog``), plus what a fleet needs: ``node`` where a node's identity matters (who received
  an accounting record, which node last applied a session's record, journal positions per
  (node, journal), upstream status and LNS health as each node sees them) and ``nodes`` for
  ``radiusgw fleet status``.
- Times are unix seconds (DOUBLE PRECISION), as in SQLite, so both backends take the same
  ``now``. RADIUS 32-bit unsigned values (Acct-Status-Type, counters) are BIGINT: INTEGER is
  signed 32-bit. Octets stay (Gigawords, 32-bit count) in two BIGINT columns: their sum reaches
  2^64 - 1, past BIGINT's 2^63 - 1 (RFC 2869 §5.1-§5.2).
- Account changes are numbered by ``account_change_counter`` (one row), not a sequence: the row
  lock orders the writers, so numbers are gap-free and committed in order, and a node that read
  every change up to n can never later see a smaller one commit.
"""

from __future__ import annotations

from typing import Any

import psycopg

from radiusgw import __version__
from radiusgw.errors import StoreError
from radiusgw.store.postgres import authlog

# An arbitrary constant: the advisory lock that serialises migrations (pg_advisory_xact_lock).
MIGRATION_LOCK = 0x7261_6469_7573_6777  # "radiusgw"

_V1 = (
    # -- accounts and their change feed (SQLite schema 1) ------------------------------------------
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL)""",
    """CREATE TABLE accounts (
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        password BYTEA NOT NULL,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        framed_ip TEXT,
        session_timeout BIGINT,
        idle_timeout BIGINT,
        class BYTEA,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (realm, username)
    )""",
    """CREATE TABLE account_changes (
        seq BIGINT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        realm TEXT NOT NULL,
        username TEXT
    )""",
    "CREATE INDEX account_changes_at ON account_changes (at)",
    """CREATE TABLE account_change_counter (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        last BIGINT NOT NULL
    )""",
    "INSERT INTO account_change_counter (last) VALUES (0)",
    # -- accounting, as received, and where each node's journal has been applied ---------------
    """CREATE TABLE accounting (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL,
        nas_address TEXT NOT NULL,
        realm TEXT,
        username TEXT,
        status_type BIGINT,
        session_id TEXT,
        packet BYTEA NOT NULL
    )""",
    "CREATE INDEX accounting_realm_received ON accounting (realm, received)",
    """CREATE TABLE journal_positions (
        node TEXT NOT NULL,
        name TEXT NOT NULL,
        segment BIGINT NOT NULL,
        segment_offset BIGINT NOT NULL,
        PRIMARY KEY (node, name)
    )""",
    """CREATE TABLE quarantine (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node TEXT NOT NULL,
        quarantined DOUBLE PRECISION NOT NULL,
        received DOUBLE PRECISION NOT NULL,
        nas_address TEXT NOT NULL,
        realm TEXT,
        username TEXT,
        status_type BIGINT,
        session_id TEXT,
        packet BYTEA NOT NULL,
        reason TEXT NOT NULL,
        journal TEXT
    )""",
    # -- the proxy accounting spool: ids only grow (a sequence never goes back) --------------
    """CREATE TABLE proxy_spool (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node TEXT NOT NULL,
        realm TEXT NOT NULL,
        nas_address TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL,
        packet BYTEA NOT NULL
    )""",
    "CREATE INDEX proxy_spool_realm ON proxy_spool (realm, id)",
    # -- sessions and admission (radiusgw.store.sessions) ---------------------------------------
    """CREATE TABLE sessions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node TEXT NOT NULL,
        nas_address TEXT NOT NULL,
        acct_session_id TEXT NOT NULL,
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        lns TEXT,
        nas_ip_address TEXT,
        nas_identifier TEXT,
        framed_ip TEXT,
        start DOUBLE PRECISION NOT NULL,
        last_update DOUBLE PRECISION NOT NULL,
        stop DOUBLE PRECISION,
        live BOOLEAN NOT NULL,
        closed_by TEXT,
        input_gigawords BIGINT NOT NULL,
        input_octets BIGINT NOT NULL,
        output_gigawords BIGINT NOT NULL,
        output_octets BIGINT NOT NULL,
        session_time BIGINT,
        interim_interval BIGINT,
        terminate_cause BIGINT
    )""",
    "CREATE INDEX sessions_key ON sessions (nas_address, acct_session_id)",
    # A session is owned by (NAS, Acct-Session-Id), whichever node its records reach: two nodes
    # applying a Start of it at once cannot both make it live.
    "CREATE UNIQUE INDEX sessions_live_key ON sessions (nas_address, acct_session_id) WHERE live",
    "CREATE INDEX sessions_realm ON sessions (realm, live, stop)",
    "CREATE INDEX sessions_user ON sessions (realm, username, live)",
    "CREATE INDEX sessions_lns ON sessions (lns, live)",  # both replaced in version 4
    """CREATE TABLE session_reservations (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        node TEXT NOT NULL,
        realm TEXT NOT NULL,
        username TEXT NOT NULL,
        lns TEXT,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX reservations_user ON session_reservations (realm, username)",
    "CREATE INDEX reservations_lns ON session_reservations (lns)",
    "CREATE INDEX reservations_expires ON session_reservations (expires)",
    # -- what each node sees of its peers ------------------------------------------------------
    """CREATE TABLE lns_health (
        node TEXT NOT NULL,
        realm TEXT NOT NULL,
        lns_index INTEGER NOT NULL,
        address TEXT NOT NULL,
        port INTEGER NOT NULL,
        status TEXT NOT NULL,
        detail TEXT NOT NULL,
        checked_at DOUBLE PRECISION NOT NULL,
        changed_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (node, realm, lns_index)
    )""",
    """CREATE TABLE upstream_status (
        node TEXT NOT NULL,
        worker INTEGER NOT NULL,
        realm TEXT NOT NULL,
        address TEXT NOT NULL,
        port INTEGER NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL,
        outstanding BIGINT NOT NULL,
        sent BIGINT NOT NULL,
        answered BIGINT NOT NULL,
        unanswered BIGINT NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (node, worker, realm, address, port, kind)
    )""",
    # -- the fleet (radiusgw fleet status) ----------------------------------------------------
    """CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        journal_backlog BIGINT NOT NULL DEFAULT 0,
        last_applied DOUBLE PRECISION
    )""",
)

# Version 2 (SQLite schema 5): account protection and reply attributes by name (issue 17).
_V2 = (
    """ALTER TABLE accounts
        ADD COLUMN calling_station_id TEXT,
        ADD COLUMN reply TEXT,
        ADD COLUMN failures BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN failure_start DOUBLE PRECISION,
        ADD COLUMN locked_until DOUBLE PRECISION""",
)
# Version 3 (SQLite schema 6): the authentication log (radiusgw.store.authlog; issue 18.3).
_V3 = authlog.SCHEMA

# Version 4 (SQLite schema 8): the session indexes by user and by LNS hold live sessions only,
# as the limits count them (radiusgw.store.sessions has the measurement).
_V4 = (
    "DROP INDEX sessions_user",
    "DROP INDEX sessions_lns",
    "CREATE INDEX sessions_live_user ON sessions (realm, username) WHERE live",
    "CREATE INDEX sessions_live_lns ON sessions (lns) WHERE live AND lns IS NOT NULL",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY,
    applied DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()),
    radiusgw TEXT NOT NULL
)"""

Connection = psycopg.Connection[tuple[Any, ...]]


def schema_version(conn: Connection) -> int | None:
    """The schema's version; None if the database has no ``schema_version`` table."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(
    conn: Connection, where: str, *, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS
) -> int:
    """Bring the database to the last version of ``migrations``; return the version reached.

    One transaction under ``MIGRATION_LOCK``; ``where`` names the database in errors.
    """
    target = len(migrations)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = schema_version(conn)  # read under the lock: another node may have won
        if version is None:
            if _has_tables(conn):
                raise StoreError(
                    f"the database {where} holds tables of something else; "
                    "give radiusgw a database of its own"
                )
            conn.execute(_VERSION_TABLE)
            version = 0
        if version > target:
            raise _newer(where, version, target)
        for number, step in enumerate(migrations[version:], start=version + 1):
            for statement in step:
                conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO schema_version (version, radiusgw) VALUES (%s, %s)",
                (number, __version__),
            )
    return target


def check_schema(conn: Connection, where: str, *, expected: int = SCHEMA_VERSION) -> None:
    """Refuse, in one sentence, a schema this radiusgw does not know (a node never migrates)."""
    version = schema_version(conn)
    if not version:
        raise StoreError(
            f"the database {where} has no radiusgw schema yet; run radiusgw db migrate --db URL"
        )
    if version > expected:
        raise _newer(where, version, expected)
    if version < expected:
        raise StoreError(
            f"the database {where} has schema version {version}, written by an older "
            f"radiusgw; run radiusgw db migrate --db URL to upgrade it to version {expected}"
        )


def _newer(where: str, version: int, known: int) -> StoreError:
    return StoreError(
        f"the database {where} has schema version {version}, written by a newer radiusgw; "
        f"this one knows versions up to {known}"
    )


def _has_tables(conn: Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema())"
    ).fetchone()
    return bool(row and row[0])
