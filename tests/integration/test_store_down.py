"""Issue 15.6: PostgreSQL stopped for 10 s under PAP and accounting load.

A node (two workers) on a PostgreSQL of its own, which the test stops (``pg_ctl -m fast``: every
session cut, connections refused) and starts again on the same port. Meanwhile:
- every PAP request for an account the node had seen is answered (the cache), and the NAS
  here retries as a NAS does (3 tries, 2 s apart) only if one is lost;
- every Accounting-Request is answered once journalled, and after the restart every
  acknowledged record is in the database exactly once;
- a realm with a session limit follows its ``on_store_down``: "admit" accepts, "reject"
  refuses, both logged (``admission-store-down``);
- after the restart the node reads accounts and decides admissions from the database again
  with no operator action.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.postgres import PostgresServer, PostgresUnavailable
from radiusgw.radius.attributes import AcctStatusType, Code
from tests.integration.gateway import radiusgw, running_gateway, write_realms
from tests.integration.nas import AccountingLoad, answer, pap

pytestmark = pytest.mark.postgres

SECRET = b"acme-secret"
OUTAGE = 10.0  # seconds the database is stopped

REALMS = """
[contract]
id = "acme"
name = "ACME"

[[client]]
address = "127.0.0.1"
secret = "acme-secret"

[[realm]]
name = "open.example"
mode = "group"
max_accounts = 100

[[realm]]
name = "limited.example"
mode = "group"
max_accounts = 100
max_sessions = 50

[[realm]]
name = "strict.example"
mode = "group"
max_accounts = 100
max_sessions = 50
on_store_down = "reject"
"""

USERS = [f"u{n}@open.example" for n in range(20)]


@pytest.fixture
def own_postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A cluster of this test's own: stopping the session's would fail other tests' fixtures.
    (``postgres_server`` first: it fails or skips the test as every PostgreSQL test does.)"""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def login(port: int, user: str, *, first_octets: bytes | None = None) -> int | None:
    """A NAS's login: up to 3 tries, 2 s apart; the answer's code, or None if none came."""
    auth = None if first_octets is None else first_octets + os.urandom(12)
    request = pap(user, b"pw", SECRET, authenticator=auth)
    for _ in range(3):
        reply = answer(port, request, SECRET, timeout=2.0)
        if reply is not None:
            return reply.code
    return None


