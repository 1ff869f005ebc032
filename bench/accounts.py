"""``python -m bench.accounts``: the gateway with a million accounts in one group realm.

The benchmark issue sets three targets for 1,000,000 group accounts, and this measures them:

- ``radiusgw account import`` of a CSV of N accounts takes under 60 s (wall time of the
  command, interpreter start included; its peak RSS is reported too, from ``wait4``);
- the server answers within 5 s of start: from just before the gateway process is started
  until a verified Access-Accept comes back for one of the imported users. That covers the
  interpreter start, reading the realm files, opening the store, forking the workers, each
  worker's start, and the first look-up on a cold cache. Requests are sent from the moment
  the gateway logs its ports, one every 50 ms until one is accepted;
- each worker stays under 300 MB resident (VmRSS, MB = 2^20 octets), read after load that
  fills the caches realistically: requests for many distinct random users (from Python, every
  answer verified; not a throughput figure), then radload on one user for the PAP rate.

Every account has its own password and Framed-IP-Address, so an Access-Accept is checked
against the account that was asked for. Everything happens in a temporary directory (CSV, a
fresh database, the bench's group realm file with ``max_accounts`` = N) that is removed at
the end; every process started is stopped by its PID. ``bench.run --accounts N`` runs this as
one section of ``make bench``.

    python -m bench.accounts [--accounts 1000000] [--workers 2] [--spread 20000]
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import os
import random
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.run import GROUP, PASSWORD, SECRET, Progress, group_realm
from bench.servers import (
    BenchError,
    CpuMeter,
    Load,
    Processes,
    Server,
    build_radload,
    run_load,
    run_stopping_all,
    start_gateway,
)
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import DecodeError, decode, encode_attributes

IMPORT_LIMIT_S = 60.0
RSS_LIMIT_MB = 300.0
FIRST_ANSWER_LIMIT_S = 5.0
IMPORT_TIMEOUT_S = 600.0
FIRST_ANSWER_TIMEOUT_S = 60.0
RETRY_S = 0.05
MB = 1 << 20
FIRST_IP = int(ipaddress.IPv4Address("10.0.0.1"))
SECRET_BYTES = SECRET.encode()
NAS = socket.inet_aton("127.0.0.1")


# -- the accounts: each one derived from its index, so none has to be kept in memory ----------


def username(index: int) -> str:
    return f"u{index:07d}"


def password(index: int) -> str:
    return f"{PASSWORD}-{index}"


def user_name(index: int) -> str:
    """The User-Name a NAS sends for account ``index``."""
    return f"{username(index)}@{GROUP}"


def framed_ip(index: int) -> str:
    return str(ipaddress.IPv4Address(FIRST_IP + index))


def write_csv(path: Path, accounts: int) -> None:
    """The CSV ``radiusgw account import`` reads: username,password,framed_ip."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        out = csv.writer(stream, lineterminator="\n")
        out.writerow(("username", "password", "framed_ip"))
        out.writerows((username(i), password(i), framed_ip(i)) for i in range(accounts))


# -- the import --------------------------------------------------------------------------------


