"""What a benchmark run reports: the machine and versions, the table, RESULTS.md, the chart.

Everything here is computed from the results dictionary that ``bench.run`` builds; nothing is
typed in by hand. The chart needs matplotlib (``pip install '.[bench]'``); without it the run
still writes the JSON and the Markdown.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import ops_cost, pure, stored, targets
from bench.freeradius_conf import FREERADIUS
from bench.mixed import ACCT_FRACTION, AUTH_FRACTION
from bench.postgres import PostgresUnavailable, find_bin

SERVERS = (("gateway", "gateway"), ("freeradius", "FreeRADIUS"))


def shape_title(key: str | None) -> str:
    """ "16x4" -> "16 NAS x 4 ports"; a run before shapes had one, from one address."""
    if key is None:
        return "one NAS address"
    nas, _, ports = key.partition("x")
    return f"{nas} NAS x {ports} port{'' if ports == '1' else 's'}"


def by_shape(items: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """Rows or runs grouped by their "shape", in the order they came (None: before shapes)."""
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault(item.get("shape"), []).append(item)
    return grouped


def load_cpu(r: dict[str, Any]) -> str:
    """The CPU radload itself took in a run: % of one core, and share of all the cores."""
    if "load_cpu_pct" not in r:
        return ""
    return f"{r['load_cpu_pct']:.0f} % / {100 * r['load_cpu_share']:.0f} %"


def _kind(s: dict[str, Any]) -> str:
    """A scenario row's kind, "acct" or "auth" (rows of runs before the fleet had no kind)."""
    return str(s.get("kind", "acct" if s["key"] == "acct" else "auth"))


def _label(s: dict[str, Any], side: str) -> str:
    """How a scenario row names one of its two servers ("gateway, PostgreSQL" ...)."""
    return str(s.get("labels", {}).get(side, dict(SERVERS)[side]))


