"""``python -m bench.beside``: two gateways under load at the same time, to weigh a difference.

An experiment for the engineer, as ``bench.profile`` is. Two gateways, A and B, each from its
own source tree (``--a-tree``, ``--b-tree``: a worktree of another commit, built in place),
with its own ``--auth-log-days`` and, with ``--a-metrics``/``--b-metrics``, ``--metrics-listen``,
each on its own copy of one database with the same users, are loaded at once by two radloads
(each as ``bench.run`` loads a scenario: ``bench.run.scenario_load``, from ``--shape``) for
``--duration`` seconds, ``--rounds`` times. Each round reports every gateway's answered rate
and its CPU per answer: its worker processes (with their threads), and its auth-log writer
processes counted until ``--catch-up`` seconds after the load.

Why at the same time rather than in turns (``bench.profile`` run after run): on this shared
machine one configuration's CPU per answer moves by 1-2 µs from one run to the next, as much as
the differences being weighed (the authentication log's cost is about that), and by 20 % in
its rate. Run at once, both meet the same spell, and their difference holds from round to round
(four rounds of the log on against off: +1.4 to +1.6 µs an answer in the loops, where runs in
turn gave -2 to +4). The rates are not a cost: the two gateways' shares of the two cores are
not held equal, so the CPU per answer is the figure to compare.

With ``--perf``, ``perf record`` samples each gateway's workers through one round's load, and
the report lists the symbols whose time per answer differs most between the two (``perf``
must be installed: ``apt-get install linux-perf``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import run as bench_run
from bench.ops_cost import copy_database
from bench.profile import CLOCK_TICK, OUT, thread_cpu
from bench.servers import (
    BenchError,
    Load,
    Processes,
    Server,
    build_radload,
    children,
    is_auth_log_writer,
    radiusgw_cli,
    run_load,
    run_stopping_all,
    start_gateway,
)

PERF_HZ = 1999
SCENARIOS = ("pap", "chap", "mschapv2", "vpdn")  # the realms that need no upstream


@dataclass(frozen=True, slots=True)
class Side:
    key: str  # "A" or "B"
    tree: Path | None  # the source tree the gateway runs from (None: this one)
    auth_log_days: int
    metrics: bool  # --metrics-listen


@dataclass(frozen=True, slots=True)
class Round:
    rate: float  # answered per second
    workers_us: float  # CPU per answer of the gateway's processes but its auth-log writers
    writers_us: float  # of its auth-log writers, until the catch-up ended


def cpu_ticks(supervisor: int) -> tuple[int, int]:
    """(the gateway's CPU ticks but its writers', its auth-log writers') so far."""
    gateway = writers = 0
    for (pid, _tid), cpu in thread_cpu(supervisor).items():
        if is_auth_log_writer(pid):
            writers += cpu.user + cpu.system
        else:
            gateway += cpu.user + cpu.system
    return gateway, writers


def perf_symbols(data: Path) -> dict[str, int]:
    """Samples by shared object and symbol in a ``perf record`` file."""
    out = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(data),
            "--no-children",
            "--sort",
            "dso,sym",
            "-n",
            "-g",
            "none",
            "--percent-limit",
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    samples: dict[str, int] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3 or line.startswith("#") or not fields[1].isdigit():
            continue
        symbol = " ".join(fields[2:])
        samples[symbol] = samples.get(symbol, 0) + int(fields[1])
    return samples


def perf_difference(
    a: dict[str, int], b: dict[str, int], a_answers: float, b_answers: float, top: int
) -> list[str]:
    """The symbols whose µs per answer differ most, A minus B, each way."""

    def us(samples: int, answers: float) -> float:
        return samples / PERF_HZ / max(answers, 1.0) * 1e6

    diff = {s: us(a.get(s, 0), a_answers) - us(b.get(s, 0), b_answers) for s in {*a, *b}}
    ranked = sorted(diff.items(), key=lambda item: -item[1])
    lines = [
        f"perf, µs per answer: A {us(sum(a.values()), a_answers):.2f}, "
        f"B {us(sum(b.values()), b_answers):.2f}; A - B, most first:"
    ]
    for symbol, d in [*ranked[:top], ("...", 0.0), *ranked[-top:]]:
        if symbol == "...":
            lines.append("  ...")
            continue
        lines.append(
            f"  {d:+.3f}  A {us(a.get(symbol, 0), a_answers):.3f}  "
            f"B {us(b.get(symbol, 0), b_answers):.3f}  {symbol[:100]}"
        )
    return lines


def _run(radload: Path, key: str, load: Load, results: dict[str, dict[str, Any]]) -> None:
    results[key] = run_load(radload, load, label=f"beside {key}", progress=False)


def _perf(gateway: Server, data: Path, seconds: float) -> subprocess.Popen[bytes]:
    workers = [p for p in children(gateway.process.pid) if not is_auth_log_writer(p)]
    pids = ",".join(map(str, workers or [gateway.process.pid]))
    return subprocess.Popen(
        [
            "perf",
            "record",
            "-F",
            str(PERF_HZ),
            "-o",
            str(data),
            "-p",
            pids,
            "--",
            "sleep",
            f"{seconds:g}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _beside(a: Any, procs: Processes, log: Callable[[str], None]) -> list[str]:
    scenario = bench_run.BY_KEY[a.scenario]
    sides = (
        Side("A", a.a_tree, a.a_auth_log_days, a.a_metrics),
        Side("B", a.b_tree, a.b_auth_log_days, a.b_metrics),
    )
    radload = build_radload()
    OUT.mkdir(exist_ok=True)
    lines = [
        f"# {scenario.title}, two gateways at once, {a.workers} workers each, {a.window} in"
        f" flight each from {a.shape.title}, {a.users:,} users, {a.rounds} rounds of"
        f" {a.duration:g} s",
        *(
            f"{s.key}: {s.tree or 'this tree'}, --auth-log-days {s.auth_log_days}"
            + (", --metrics-listen" if s.metrics else "")
            for s in sides
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="radiusgw-beside-") as tmp:
        work = Path(tmp)
        realms = bench_run.gateway_realms(work / "realms", None, max_accounts=a.users + 10)
        db = work / "gateway.db"
        radiusgw_cli(
            *("account", "add", bench_run.GROUP, "alice", "--password", bench_run.PASSWORD),
            *("--framed-ip", bench_run.FRAMED_IP, "--db", str(db), "--realms", str(realms)),
        )
        if a.users > 1:
            bench_run.import_users(
                a.users, work / "users.csv", "--db", str(db), "--realms", str(realms)
            )
        gateways = {
            s.key: start_gateway(
                procs,
                realms,
                copy_database(db, work / f"gateway-{s.key}.db"),
                workers=a.workers,
                preloaded=True,
                auth_log_days=s.auth_log_days,
                metrics=s.metrics,
                timeout=120.0,
                pythonpath=s.tree,
            )
            for s in sides
        }
        rounds: dict[str, list[Round]] = {s.key: [] for s in sides}
        samples: dict[str, dict[str, int]] = {}
        for n in range(1, a.rounds + 1):
            results: dict[str, dict[str, Any]] = {}
            loads = {
                key: bench_run.scenario_load(a, g, scenario, a.shape) for key, g in gateways.items()
            }
            runners = [
                threading.Thread(target=_run, args=(radload, key, load, results))
                for key, load in loads.items()
            ]
            for runner in runners:
                runner.start()
            time.sleep(a.warmup)
            before = {key: cpu_ticks(g.process.pid) for key, g in gateways.items()}
            perfs = (
                {
                    key: _perf(g, work / f"perf-{key}.data", a.duration - 1)
                    for key, g in gateways.items()
                }
                if a.perf and n == a.rounds
                else {}
            )
            time.sleep(a.duration)
            after = {key: cpu_ticks(g.process.pid) for key, g in gateways.items()}
            for runner in runners:
                runner.join()
            time.sleep(a.catch_up)
            later = {key: cpu_ticks(g.process.pid) for key, g in gateways.items()}
            if set(results) != set(gateways):
                raise BenchError("radload gave no result")
            for key, result in results.items():
                if result["invalid"]:  # a wrong answer is no answer
                    raise BenchError(f"{key} sent {result['invalid']} answers that do not verify")
            for key in gateways:
                answers = results[key]["answered_per_s"] * a.duration
                scale = 1e6 / CLOCK_TICK / max(answers, 1.0)
                rounds[key].append(
                    Round(
                        results[key]["answered_per_s"],
                        (after[key][0] - before[key][0]) * scale,
                        (later[key][1] - before[key][1]) * scale,
                    )
                )
            for key, process in perfs.items():
                process.wait()
                samples[key] = perf_symbols(work / f"perf-{key}.data")
            line = "  ".join(
                f"{key} {r[-1].rate:>8,.0f}/s {r[-1].workers_us:6.2f} + {r[-1].writers_us:4.2f} µs"
                for key, r in rounds.items()
            )
            log(f"round {n}: {line}")
            lines.append(f"round {n}: {line}")
        lines += summary(rounds["A"], rounds["B"])
        if samples:
            perf_answers = {key: rounds[key][-1].rate * (a.duration - 1) for key in samples}
            lines += perf_difference(
                samples["A"], samples["B"], perf_answers["A"], perf_answers["B"], a.top
            )
    return lines


def summary(a: list[Round], b: list[Round]) -> list[str]:
    """Each side's medians, and A's CPU per answer over B's, round by round and their median."""

    def total(r: Round) -> float:
        return r.workers_us + r.writers_us

    by_round = [100 * (total(x) / max(total(y), 1e-9) - 1) for x, y in zip(a, b, strict=True)]
    out = [
        f"{key}: median {statistics.median(r.rate for r in rs):,.0f}/s, "
        f"{statistics.median(r.workers_us for r in rs):.2f} µs an answer in the gateway "
        f"+ {statistics.median(r.writers_us for r in rs):.2f} in its auth-log writers"
        for key, rs in (("A", a), ("B", b))
    ]
    out.append(
        "A's CPU per answer over B's, round by round: "
        + ", ".join(f"{pct:+.1f} %" for pct in by_round)
        + f"; median {statistics.median(by_round):+.1f} %"
    )
    return out


def _one_shape(text: str) -> bench_run.Shape:
    """``--shape``: one NASxPORTS (bench.run's syntax)."""
    found = bench_run.shapes(text)
    if len(found) != 1:
        raise argparse.ArgumentTypeError(f"one shape, not {text!r}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.beside", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="pap")
    parser.add_argument("--users", type=int, default=100_000, help="distinct users")
    parser.add_argument(
        "--zipf", type=float, default=0.0, help="users Zipf-chosen with this s (0: uniform)"
    )
    parser.add_argument(
        "--shape",
        type=_one_shape,
        default=bench_run.Shape(1, 8),
        help="NASxPORTS each radload sends from (default 1x8: radload's own default)",
    )
    parser.add_argument("--workers", type=int, default=4, help="workers of each gateway")
    parser.add_argument("--window", type=int, default=128, help="requests in flight, each")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured a round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument(
        "--catch-up", type=float, default=3.0, help="seconds the writers' CPU is still counted"
    )
    parser.add_argument("--a-tree", type=Path, default=None, help="A's source tree (built)")
    parser.add_argument("--b-tree", type=Path, default=None, help="B's source tree (built)")
    parser.add_argument("--a-auth-log-days", type=int, default=90)
    parser.add_argument("--b-auth-log-days", type=int, default=0)
    parser.add_argument("--a-metrics", action="store_true", help="A with --metrics-listen")
    parser.add_argument("--b-metrics", action="store_true", help="B with --metrics-listen")
    parser.add_argument("--perf", action="store_true", help="perf record the last round")
    parser.add_argument("--top", type=int, default=20, help="symbols listed each way (--perf)")
    a = parser.parse_args(argv)
    if a.duration <= 1:
        parser.error("--duration must be more than 1 s")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    status, lines = run_stopping_all(lambda procs: _beside(a, procs, log), log)
    if lines:
        text = "\n".join(lines) + "\n"
        (OUT / f"beside-{a.scenario}.txt").write_text(text)
        print(text, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
