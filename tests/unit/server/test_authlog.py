"""The authentication log (issue 18.3): what the engine records per answer (group accept and
reject, proxy accept, reject and challenge, a deferred accept), the rows the writer thread makes
of it, and the bound of the hand-off (the oldest dropped and counted), without sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from radiusgw.domain import Account, AdmissionResult, AuthLogRow
from radiusgw.engine import Admission
from radiusgw.radius.attributes import Code
from radiusgw.server.authlog import AuthLogWriter, framed_ip, rows_of
from radiusgw.store.backend import open_backend
from tests.unit.engine.helpers import ACME_NAS, Accounts, ListLog, engine
from tests.unit.engine.test_engine import pap_request
from tests.unit.engine.test_proxy_realms import (
    NAS_ADDR,
    REALM,
    SERVER,
    access_request,
    forwarded,
    proxy_engine,
    upstream_answer,
)

ALICE = Account("acme.example", "alice", "wonderland", framed_ip="10.0.0.5")


def test_nothing_is_recorded_unless_the_worker_asks_for_it() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS, 5.0)
    assert eng.auth_log is None


def test_group_accepts_and_rejects_become_rows_with_method_and_framed_ip() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.auth_log = []
    eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS, 5.0)
    eng.on_auth(pap_request("alice@acme.example", b"nope", b"acme-secret"), ACME_NAS, 6.0)
    eng.on_auth(pap_request("eve@nowhere.example", b"x", b"acme-secret"), ACME_NAS, 7.0)
    rows = rows_of([(9.0, eng.auth_log)], "gw-a", 1)
    assert rows == [
        AuthLogRow(
            5.0, "gw-a", 1, ACME_NAS[0], "acme.example", "alice@acme.example", "pap",
            "accept", "", "10.0.0.5", None, None,
        ),
        AuthLogRow(
            6.0, "gw-a", 1, ACME_NAS[0], "acme.example", "alice@acme.example", "pap",
            "reject", "unknown user or wrong password", None, None, None,
        ),
        AuthLogRow(
            7.0, "gw-a", 1, ACME_NAS[0], rows[2].realm, "eve@nowhere.example", "pap",
            "reject", rows[2].reason, None, None, None,
        ),
    ]  # fmt: skip
    assert rows[2].reason  # the reject's Reply-Message, whatever the router says


def test_proxy_answers_name_the_upstream_and_deferred_ones_get_the_hand_off_time() -> None:
    e, _ = proxy_engine()
    e.auth_log = []
    for code in (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE):
        request = access_request()
        e.proxied(forwarded(e, request), upstream_answer(request, code), SERVER)
    limited, _ = proxy_engine(max_sessions=1)
    limited.auth_log = []
    request = access_request()
    pending = limited.proxied(forwarded(limited, request), upstream_answer(request, 2), SERVER)
    assert isinstance(pending, Admission)
    limited.admitted(pending, AdmissionResult(True, reservation_id=1))
    rows = rows_of([(9.0, e.auth_log), (10.0, limited.auth_log)], "gw", 0)
    assert [(r.time, r.result, r.upstream, r.realm, r.nas) for r in rows] == [
        (9.0, "accept", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (9.0, "reject", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (9.0, "challenge", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (10.0, "accept", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
    ]
    assert rows[1].reason == "rejected by the customer's server"


def test_framed_ip_is_read_from_the_answer_attributes() -> None:
    header = bytes(20)
    assert framed_ip(header + bytes((18, 4)) + b"hi" + bytes((8, 6, 10, 0, 0, 5))) == "10.0.0.5"
    assert framed_ip(header + bytes((18, 3, 65))) is None
    assert framed_ip(header + bytes((8, 0))) is None  # a broken length ends the walk
    assert framed_ip(None) is None


def test_a_full_buffer_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    async def scenario() -> tuple[AuthLogWriter, list[Any]]:
        eng, _ = engine(Accounts(ALICE))
        log = ListLog()
        db = tmp_path / "gw.db"
        writer = AuthLogWriter(
            eng,
            lambda: open_backend(db, tmp_path / "k"),
            asyncio.get_running_loop(),
            log,
            node="gw",
            worker=0,
            capacity=3,
        )  # not started: nothing leaves the buffer
        writer._thread.outstanding = 1  # as if a batch were in the thread
        for n in range(5):
            request = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
            eng.on_auth(request, ACME_NAS, float(n))
        writer.flush(10.0)
        return writer, [e[0] for _, chunk in writer._pending for e in chunk] + log.events

    writer, kept = asyncio.run(scenario())
    assert writer.dropped == 2
    assert kept[:3] == [2.0, 3.0, 4.0]
    assert kept[3]["event"] == "auth-log-dropped"


def test_the_writer_hands_batches_to_the_store_and_drains_on_close(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"

    async def scenario() -> int:
        eng, _ = engine(Accounts(ALICE))
        writer = AuthLogWriter(
            eng,
            lambda: open_backend(db, tmp_path / "k"),
            asyncio.get_running_loop(),
            ListLog(),
            node="gw",
            worker=2,
        )
        writer.start()
        for n in range(3):
            request = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
            eng.on_auth(request, ACME_NAS, float(n))
            writer.flush(float(n))
        await writer.close(5.0)
        return writer.written

    assert asyncio.run(scenario()) == 3
    store = open_backend(db, tmp_path / "k", read_only=True)
    try:
        assert [(r.time, r.worker) for r in store.auth_log("acme.example")] == [
            (0.0, 2),
            (1.0, 2),
            (2.0, 2),
        ]
    finally:
        store.close()
