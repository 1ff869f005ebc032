"""Run the real gateway (``python -m radiusgw serve``) and real peers, on 127.0.0.1.

The gateway binds port 0 and reports the ports it got in its "serving" log line; every process
started here is stopped by its own id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACME = """
[contract]
id = "acme"
name = "ACME Corporation"

[[client]]
address = "127.0.0.1"
secret = "acme-secret"

[[realm]]
name = "acme.example"
mode = "group"
max_accounts = 100
"""

GLOBEX = """
[contract]
id = "globex"
name = "Globex"

[[client]]
address = "127.0.0.5"
secret = "globex-secret"

[[realm]]
name = "globex.example"
mode = "group"
max_accounts = 100
"""

LEGACY = """
[contract]
id = "legacy"
name = "Legacy NAS Ltd"

[[client]]
address = "127.0.0.6"
secret = "legacy-secret"
require_message_authenticator = false

[[realm]]
name = "legacy.example"
mode = "group"
max_accounts = 100
"""


def write_realms(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.toml").write_text(textwrap.dedent(text))
    return directory


def default_realms(directory: Path) -> Path:
    return write_realms(directory, acme=ACME, globex=GLOBEX, legacy=LEGACY)


def radiusgw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radiusgw", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@dataclass
class Gateway:
    process: subprocess.Popen[str]
    realms: Path
    db: Path | str  # a SQLite file, or a postgresql:// URL (a fleet node)
    auth_port: int = 0
    acct_port: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)
    _cv: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    def _reader(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._cv:
                self.raw_lines.append(line)
                with suppress(json.JSONDecodeError):
                    self.lines.append(json.loads(line))
                self._cv.notify_all()

    def wait_for(
        self, event: str, count: int = 1, timeout: float = 15.0, **match: Any
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                found = [
                    e
                    for e in self.lines
                    if e.get("event") == event and all(e.get(k) == v for k, v in match.items())
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                reader_done = self.reader is not None and not self.reader.is_alive()
                if left <= 0 or reader_done:
                    raise AssertionError(
                        f"no {count}x {event!r} {match} in gateway log:\n"
                        + "".join(self.raw_lines[-40:])
                    )
                self._cv.wait(min(left, 0.2))

    def events(self, event: str) -> list[dict[str, Any]]:
        with self._cv:
            return [e for e in self.lines if e.get("event") == event]

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def worker_pids(self) -> list[int]:
        """The worker processes forked by the supervisor, as the kernel lists its children."""
        pid = self.process.pid
        with suppress(FileNotFoundError, ProcessLookupError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return []

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.reader is not None:
                self.reader.join(5)
            if self.process.stderr is not None:
                self.process.stderr.close()


@contextmanager
def running_gateway(
    realms: Path, db: Path | str, *extra: str, workers: int = 1, wait_ready: bool = True
) -> Iterator[Gateway]:
    """A gateway on ports the OS picks; with ``wait_ready=False`` yielded as soon as it is
    spawned (the caller waits for what it needs), else once every worker is ready."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radiusgw",
            "serve",
            "--realms",
            str(realms),
            "--db",
            str(db),
            "--listen",
            "127.0.0.1",
            "--auth-port",
            "0",
            "--acct-port",
            "0",
            "--workers",
            str(workers),
            *extra,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    gw = Gateway(proc, realms, db)
    gw.reader = threading.Thread(target=gw._reader, name=f"gw-{proc.pid}", daemon=True)
    gw.reader.start()
    try:
        if wait_ready:
            serving = gw.wait_for("serving")[0]
            gw.auth_port, gw.acct_port = serving["auth_port"], serving["acct_port"]
            gw.wait_for("worker-ready", count=workers)
        yield gw
    finally:
        gw.stop()


@dataclass
class RadclientResult:
    code: str | None  # "Access-Accept", ... or None for no answer
    attributes: dict[str, list[str]]
    output: str


def radclient(
    port: int,
    kind: str,
    secret: str,
    attributes: str,
    *,
    retries: int = 1,
    timeout: float = 2.0,
    message_authenticator: bool = True,
    host: str = "127.0.0.1",
) -> RadclientResult:
    """Send one request with FreeRADIUS's radclient (a real NAS) and parse its answer.

    radclient signs a Message-Authenticator only when asked to (``= 0x00`` in its input), as
    radtest does; a NAS registered with the default ``require_message_authenticator`` needs it.
    """
    # One packet: attribute lines with no blank line between (a blank line starts another).
    lines = [line.strip() for line in attributes.splitlines() if line.strip()]
    if message_authenticator and kind in ("auth", "status"):
        lines.append("Message-Authenticator = 0x00")
    attributes = "\n".join(lines) + "\n"
    target = f"[{host}]" if ":" in host else host
    exe = shutil.which("radclient")
    assert exe, "radclient missing: `make test` installs freeradius-utils"
    proc = subprocess.run(
        [exe, "-x", "-r", str(retries), "-t", str(timeout), f"{target}:{port}", kind, secret],
        input=attributes,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    code = None
    attrs: dict[str, list[str]] = {}
    in_reply = False
    for line in out.splitlines():
        if line.startswith("Received "):
            code = line.split()[1]
            in_reply = True
        elif line.startswith("Sent "):
            in_reply = False
        elif in_reply and "=" in line and line.startswith(("\t", " ")):
            name, _, value = line.strip().partition(" = ")
            attrs.setdefault(name, []).append(value.strip('"'))
    return RadclientResult(code, attrs, out)
