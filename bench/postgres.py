"""A real PostgreSQL for the tests and the benchmark: Debian's server in a temporary directory,
never the system's.

``PostgresServer.start()`` runs ``initdb -A trust -U postgres`` into a fresh directory under
/tmp, starts ``postgres`` with ``pg_ctl`` on a free port of 127.0.0.1 (its Unix socket in the same
directory), and ``stop()`` stops it with ``pg_ctl -m fast`` and then checks, by the postmaster's
own pid, that it is gone. initdb and postgres refuse to run as root, so as root they run as the
``postgres`` system user (``runuser``), and the directory belongs to that user.

Each test gets its own database (``create_database``: ``CREATE DATABASE ... TEMPLATE``, a file
copy of a small template), so tests never see each other's rows. For the tests the server runs
with fsync off: it is thrown away at the end, and no test measures durability. The benchmark
(bench/run.py) asks for ``PostgresServer(fsync=True)``: fsync, full-page writes and
synchronous_commit at PostgreSQL's defaults, so that a commit there is durable as the gateway's
journal and SQLite are, and as production runs it.

It lives in bench/ (not tests/) so that the benchmark can use it without importing the tests;
the tests import it from here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "postgres"  # the superuser initdb creates (-U), and the system user that runs it as root
# A role that must give its password (scram-sha-256) even though everyone else is trusted: the
# tests of a refused password. Roles belong to the cluster: ``start`` creates it once.
PASSWORD_USER = "radiusgw_pw"
PASSWORD = "right-one"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections (-w -t)


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries (or no psycopg) on this machine; the reason in one line."""


def find_bin() -> Path:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: Debian's newest, else $PATH's."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(debian):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL's server is not installed (no initdb): `make test` installs Debian's "
        "postgresql package"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL cluster; ``url(name)`` addresses a database in it."""

    def __init__(self, bin_dir: Path | None = None, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir if bin_dir is not None else find_bin()
        self.fsync = fsync
        self.dir: Path | None = None
        self.port = 0
        self.pid: int | None = None
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="radiusgw-pg-"))  # /tmp: every parent traversable
        if self._as_root:
            user = pwd.getpwnam(USER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        hba = data / "pg_hba.conf"  # the first matching line wins
        hba.write_text(f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
        for _attempt in range(3):  # a free port may be taken between the check and the bind
            self.port = free_port()
            try:
                self._postmaster()
            except PostgresUnavailable:
                continue
            self.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
            return
        raise PostgresUnavailable(f"PostgreSQL did not start; see {self.dir / 'postgres.log'}")

    def _postmaster(self) -> None:
        """Start the postmaster on ``self.port`` and note its pid."""
        assert self.dir is not None
        data = self.dir / "data"
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.fsync:  # throw-away test data: no durability wanted
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "-D", str(data), "-w", "-t", str(START_TIMEOUT),
            "-l", str(self.dir / "postgres.log"), "-o", options, "start",
        )  # fmt: skip
        self.pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])

    def halt(self) -> None:
        """Stop the server as an outage would (fast shutdown: sessions cut), keeping its files."""
        assert self.dir is not None and self.pid is not None
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        deadline = time.monotonic() + 30
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(self.pid), f"postmaster {self.pid} outlived pg_ctl stop"
        self.pid = None

    def resume(self) -> None:
        """Start the halted server again, on the same port with the same data."""
        self._postmaster()

    def stop(self) -> None:
        """Stop the server (fast shutdown), make sure its postmaster is gone, remove the files."""
        if self.dir is None:
            return
        if self.pid is not None:
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
            deadline = time.monotonic() + 30
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)  # its own pid only: never by name
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- databases -----------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, template: str = "template0") -> str:
        """A new, empty (or ``template``'s copy) database; its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement.encode())

    # -- helpers -------------------------------------------------------------------------------

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", USER, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, cwd="/", timeout=START_TIMEOUT + 30
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{program} failed ({result.returncode}): {result.stderr.strip()[-500:]}"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
