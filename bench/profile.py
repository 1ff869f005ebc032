"""``python -m bench.profile``: where the gateway's time goes, for one scenario under load.

It starts the gateway as ``bench.run`` does (the same realms, radload, closed loop; for proxy,
the same FreeRADIUS upstream) and, over the measured seconds, reports:

- the CPU of every thread of the gateway's processes per answered request, user and system
  (closed loop by default; ``--offered N`` runs open loop at N requests/s, where requests
  arrive one at a time and each costs more):
  each worker's event loop, the threads named after their job (``acct-applier``, ``journal-sync``,
  ``admission``, ``spool-writer``; ``radiusgw.server.batches`` names them for the OS), the
  supervisor. This is the figure to compare between two versions: throughput on a shared
  2-core machine moves by 20 % run to run, CPU per answer by a few per cent;
- with py-spy installed (the ``bench`` extra), samples of one worker, all its threads: the
  functions with the most samples of their own and in all, and the collapsed stacks
  (``profile-<scenario>.folded``) for a flame graph tool. py-spy reads the worker from
  outside (``--nonblocking``: the worker is never paused), which needs ptrace rights (root,
  or ``kernel.yama.ptrace_scope`` 0).

The report goes to stdout and to ``bench/out/profile-<scenario>.txt``. Timings stay out of
the tests; this is a tool for the engineer, like ``bench.run``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import run as bench_run
from bench.servers import (
    BenchError,
    Load,
    Processes,
    Server,
    build_radload,
    children,
    descendants,
    is_auth_log_writer,
    radiusgw_cli,
    run_load,
    run_stopping_all,
    start_freeradius,
    start_gateway,
)

OUT = Path(__file__).parent / "out"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ThreadCpu:
    pid: int
    tid: int
    name: str  # the OS thread name (comm)
    user: int  # clock ticks
    system: int


def thread_cpu(root: int) -> dict[tuple[int, int], ThreadCpu]:
    """CPU ticks so far of every thread of ``root`` and its child processes."""
    threads = {}
    for pid in sorted(descendants({root})):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            threads[(pid, int(tid))] = ThreadCpu(
                pid, int(tid), name, int(fields[11]), int(fields[12])
            )
    return threads


def thread_kind(cpu: ThreadCpu, supervisor: int, writers: frozenset[int] = frozenset()) -> str:
    if cpu.pid in writers:
        return "auth-log writer processes"
    if cpu.pid == supervisor:
        return "supervisor (or the lone worker)"
    if cpu.tid == cpu.pid:
        return "worker event loops"
    return cpu.name  # named by radiusgw.server.batches; "python" if not one of those


def cpu_table(
    before: dict[tuple[int, int], ThreadCpu],
    after: dict[tuple[int, int], ThreadCpu],
    supervisor: int,
    answers: float,
) -> list[tuple[str, float, float]]:
    """(thread kind, user, system) in microseconds of CPU per answer, busiest first."""
    totals: dict[str, list[int]] = {}
    writers = frozenset(pid for pid, _ in after if is_auth_log_writer(pid))
    for key, now in after.items():
        then = before.get(key)
        user = now.user - (then.user if then else 0)
        system = now.system - (then.system if then else 0)
        sums = totals.setdefault(thread_kind(now, supervisor, writers), [0, 0])
        sums[0] += user
        sums[1] += system
    scale = 1e6 / CLOCK_TICK / max(answers, 1.0)
    rows = [(kind, user * scale, system * scale) for kind, (user, system) in totals.items()]
    return sorted(rows, key=lambda row: -(row[1] + row[2]))


def _frame(frame: str) -> str:
    """``name (path/file.py:line)`` -> ``name (file.py)``: lines of one function together."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})" if where else name


Ranking = list[tuple[str, int]]


