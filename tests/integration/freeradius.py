"""FreeRADIUS 3.2 (Debian) as a real RADIUS server on loopback: the customer's server behind a
proxy realm, and the performance peer.

Its whole configuration lives in a temp directory (never /etc), written by
``bench.freeradius_conf.write_config`` (shared with the benchmark): one virtual server listening
on 127.0.0.1 high ports, ``pap``/``chap``/``files`` for authentication, ``detail`` for
accounting. Stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.freeradius_conf import FREERADIUS, launch, write_config

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
    listen: str = "127.0.0.1",
    sign_replies: bool = True,
    eap: bool = False,
    mschap: bool = False,
) -> Iterator[FreeRadius]:
    """Start FreeRADIUS in the foreground on loopback; yield when ready; stop it by PID.

    ``listen`` is 127.0.0.1 or ::1 (clients from both are accepted). ``sign_replies``: its
    Access-* answers carry a Message-Authenticator, as a server patched for BlastRADIUS sends
    them (Debian's 3.2.1 does not by itself); ``eap``: EAP-MD5 (``bench.freeradius_conf``);
    ``mschap``: its mschap module, the reference answers for MS-CHAPv1/v2
    (``bench.freeradius_conf.MSCHAP``).
    """
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
        clients={"::1": secret},
        listen=listen,
        sign_replies=sign_replies,
        eap=eap,
        mschap=mschap,
    )
    log_path = directory / "freeradius.log"
    process = launch(raddb, log_path)
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
