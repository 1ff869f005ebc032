"""A running node's identity and heartbeat (issue 15.5, 15.7): ``--node`` in every log line,
and ``radiusgw fleet status`` showing the node's line, its backlog and when it last applied."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from radiusgw.radius.attributes import AcctStatusType, Code
from tests.integration.gateway import radiusgw, running_gateway
from tests.integration.nas import accounting, answer


def fleet_line(db: Path, node: str, **wanted: Any) -> dict[str, Any]:
    """The node's ``fleet status`` object once it shows what is wanted (a heartbeat every 5 s)."""
    deadline = time.monotonic() + 30
    while True:
        out = radiusgw("fleet", "status", "--db", str(db), "--format", "json").stdout
        for line in out.splitlines():
            row = json.loads(line)
            if row["node"] == node and all(
                (row[k] != "-") if v is ... else row[k] == v for k, v in wanted.items()
            ):
                return row
        assert time.monotonic() < deadline, f"no {node} {wanted} in fleet status: {out!r}"
        time.sleep(0.2)


def test_a_node_names_itself_in_every_log_line_and_in_fleet_status(realms: Path, db: Path) -> None:
    with running_gateway(realms, db, "--node", "gw-tokyo-1", workers=2) as gw:
        row = fleet_line(db, "gw-tokyo-1")
        assert row["journal_backlog"] == 0 and row["last_applied"] == "-"
        assert row["age"] < 60
        request = accounting("alice@acme.example", b"acme-secret", AcctStatusType.START, "f-1")
        reply = answer(gw.acct_port, request, b"acme-secret")
        assert reply is not None and reply.code == Code.ACCOUNTING_RESPONSE
        applied = fleet_line(db, "gw-tokyo-1", last_applied=...)
        assert applied["last_applied"] >= applied["started"]
        text = radiusgw("fleet", "status", "--db", str(db)).stdout
        assert text.startswith("gw-tokyo-1\t")
        gw.wait_for("serving", node="gw-tokyo-1")
        lines = list(gw.lines)
    assert lines and all(line.get("node") == "gw-tokyo-1" for line in lines), [
        line for line in lines if line.get("node") != "gw-tokyo-1"
    ]
    assert {"serving", "worker-ready"} <= {line["event"] for line in lines}