def summarize_stacks(folded: str, top: int) -> tuple[int, Ranking, Ranking]:
    """Samples in all; the functions with most samples of their own; the most in all.

    The frames every stack of a thread starts with (start-up, the event loop's run, the
    thread's bootstrap) are left out of the second list: they hold everything and say nothing.
    """
    stacks: list[tuple[list[str], int]] = []
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([_frame(f) for f in stack.split(";")], int(count)))
    trunks: dict[str, list[str]] = {}  # root frame -> the prefix all its stacks share
    for frames, _ in stacks:
        trunk = trunks.setdefault(frames[0], list(frames))
        depth = 0
        while depth < min(len(trunk), len(frames)) and trunk[depth] == frames[depth]:
            depth += 1
        del trunk[depth:]
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        for frame in set(frames[len(trunks[frames[0]]) :]):
            inclusive[frame] += n
    total = sum(n for _, n in stacks)
    return total, own.most_common(top), inclusive.most_common(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n\n")[0]
    )
    # The scenarios of the gateway on SQLite: this profiler starts no PostgreSQL.
    single = sorted(k for k, s in bench_run.BY_KEY.items() if s.gateway == bench_run.GATEWAY)
    parser.add_argument("--scenario", choices=single, default="pap")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=4, help="gateway workers")
    parser.add_argument(
        "--metrics", action="store_true", help="the gateway with --metrics-listen (issue 18.1)"
    )
    parser.add_argument("--window", type=int, default=128, help="requests in flight")
    parser.add_argument(
        "--offered",
        type=float,
        default=0.0,
        help="open loop at this many requests/s (default: closed loop, --window in flight)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=0,
        help="distinct users of the group realm, each request for one chosen uniformly, as"
        " bench.run's --users (default: 0, one user)",
    )
    parser.add_argument("--sample-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument(
        "--gil", action="store_true", help="py-spy: only samples of the thread holding the GIL"
    )
    parser.add_argument("--no-py-spy", action="store_true", help="the CPU table only")
    parser.add_argument(
        "--auth-log-days",
        type=int,
        default=None,
        help="the gateway's --auth-log-days (0: no authentication log; default: its own, 90)",
    )
    parser.add_argument(
        "--ablate",
        type=bench_run.ablation_names,
        default=[],
        metavar="NAMES",
        help="an experiment: the gateway with this work switched off (bench/ablate.py)",
    )
    a = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    status, _ = run_stopping_all(lambda procs: _profile(a, procs, log), log)
    return status


