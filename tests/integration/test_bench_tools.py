"""The benchmark's load tool (bench/radload.c) against real servers, briefly: its answers verify.

No timing assertions: these only show that what radload counts as answered is what a real
server (FreeRADIUS 3.2) and the do-nothing responder send; that a wrong secret is caught; that
the large-realm section (bench/accounts.py) imports, gets answers and reports its targets; that
the profiler (bench/profile.py) finds the gateway's threads and reads its stacks; that an
ablation (bench/ablate.py) switches off what it names and only that; how the report picks
the first loss-free open-loop rate; and that the fleet scenarios' servers (bench/run.py: the
gateway on PostgreSQL, FreeRADIUS with rlm_sql on PostgreSQL) answer and store what they answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench import ablate, accounts, mixed, profile, report
from bench import run as bench_run
from bench.freeradius_conf import sql_missing
from bench.postgres import PostgresServer
from bench.run import BY_KEY, FRAMED_IP, GROUP, PASSWORD, gateway_realms
from bench.servers import (
    Load,
    Processes,
    build_radload,
    radiusgw_cli,
    run_load,
    start_gateway,
    start_responder,
)
from radiusgw.radius.attributes import AcctStatusType, Code
from radiusgw.store import SqliteStore, journal, open_store
from radiusgw.store.journal import JournalWriter
from tests.integration.freeradius import FreeRadius, require_freeradius, running_freeradius
from tests.integration.nas import accounting, answer
from tests.unit.store.test_journal import everything, record

pytestmark = pytest.mark.peers

SECRET = "bench-test-secret"
USERS = """\
alice@group.bench Cleartext-Password := "wonderland"
\tFramed-IP-Address = 10.0.0.5
"""


@pytest.fixture(scope="module")
def radload() -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build bench/radload.c")
    return build_radload()


@pytest.fixture(scope="module")
def freeradius(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeRadius]:
    directory = tmp_path_factory.mktemp("freeradius")
    with running_freeradius(directory, secret=SECRET, users=USERS, threads=2) as fr:
        yield fr


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


def _load(port: int, mode: str, secret: str = SECRET, expect_attr: str | None = None) -> Load:
    return Load(
        port=port,
        secret=secret,
        mode=mode,
        user="alice@group.bench",
        duration=0.3,
        warmup=0,
        window=16,
        sockets=2,
        timeout=0.3,
        expect_attr=expect_attr,
    )


def test_radload_answers_verify_against_freeradius(radload: Path, freeradius: FreeRadius) -> None:
    for mode in ("pap", "chap"):
        load = _load(freeradius.auth_port, mode, expect_attr="8:1")  # Framed-IP-Address
        r = run_load(radload, load, label=mode, progress=False)
        assert r["accepts"] > 0, r
        assert r["invalid"] == r["rejects"] == r["timeouts"] == 0, r
    r = run_load(radload, _load(freeradius.acct_port, "acct"), label="acct", progress=False)
    assert r["acct_responses"] > 0 and r["invalid"] == r["timeouts"] == 0, r
    detail = freeradius.detail()
    starts = detail.count("Acct-Status-Type = Start")
    stops = detail.count("Acct-Status-Type = Stop")
    assert starts > 0 and 0 < stops <= starts


def test_radload_counts_answers_signed_with_another_secret_as_invalid(
    radload: Path, freeradius: FreeRadius
) -> None:
    load = _load(freeradius.auth_port, "pap", secret="not-the-secret")
    r = run_load(radload, load, label="wrong secret", progress=False)
    # FreeRADIUS drops the requests (bad Message-Authenticator) or answers signed with its own
    # secret; either way radload counts no answer.
    assert r["accepts"] == r["rejects"] == 0, r


def test_radload_drives_the_responder(radload: Path, processes: Processes) -> None:
    responder = start_responder(processes, radload, SECRET)
    for mode in ("pap", "acct"):
        r = run_load(radload, _load(responder.auth_port, mode), label=mode, progress=False)
        assert r["answered"] > 0 and r["invalid"] == r["timeouts"] == 0, r


def test_accounts_section_imports_answers_and_stops(
    radload: Path, processes: Processes, tmp_path: Path
) -> None:
    plan = accounts.Plan(accounts=2_000, spread=500, load_seconds=0.3)
    r = accounts.measure(plan, processes, directory=tmp_path)
    assert r["accounts"] == r["imported"] == 2_000
    listed = radiusgw_cli("account", "list", GROUP, "--db", str(tmp_path / "accounts.db"))
    assert len(listed.splitlines()) == 2_000
    assert r["first_answer_code"] == 2  # Access-Accept, its Response Authenticator verified
    assert r["first_answer_attempts"] >= 1 and r["first_user"].endswith(f"@{GROUP}")
    spread = r["spread"]
    assert spread["requests"] == spread["accept"] == 500, spread
    assert r["load"]["accepts"] > 0 and r["load"]["invalid"] == r["load"]["rejects"] == 0
    assert len(r["worker_rss_mb"]) == len(r["worker_pids"]) == 2
    assert all(mb > 0 for mb in r["worker_rss_mb"])
    assert set(r["targets"]) == {"import_s", "worker_rss_mb", "first_answer_s"}
    for target in r["targets"].values():
        assert target["met"] == (target["measured"] < target["limit"]), target
    assert not processes.pids()  # the gateway was stopped, and its workers with it
    assert not any(Path(f"/proc/{pid}").exists() for pid in r["worker_pids"])


def test_profile_splits_the_cpu_by_thread_and_reads_a_worker_s_stacks(
    radload: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which(Path(sys.executable).parent / "py-spy") is None:
        pytest.skip("py-spy is not installed (the test extra has it)")
    args = ["--scenario", "acct", "--duration", "2", "--warmup", "0.5", "--workers", "2"]
    assert profile.main([*args, "--window", "16", "--sample-rate", "100", "--top", "5"]) == 0
    report = capsys.readouterr().out
    assert report == (profile.OUT / "profile-acct.txt").read_text()
    kinds = {line[:26].strip() for line in report.splitlines()}
    # Each worker's loop answers; each worker's applier writes the store, under its own name.
    assert {"worker event loops", "acct-applier"} <= kinds, report
    assert "py-spy failed" not in report, report
    assert "most samples of their own" in report
    assert (
        "Worker._on_acct (radiusgw/server/worker.py:"
        in (profile.OUT / "profile-acct.folded").read_text()
    )


def test_profile_counts_samples_of_their_own_and_in_all_without_the_start_up_frames() -> None:
    folded = "\n".join(
        (
            "main (m.py:1);run (loop.py:5);b (x/n.py:2) 3",
            "main (m.py:1);run (loop.py:5);b (x/n.py:9);c (o.py:4) 2",
            "main (m.py:1);run (loop.py:7) 1",  # the loop's own line: in the trunk, not counted
            "boot (threading.py:1);work (w.py:3) 4",  # another thread: its own trunk
            "not a sample line",
        )
    )
    total, own, inclusive = profile.summarize_stacks(folded, top=5)
    assert total == 10
    assert own == [("work (w.py)", 4), ("b (n.py)", 3), ("c (o.py)", 2), ("run (loop.py)", 1)]
    assert inclusive == [("b (n.py)", 5), ("c (o.py)", 2)]


def test_ablations_switch_off_the_journal_sync_and_the_store_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # install() changes this process: the monkeypatch puts both back after the test.
    monkeypatch.setattr(journal, "os", journal.os)
    monkeypatch.setattr(SqliteStore, "write_accounting", SqliteStore.write_accounting)
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", synced.append)
    store = open_store(tmp_path / "gw.db", tmp_path / "gw.key")
    writer = JournalWriter(tmp_path / "journal", "acct-0")

    writer.append([record(1)])
    store.write_accounting([record(1)])
    assert len(synced) == 1 and store.count_accounting() == 1  # the product, as it is

    ablate.install(ablate.parse("journal-sync, store-writes"))
    writer.append([record(2)])
    store.write_accounting([record(2)])
    assert len(synced) == 1 and store.count_accounting() == 1
    assert len(everything(tmp_path / "journal", "acct-0")) == 2  # still written, not synced

    with pytest.raises(ablate.AblationError, match="unknown ablation fsync; known: journal-sync"):
        ablate.parse("fsync")


def test_an_ablated_gateway_is_the_radiusgw_command_after_the_names() -> None:
    def ablated(names: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bench.ablate", names, "check", "--realms", "realms"],
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = ablated("journal-sync")
    assert done.returncode == 0, done.stderr
    refused = ablated("fsync")
    assert refused.returncode == 1
    assert "unknown ablation fsync" in refused.stderr


def test_the_loss_free_rate_is_the_first_step_down_without_loss() -> None:
    def run(
        scenario: str, server: str, offered: float, timeouts: int = 0, skipped: int = 0
    ) -> dict[str, object]:
        return dict(
            scenario=scenario,
            server=server,
            offered_per_s=offered,
            timeouts=timeouts,
            skipped=skipped,
            invalid=0,
        )

    runs = [
        run("pap", "gateway", 8000.0),
        run("pap", "freeradius", 6000.0, timeouts=3),
        run("pap", "freeradius", 5250.0),
        run("acct", "gateway", 4000.0, skipped=10),
        run("acct", "gateway", 3500.0, timeouts=1),
    ]
    assert report.loss_free(runs) == {
        ("pap", "gateway"): 8000.0,
        ("pap", "freeradius"): 5250.0,
        ("acct", "gateway"): None,
    }


def test_logins_and_accounting_run_at_once_against_one_gateway(
    radload: Path, processes: Processes, tmp_path: Path
) -> None:
    realms = gateway_realms(tmp_path / "realms", None)
    db = tmp_path / "gateway.db"
    radiusgw_cli(
        *("account", "add", GROUP, "alice", "--password", PASSWORD),
        *("--framed-ip", FRAMED_IP, "--db", str(db), "--realms", str(realms)),
    )
    gateway = start_gateway(processes, realms, db, workers=2)

    def load(key: str) -> Load:
        scenario = BY_KEY[key]
        return Load(
            port=gateway.port(scenario.kind),
            secret=scenario.secret,
            mode=scenario.mode,
            user=scenario.user,
            bind=scenario.bind,
            duration=1.0,
            warmup=0.2,
            window=16,
            sockets=4,
            rate=300,
            expect_attr=scenario.expect_attr,
        )

    both = mixed.run_pair(radload, load("pap"), load("acct"), label="test")
    assert both["auth"]["accepts"] > 0 and both["auth"]["invalid"] == 0, both["auth"]
    assert both["acct"]["answered"] > 0 and both["acct"]["invalid"] == 0, both["acct"]
    assert both["auth"]["mode"] == "pap" and both["acct"]["mode"] == "acct"

    run = {"server": "gateway", "round": 1, "alone": both["auth"], **both}
    lines = report.mixed_markdown({"auth_per_s": 300, "acct_per_s": 300, "runs": [run]}, 1.0)
    row = lines[-1].splitlines()[-1]
    assert row.startswith("| gateway | 1 | ") and row.count("|") == len(report.MIXED_HEADER) + 1


def test_mixed_rates_are_fractions_of_the_slower_server() -> None:
    rates = mixed.offered([60_000.0, 40_000.0], [20_000.0, 35_000.0])
    assert rates == mixed.Rates(auth=8_000, acct=8_000)


@pytest.mark.postgres
def test_freeradius_with_rlm_sql_keeps_each_session_in_radacct(
    processes: Processes, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    require_freeradius()
    missing = sql_missing()
    if missing is not None:
        pytest.skip(missing)
    url = postgres_server.create_database()
    dbname = url.rsplit("/", 1)[1]
    fr = bench_run.start_freeradius_sql(
        processes, postgres_server, dbname, tmp_path / "freeradius", threads=2
    )
    secret = bench_run.SECRET.encode()
    user = f"alice@{GROUP}"
    sent = (
        (AcctStatusType.START, "bench-1"),
        (AcctStatusType.START, "bench-2"),
        (AcctStatusType.STOP, "bench-1"),
    )
    for ident, (status, session) in enumerate(sent, start=1):
        request = accounting(user, secret, status, session, ident=ident, nas_ip="127.0.0.1")
        reply = answer(fr.acct_port, request, secret)
        assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE
    assert bench_run.probe(fr, BY_KEY["acct-pg"]) is None  # the bench's own check passes too
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT acctsessionid, acctuniqueid, username, host(nasipaddress),"
            " acctstoptime IS NOT NULL FROM radacct WHERE acctsessionid LIKE 'bench-%'"
            " ORDER BY acctsessionid"
        ).fetchall()
    sessions = [(r[0], r[2], r[3], r[4]) for r in rows]
    assert sessions == [
        ("bench-1", user, "127.0.0.1", True),  # its Stop found the Start's row
        ("bench-2", user, "127.0.0.1", False),
    ]
    # acct_unique in preacct: each session its own MD5, so Stops update the right row.
    uniques = [r[1] for r in rows]
    assert len(set(uniques)) == 2 and all(len(u) == 32 for u in uniques), uniques
    processes.stop(fr.process)
    postgres_server.drop_database(url)


@pytest.mark.postgres
def test_the_bench_s_gateway_on_postgresql_answers_and_keeps_the_session(
    processes: Processes, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    realms = gateway_realms(tmp_path / "realms", None)
    gateway = bench_run.start_gateway_pg(processes, url, realms, tmp_path / "gateway", workers=2)
    for key in ("pap-pg", "acct-pg"):
        assert bench_run.probe(gateway, BY_KEY[key]) is None, key
    # The password key and the journals are the run's, not in the working directory.
    assert (tmp_path / "gateway" / "radiusgw.key").exists()
    assert (tmp_path / "gateway" / "radiusgw.journal").is_dir()
    counts = bench_run.stored_sessions({bench_run.GATEWAY_PG: url}, settle=30)
    assert counts == {bench_run.GATEWAY_PG: {"sessions": 1, "closed": 0}}, counts
    processes.stop(gateway.process)
    postgres_server.drop_database(url)


def test_the_report_lists_accounting_in_four_configurations_or_says_why_not() -> None:
    def figures(rate: float) -> dict[str, object]:
        return {"answered_per_s": rate, "p50_ms": 1.0, "p99_ms": 2.0, "timeouts": 0}

    def row(key: str, gateway: float, freeradius: float) -> dict[str, object]:
        return {
            "key": key,
            "title": key,
            "available": True,
            "gateway": figures(gateway),
            "freeradius": figures(freeradius),
        }

    results: dict[str, object] = {
        "scenarios": [row("acct", 20_000, 40_000), row("acct-pg", 10_000, 2_000)],
        "fleet_sessions": {"gateway-pg": {"sessions": 7, "closed": 6}},
    }
    text = "\n".join(report.fleet_markdown(results))
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    # Ratios to FreeRADIUS's detail file, then to its rlm_sql: each gateway against both.
    assert lines["gateway, SQLite"].endswith("| **0.50** | **10.00** |")
    assert lines["gateway, PostgreSQL"].endswith("| **0.25** | **5.00** |")
    assert "FreeRADIUS, detail file" in lines and "FreeRADIUS, rlm_sql PostgreSQL" in lines
    assert "gateway 7, 6 closed" in text

    missing = {"key": "acct-pg", "title": "accounting, PostgreSQL", "available": False}
    missing["reasons"] = {"freeradius": "rlm_sql_postgresql.so is missing"}
    text = "\n".join(report.fleet_markdown({"scenarios": [missing]}))
    assert "accounting, PostgreSQL: not available (freeradius: rlm_sql_postgresql.so" in text
    assert report.fleet_markdown({"scenarios": [row("acct", 1, 1)]}) == []  # no fleet run
