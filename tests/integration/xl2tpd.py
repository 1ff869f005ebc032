"""Run xl2tpd as a tunnel-only LNS on 127.0.0.1, stopped by its own PID.

Everything lives in the test's directory: the configuration, the secrets file, the PID file,
the control FIFO and the log (xl2tpd logs to stderr with -D). ``force userspace = yes`` keeps
xl2tpd off the kernel's L2TP modules even where they are loaded; with no call ever placed, it
never starts pppd.
"""

from __future__ import annotations

import os
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

XL2TPD = Path("/usr/sbin/xl2tpd")
READY_LINE = "Listening on IP address"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Xl2tpd:
    address: str
    port: int
    pid: int
    directory: Path

    @property
    def log_path(self) -> Path:
        return self.directory / "xl2tpd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def require_xl2tpd() -> None:
    """Skip the calling test when xl2tpd is not installed (``make test`` installs it)."""
    if not os.access(XL2TPD, os.X_OK):
        pytest.skip(f"{XL2TPD} is not installed (Debian package xl2tpd; `make peers`)")


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    directory: Path, port: int, secret: str, *, address: str, hostname: str, challenge: bool
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    secrets_file = directory / "l2tp-secrets"
    secrets_file.write_text(f"* * {secret}\n")
    secrets_file.chmod(0o600)
    conf = directory / "xl2tpd.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            [global]
            listen-addr = {address}
            port = {port}
            auth file = {secrets_file}
            access control = no
            force userspace = yes
            debug tunnel = yes

            [lns default]
            hostname = {hostname}
            challenge = {"yes" if challenge else "no"}
            ip range = 10.99.0.10-10.99.0.20
            local ip = 10.99.0.1
            """
        )
    )
    return conf


def _wait_until_listening(process: subprocess.Popen[bytes], log_path: Path) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if READY_LINE in log_path.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; always reaps the process."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


@contextmanager
def running_xl2tpd(
    directory: Path,
    secret: str,
    *,
    address: str = "127.0.0.1",
    hostname: str = "lns1",
    challenge: bool = True,
    port: int | None = None,
) -> Iterator[Xl2tpd]:
    """Start xl2tpd as LNS on a free high port (or ``port``); yield once it listens; stop it
    by PID."""
    require_xl2tpd()
    failures = []
    fixed_port = port
    for _attempt in range(3):  # the free port can be taken between probing and binding it
        port = fixed_port or free_udp_port(address)
        conf = write_config(
            directory, port, secret, address=address, hostname=hostname, challenge=challenge
        )
        log_path = directory / "xl2tpd.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(XL2TPD),
                    "-D",
                    "-c",
                    str(conf),
                    "-p",
                    str(directory / "xl2tpd.pid"),
                    "-C",
                    str(directory / "l2tp-control"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        try:
            if _wait_until_listening(process, log_path):
                yield Xl2tpd(address, port, process.pid, directory)
                return
            failures.append(log_path.read_text(errors="replace")[-2000:])
        finally:
            stop(process)
    raise RuntimeError("xl2tpd did not start listening:\n" + "\n---\n".join(failures))