def _profile(a: argparse.Namespace, procs: Processes, log: Callable[[str], None]) -> None:
    scenario = bench_run.BY_KEY[a.scenario]
    beside = Path(sys.executable).parent / "py-spy"  # in this virtual environment
    py_spy = None if a.no_py_spy else shutil.which(beside) or shutil.which("py-spy")
    if py_spy is None and not a.no_py_spy:
        log("py-spy not found (pip install -e '.[bench]'): the CPU table only")
    radload = build_radload()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="radiusgw-profile-") as tmp:
        work = Path(tmp)
        upstream: Server | None = None  # only the proxy realm uses it
        if scenario.key == "proxy":
            upstream = start_freeradius(
                procs,
                work / "upstream",
                secret=bench_run.UPSTREAM_SECRET,
                users=bench_run.upstream_users(a.users),
                threads=4,
                name="upstream FreeRADIUS",
            )
        realms = bench_run.gateway_realms(
            work / "realms", upstream, max_accounts=max(10, a.users + 1)
        )
        db = work / "gateway.db"
        radiusgw_cli(
            *("account", "add", bench_run.GROUP, "alice", "--password", bench_run.PASSWORD),
            *("--framed-ip", bench_run.FRAMED_IP, "--db", str(db), "--realms", str(realms)),
        )
        many = a.users > 1
        if many:  # the accounts bench.run imports (bench/accounts.py), in the group realm
            log(f"{a.users:,} users")
            bench_run.import_users(
                a.users, work / "users.csv", "--db", str(db), "--realms", str(realms)
            )
        gateway = start_gateway(
            procs,
            realms,
            db,
            workers=a.workers,
            ablate=a.ablate,
            preloaded=True,
            auth_log_days=a.auth_log_days,
            metrics=a.metrics,
        )
        supervisor = gateway.process.pid
        workers = [pid for pid in children(supervisor) if not is_auth_log_writer(pid)]
        workers = workers or [supervisor]  # one worker: the process itself serves
        load = Load(
            port=gateway.port(scenario.kind),
            secret=scenario.secret,
            mode=scenario.mode,
            user=scenario.users if many else scenario.user,
            password=bench_run.PASSWORD_TEMPLATE if many else bench_run.PASSWORD,
            users=max(a.users, 1),
            bind=scenario.bind,
            duration=a.duration,
            warmup=a.warmup,
            window=a.window,
            rate=a.offered,
            expect_attr=scenario.expect_attr,
            live=bench_run.LIVE_SESSIONS if scenario.kind == "acct" else 0,  # one NAS
        )
        result: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: result.update(run_load(radload, load, label="profile", progress=False))
        )
        log(f"{scenario.title}: {a.duration:.0f} s of radload after {a.warmup:.0f} s warm-up")
        runner.start()
        time.sleep(a.warmup)
        before = thread_cpu(supervisor)
        sampler = None
        folded = OUT / f"profile-{scenario.key}.folded"
        folded.unlink(missing_ok=True)  # a failed py-spy must not leave an earlier run's
        if py_spy is not None and workers:
            seconds = max(1, int(a.duration) - 1)  # ends inside the measured window
            command = [
                py_spy,
                *("record", "--pid", str(workers[0]), "--duration", str(seconds)),
                *("--rate", str(a.sample_rate), "--format", "raw", "--output", str(folded)),
                "--nonblocking",
                *(["--gil"] if a.gil else []),
            ]
            sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.add(sampler)
        time.sleep(a.duration)
        after = thread_cpu(supervisor)
        runner.join()
        if not result:
            raise BenchError("radload gave no result")
        lines = _report(a, scenario.title, result, before, after, supervisor)
        if sampler is not None:
            _, err = sampler.communicate(timeout=30)
            if sampler.returncode != 0 or not folded.exists():
                lines.append(f"py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
            else:
                lines += _stack_report(folded, workers[0], a.top, a.gil)
        text = "\n".join(lines) + "\n"
        (OUT / f"profile-{scenario.key}.txt").write_text(text)
        print(text, end="")


def _report(
    a: argparse.Namespace,
    title: str,
    result: dict[str, Any],
    before: dict[tuple[int, int], ThreadCpu],
    after: dict[tuple[int, int], ThreadCpu],
    supervisor: int,
) -> list[str]:
    rate = float(result["answered_per_s"])
    answers = rate * a.duration
    rows = cpu_table(before, after, supervisor, answers)
    loop = f"open loop at {a.offered:,.0f}/s" if a.offered > 0 else f"{a.window} in flight"
    ablated = f", ablated: {', '.join(a.ablate)} (not the product)" if a.ablate else ""
    metrics = ", metrics on" if a.metrics else ""
    lines = [
        f"# {title}, gateway with {a.workers} workers{metrics}{ablated}, {loop},"
        f" {time.strftime('%Y-%m-%d %H:%M')}",
        f"answered {rate:,.0f}/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
        f"  timeouts {result['timeouts']}  rejects {result.get('rejects', 0)}"
        f"  invalid {result.get('invalid', 0)}"
        + (f"  skipped {result.get('skipped', 0)}" if a.offered > 0 else ""),
        "",
        "CPU per answered request, microseconds (all threads of that kind together)",
        f"{'thread':<26} {'user':>7} {'system':>7} {'total':>7}",
    ]
    for kind, user, system in rows:
        if user + system < 0.05:
            continue  # idle: the supervisor, threads of another mode
        lines.append(f"{kind:<26} {user:7.1f} {system:7.1f} {user + system:7.1f}")
    total = sum(user + system for _, user, system in rows)
    lines.append(f"{'gateway, all':<26} {'':>7} {'':>7} {total:7.1f}")
    return lines


def _stack_report(folded: Path, pid: int, top: int, gil: bool) -> list[str]:
    total, own, inclusive = summarize_stacks(folded.read_text(), top)
    what = "holding the GIL" if gil else "on CPU or in a system call"
    lines = [
        "",
        f"py-spy: {total:,} samples of worker {pid}, its threads {what}; "
        f"stacks in {folded.relative_to(OUT.parent.parent)}",
        "",
        "most samples of their own",
    ]
    lines += [f"{100 * n / max(total, 1):5.1f} %  {name}" for name, n in own]
    lines += ["", "most samples in all (the function and what it calls; start-up frames left out)"]
    lines += [f"{100 * n / max(total, 1):5.1f} %  {name}" for name, n in inclusive]
    return lines


if __name__ == "__main__":
    sys.exit(main())