class PapLoad(threading.Thread):
    """Logins for the known users, one after another, until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(name="pap-load", daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.codes: list[int | None] = []

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            self.codes.append(login(self.port, USERS[n % len(USERS)]))
            n += 1
            time.sleep(0.01)


def test_postgresql_stopped_for_10_s_under_pap_and_accounting_load(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    url = own_postgres.create_database()
    key = tmp_path / "fleet.key"
    realms = write_realms(tmp_path / "realms", acme=REALMS)

    def cli(*args: str) -> None:
        radiusgw(*args, "--db", url, "--key-file", str(key), "--realms", str(realms))

    radiusgw("db", "migrate", "--db", url)
    csv = tmp_path / "users.csv"
    csv.write_text("username,password\n" + "".join(f"{u.split('@')[0]},pw\n" for u in USERS))
    cli("account", "import", "open.example", str(csv))
    cli("account", "add", "limited.example", "l0", "--password", "pw")
    cli("account", "add", "strict.example", "s0", "--password", "pw")
    with running_gateway(
        realms,
        url,
        "--node",
        "gw-a",
        "--key-file",
        str(key),
        "--journal-dir",
        str(tmp_path / "journal"),
        workers=2,
    ) as gw:
        port = gw.auth_port
        # Every account seen by both workers (the first octets of the authenticator choose).
        for user in [*USERS, "l0@limited.example", "s0@strict.example"]:
            for first in (b"\0\0\0\0", b"\0\0\0\1"):
                assert login(port, user, first_octets=first) == Code.ACCESS_ACCEPT
        pap_load = PapLoad(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            acct = AccountingLoad(s, gw.acct_port, USERS[0], SECRET, AcctStatusType.START, "st")

            def load_for(seconds: float) -> None:
                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    acct.burst(16)
                    time.sleep(0.05)
                    acct.collect()

            pap_load.start()
            load_for(2.0)
            own_postgres.halt()
            stopped = time.monotonic()
            before_outage = len(pap_load.codes), len(acct.acknowledged)
            load_for(2.0)
            # A session limit that cannot be checked: each realm's on_store_down decides.
            during = {
                realm: [login(port, user, first_octets=f) for f in (b"\0\0\0\0", b"\0\0\0\1")]
                for realm, user in (
                    ("limited", "l0@limited.example"),
                    ("strict", "s0@strict.example"),
                )
            }
            load_for(max(0.0, OUTAGE - (time.monotonic() - stopped)))
            in_outage = len(pap_load.codes) - before_outage[0]
            acked_in_outage = len(acct.acknowledged) - before_outage[1]
            own_postgres.resume()
            load_for(2.0)
            pap_load.halt.set()
            pap_load.join(10)
            time.sleep(0.3)
            acct.collect()
        # Back: a new account is read from the database and a limited realm admits again.
        cli("account", "add", "open.example", "late", "--password", "pw")
        deadline = time.monotonic() + 20
        while login(port, "late@open.example") != Code.ACCESS_ACCEPT:
            assert time.monotonic() < deadline, "the node never read the database again"
            time.sleep(0.2)
        assert login(port, "s0@strict.example") == Code.ACCESS_ACCEPT
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while True:
                rows = conn.execute(
                    "SELECT session_id, count(*) FROM accounting WHERE node = 'gw-a' GROUP BY 1"
                ).fetchall()
                kept = {session: count for session, count in rows}
                missing = acct.acknowledged - kept.keys()
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        down = {(e["realm"], e["action"]) for e in gw.events("admission-store-down")}

    assert None not in pap_load.codes, f"{pap_load.codes.count(None)} logins got no answer"
    assert set(pap_load.codes) == {Code.ACCESS_ACCEPT}
    assert in_outage > 50, f"only {in_outage} logins during the outage"
    assert acked_in_outage > 100, f"only {acked_in_outage} records acknowledged in the outage"
    assert len(acct.acknowledged) == acct.sent, f"{acct.sent - len(acct.acknowledged)} unanswered"
    assert during == {
        "limited": [Code.ACCESS_ACCEPT] * 2,
        "strict": [Code.ACCESS_REJECT] * 2,
    }
    assert down == {("limited.example", "admitted"), ("strict.example", "rejected")}
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    twice = {session: count for session, count in kept.items() if count != 1}
    assert not twice, f"applied more than once: {sorted(twice.items())[:5]}"


BACKLOG = 20_000  # distinct sessions acknowledged while the database is stopped


def test_a_long_outages_backlog_reaches_postgresql_after(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    """An outage's backlog is applied in transactions of bounded size. As one transaction it
    would take an advisory lock per session (``store/postgres/sessions.py``) past the lock
    table PostgreSQL sizes by default (``max_locks_per_transaction`` 64: about 12,000 locks
    in all), fail with "out of shared memory" and be retried, the same, for ever."""
    url = own_postgres.create_database()
    realms = write_realms(tmp_path / "realms", acme=REALMS)
    radiusgw("db", "migrate", "--db", url)
    with running_gateway(
        realms,
        url,
        *("--node", "gw-a", "--key-file", str(tmp_path / "fleet.key")),
        *("--journal-dir", str(tmp_path / "journal")),
    ) as gw:
        own_postgres.halt()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setblocking(False)
            acct = AccountingLoad(s, gw.acct_port, USERS[0], SECRET, AcctStatusType.START, "bl")
            deadline = time.monotonic() + 60
            while acct.sent < BACKLOG and time.monotonic() < deadline:
                acct.burst(min(128, BACKLOG - acct.sent))
                time.sleep(0.01)
                acct.collect()
            while len(acct.acknowledged) < acct.sent and time.monotonic() < deadline:
                time.sleep(0.05)
                acct.collect()
        own_postgres.resume()
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while True:
                (stored,) = conn.execute("SELECT count(*) FROM sessions").fetchone() or (0,)
                if stored >= BACKLOG or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        failures = [e.get("error", "") for e in gw.events("accounting-apply-failed")]

    assert acct.sent == len(acct.acknowledged) == BACKLOG, (acct.sent, len(acct.acknowledged))
    assert stored == BACKLOG, f"{stored} of {BACKLOG} sessions stored; failures: {failures[-1:]}"
    assert not [f for f in failures if "shared memory" in f], failures[-1]
