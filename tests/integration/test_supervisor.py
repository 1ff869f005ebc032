"""Signals and the realm set across the supervisor and its workers, on the real server.

SIGHUP and SIGTERM may come at any moment, also while a process is still starting; and every
worker, also one forked again after a crash, serves the one realm set the supervisor loaded.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

from radiusgw.radius.attributes import Code
from radiusgw.radius.packet import decode
from tests.integration.gateway import (
    GLOBEX,
    Gateway,
    radclient,
    radiusgw,
    running_gateway,
    write_realms,
)
from tests.integration.nas import pap

ACME_FROM_FILE = """
[contract]
id = "acme"
name = "ACME Corporation"

[[client]]
address = "127.0.0.1"
secret_file = "acme.secret"

[[realm]]
name = "acme.example"
mode = "group"
max_accounts = 100
"""


def hup_until(gw: Gateway, pids: Callable[[], list[int]], done: Callable[[], bool]) -> int:
    """SIGHUP every process of ``pids()`` over and over until ``done()``; how many were sent."""
    sent = 0
    deadline = time.monotonic() + 30
    while not done() and gw.process.poll() is None and time.monotonic() < deadline:
        for pid in pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
                sent += 1
        time.sleep(0.001)
    return sent


def ports(gw: Gateway) -> None:
    serving = gw.wait_for("serving")[0]
    gw.auth_port, gw.acct_port = serving["auth_port"], serving["acct_port"]


def logins(port: int, secret: bytes, workers: int, per_worker: int = 5) -> list[Code | None]:
    """PAP logins of alice from one source port, ``per_worker`` aimed at each worker.

    The BPF program picks the worker by the authenticator's first four octets modulo the
    number of workers (radiusgw.server.sockets), so each worker gets its share for sure.
    """
    codes: list[Code | None] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        for n in range(workers * per_worker):
            auth = (n % workers).to_bytes(4, "big") + os.urandom(12)
            request = pap("alice@acme.example", b"wonderland", secret, ident=n, authenticator=auth)
            s.sendto(request, ("127.0.0.1", port))
            try:
                codes.append(decode(s.recv(4096)).code)
            except TimeoutError:
                codes.append(None)
    return codes


def test_sighup_during_start_up_never_kills_a_single_worker(realms: Path, db: Path) -> None:
    with running_gateway(realms, db, wait_ready=False) as gw:
        ports(gw)  # from here on serve holds the signals it handles
        sent = hup_until(gw, lambda: [gw.process.pid], lambda: bool(gw.events("worker-ready")))
        assert gw.process.poll() is None, f"exit {gw.process.returncode}"
        for _ in range(20):
            gw.signal(signal.SIGHUP)
        assert sent > 0
        gw.wait_for("worker-ready")
        gw.wait_for("reloaded")  # a SIGHUP held during start-up is then a reload
        assert logins(gw.auth_port, b"acme-secret", 1) == [Code.ACCESS_ACCEPT] * 5
        assert gw.stop() == 0
    assert not any("Traceback" in line for line in gw.raw_lines)


def test_sighup_during_start_up_never_kills_the_supervisor_or_a_worker(
    realms: Path, db: Path
) -> None:
    with running_gateway(realms, db, workers=2, wait_ready=False) as gw:
        ports(gw)
        sent = hup_until(
            gw,
            lambda: [gw.process.pid, *gw.worker_pids()],
            lambda: len(gw.events("worker-ready")) >= 2,
        )
        assert sent > 0
        gw.wait_for("worker-ready", count=2)
        assert logins(gw.auth_port, b"acme-secret", 2) == [Code.ACCESS_ACCEPT] * 10
        assert gw.stop() == 0
    assert gw.events("worker-died") == []
    assert not any("Traceback" in line for line in gw.raw_lines)


def test_sighup_to_a_worker_forked_again_after_kill_9_does_not_kill_it(
    realms: Path, db: Path
) -> None:
    with running_gateway(realms, db, workers=2) as gw:
        first = gw.worker_pids()
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        # SIGHUP the replacement from the moment it exists until it is ready, and a bit after.
        sent = hup_until(
            gw,
            lambda: [p for p in gw.worker_pids() if p not in first],
            lambda: len(gw.events("worker-ready")) >= 3,
        )
        for pid in gw.worker_pids():
            for _ in range(10):
                os.kill(pid, signal.SIGHUP)
        assert sent > 0
        assert logins(gw.auth_port, b"acme-secret", 2) == [Code.ACCESS_ACCEPT] * 10
        assert [e["pid"] for e in gw.events("worker-died")] == [first[0]]
        assert gw.stop() == 0
        assert len(gw.events("worker-died")) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_start_up_drains_and_exits_0(realms: Path, db: Path, workers: int) -> None:
    with running_gateway(realms, db, workers=workers, wait_ready=False) as gw:
        ports(gw)
        gw.signal(signal.SIGTERM)
        assert gw.stop() == 0
        gw.wait_for("stopped", count=workers)
    assert not any("Traceback" in line for line in gw.raw_lines)
    assert gw.events("worker-exit") == []


def _acme_from_file(tmp_path: Path, secret: str) -> tuple[Path, Path]:
    realms = write_realms(tmp_path / "realms", acme=ACME_FROM_FILE, globex=GLOBEX)
    (realms / "acme.secret").write_text(f"{secret}\n")
    db = tmp_path / "gw.db"
    radiusgw(
        "account", "add", "acme.example", "alice", "--password", "wonderland",
        "--db", str(db), "--realms", str(realms),
    )  # fmt: skip
    return realms, db


def test_a_reload_while_the_files_change_leaves_every_worker_on_one_set(tmp_path: Path) -> None:
    realms, db = _acme_from_file(tmp_path, "one")
    with running_gateway(realms, db, workers=2) as gw:
        start = gw.events("serving")[0]["digest"]
        assert {e["digest"] for e in gw.events("worker-ready")} == {start}
        # The secret file and the contract file change all the time while reloads come in.
        stop = threading.Event()

        def churn() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                (realms / "acme.secret").write_text(f"secret-{n}\n")
                (realms / "acme.toml").write_text(ACME_FROM_FILE.replace("ACME", f"ACME {n}"))

        writer = threading.Thread(target=churn)
        writer.start()
        try:
            for n in range(1, 9):
                gw.signal(signal.SIGHUP)
                while len(gw.events("reloaded")) + len(gw.events("reload-refused")) < n:
                    time.sleep(0.005)
        finally:
            stop.set()
            writer.join()
        (realms / "acme.secret").write_text("final\n")
        (realms / "acme.toml").write_text(ACME_FROM_FILE)
        gw.signal(signal.SIGHUP)
        final = gw.wait_for("reloaded", count=len(gw.events("reloaded")) + 1)[-1]["digest"]
        applied = gw.wait_for("reload-applied", count=2, digest=final)
        assert sorted(e["worker"] for e in applied) == [0, 1]
        loaded = {e["digest"] for e in gw.events("reloaded")}
        assert {e["digest"] for e in gw.events("reload-applied")} <= loaded
        assert logins(gw.auth_port, b"final", 2) == [Code.ACCESS_ACCEPT] * 10
        assert gw.stop() == 0
        stopped = gw.wait_for("stopped", count=2)
    assert min(e["access_requests"] for e in stopped) == 5
    # One reload, one line: the supervisor reads the files, the workers do not.
    assert len(gw.events("reloaded")) + len(gw.events("reload-refused")) == 9


@pytest.mark.peers
def test_a_worker_killed_after_a_reload_serves_the_reloaded_set(tmp_path: Path) -> None:
    realms, db = _acme_from_file(tmp_path, "old-secret")
    with running_gateway(realms, db, workers=2) as gw:
        (realms / "acme.secret").write_text("new-secret\n")
        gw.signal(signal.SIGHUP)
        reloaded = gw.wait_for("reloaded")[0]
        assert reloaded["digest"] != gw.events("serving")[0]["digest"]  # secret_file counts
        gw.wait_for("reload-applied", count=2, digest=reloaded["digest"])
        victim = gw.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        gw.wait_for("worker-died", pid=victim)
        ready = gw.wait_for("worker-ready", count=3)[-1]
        assert ready["digest"] == reloaded["digest"]
        assert logins(gw.auth_port, b"new-secret", 2) == [Code.ACCESS_ACCEPT] * 10
        assert logins(gw.auth_port, b"old-secret", 2, per_worker=1) == [None, None]
        r = radclient(
            gw.auth_port,
            "auth",
            "new-secret",
            'User-Name = "alice@acme.example"\nUser-Password = "wonderland"\n',
        )
        assert r.code == "Access-Accept", r.output
        assert gw.stop() == 0
        stopped = gw.wait_for("stopped", count=2)
    assert min(e["access_requests"] for e in stopped) >= 5


def test_sigterm_during_a_restart_pause_exits_at_once_and_forks_no_worker(
    realms: Path, db: Path
) -> None:
    """A worker that keeps crashing is forked again only after a pause; a SIGTERM then ends the
    supervisor within 5 s, and no worker is forked after it (uvicorn's supervisor does the
    same)."""
    with running_gateway(realms, db, workers=2) as gw:
        for n in range(6):  # the sixth crash within the window: its restart waits
            (ready,) = gw.wait_for("worker-ready", count=n + 1, worker=1)[n : n + 1]
            os.kill(ready["pid"], signal.SIGKILL)
            gw.wait_for("worker-died", count=n + 1, worker=1)
        died = gw.events("worker-died")[-1]
        assert died["action"] == "restart-delayed", died
        gw.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = gw.process.wait(5)
        took = time.monotonic() - signalled
        time.sleep(0.5)  # what the log still had to say
        readies = gw.events("worker-ready")
    assert code == 0
    assert took < 5
    assert len([e for e in readies if e["worker"] == 1]) == 6  # the first and five restarts
