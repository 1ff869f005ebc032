"""The authentication log with a running gateway (issue 18.3): one row per Access-Request
answered, across two workers, read back with ``radiusgw authlog`` and its filters and formats;
retention deletes what is older than ``--auth-log-days`` when the gateway starts."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from radiusgw.domain import AuthLogRow
from radiusgw.store.backend import open_backend
from tests.integration.gateway import radclient, radiusgw, running_gateway
from tests.integration.nas import pap, send_raw
from tests.unit.store.test_authlog import write


def authlog(db: Path, *args: str) -> str:
    return radiusgw("authlog", "--db", str(db), *args).stdout


def rows_json(db: Path, *args: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in authlog(db, *args, "--format", "json").splitlines()]


def wait_rows(db: Path, realm: str, count: int, timeout: float = 15.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = rows_json(db, "--realm", realm)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.peers
def test_every_answer_is_a_row_across_two_workers_and_the_cli_filters(
    realms: Path, db: Path
) -> None:
    start = time.time()
    with running_gateway(realms, db, "--node", "gw-test", workers=2) as gw:
        for password in ("wonderland", "wrong", "wonderland"):
            result = radclient(
                gw.auth_port,
                "auth",
                "acme-secret",
                f'User-Name = "alice@acme.example"\nUser-Password = "{password}"',
            )
            assert result.code in ("Access-Accept", "Access-Reject")
        # Many source ports: the BPF program spreads them over both workers.
        for n in range(12):
            answer = send_raw(gw.auth_port, pap("bob@acme.example", b"builder", b"acme-secret"))
            assert answer is not None and answer[0] == 2, n
        rows = wait_rows(db, "acme.example", 15)
    assert len(rows) == 15
    assert {r["worker"] for r in rows} == {0, 1}
    assert {r["node"] for r in rows} == {"gw-test"}
    alice = [r for r in rows if r["user"] == "alice@acme.example"]
    assert [r["result"] for r in alice] == ["accept", "reject", "accept"]
    assert alice[0]["framed_ip"] == "10.0.0.5" and alice[0]["method"] == "pap"
    assert alice[1]["reason"] == "unknown user or wrong password"
    assert alice[0]["nas"] == "127.0.0.1"

    rejects = rows_json(db, "--realm", "acme.example", "--result", "reject")
    assert [r["user"] for r in rejects] == ["alice@acme.example"]
    only_bob = rows_json(db, "--realm", "ACME.example", "--user", "bob@acme.example")
    assert len(only_bob) == 12
    assert rows_json(db, "--realm", "acme.example", "--until", str(start - 1)) == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start - 1))
    assert len(rows_json(db, "--realm", "acme.example", "--since", iso)) == 15

    table = list(csv.reader(io.StringIO(authlog(db, "--realm", "acme.example", "--format", "csv"))))
    assert table[0][:6] == ["time", "node", "worker", "nas", "realm", "user"]
    assert len(table) == 16
    text = authlog(db, "--realm", "acme.example", "--result", "reject").splitlines()
    assert len(text) == 1 and "\tunknown user or wrong password\t" in text[0]


def test_a_control_character_in_a_user_name_is_escaped_in_text(realms: Path, db: Path) -> None:
    store = open_backend(db, Path(f"{db}.key"))
    try:
        write(
            store,
            [
                AuthLogRow(
                    5.0,
                    "gw",
                    0,
                    "127.0.0.1",
                    "acme.example",
                    "\x1b[2Jx@acme.example",
                    "pap",
                    "reject",
                    "no",
                    None,
                    None,
                    None,
                )
            ],
        )
    finally:
        store.close()
    out = authlog(db, "--realm", "acme.example")
    assert "\\x1b[2Jx@acme.example" in out and "\x1b" not in out
    bad = radiusgw("authlog", "--db", str(db), "--realm", "a", "--since", "yesterday", check=False)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def test_rows_older_than_the_retention_are_deleted_at_start(realms: Path, db: Path) -> None:
    store = open_backend(db, Path(f"{db}.key"))
    now = time.time()
    old = AuthLogRow(now - 3 * 86400, "gw", 0, "127.0.0.1", "acme.example", "a@acme.example",
                     "pap", "accept", "", None, None, None)  # fmt: skip
    try:
        write(store, [old, old._replace(time=now - 3600)])
    finally:
        store.close()
    with running_gateway(realms, db, "--auth-log-days", "2") as gw:
        gw.wait_for("auth-log-pruned", rows=1)
    store = open_backend(db, Path(f"{db}.key"), read_only=True)
    try:
        assert [r.time for r in store.auth_log("acme.example")] == [now - 3600]
    finally:
        store.close()
