"""The processes of a benchmark run: the gateway, FreeRADIUS, the do-nothing responder, radload.

Everything listens on 127.0.0.1 (ports from the kernel or from a probe of free ports) and every
process started here is registered with a ``Processes`` set that stops each by its own PID
(SIGTERM, then SIGKILL after a grace period), also on Ctrl-C or an exception.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from bench.freeradius_conf import FREERADIUS, HomeRealm, SqlAccounting, launch, write_config

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent  # the repository: bench and radiusgw importable from here
OUT = BENCH / "out"
RADLOAD_SOURCE = BENCH / "radload.c"
RADLOAD = OUT / "radload"
RADLOAD_CLOSE_SECONDS = 30  # radload.c CLOSE_SECONDS: how long it may take to stop its sessions
FREERADIUS_READY = "Ready to process requests"
CFLAGS = ("-O2", "-Wall", "-Wextra")
# A gateway on a PostgreSQL URL: its password key and journals in a directory of the run's (for
# a URL they would be in the working directory); the CLI that adds accounts uses the same key.
KEY_FILE = "radiusgw.key"
JOURNAL_DIR = "radiusgw.journal"
T = TypeVar("T")


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and why."""


def build_radload() -> Path:
    """Compile bench/radload.c into bench/out/radload unless the binary is newer."""
    if RADLOAD.exists() and RADLOAD.stat().st_mtime >= RADLOAD_SOURCE.stat().st_mtime:
        return RADLOAD
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BenchError("no C compiler (cc) to build bench/radload.c")
    OUT.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [cc, *CFLAGS, "-o", str(RADLOAD), str(RADLOAD_SOURCE), "-lm"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or proc.stderr.strip():
        RADLOAD.unlink(missing_ok=True)
        raise BenchError(f"cc could not build bench/radload.c cleanly:\n{proc.stderr}")
    return RADLOAD


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


class Processes:
    """The processes this run started, stopped one by one by PID, newest first."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []

    def add(self, proc: subprocess.Popen[Any]) -> None:
        self._procs.append(proc)

    def stop(self, proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self._procs:
            self._procs.remove(proc)

    def pids(self) -> set[int]:
        return {p.pid for p in self._procs if p.poll() is None}

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def run_stopping_all(
    work: Callable[[Processes], T], log: Callable[[str], None]
) -> tuple[int, T | None]:
    """Run ``work`` with a fresh ``Processes`` set and stop every process it started, however
    it ends; SIGTERM ends it like Ctrl-C. (exit status, result): (0, result) when it finished,
    (130, None) when interrupted, (1, None) on a ``BenchError`` (logged with its message)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    procs = Processes()
    try:
        return 0, work(procs)
    except KeyboardInterrupt:
        log("interrupted; stopping every process started")
        return 130, None
    except BenchError as exc:
        log(f"error: {exc}")
        return 1, None
    finally:
        procs.stop_all()


@dataclass
class Server:
    """A running RADIUS server: its ports, its process, where its log goes."""

    name: str
    auth_port: int
    acct_port: int
    process: subprocess.Popen[Any]
    log_tail: deque[str]
    metrics_port: int | None = None  # the gateway's /metrics listener, when it has one

    def port(self, kind: str) -> int:
        return self.acct_port if kind == "acct" else self.auth_port


def start_freeradius(
    procs: Processes,
    directory: Path,
    *,
    secret: str,
    users: str,
    clients: Mapping[str, str] | None = None,
    proxy_realms: Sequence[HomeRealm] = (),
    threads: int = 8,
    name: str = "FreeRADIUS",
    sql: SqlAccounting | None = None,
    mschap: bool = False,
) -> Server:
    """FreeRADIUS in the foreground with its config under ``directory``; returns when ready.

    With ``sql``, its accounting goes to that PostgreSQL database through rlm_sql; ``mschap``
    adds its mschap module (MS-CHAPv1/v2)."""
    if not os.access(FREERADIUS, os.X_OK):
        raise BenchError(f"{FREERADIUS} is missing (Debian package freeradius; `make peers`)")
    auth_port, acct_port = free_udp_ports(2)
    raddb = write_config(
        directory,
        secret=secret,
        users=users,
        auth_port=auth_port,
        acct_port=acct_port,
        threads=threads,
        clients=clients,
        proxy_realms=proxy_realms,
        sql=sql,
        mschap=mschap,
    )
    log_path = directory / "freeradius.log"
    proc = launch(raddb, log_path)
    procs.add(proc)
    # 100,000 users in its ``files`` take it a few seconds to read.
    deadline = time.monotonic() + 15 + users.count("\n") / 20_000
    while FREERADIUS_READY not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    return Server(name, auth_port, acct_port, proc, deque([str(log_path)], maxlen=1))


def start_gateway(
    procs: Processes,
    realms: Path,
    db: Path | str,
    *,
    workers: int,
    timeout: float = 30.0,
    ablate: Sequence[str] = (),
    files: Path | None = None,
    metrics: bool = False,
    auth_log_days: int | None = None,
    preloaded: bool = False,
    pythonpath: Path | None = None,
) -> Server:
    """``python -m radiusgw serve`` on 127.0.0.1 port 0; the ports come from its log line.

    ``db`` is an SQLite file or a PostgreSQL URL. ``files``: the directory of the password key
    (``KEY_FILE``) and the accounting journals (``JOURNAL_DIR``). ``ablate`` names work to switch
    off (``bench.ablate``): an experiment, not the product. ``metrics``: ``--metrics-listen``
    on 127.0.0.1 port 0 (its port in ``Server.metrics_port``); ``auth_log_days``:
    ``--auth-log-days`` (None: the gateway's default, 90; 0: no authentication log).
    ``preloaded``: return only once every worker has filled its account cache
    (``accounts-preloaded``), so that this work is not measured beside another server's load.
    ``pythonpath``: a directory searched first for the package (bench/pure.py's copy).
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            *(("-m", "bench.ablate", ",".join(ablate)) if ablate else ("-m", "radiusgw")),
            "serve",
            *("--realms", str(realms), "--db", str(db)),
            *("--listen", "127.0.0.1", "--auth-port", "0", "--acct-port", "0"),
            *("--workers", str(workers)),
            *(() if files is None else ("--key-file", str(files / KEY_FILE))),
            *(() if files is None else ("--journal-dir", str(files / JOURNAL_DIR))),
            *(("--metrics-listen", "127.0.0.1:0") if metrics else ()),
            *(() if auth_log_days is None else ("--auth-log-days", str(auth_log_days))),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # With ``python -m`` the working directory comes first on sys.path: the copy's then.
        cwd=pythonpath,
        env=None if pythonpath is None else {**os.environ, "PYTHONPATH": f"{pythonpath}:{ROOT}"},
    )
    procs.add(proc)
    tail: deque[str] = deque(maxlen=60)
    events: list[dict[str, Any]] = []
    cv = threading.Condition()

    def read() -> None:
        # Keeps reading to the end, so that the pipe never fills and blocks the gateway.
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                with cv:
                    tail.append(line)
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(event, dict):
                        events.append(event)
                        cv.notify_all()
        with cv:
            cv.notify_all()

    reader = threading.Thread(target=read, name=f"gateway-{proc.pid}", daemon=True)
    reader.start()
    deadline = time.monotonic() + (max(timeout, 180.0) if preloaded else timeout)
    with cv:
        while True:
            serving = [e for e in events if e.get("event") == "serving"]
            ready = [e for e in events if e.get("event") == "worker-ready"]
            listening = [e for e in events if e.get("event") == "metrics-listening"]
            filled = [e for e in events if e.get("event") == "accounts-preloaded"]
            if (
                serving
                and len(ready) >= workers
                and (listening or not metrics)
                and (len(filled) >= workers or not preloaded)
            ):
                break
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None or not reader.is_alive():
                raise BenchError("the gateway did not start:\n" + "".join(tail))
            cv.wait(min(left, 0.2))
    ports = serving[0]
    return Server(
        f"gateway ({workers} worker{'s' if workers > 1 else ''})",
        int(ports["auth_port"]),
        int(ports["acct_port"]),
        proc,
        tail,
        int(listening[0]["port"]) if listening else None,
    )


def start_responder(procs: Processes, radload: Path, secret: str) -> Server:
    """radload's do-nothing responder: answers every request, correctly signed, at once."""
    proc = subprocess.Popen(
        [str(radload), "--responder", "--listen", "127.0.0.1", "--port", "0", "--secret", secret],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    procs.add(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        port = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"the responder did not start: {line!r}") from exc
    return Server("do-nothing responder", port, port, proc, deque(maxlen=1))


def radiusgw_cli(*args: str) -> str:
    """Run one ``radiusgw`` command (the operator's CLI); its stdout, or BenchError."""
    proc = subprocess.run(
        [sys.executable, "-m", "radiusgw", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BenchError(
            f"radiusgw {' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout


@dataclass(frozen=True, slots=True)
class Load:
    """One radload run: what to send, where, for how long.

    The sockets: ``nas`` source addresses from ``bind`` on (``bind`` + 0, + 1, ...), each with
    ``ports`` source ports; without ``ports``, one address with ``sockets`` ports. ``users``
    distinct users: ``user`` and ``password`` are then templates with one ``%u`` (``u%07u@realm``),
    chosen uniformly or, with ``zipf`` > 0, Zipf-distributed."""

    port: int
    secret: str
    mode: str  # pap | chap | mschapv2 | vpdn | acct
    user: str
    password: str = "wonderland"
    bind: str = "127.0.0.1"
    duration: float = 10.0
    warmup: float = 1.0
    window: int = 128
    sockets: int = 8
    timeout: float = 2.0
    rate: float = 0.0  # > 0: open loop at this offered rate
    expect_attr: str | None = None  # "TYPE:MIN" that every Access-Accept must carry
    nas: int = 1
    ports: int | None = None
    users: int = 1
    zipf: float = 0.0
    live: int = 0  # acct: sessions each NAS keeps open before it stops its oldest (radload.c)
    leave_open: bool = False  # acct: leave them open when the run ends (radload --leave-open)


def cores() -> int:
    """The cores this process may run on: what the load tool and the servers share."""
    return len(os.sched_getaffinity(0))


def run_load(
    radload: Path,
    load: Load,
    *,
    label: str,
    progress: bool,
    measured: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run radload once; its JSON result. Progress goes straight to our stderr.

    The result states the CPU radload itself took while measuring (``cpu_s``, user + system):
    ``load_cpu_pct`` as a percentage of one core, ``load_cpu_share`` as a share of all the
    machine's cores, which it shares with the server it loads. ``measured()`` is called once
    the run is over and before radload's NAS stop the sessions they hold (accounting with
    ``live``; ``closed_at_end`` in the result), so that what it reads of the server is the
    run's alone (bench/stored.py)."""
    shape = (
        ("--sockets", str(load.sockets))
        if load.ports is None
        else ("--nas", str(load.nas), "--ports", str(load.ports))
    )
    args = [
        str(radload),
        *("--port", str(load.port), "--secret", load.secret, "--mode", load.mode),
        *("--user", load.user, "--password", load.password, "--bind", load.bind),
        *("--duration", str(load.duration), "--warmup", str(load.warmup)),
        *("--window", str(load.window), *shape),
        *("--users", str(load.users), "--zipf", str(load.zipf), "--live", str(load.live)),
        *("--timeout", str(load.timeout), "--label", label),
        "--leave-open" if load.leave_open else "--close-on-input",
    ]
    if load.rate > 0:
        args += ["--rate", str(load.rate)]
    if load.expect_attr:
        args += ["--expect-attr", load.expect_attr]
    if progress:
        args.append("--progress")
    with subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        timer = threading.Timer(load.duration + load.warmup + 30, proc.kill)
        timer.start()
        try:
            first = proc.stdout.readline()  # the run's figures, printed as it ends
            timer.cancel()
            if first and measured is not None:
                measured()
            proc.stdin.write("\n")  # now its NAS may stop their sessions
            proc.stdin.close()
            rest = proc.stdout.read()
            proc.wait(RADLOAD_CLOSE_SECONDS + 5)
        except BrokenPipeError:
            rest = proc.stdout.read()
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0 or not first:
        raise BenchError(f"radload exited {proc.returncode}: {(first + rest).strip()}")
    result: dict[str, Any] = json.loads(first)
    result.update(json.loads(rest))
    result["load_cpu_pct"] = round(100 * result["cpu_cores"], 1)
    result["load_cpu_share"] = round(result["cpu_cores"] / cores(), 3)
    return result


class Busy(NamedTuple):
    """Jiffies of all CPUs since boot, from /proc/stat (proc(5)); guest time is in user."""

    tasks: int  # user, nice and system: every process's own, ours included; and steal
    interrupts: int  # irq and softirq: most of it delivering the load's datagrams (loopback)


def busy_of(stat: str) -> Busy:
    """The busy jiffies of /proc/stat's text ``stat`` (its first line: all CPUs)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in stat.split("\n", 1)[0].split()[1:9]
    )
    return Busy(user + nice + system + steal, irq + softirq)


def _busy_jiffies() -> Busy:
    return busy_of(Path("/proc/stat").read_text())


def processes() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, CPU jiffies of all its threads, user + system)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw.rsplit(")", 1)[1].split()
        stats[int(entry.name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return stats


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, in pid order."""
    return sorted(child for child, (ppid, _) in processes().items() if ppid == pid)


def descendants(roots: set[int], stats: dict[int, tuple[int, int]] | None = None) -> set[int]:
    """``roots`` and every process below them (a worker's auth-log writer is a grandchild of
    the gateway's supervisor)."""
    stats = processes() if stats is None else stats
    found = set(roots)
    grew = True
    while grew:
        below = {pid for pid, (ppid, _) in stats.items() if ppid in found} - found
        found |= below
        grew = bool(below)
    return found


def is_auth_log_writer(pid: int) -> bool:
    """Whether ``pid`` is a worker's auth-log writer process (radiusgw.server.authlog_writer)."""
    try:
        return b"authlog_writer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _tree_jiffies(roots: set[int], stats: dict[int, tuple[int, int]] | None = None) -> int:
    """CPU jiffies (user + system, all threads) of ``roots`` and all their descendants."""
    stats = processes() if stats is None else stats
    return sum(stats[pid][1] for pid in descendants(roots, stats) if pid in stats)


class CpuMeter:
    """How much CPU the machine spent outside this benchmark while a run went on.

    Everything shares two cores here; when another process (a test suite, a build) takes CPU,
    the figures of that run are lower than the machine can do. Measured as the CPU time of all
    processes, and the hypervisor's steal (/proc/stat), minus that of our servers and their
    children, of this process and of its other children (radload: read from /proc while it
    runs, since ``run_load`` calls ``measured`` before it exits; from its rusage once reaped),
    in cores.

    The kernel's interrupt work (irq and softirq) is not counted as someone else's: Linux
    accounts it to no process, and under load it is the load's own, the loopback delivering
    datagrams in softirq context (0.22-0.33 cores under 118,000 PAP/s, with nothing else
    running: counted as other processes, that sent every such run again). It is reported
    apart (``interrupt_cores``).
    """

    def __init__(self, roots: set[int]) -> None:
        self.roots = roots
        self.hz = os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._busy = _busy_jiffies()
        stats = processes()
        self._ours = _tree_jiffies(self.roots, stats)
        self._children = _children_cpu()
        self._mine = self.running_here(stats)
        self._t = time.monotonic()

    def running_here(self, stats: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
        """CPU jiffies so far of this process and of its children outside ``roots``."""
        here = os.getpid()
        return {
            pid: cpu
            for pid, (ppid, cpu) in (processes() if stats is None else stats).items()
            if (pid == here or ppid == here) and pid not in self.roots
        }

    def foreign_cores(self) -> float:
        elapsed = max(time.monotonic() - self._t, 1e-3)
        busy = (_busy_jiffies().tasks - self._busy.tasks) / self.hz
        stats = processes()  # one walk of /proc for both
        ours = (_tree_jiffies(self.roots, stats) - self._ours) / self.hz
        running = self.running_here(stats)  # a child reaped meanwhile counts in the rusage below
        mine = sum(cpu - self._mine.get(pid, 0) for pid, cpu in running.items()) / self.hz
        reaped = _children_cpu() - self._children
        return round(max(0.0, busy - ours - mine - reaped) / elapsed, 2)

    def interrupt_cores(self) -> float:
        elapsed = max(time.monotonic() - self._t, 1e-3)
        return round((_busy_jiffies().interrupts - self._busy.interrupts) / self.hz / elapsed, 2)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def foreign_load(seconds: float = 0.5) -> float:
    """Cores busy over ``seconds`` while our servers are idle: other processes' load (their
    interrupts included: with our servers idle, those are theirs too)."""
    before, t = sum(_busy_jiffies()), time.monotonic()
    time.sleep(seconds)
    return (sum(_busy_jiffies()) - before) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t)


def wait_quiet(limit: float, threshold: float = 0.2) -> tuple[float, float]:
    """Wait up to ``limit`` s for other processes to use under ``threshold`` cores.

    Returns (seconds waited, the last load seen). Our servers are idle between runs, so what is
    busy then is someone else's.
    """
    start = time.monotonic()
    while True:
        seen = foreign_load()
        waited = time.monotonic() - start
        if seen < threshold or waited >= limit:
            return round(waited, 1), round(seen, 2)
