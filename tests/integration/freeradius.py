"""FreeRADIUS 3.2 (Debian) as a real RADIUS server on loopback: the customer's server behind a
proxy realm, and the performance peer.

Its whole configuration lives in a temp directory (never /etc): one virtual server listening on
127.0.0.1 high ports, ``pap``/``chap``/``files`` for authentication, ``detail`` for accounting.
Stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

FREERADIUS = "/usr/sbin/freeradius"
READY = "Ready to process requests"


@dataclass
class FreeRadius:
    auth_port: int
    acct_port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def detail_file(self) -> Path:
        return self.directory / "acct" / "detail"

    def log(self) -> str:
        return (self.directory / "freeradius.log").read_text(errors="replace")

    def detail(self) -> str:
        path = self.detail_file
        return path.read_text(errors="replace") if path.exists() else ""


def free_udp_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_config(
    directory: Path, *, secret: str, users: str, auth_port: int, acct_port: int, threads: int = 8
) -> Path:
    raddb = directory / "raddb"
    for sub in ("raddb", "logs", "run", "acct"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (raddb / "users").write_text(textwrap.dedent(users))
    (raddb / "radiusd.conf").write_text(
        textwrap.dedent(f"""\
        prefix = /usr
        exec_prefix = /usr
        sysconfdir = /etc
        localstatedir = {directory}
        sbindir = /usr/sbin
        logdir = {directory}/logs
        raddbdir = {raddb}
        radacctdir = {directory}/acct
        name = freeradius
        confdir = ${{raddbdir}}
        modconfdir = ${{confdir}}/mods-config
        run_dir = {directory}/run
        db_dir = {directory}
        libdir = /usr/lib/freeradius
        pidfile = ${{run_dir}}/radiusd.pid
        max_request_time = 30
        cleanup_delay = 5
        max_requests = 262144
        hostname_lookups = no
        log {{
          destination = stdout
          colourise = no
          auth = no
        }}
        security {{
          allow_core_dumps = no
          max_attributes = 200
          reject_delay = 0
          status_server = yes
        }}
        thread pool {{
          start_servers = {threads}
          max_servers = {threads}
          min_spare_servers = 1
          max_spare_servers = {threads}
          max_requests_per_server = 0
        }}
        client local {{
          ipaddr = 127.0.0.1
          secret = {secret}
          require_message_authenticator = no
        }}
        modules {{
          pap {{
          }}
          chap {{
          }}
          files {{
            filename = {raddb}/users
          }}
          detail {{
            filename = {directory}/acct/detail
            permissions = 0600
            header = "%t"
          }}
          always ok {{
            rcode = ok
          }}
        }}
        server default {{
          listen {{
            type = auth
            ipaddr = 127.0.0.1
            port = {auth_port}
          }}
          listen {{
            type = acct
            ipaddr = 127.0.0.1
            port = {acct_port}
          }}
          authorize {{
            chap
            files
            pap
          }}
          authenticate {{
            Auth-Type PAP {{
              pap
            }}
            Auth-Type CHAP {{
              chap
            }}
          }}
          preacct {{
          }}
          accounting {{
            detail
            ok
          }}
          post-auth {{
          }}
        }}
        """)
    )
    return raddb


def require_freeradius() -> None:
    if not os.access(FREERADIUS, os.X_OK):
        pytest.skip(f"{FREERADIUS} is not installed (Debian package freeradius; `make peers`)")


@contextmanager
def running_freeradius(
    directory: Path,
    *,
    secret: str,
    users: str,
    auth_port: int | None = None,
    acct_port: int | None = None,
    threads: int = 8,
) -> Iterator[FreeRadius]:
    """Start FreeRADIUS in the foreground on loopback; yield when ready; stop it by PID."""
    require_freeradius()
    if auth_port is None or acct_port is None:
        auth_port, acct_port = free_udp_ports(2)
    raddb = write_config(
        directory,
        secret=secret,
        users=users,
        auth_port=auth_port,
        acct_port=acct_port,
        threads=threads,
    )
    log_path = directory / "freeradius.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [FREERADIUS, "-f", "-d", str(raddb), "-n", "radiusd", "-l", "stdout"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 15
        while READY not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("FreeRADIUS did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.05)
        yield FreeRadius(auth_port, acct_port, process, directory)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def radclient_path() -> str:
    exe = shutil.which("radclient")
    assert exe
    return exe