def _first_line(args: list[str]) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mhz = re.findall(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return {
        "cpu": models[0] if models else platform.processor(),
        "cpu_mhz": mhz[0] if mhz else None,
        "nproc": _first_line(["nproc"]),
        "memory_gb": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    commit = _first_line(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "status", "--porcelain", "--", "radiusgw"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "radiusgw": f"{dist('radiusgw')} (git {commit}{', radiusgw/ modified' if dirty else ''})",
        "python": sys.version.split()[0],
        "uvloop": dist("uvloop"),
        "pyrad": dist("pyrad"),
        "FreeRADIUS": _first_line([FREERADIUS, "-v"]).split(",")[0].split("Version ")[-1],
        "PostgreSQL": _postgres_version(),
        "cc": _first_line(["cc", "--version"]).removeprefix("cc "),
    }


def _postgres_version() -> str:
    try:
        return _first_line([str(find_bin() / "postgres"), "--version"]).split()[-1]
    except PostgresUnavailable:
        return "not installed"


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def _scenario_rows(scenarios: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in scenarios:
        if not s["available"]:
            why = "; ".join(f"{k}: {v}" for k, v in s["reasons"].items())
            rows.append([s["title"], "not available", "", "", "", "", "", "", "", why])
            continue
        for key, _ in SERVERS:
            r = s[key]
            rounds = " / ".join(_rate(x["answered_per_s"]) for x in r["rounds"])
            bad = []
            if r["invalid"]:
                bad.append(f"{r['invalid']} invalid")
            if r["rejects"] and _kind(s) != "acct":
                bad.append(f"{r['rejects']} rejects")
            rows.append(
                [
                    s["title"] if key == "gateway" else "",
                    _label(s, key),
                    _rate(r["answered_per_s"]),
                    f"{r['p50_ms']:.2f}",
                    f"{r['p99_ms']:.2f}",
                    f"{r['p999_ms']:.2f}",
                    str(r["timeouts"]) + (f" ({', '.join(bad)})" if bad else ""),
                    load_cpu(r),
                    f"{r.get('foreign_cores', 0):.2f}",
                    f"**{s['ratio']:.2f}**" if key == "gateway" else f"rounds: {rounds}",
                ]
            )
            if key == "gateway":
                rows[-1][-1] += f"; rounds: {rounds}"
    return rows


def _signing_note(results: dict[str, Any]) -> str:
    """How many Access answers each server signed with a Message-Authenticator: work that one
    server does and the other may not (RFC 3579 §3.2 makes it optional outside EAP)."""
    shares = []
    for key, name in SERVERS:
        signed = answered = 0
        for s in results.get("scenarios", []):
            if s["available"] and _kind(s) != "acct":
                for r in s[key]["rounds"]:
                    signed += r["with_message_authenticator"]
                    answered += r["accepts"] + r["rejects"]
        if answered:
            shares.append(f"{name} {100 * signed / answered:.0f} %")
    if not shares:
        return ""
    return (
        "Access-Accepts carrying a Message-Authenticator (one more HMAC-MD5 per answer): "
        + ", ".join(shares)
        + ".\n"
    )


def lost(run: dict[str, Any]) -> int:
    """Requests an open-loop run lost: unanswered, skipped for want of an Identifier, or
    answered with something that does not verify."""
    return int(run["timeouts"] + run["skipped"] + run["invalid"])


def loss_free(runs: list[dict[str, Any]]) -> dict[tuple[str, str], float | None]:
    """(scenario, server) -> the offered rate of its first open-loop run without loss (of
    one shape's runs; the gateway's run at FreeRADIUS's rate, "basis", is not a step)."""
    found: dict[tuple[str, str], float | None] = {}
    for r in runs:
        if "basis" in r:
            continue
        key = (r["scenario"], r["server"])
        if found.get(key) is None:
            found[key] = None if lost(r) else float(r["offered_per_s"])
    return found


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


SCENARIO_HEADER = [
    "scenario",
    "server",
    "answered/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "timeouts",
    "radload CPU (of a core / of all)",
    "other CPU",
    "gateway/FreeRADIUS",
]


def _ceilings(results: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """The load tool's ceiling per shape (a run before shapes had one)."""
    if "ceilings" in results:
        return dict(results["ceilings"])
    return {None: results["ceiling"]} if results.get("ceiling") else {}


def table(results: dict[str, Any]) -> str:
    """The scenario tables as plain text, for the terminal: one per shape, then the targets."""
    out = []
    for shape, scenarios in by_shape(results.get("scenarios", [])).items():
        rows = [SCENARIO_HEADER, *_scenario_rows(scenarios)]
        widths = [max(len(r[i].replace("*", "")) for r in rows) for i in range(len(rows[0]) - 1)]
        out.append(shape_title(shape))
        for r in rows:
            cells = [r[i].replace("*", "").ljust(widths[i]) for i in range(len(widths))]
            out.append("  ".join(cells) + "  " + r[-1].replace("*", ""))
    for shape, c in _ceilings(results).items():
        out.append(
            f"load tool ceiling (do-nothing responder), {shape_title(shape)}: "
            f"{_rate(c['answered_per_s'])}/s"
        )
    for shape, judged in targets.evaluate(results).items():
        out.append(f"targets, {shape_title(shape)}:")
        out += [
            f"  {t['target']}: {t['measured'] or '-'} ({t['wanted']}) "
            + t["verdict"].replace("*", "")
            for t in judged
        ]
    if results.get("ops_cost"):
        oc = results["ops_cost"]
        out.append(
            f"operations surface (metrics, auth log): PAP {_rate(oc['on']['answered_per_s'])}/s "
            f"on, {_rate(oc['off']['answered_per_s'])}/s off, cost {oc['cost_pct']:.1f} % "
            f"(< {ops_cost.TARGET_PCT:g} %): " + oc["verdict"].replace("*", "")
        )
    if results.get("accounts"):
        out.append(accounts_table(results["accounts"]))
    return "\n".join(out)


def markdown(results: dict[str, Any]) -> str:
    m, v, st = results["machine"], results["versions"], results["settings"]
    parts = [
        "# Benchmark results\n",
        "Produced by `python -m bench.run` (`make bench`); do not edit by hand, run it again.\n",
        f"- date: {results['date']} (the run took {results.get('elapsed_s', 0):.0f} s)",
        f"- machine: {m['cpu']}, `nproc` = {m['nproc']}, {m['memory_gb']} GB, Linux "
        f"{m['kernel']}; load average at start {m['load_average_at_start']}. The load tool, "
        "the gateway and FreeRADIUS share these cores.",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- load: bench/radload.c, closed loop, {st['window']} requests in flight, "
        + _load_words(st)
        + f"; {st['warmup_s']:g} s warm-up then {st['duration_s']:g} s "
        f"measured per run; {st['rounds']} rounds, gateway and FreeRADIUS alternating "
        "(A B A B); each figure is the mean of the rounds, timeouts their sum. Every request "
        "carries a Message-Authenticator; every answer is verified (Response Authenticator, "
        "Message-Authenticator, and the reply's Framed-IP-Address or both "
        "Tunnel-Server-Endpoints; for MS-CHAPv2, the MS-CHAP2-Success authenticator response "
        "of RFC 2759 §8.7, which only a server that checked the password can compute).",
        f"- servers: gateway with --workers {st['gateway_workers']}; FreeRADIUS 3.2 with "
        f"{st['freeradius_threads']} threads, configured by bench/freeradius_conf.py (the "
        "configuration the integration tests run: `files` users, `pap`, `chap`, `mschap`, "
        "`detail`; "
        "rlm_sql for the PostgreSQL rows), with the same users and every NAS as a client; "
        "proxy scenario: both proxy to one upstream "
        "FreeRADIUS on the same machine; accounting: the gateway answers once the record is "
        "in its journal (fdatasync per batch) and stores it in SQLite with the session table "
        "right after (synchronous=FULL), FreeRADIUS once it is appended to its `detail` file "
        "(no fsync, no session table).",
        "",
        "## Side by side\n",
        '"radload CPU": the CPU the load tool itself took while measuring (user + system, '
        "the mean of the rounds), as a share of one core and of all "
        f"{st.get('cores', m['nproc'])} cores, which it shares with the server. "
        '"other CPU": cores used by processes outside the benchmark during the run (the '
        "worst round; /proc/stat's process time and steal less our processes; the kernel's "
        "interrupt work, most of it the loopback delivering the load's datagrams, is the "
        "load's own and not counted: `interrupt_cores` in results.json). A run above "
        f"{st.get('busy_cores', 0.2):g} was run again, up to {st.get('retries', 0)} times, "
        "keeping the quietest; a figure still above it was measured on a shared machine and is "
        "low.\n",
        *_side_by_side(results),
        _signing_note(results),
        "![rate and latency per scenario](results.png)\n",
        *targets_markdown(results),
        *fleet_markdown(results),
    ]
    ceilings = _ceilings(results)
    if ceilings:
        parts.append("## The load tool's ceiling\n")
    for shape, c in ceilings.items():
        best = max(
            (
                r["answered_per_s"]
                for s in results.get("scenarios", [])
                if s["available"] and s.get("shape") == shape
                for key, _ in SERVERS
                for r in s[key]["rounds"]
            ),
            default=0.0,
        )
        times = f", {c['answered_per_s'] / best:.1f}x the best single round above" if best else ""
        cpu = (
            f"; radload took {c['load_cpu_pct']:.0f} % of a core, "
            f"{100 * c['load_cpu_share']:.0f} % of all the cores"
            if "load_cpu_pct" in c
            else ""
        )
        parts.append(
            f"- {shape_title(shape)}: radload against its do-nothing responder (group PAP "
            f"requests, every answer verified, same window): **{_rate(c['answered_per_s'])} "
            f"answered/s**{times}; p50 {c['p50_ms']:.2f} ms, p99 {c['p99_ms']:.2f} ms, "
            f"timeouts {c['timeouts']}, invalid {c['invalid']}{cpu}."
        )
    if ceilings:
        parts.append("")
    if results.get("open_loop"):
        parts += open_loop_markdown(results)
    if results.get("mixed"):
        parts += mixed_markdown(results["mixed"], st.get("mixed_s", 0))
        if results["mixed"].get("shape"):
            parts.append(f"Under the shape {shape_title(results['mixed']['shape'])}.\n")
    if results.get("ops_cost"):
        parts += ops_cost_markdown(results["ops_cost"])
    if results.get("pure"):
        parts += pure_markdown(results["pure"])
    if results.get("workers"):
        rows = [
            [
                str(r["workers"]),
                _rate(r["answered_per_s"]),
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(r["timeouts"]),
                f"{r.get('foreign_cores', 0):.2f}",
            ]
            for r in results["workers"]
        ]
        shape = results["workers"][0].get("shape")
        parts += [
            "## Gateway workers (group PAP, one run each"
            + (f", {shape_title(shape)}" if shape else "")
            + ")\n",
            _md_table(
                ["--workers", "answered/s", "p50 ms", "p99 ms", "timeouts", "other CPU"], rows
            ),
        ]
    if results.get("accounts"):
        parts += accounts_markdown(results["accounts"])
    if results.get("codec"):
        rows = [
            [
                r["case"],
                f"{r['radiusgw_us']:.2f}",
                f"{r['pyrad_us']:.2f}",
                f"{r['speedup']:.1f}x",
            ]
            for r in results["codec"]
        ]
        parts += [
            "## Codec micro-benchmark (bench/codec.py)\n",
            "Best of 5 repeats, µs per operation, same packets both ways, results cross-checked.\n",
            _md_table(["operation", "radiusgw µs", "pyrad µs", "pyrad / radiusgw"], rows),
        ]
    return "\n".join(parts)


def _load_words(st: dict[str, Any]) -> str:
    """How the load arrived: the shapes, the NAS addresses, the users."""
    if "shapes" not in st:  # a run before shapes: one address, N sockets
        return (
            f"over {st['sockets']} UDP sockets (an Identifier is reused only after "
            f"~{st['sockets'] * 256:,} requests)"
        )
    shapes = " and ".join(shape_title(sh["key"]) for sh in st["shapes"])
    firsts = ", ".join(f"{who} from {first}" for who, first in st["nas_first"].items())
    users = (
        "one user per scenario"
        if st["users"] <= 1
        else f"{st['users']:,} distinct users in both servers, each request for one chosen "
        + ("uniformly" if not st["zipf"] else f"Zipf-distributed (exponent {st['zipf']:g})")
    )
    live = st.get("live_sessions", 0)
    stops = (
        f"accounting: {live:,} sessions open at once, each NAS stopping its oldest past its "
        f"share, so that a Stop comes about {2 * live:,} records after its Start; when a run "
        "ends its NAS stop the sessions they still hold, outside its figures, so that the "
        "sessions open stay that many run after run"
        if live
        else "accounting: each Stop right after its Start is answered"
    )
    return (
        f"each scenario under {len(st['shapes'])} shape(s): {shapes} (each NAS a loopback "
        f"address registered as a client in both servers, {firsts}; each port a socket with "
        f"256 Identifiers; a Stop from the NAS of its Start); {users}; {stops}"
    )


def _side_by_side(results: dict[str, Any]) -> list[str]:
    """The scenario table, one per shape (a run before shapes: one table)."""
    grouped = by_shape(results.get("scenarios", []))
    parts = []
    for shape, scenarios in grouped.items():
        if shape is not None:
            parts.append(f"### {shape_title(shape)}\n")
        parts.append(_md_table(SCENARIO_HEADER, _scenario_rows(scenarios)))
    return parts


TARGETS_HEADER = ["target", "wanted", "measured", "verdict"]


def targets_markdown(results: dict[str, Any]) -> list[str]:
    """Issue 19's targets (bench/targets.py), per shape: ratios, met or not by how much."""
    judged = targets.evaluate(results)
    if not judged:
        return []
    parts = [
        "## Targets\n",
        "Each a ratio of two figures of this run under the same shape: the gateway's "
        "answered/s over FreeRADIUS's (accounting also over FreeRADIUS with rlm_sql on "
        "PostgreSQL), and the gateway's open-loop p99 over FreeRADIUS's when both are "
        f"offered 80 % of FreeRADIUS's closed-loop rate (the target asks "
        f'{targets.P99_SECONDS:.0f} s, nothing lost). "not met by X": X in the ratio\'s '
        "units, and as a share of the target.\n",
    ]
    for shape, found in judged.items():
        if shape is not None:
            parts.append(f"### {shape_title(shape)}\n")
        rows = [[t["target"], t["wanted"], t["measured"], t["verdict"]] for t in found]
        parts.append(_md_table(TARGETS_HEADER, rows))
    return parts


OPEN_LOOP_HEADER = [
    "scenario",
    "server",
    "offered",
    "offered/s",
    "answered/s",
    "timeouts",
    "late",
    "skipped",
    "p99 ms",
    "p99.9 ms",
    "radload CPU",
    "other CPU",
]


def _open_loop_rows(runs: list[dict[str, Any]], by_key: dict[str, Any]) -> list[list[str]]:
    def offered(r: dict[str, Any]) -> str:
        basis = r.get("basis")
        of = "its rate" if basis is None else f"{dict(SERVERS).get(basis, basis)}'s rate"
        return f"{r.get('fraction', 0.8):.0%} of {of}"

    return [
        [
            by_key.get(r["scenario"], {}).get("title", r["scenario"]),
            _label(by_key.get(r["scenario"], {"key": r["scenario"]}), r["server"]),
            offered(r),
            _rate(r["offered_per_s"]),
            _rate(r["answered_per_s"]),
            str(r["timeouts"]),
            str(r["late"]),
            str(r["skipped"]),
            f"{r['p99_ms']:.2f}",
            f"{r['p999_ms']:.2f}",
            load_cpu(r),
            f"{r.get('foreign_cores', 0):.2f}",
        ]
        for r in runs
    ]


def open_loop_markdown(results: dict[str, Any]) -> list[str]:
    """The open-loop runs and the first loss-free rate of each server, per shape."""
    st = results["settings"]
    parts = [
        "## Open loop at 80 % of each server's own rate, then lower until loss-free\n",
        f"{st['open_loop_s']:g} s per server at a fixed offered rate (after 0.5 s unmeasured); "
        "a timeout (no answer within 2 s) or a skipped request (every Identifier in use) is "
        'loss; "late" counts the timeouts answered after all, i.e. a backlog rather than a '
        "drop. After a loss, the next lower fraction of the server's closed-loop rate "
        f"({', '.join(f'{f:.0%}' for f in st.get('step_down', []))}) until one is "
        "loss-free. Then the gateway at 80 % of FreeRADIUS's rate, for the p99 target.\n",
    ]
    lowest = f"{min([0.8, *st.get('step_down', [])]):.0%}"
    grouped = by_shape(results.get("scenarios", []))
    for shape, runs in by_shape(results["open_loop"]).items():
        by_key = {s["key"]: s for s in grouped.get(shape, [])}
        found = loss_free(runs)
        if shape is not None:
            parts.append(f"### {shape_title(shape)}\n")
        parts += [
            _md_table(OPEN_LOOP_HEADER, _open_loop_rows(runs, by_key)),
            "The first loss-free offered rate stepping down from 80 %, per scenario and server "
            "(requests/s): what the server held without loss, not the most it could.\n",
            _md_table(
                ["scenario", *(title for _, title in SERVERS)],
                [
                    [
                        by_key.get(key, {}).get("title", key),
                        *(
                            f"none down to {lowest}"
                            if (rate := found.get((key, server))) is None
                            else _rate(rate)
                            for server, _ in SERVERS
                        ),
                    ]
                    for key in dict.fromkeys(r["scenario"] for r in runs)
                ],
            ),
        ]
    return parts


FLEET_HEADER = ["configuration", "answered/s", "p50 ms", "p99 ms", "timeouts"]
ACCOUNTING_HEADER = [
    "configuration",
    "answered/s",
    "stored while answering",
    "sustained/s",
    "p50 ms",
    "p99 ms",
    "timeouts",
]
# (scenario key, side) of each accounting configuration, in the order the report lists them.
ACCOUNTING_CONFIGURATIONS = (
    ("acct", "gateway", "gateway, SQLite"),
    ("acct-pg", "gateway", "gateway, PostgreSQL"),
    ("acct", "freeradius", "FreeRADIUS, detail file"),
    ("acct-pg", "freeradius", "FreeRADIUS, rlm_sql PostgreSQL"),
)
PAP_CONFIGURATIONS = (
    ("pap", "gateway", "gateway, SQLite"),
    ("pap-pg", "gateway", "gateway, PostgreSQL"),
    ("pap-pg", "freeradius", "FreeRADIUS, files"),
)


def _fleet_rows(
    rows: dict[str, dict[str, Any]], configurations: tuple[tuple[str, str, str], ...]
) -> list[tuple[str, dict[str, Any]]]:
    """(name, figures) of each configuration whose scenario was measured."""
    return [
        (name, rows[key][side])
        for key, side, name in configurations
        if key in rows and rows[key]["available"]
    ]


def _fleet_cells(name: str, r: dict[str, Any]) -> list[str]:
    """A configuration's FLEET_HEADER cells."""
    return [
        name,
        _rate(r["answered_per_s"]),
        f"{r['p50_ms']:.2f}",
        f"{r['p99_ms']:.2f}",
        str(r["timeouts"]),
    ]


def fleet_markdown(results: dict[str, Any]) -> list[str]:
    """The fleet's store (issue 15) beside the single node's: accounting in all four
    configurations with the ratios, and group PAP; nothing if no fleet scenario ran."""
    if not any(s["key"] in ("acct-pg", "pap-pg") for s in results.get("scenarios", [])):
        return []
    parts = [
        "## The fleet's store: PostgreSQL beside SQLite\n",
        "One PostgreSQL cluster for the run (bench/postgres.py: fsync, synchronous_commit and "
        "full_page_writes at their defaults, i.e. on), a database per server. The gateway on "
        "PostgreSQL answers once the record is in its fsync'd journal and applies it to "
        "PostgreSQL with its journal position in the same transaction, sessions kept; "
        "FreeRADIUS writes through rlm_sql with Debian's stock PostgreSQL queries and schema "
        "(`acct_unique` in preacct), one connection per thread, and answers once its "
        "INSERT (Start) or UPDATE (Stop) has committed. Not measured where a row says "
        "why.\n",
    ]
    grouped = by_shape(results.get("scenarios", []))
    for shape, scenarios in grouped.items():
        if shape is not None and len(grouped) > 1:
            parts.append(f"### {shape_title(shape)}\n")
        parts += _fleet_shape({s["key"]: s for s in scenarios})
    kept = results.get("fleet_sessions", {})
    if kept:
        names = {"gateway-pg": "gateway", "freeradius-sql": "FreeRADIUS (radacct)"}
        parts.append(
            "Sessions each kept in PostgreSQL after all its accounting runs (each Start opens "
            "one, its Stop closes it; a run's NAS stop what they hold when it ends): "
            + "; ".join(
                f"{names.get(key, key)} {_rate(c['sessions'])}, {_rate(c['closed'])} closed"
                for key, c in kept.items()
            )
            + ".\n"
        )
    return parts


def _fleet_shape(rows: dict[str, dict[str, Any]]) -> list[str]:
    """fleet_markdown's tables for one shape's rows (scenario key -> row)."""
    parts = []
    for key in ("acct-pg", "pap-pg"):
        if key in rows and not rows[key]["available"]:
            why = "; ".join(f"{k}: {v}" for k, v in rows[key]["reasons"].items())
            parts.append(f"- {rows[key]['title']}: not available ({why})\n")
    accounting = _fleet_rows(rows, ACCOUNTING_CONFIGURATIONS)
    if accounting:
        peers = [(n, r) for n, r in accounting if n.startswith("FreeRADIUS")]
        header = [*ACCOUNTING_HEADER, *(f"x {n}" for n, _ in peers)]
        table = [
            [
                name,
                _rate(r["answered_per_s"]),
                stored.stored_cell(r),
                _rate(stored.sustained(r)),
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(r["timeouts"]),
                *(
                    f"**{stored.sustained(r) / max(stored.sustained(p), 1e-9):.2f}**"
                    if name.startswith("gateway")
                    else ""
                    for _, p in peers
                ),
            ]
            for name, r in accounting
        ]
        parts += [
            "Accounting Start/Stop, records per second. The gateway answers once a record is in "
            "its fsync'd journal and stores it (the accounting row, the session table) right "
            'after; "stored while answering" is the share of a run\'s records in the store when '
            "its load stopped, the rest stored that much later (bench/stored.py); "
            '"sustained" is answered/s times that share, the rate the store kept, and the ratios '
            "are of sustained rates. FreeRADIUS writes before it answers.\n",
            _md_table(header, table),
        ]
    pap = _fleet_rows(rows, PAP_CONFIGURATIONS)
    if pap:
        table = [_fleet_cells(name, r) for name, r in pap]
        parts += [
            "Group PAP with the accounts in PostgreSQL (the gateway answers from its "
            "workers' account cache, read from PostgreSQL on a miss and kept current by the "
            "change feed; FreeRADIUS from its `files` users):\n",
            _md_table(FLEET_HEADER, table),
        ]
    return parts


MIXED_HEADER = [
    "server",
    "round",
    "PAP p50 ms alone / beside",
    "PAP p99 ms alone / beside",
    "PAP p99.9 ms alone / beside",
    "PAP lost alone / beside",
    "accounting answered/s",
    "accounting p99 ms",
    "accounting lost",
    "other CPU",
]


def mixed_rows(mixed: dict[str, Any]) -> list[list[str]]:
    """One row per server and round: PAP alone and beside accounting, and the accounting."""

    def pair(alone: dict[str, Any], beside: dict[str, Any], key: str) -> str:
        return f"{alone[key]:.2f} / {beside[key]:.2f}"

    return [
        [
            dict(SERVERS)[r["server"]],
            str(r["round"]),
            pair(r["alone"], r["auth"], "p50_ms"),
            pair(r["alone"], r["auth"], "p99_ms"),
            pair(r["alone"], r["auth"], "p999_ms"),
            f"{lost(r['alone'])} / {lost(r['auth'])}",
            _rate(r["acct"]["answered_per_s"]),
            f"{r['acct']['p99_ms']:.2f}",
            str(lost(r["acct"])),
            f"{r.get('foreign_cores', 0):.2f}",
        ]
        for r in mixed["runs"]
    ]


def mixed_markdown(mixed: dict[str, Any], seconds: float) -> list[str]:
    return [
        "## Logins beside accounting (bench/mixed.py)\n",
        f"Open loop, {seconds:g} s each after 0.5 s unmeasured: group PAP alone at "
        f"{_rate(mixed['auth_per_s'])}/s, then the same PAP while accounting Start/Stop is "
        f"offered at {_rate(mixed['acct_per_s'])}/s to the same server "
        f"({AUTH_FRACTION * 100:g} % and {ACCT_FRACTION * 100:g} % of the lower of the two "
        "servers' closed-loop rates). Loss as above.\n",
        _md_table(MIXED_HEADER, mixed_rows(mixed)),
    ]


OPS_COST_HEADER = ["gateway", "answered/s", "p50 ms", "p99 ms", "timeouts", "other CPU"]


def ops_cost_markdown(oc: dict[str, Any]) -> list[str]:
    """bench/ops_cost.py's section: both gateways' PAP, the cost, the target met or not."""
    rows = [
        [
            v.title,
            _rate(oc[v.key]["answered_per_s"]),
            f"{oc[v.key]['p50_ms']:.2f}",
            f"{oc[v.key]['p99_ms']:.2f}",
            str(oc[v.key]["timeouts"]),
            f"{oc[v.key].get('foreign_cores', 0):.2f}",
        ]
        for v in ops_cost.VARIANTS
        if v.key in oc
    ]
    rounds = len(oc["on"]["rounds"])
    parts = oc.get("part_pct") or {}
    alone = ", ".join(f"{ops_cost.PARTS[k]} {pct:.1f} %" for k, pct in parts.items())
    by_round = ", ".join(f"{pct:.1f} %" for pct in oc.get("round_pct") or ())
    return [
        "## What metrics and the authentication log cost (bench/ops_cost.py)\n",
        f"Group PAP, closed loop as above, {oc['seconds']:g} s measured per run, {rounds} "
        f"round(s), under the shape {shape_title(oc['shape'])}: one gateway with "
        "`--metrics-listen` and `--auth-log-days "
        f"{ops_cost.AUTH_LOG_DAYS}`, one with neither (`--auth-log-days 0`), and one with each "
        "alone, each on a copy of the database, taking turns (in the reverse order every other "
        "round, with and without both always back to back); the table gives the means of the "
        "rounds, the cost is the median of the rounds' own (with both against without both in "
        "the same round: why, bench/ops_cost.py).\n",
        _md_table(OPS_COST_HEADER, rows),
        f"Cost: **{oc['cost_pct']:.1f} %** of the throughput with both off (target: under "
        f"{ops_cost.TARGET_PCT:g} %; a shortfall in percentage points): {oc['verdict']}."
        + (f" From the means of the rounds: {oc['mean_pct']:.1f} %." if "mean_pct" in oc else "")
        + (f" Each part alone, against both off: {alone}." if alone else "")
        + (f" Round by round, both on against both off: {by_round}." if by_round else "")
        + "\n",
    ]


PURE_HEADER = ["scenario", *(f"{v.title}, /s" for v in pure.VARIANTS), "compiled / pure"]


def pure_markdown(section: dict[str, Any]) -> list[str]:
    """bench/pure.py's section: each scenario's rate compiled and pure, and the gain."""
    rows = [
        [
            pure.SCENARIOS.get(key, key),
            *(_rate(runs[v.key]["answered_per_s"]) for v in pure.VARIANTS),
            f"{section['gain'][key]:.2f}",
        ]
        for key, runs in section["scenarios"].items()
    ]
    first = next(iter(section["scenarios"].values()))
    rounds = len(first["compiled"]["rounds"])
    return [
        "## What the compiled build gains (bench/pure.py)\n",
        f"The same commit as built by `make compiled` (mypyc) and as pure Python (a copy of the "
        f"package without its extension modules), closed loop as above, {section['seconds']:g} "
        f"s per run, {rounds} round(s), under the shape {shape_title(section['shape'])}, "
        "alternating; the means of the rounds.\n",
        _md_table(PURE_HEADER, rows),
    ]


ACCOUNTS_HEADER = ["target", "measured", "met"]


def _accounts_rows(acc: dict[str, Any]) -> list[list[str]]:
    return [
        [t["target"], f"{t['measured']:g} {t['unit']}", "yes" if t["met"] else "**no**"]
        for t in acc["targets"].values()
    ]


def _accounts_figures(acc: dict[str, Any]) -> list[str]:
    """The figures behind the targets, one sentence each."""
    spread, load = acc["spread"], acc["load"]
    rss = ", ".join(f"{mb:g}" for mb in acc["worker_rss_mb"])
    peaks = ", ".join(f"{mb:g}" for mb in acc["worker_peak_rss_mb"])
    return [
        f"- import: `radiusgw account import` of a {acc['csv_mb']:g} MB CSV into a fresh "
        f"database, {acc['imported']:,} accounts counted by the command, "
        f"{acc['import_s']:g} s wall time (interpreter start included), peak RSS "
        f"{acc['import_peak_rss_mb']:g} MB.",
        f"- start: the gateway with --workers {acc['workers']} logged every worker ready "
        f"{acc['ready_s']:g} s after its process was started, and answered {acc['first_user']} "
        f"with a verified Access-Accept {acc['first_answer_s']:g} s after it "
        f"({acc['first_answer_attempts']} request(s), one every 50 ms from when its port was "
        "logged; this covers the interpreter start, the realm files, the store, forking the "
        "workers and the first look-up on a cold cache).",
        f"- load: {spread['requests']:,} requests for as many distinct random users in "
        f"{spread['seconds']:g} s (from Python, each answer checked for that account's own "
        f"Framed-IP-Address): {spread['accept']:,} accepted, {spread['reject']} rejected, "
        f"{spread['invalid']} invalid, {spread['timeout']} timeouts; then radload on one user, "
        f"{load['duration_s']:g} s: **{_rate(acc['pap_per_s'])} PAP answers/s**, p99 "
        f"{load['p99_ms']:.2f} ms, timeouts {load['timeouts']}, invalid {load['invalid']}, "
        f"other CPU meanwhile {load.get('foreign_cores', 0):.2f} cores.",
        f"- memory after that load (MB = 2^20 octets): workers' VmRSS {rss} (their peaks, "
        f"VmHWM: {peaks}); the supervisor {acc['supervisor_rss_mb']:g}.",
        f"- other CPU during the whole section: {acc.get('foreign_cores', 0):.2f} cores "
        "(cores used by processes outside the benchmark, as above).",
    ]


def accounts_markdown(acc: dict[str, Any]) -> list[str]:
    """The section of bench.accounts: the issue's three targets, then the figures."""
    return [
        f"## {acc['accounts']:,} accounts\n",
        f"One group realm with {acc['accounts']:,} accounts, each with its own password and "
        "Framed-IP-Address (bench/accounts.py).\n",
        _md_table(ACCOUNTS_HEADER, _accounts_rows(acc)),
        "\n".join(_accounts_figures(acc)) + "\n",
    ]


def accounts_table(acc: dict[str, Any]) -> str:
    """The targets as plain text, for the terminal."""
    rows = [ACCOUNTS_HEADER, *_accounts_rows(acc)]
    widths = [max(len(r[i].replace("*", "")) for r in rows) for i in range(len(ACCOUNTS_HEADER))]
    lines = [f"{acc['accounts']:,} accounts"]
    lines += [
        "  ".join(c.replace("*", "").ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
    ]
    lines.append(
        f"import peak RSS {acc['import_peak_rss_mb']:g} MB; worker RSS "
        + ", ".join(f"{mb:g}" for mb in acc["worker_rss_mb"])
        + f" MB; PAP {_rate(acc['pap_per_s'])}/s (radload, one user)"
    )
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> bool:
    """Rate and latency percentiles per scenario, both servers side by side; False without
    matplotlib."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [s for s in results.get("scenarios", []) if s["available"]]
    missing = [s["title"] for s in results.get("scenarios", []) if not s["available"]]
    if not rows:
        return False
    titles = [s["title"] + (f", {s['shape']}" if s.get("shape") else "") for s in rows]
    x = list(range(len(rows)))
    colours = {"gateway": "#1f77b4", "freeradius": "#d62728"}
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(max(14.0, 1.3 * len(rows)), 5.5))
    width = 0.38
    for n, (key, name) in enumerate(SERVERS):
        offset = (n - 0.5) * width
        rates = [s[key]["answered_per_s"] for s in rows]
        bars = ax_rate.bar([i + offset for i in x], rates, width, label=name, color=colours[key])
        ax_rate.bar_label(bars, labels=[f"{r / 1000:.1f}k" for r in rates], fontsize=8)
    title = "answered per second (closed loop; NAS x ports after the name)"
    ceilings = _ceilings(results)
    if ceilings:
        title += "\nload tool ceiling: " + ", ".join(
            f"{c['answered_per_s'] / 1000:.0f}k/s" + (f" ({shape})" if shape else "")
            for shape, c in ceilings.items()
        )
    ax_rate.set_title(title)
    ax_rate.set_xticks(x, titles, rotation=20, ha="right")
    ax_rate.set_ylabel("answered/s")
    ax_rate.legend()
    # Latency: for each scenario, p50 / p99 / p99.9 of each server, as grouped bars.
    marks = (("p50_ms", "p50", 1.0), ("p99_ms", "p99", 0.65), ("p999_ms", "p99.9", 0.35))
    group = 0.8
    step = group / (len(SERVERS) * len(marks))
    for n, (key, name) in enumerate(SERVERS):
        for m, (field, label, alpha) in enumerate(marks):
            offset = -group / 2 + step * (n * len(marks) + m) + step / 2
            ax_lat.bar(
                [i + offset for i in x],
                [s[key][field] for s in rows],
                step,
                color=colours[key],
                alpha=alpha,
                label=f"{name} {label}",
            )
    ax_lat.set_yscale("log")
    ax_lat.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_lat.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax_lat.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_lat.set_title("latency percentiles (ms, log scale)")
    ax_lat.set_xticks(x, titles, rotation=20, ha="right")
    ax_lat.legend(fontsize=7, ncol=2)
    note = f"{results['date']}, {results['machine']['cpu']}, {results['machine']['nproc']} cores"
    if missing:
        note += "; not available: " + ", ".join(missing)
    fig.suptitle(f"radiusgw vs FreeRADIUS ({note})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