def import_accounts(procs: Processes, work: Path, accounts: int) -> dict[str, Any]:
    """Run ``radiusgw account import`` on a fresh database; its wall time, peak RSS and count."""
    csv_path, out_path = work / "accounts.csv", work / "import.out"
    write_csv(csv_path, accounts)
    args = [sys.executable, "-m", "radiusgw", "account", "import", GROUP, str(csv_path)]
    args += ["--db", str(work / "accounts.db"), "--realms", str(work / "realms")]
    with out_path.open("w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        procs.add(proc)
        code, usage = _wait4(proc, IMPORT_TIMEOUT_S)
        seconds = time.monotonic() - start
    procs.stop(proc)
    output = out_path.read_text(errors="replace").strip()
    found = re.search(r"imported (\d+) accounts?", output)
    if code != 0 or found is None:
        raise BenchError(f"radiusgw account import exited {code}: {output[-2000:]}")
    return {
        "imported": int(found.group(1)),
        "import_s": round(seconds, 2),
        "import_peak_rss_mb": round(usage.ru_maxrss * 1024 / MB, 1),
        "csv_mb": round(csv_path.stat().st_size / MB, 1),
    }


def _wait4(proc: subprocess.Popen[Any], timeout: float) -> tuple[int, resource.struct_rusage]:
    """Reap ``proc`` with wait4: its exit code and its own resource usage (not our other
    children's, which RUSAGE_CHILDREN would mix in). Polled so that it can time out."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if time.monotonic() > deadline:
            raise BenchError(f"radiusgw account import still running after {timeout:.0f} s")
        time.sleep(0.01)


# -- requests and answers ----------------------------------------------------------------------


def access_request(index: int, identifier: int) -> tuple[bytes, bytes]:
    """A PAP Access-Request for account ``index``: the datagram and its Request Authenticator."""
    auth = os.urandom(16)
    hidden = crypto.hide_password(password(index).encode(), SECRET_BYTES, auth)
    attrs = encode_attributes(
        [
            (Attr.USER_NAME, user_name(index).encode()),
            (Attr.USER_PASSWORD, hidden),
            (Attr.NAS_IP_ADDRESS, NAS),
        ]
    )
    raw = crypto.sign_request(
        Code.ACCESS_REQUEST, identifier, attrs, SECRET_BYTES, authenticator=auth
    )
    return raw, auth


def verdict(raw: bytes, request_auth: bytes, index: int) -> str:
    """What an answer to account ``index`` is: "accept" (signed right, with the account's own
    Framed-IP-Address), "reject" (signed right) or "invalid"."""
    try:
        packet = decode(raw)
    except DecodeError:
        return "invalid"
    if not crypto.response_authenticator_matches(raw, SECRET_BYTES, request_auth):
        return "invalid"
    offset = packet.message_authenticator_offset
    if offset >= 0 and not crypto.response_message_authenticator_matches(
        raw, offset, SECRET_BYTES, request_auth
    ):
        return "invalid"
    if packet.code == Code.ACCESS_REJECT:
        return "reject"
    address = socket.inet_aton(framed_ip(index))
    if packet.code != Code.ACCESS_ACCEPT or packet.get(Attr.FRAMED_IP_ADDRESS) != address:
        return "invalid"
    return "accept"


def first_answer(port: int, index: int, started: float) -> dict[str, Any]:
    """Ask for account ``index`` every 50 ms until a verified Access-Accept; seconds since
    ``started``. A reject or an invalid answer ends the measurement as a BenchError."""
    sent: dict[int, bytes] = {}  # Identifier -> Request Authenticator: a late answer counts
    attempts = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(RETRY_S)
        while time.monotonic() - started < FIRST_ANSWER_TIMEOUT_S:
            identifier = attempts % 256
            raw, sent[identifier] = access_request(index, identifier)
            sock.sendto(raw, ("127.0.0.1", port))
            attempts += 1
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            seconds = time.monotonic() - started
            request_auth = sent.get(answer[1], b"") if len(answer) > 1 else b""
            seen = verdict(answer, request_auth, index)
            if seen != "accept":
                raise BenchError(f"the first answer for {user_name(index)} was {seen}")
            return {
                "first_answer_s": round(seconds, 3),
                "first_answer_code": int(Code.ACCESS_ACCEPT),
                "first_answer_attempts": attempts,
                "first_user": user_name(index),
            }
    raise BenchError(f"the gateway gave no answer within {FIRST_ANSWER_TIMEOUT_S:.0f} s")


class Spread:
    """Requests for many accounts over several UDP sockets, ``window`` of them outstanding.

    Every answer is verified against the account it was for; an unanswered request frees its
    slot after ``timeout`` and counts as a timeout.
    """

    def __init__(self, port: int, *, window: int = 64, sockets: int = 8, timeout: float = 2.0):
        self.address = ("127.0.0.1", port)
        self.window, self.timeout = window, timeout
        self.socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
        self.free = [deque(range(256)) for _ in range(sockets)]
        self.pending: dict[tuple[int, int], tuple[int, bytes, float]] = {}
        self.counts: Counter[str] = Counter()
        self.selector = selectors.DefaultSelector()
        for n, sock in enumerate(self.socks):
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, n)

    def run(self, indices: Iterable[int]) -> dict[str, Any]:
        start = time.monotonic()
        todo = iter(indices)
        try:
            while self._fill(todo) or self.pending:
                for key, _ in self.selector.select(self.timeout / 4):
                    self._receive(key.data)
                self._expire()
        finally:
            self.selector.close()
            for sock in self.socks:
                sock.close()
        requests = sum(self.counts.values())
        return {"requests": requests, "seconds": round(time.monotonic() - start, 2)} | {
            k: self.counts[k] for k in ("accept", "reject", "invalid", "timeout")
        }

    def _fill(self, todo: Iterator[int]) -> bool:
        """Send until the window is full; False once there is nothing left to send."""
        while len(self.pending) < self.window:
            n = min(range(len(self.socks)), key=lambda s: -len(self.free[s]))
            if not self.free[n]:
                return True
            index = next(todo, None)
            if index is None:
                return False
            identifier = self.free[n].popleft()
            raw, auth = access_request(index, identifier)
            self.socks[n].sendto(raw, self.address)
            self.pending[n, identifier] = (index, auth, time.monotonic())
        return True

    def _receive(self, n: int) -> None:
        while True:
            try:
                raw = self.socks[n].recv(4096)
            except BlockingIOError:
                return
            entry = self.pending.pop((n, raw[1]), None) if len(raw) > 1 else None
            if entry is None:
                continue  # late: its request was counted as a timeout already
            self.counts[verdict(raw, entry[1], entry[0])] += 1
            self.free[n].append(raw[1])

    def _expire(self) -> None:
        limit = time.monotonic() - self.timeout
        for key, (_, _, sent) in list(self.pending.items()):
            if sent < limit:
                del self.pending[key]
                self.counts["timeout"] += 1
                self.free[key[0]].append(key[1])


# -- the workers' memory -----------------------------------------------------------------------


def _status_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if found is None:
        raise BenchError(f"/proc/{pid}/status has no {field}")
    return round(int(found.group(1)) * 1024 / MB, 1)


def worker_pids(gateway: Server) -> list[int]:
    """The gateway's children: its workers (the supervisor forks them)."""
    tasks = Path(f"/proc/{gateway.process.pid}/task")
    pids = sorted(int(p) for t in tasks.iterdir() for p in (t / "children").read_text().split())
    if not pids:
        raise BenchError(f"the gateway (PID {gateway.process.pid}) has no worker processes")
    return pids


def memory(gateway: Server) -> dict[str, Any]:
    pids = worker_pids(gateway)
    return {
        "worker_pids": pids,
        "worker_rss_mb": [_status_mb(pid, "VmRSS") for pid in pids],
        "worker_peak_rss_mb": [_status_mb(pid, "VmHWM") for pid in pids],
        "supervisor_rss_mb": _status_mb(gateway.process.pid, "VmRSS"),
    }


# -- the section -------------------------------------------------------------------------------


def targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's three targets, each with the figure it is judged on and whether it is met."""
    checks = (
        ("import_s", "import under {:g} s", IMPORT_LIMIT_S, "s", r["import_s"]),
        (
            "worker_rss_mb",
            "a worker's resident memory under {:g} MB",
            RSS_LIMIT_MB,
            "MB",
            max(r["worker_rss_mb"]),
        ),
        (
            "first_answer_s",
            "answering within {:g} s of start",
            FIRST_ANSWER_LIMIT_S,
            "s",
            r["first_answer_s"],
        ),
    )
    return {
        key: {
            "target": text.format(limit),
            "limit": limit,
            "measured": value,
            "unit": unit,
            "met": value < limit,
        }
        for key, text, limit, unit, value in checks
    }


@dataclass(frozen=True, slots=True)
class Plan:
    """What the section does: how many accounts, workers, distinct users, seconds of radload."""

    accounts: int = 1_000_000
    workers: int = 2
    spread: int = 20_000
    load_seconds: float = 4.0


@contextmanager
def _workdir(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="radiusgw-accounts-") as tmp:
        yield Path(tmp)


def measure(
    plan: Plan,
    procs: Processes,
    *,
    log: Callable[[str], None] = lambda message: None,
    directory: Path | None = None,
) -> dict[str, Any]:
    """The section: import, start, first answer, load, memory; the results with the targets.

    Works in ``directory`` if given (left in place, for tests), else in a temporary directory
    that is removed. The gateway is stopped before this returns, also on an error.
    """
    if plan.accounts < 1:
        raise BenchError(f"the accounts section needs at least 1 account, not {plan.accounts}")
    radload = build_radload()
    meter = CpuMeter({os.getpid()})  # our children's CPU counts as ours once they are reaped
    meter.start()
    result: dict[str, Any] = {"accounts": plan.accounts, "workers": plan.workers}
    with _workdir(directory) as work:
        realms = group_realm(work / "realms", max_accounts=plan.accounts)
        log(f"accounts: importing {plan.accounts:,} accounts into {GROUP}")
        result |= import_accounts(procs, work, plan.accounts)
        if result["imported"] != plan.accounts:
            raise BenchError(f"the import counted {result['imported']} of {plan.accounts} accounts")
        log(f"accounts: imported in {result['import_s']:.1f} s; starting {plan.workers} workers")
        result |= serve(plan, procs, work / "accounts.db", realms, radload, log)
    result["foreign_cores"] = meter.foreign_cores()
    result["targets"] = targets(result)
    return result


def serve(
    plan: Plan,
    procs: Processes,
    db: Path,
    realms: Path,
    radload: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Start the gateway, time its first answer, load it, read its workers' memory, stop it."""
    rng = random.SystemRandom()
    started = time.monotonic()
    gateway = start_gateway(procs, realms, db, workers=plan.workers)
    out: dict[str, Any] = {"ready_s": round(time.monotonic() - started, 3)}
    try:
        out |= first_answer(gateway.auth_port, rng.randrange(plan.accounts), started)
        log(f"accounts: first Access-Accept {out['first_answer_s']:.2f} s after start")
        users = rng.sample(range(plan.accounts), min(plan.spread, plan.accounts))
        out["spread"] = Spread(gateway.auth_port).run(users)
        log(f"accounts: {out['spread']['accept']:,} of {len(users):,} distinct users accepted")
        out["load"] = pap_load(radload, gateway, rng.randrange(plan.accounts), plan.load_seconds)
        out["pap_per_s"] = out["load"]["answered_per_s"]
        out |= memory(gateway)
    finally:
        procs.stop(gateway.process)
    return out


def pap_load(radload: Path, gateway: Server, index: int, seconds: float) -> dict[str, Any]:
    """radload on one account for ``seconds``: the PAP rate with the caches full."""
    load = Load(
        port=gateway.auth_port,
        secret=SECRET,
        mode="pap",
        user=user_name(index),
        password=password(index),
        duration=seconds,
        warmup=min(1.0, seconds / 4),
        expect_attr=f"{int(Attr.FRAMED_IP_ADDRESS)}:1",
    )
    meter = CpuMeter({os.getpid(), gateway.process.pid})  # the workers are the gateway's
    meter.start()
    result = run_load(radload, load, label=f"pap {user_name(index)}", progress=sys.stderr.isatty())
    result["foreign_cores"] = meter.foreign_cores()
    result["user"] = user_name(index)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__)
    ap.add_argument("--accounts", type=int, default=1_000_000, help="accounts to import")
    ap.add_argument("--workers", type=int, default=2, help="gateway workers")
    ap.add_argument("--spread", type=int, default=20_000, help="distinct users asked for")
    ap.add_argument("--load-seconds", type=float, default=4.0, help="radload on one user")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    log = Progress()
    plan = Plan(a.accounts, a.workers, a.spread, a.load_seconds)
    status, result = run_stopping_all(lambda procs: measure(plan, procs, log=log), log)
    if result is None:
        return status
    if a.json is not None:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report.accounts_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
