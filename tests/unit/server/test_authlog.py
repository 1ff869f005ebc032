"""The authentication log (issue 18.3): what the engine records per answer (group accept and
reject, proxy accept, reject and challenge, a deferred accept) and the rows made of it, the
method walk, the frames of the pipe, the writer's bound and retries while the store refuses, and the
worker's hand-off to a real writer process (drained at close, started again after a kill, a
batch dropped and counted while the writer does not read)."""

from __future__ import annotations

import asyncio
import marshal
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radiusgw.authlog_records import AuthLog, pack, values_of
from radiusgw.domain import Account, AdmissionResult, AuthLogBatch, AuthLogRow
from radiusgw.engine import Admission
from radiusgw.engine.cache import framed_ip_of
from radiusgw.modes import group
from radiusgw.radius.attributes import Attr, Code
from radiusgw.radius.packet import HEADER_LENGTH, Packet, attribute_value, decode, encode
from radiusgw.server.authlog import AuthLogWriter
from radiusgw.server.authlog_writer import (
    WRITE_DELAY,
    WRITE_FRAMES,
    FrameError,
    Writer,
    answers,
    chunk_of,
    frame,
    take_frames,
)
from radiusgw.store.authlog import rows_of
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


def handed_off(node: str, worker: int, taken: float, log: AuthLog) -> AuthLogBatch:
    """The engine's records as the worker hands them off and the writer gives them to a store."""
    return AuthLogBatch(node, worker, taken, log.take(taken))


def test_nothing_is_recorded_unless_the_worker_asks_for_it() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS, 5.0)
    assert eng.auth_log is None


def test_group_accepts_and_rejects_become_rows_with_method_and_framed_ip() -> None:
    eng, _ = engine(Accounts(ALICE))
    eng.auth_log = AuthLog()
    eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS, 5.0)
    eng.on_auth(pap_request("alice@acme.example", b"nope", b"acme-secret"), ACME_NAS, 6.0)
    eng.on_auth(pap_request("eve@nowhere.example", b"x", b"acme-secret"), ACME_NAS, 7.0)
    recorded = values_of(bytes(eng.auth_log.by_realm["acme.example"].octets))
    assert recorded[6] == bytes((10, 0, 0, 5))  # the octets, not the text
    rows = [AuthLogRow(*r) for r in rows_of(handed_off("gw-a", 1, 9.0, eng.auth_log))]
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


_ATTRIBUTE = st.tuples(
    st.sampled_from([int(Attr.FRAMED_IP_ADDRESS), int(Attr.SESSION_TIMEOUT), int(Attr.CLASS)]),
    st.binary(min_size=0, max_size=8),
).map(lambda a: bytes((a[0], len(a[1]) + 2)) + a[1])


@given(st.lists(_ATTRIBUTE, max_size=5))
def test_the_cached_framed_ip_is_the_one_the_signed_accept_carries(attrs: list[bytes]) -> None:
    """What the log records of an accept (``CachedAccount.framed_ip``, read once from the
    account's reply) is what a read of the answer's octets finds (what it recorded before)."""
    reply = b"".join(attrs)
    in_answer = attribute_value(bytes(HEADER_LENGTH) + reply, int(Attr.FRAMED_IP_ADDRESS))
    assert framed_ip_of(reply) == (in_answer if in_answer and len(in_answer) == 4 else None)


def test_proxy_answers_name_the_upstream_and_deferred_ones_get_the_hand_off_time() -> None:
    e, _ = proxy_engine()
    e.auth_log = AuthLog()
    for code in (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE):
        request = access_request()
        e.proxied(forwarded(e, request), upstream_answer(request, code), SERVER)
    limited, _ = proxy_engine(max_sessions=1)
    limited.auth_log = AuthLog()
    request = access_request()
    pending = limited.proxied(forwarded(limited, request), upstream_answer(request, 2), SERVER)
    assert isinstance(pending, Admission)
    limited.admitted(pending, AdmissionResult(True, reservation_id=1))
    rows = [
        AuthLogRow(*r)
        for batch in (handed_off("gw", 0, 9.0, e.auth_log), handed_off("gw", 0, 10.0,
                                                                       limited.auth_log))
        for r in rows_of(batch)
    ]  # fmt: skip
    assert [(r.time, r.result, r.upstream, r.realm, r.nas) for r in rows] == [
        (9.0, "accept", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (9.0, "reject", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (9.0, "challenge", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
        (10.0, "accept", "203.0.113.20:1812", REALM, NAS_ADDR[0]),
    ]
    assert rows[1].reason == "rejected by the customer's server"


def test_frames_survive_the_pipe_in_pieces_and_a_foreign_length_is_refused() -> None:
    first = [None, "192.0.2.1", "u@r", "pap", "accept", "", b"\n\0\0\5", None, None]
    second = [2.5, "::1", "x", "none", "reject", "no", None, "lns", ("h", 1)]
    chunks = [(1.0, {"r": pack(first, 1.0)}), (2.0, {None: pack(second * 2, 2.0)})]
    assert chunks[0][1]["r"][:3] == (1.0, 1.0, 1) and chunks[1][1][None][:3] == (2.5, 2.5, 2)
    stream = b"".join(frame(c) for c in chunks)
    buffer = bytearray()
    taken = []
    for i in range(0, len(stream), 7):  # as os.read may cut it
        buffer += stream[i : i + 7]
        taken += take_frames(buffer)
    assert [chunk_of(body) for body in taken] == chunks and not buffer
    assert [answers(chunk_of(body)[1]) for body in taken] == [1, 2]
    with pytest.raises(FrameError):
        take_frames(bytearray(b"\xff\xff\xff\xff"))
    with pytest.raises(FrameError):
        chunk_of(b"\x00garbage")
    with pytest.raises(FrameError):  # not packed
        chunk_of(marshal.dumps((1.0, {"r": ["192.0.2.1"]})))
    with pytest.raises(FrameError):  # a list of the first layout, not lists by realm
        chunk_of(marshal.dumps((1.0, [None] * 10)))
    with pytest.raises(FrameError):
        chunk_of(marshal.dumps((1.0, {1: pack([], 1.0)})))


def test_the_method_is_read_from_the_request_octets() -> None:
    request = pap_request("alice@acme.example", b"wonderland", b"acme-secret")
    assert group.method_of(request) == "pap"
    assert group.method_of(b"") == "none"


MS = (311).to_bytes(4, "big")


@pytest.mark.parametrize(
    "attributes",
    [
        [(1, b"u@r"), (2, b"x" * 16)],
        [(1, b"u@r"), (3, b"\x01" + b"x" * 16)],
        [(3, b"\x01" + b"x" * 16), (2, b"x" * 16)],  # both: the group mode takes PAP first
        [(79, b"\x02\x01\x00\x05\x01")],
        [(26, MS + bytes((11, 18)) + b"c" * 16), (26, MS + bytes((25, 52)) + b"r" * 50)],
        [(26, MS + bytes((11, 10)) + b"c" * 8 + bytes((1, 52)) + b"r" * 50)],  # packed, v1
        [(26, MS + bytes((25, 60)) + b"r" * 10)],  # a sub-length past the end: skipped
        [(26, (9).to_bytes(4, "big") + bytes((25, 4)) + b"rr")],  # another vendor's 25
        [(26, b"\x00\x00")],
        [(1, b"u@r")],
    ],
)
def test_the_method_walk_names_what_the_group_mode_chooses(
    attributes: list[tuple[int, bytes]],
) -> None:
    raw = encode(Packet(1, 7, bytes(16), tuple(attributes)))
    packet = decode(raw)
    assert group.method_of(raw) == group.choose(packet, packet.first_values()).name


def bodies(times: range) -> list[bytes]:
    """One frame body per time, each with one answer of that time."""
    return [
        frame((float(t), {"acme.example": pack([None, "192.0.2.1", f"u{t}@acme.example", "pap",
                                                "accept", "", None, None, None], float(t))}))[4:]
        for t in times
    ]  # fmt: skip


def test_the_writer_holds_frames_while_the_store_refuses_and_drops_the_oldest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.db"
    log = ListLog()
    missing = tmp_path / "not-yet" / "gw.db"  # a directory that does not exist: refused
    target = [missing]
    size = len(bodies(range(1))[0])
    writer = Writer(
        lambda: open_backend(target[0], tmp_path / "k"), log, node="gw", worker=1,
        capacity=3 * size,
    )  # fmt: skip
    writer.take(bodies(range(5)), 10.0)
    assert writer.dropped == 2 and len(writer.held) == 3
    assert not writer.write(10.0)
    assert writer.failing and [e["event"] for e in log.events] == [
        "auth-log-dropped",
        "auth-log-write-failed",
    ]
    target[0] = db
    assert not writer.write(10.5)  # within the retry interval: not tried
    while not writer.write(11.0):
        pass
    assert writer.written == 3 and not writer.pending
    assert log.events[-1]["event"] == "auth-log-write-resumed"
    writer.close()
    store = open_backend(db, tmp_path / "k", read_only=True)
    try:
        assert [(r.time, r.worker) for r in store.auth_log("acme.example")] == [
            (2.0, 1),
            (3.0, 1),
            (4.0, 1),
        ]
    finally:
        store.close()


def test_a_frame_is_written_whole_one_chunk_per_realm(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    writer = Writer(lambda: open_backend(db, tmp_path / "k"), ListLog(), node="gw", worker=0)
    entry = [None, "192.0.2.1", "u@acme.example", "pap", "accept", "", None, None, None]
    other = [3.0, "192.0.2.1", "v@globex.example", "pap", "reject", "no", None, None, None]
    entries = {"acme.example": pack(entry * 20_005, 4.0), "globex.example": pack(other, 4.0)}
    writer.take([frame((4.0, entries))[4:]], 4.0)
    assert writer.write(4.0) and writer.written == 20_006 and not writer.pending
    writer.close()
    store = open_backend(db, tmp_path / "k", read_only=True)
    try:
        assert len(store.auth_log("acme.example")) == 20_005
        assert [r.time for r in store.auth_log("globex.example")] == [3.0]
    finally:
        store.close()
    raw = sqlite3.connect(f"{db}.authlog")
    assert raw.execute(
        "SELECT realm, first, last, rows FROM auth_log_chunks ORDER BY id"
    ).fetchall() == [
        ("acme.example", 4.0, 4.0, 20_005),
        ("globex.example", 3.0, 3.0, 1),
    ]
    raw.close()


def test_the_writer_gathers_frames_into_one_transaction_when_due(tmp_path: Path) -> None:
    """Frames wait ``WRITE_DELAY`` for others, or until ``WRITE_ANSWERS``; one transaction
    takes at most ``WRITE_FRAMES`` of them."""
    store = open_backend(tmp_path / "gw.db", tmp_path / "k")
    transactions: list[int] = []

    class Counted:
        def write_auth_log(self, batches: list[AuthLogBatch]) -> None:
            transactions.append(len(batches))
            store.write_auth_log(batches)

        def close(self) -> None:
            store.close()

    writer = Writer(lambda: Counted(), ListLog(), node="gw", worker=0)  # type: ignore[arg-type,return-value]
    assert writer.due() == float("inf") and writer.timeout(10.0) is None
    writer.take(bodies(range(1, 4)), 10.0)
    writer.take(bodies(range(4, 5)), 10.1)
    assert writer.due() == 10.0 + WRITE_DELAY
    assert writer.timeout(10.2) == pytest.approx(WRITE_DELAY - 0.2)
    assert writer.write(10.25) and transactions == [4] and writer.written == 4
    writer.take(bodies(range(5, 5 + WRITE_FRAMES + 1)), 11.0)
    assert writer.due() == float("-inf")  # as many frames as a transaction takes: at once
    assert not writer.write(11.0) and transactions == [4, WRITE_FRAMES]
    assert writer.held_answers == 1 and writer.due() == 11.0 + WRITE_DELAY
    assert writer.write(11.0) and transactions == [4, WRITE_FRAMES, 1]
    writer.close()
    store = open_backend(tmp_path / "gw.db", tmp_path / "k", read_only=True)
    try:
        assert [r.time for r in store.auth_log("acme.example")] == [
            float(t) for t in range(1, 6 + WRITE_FRAMES)
        ]
    finally:
        store.close()


def test_the_writer_prunes_past_its_days_at_start_and_hourly(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    log = ListLog()
    writer = Writer(lambda: open_backend(db, tmp_path / "k"), log, node="gw", worker=0,
                    prune_days=1)  # fmt: skip
    now = 10 * 86_400.0
    writer.take(bodies(range(int(now) - 2 * 86_400, int(now) - 2 * 86_400 + 1)), now)
    writer.take(bodies(range(int(now), int(now) + 1)), now)
    while not writer.write(now):
        pass
    assert writer.timeout(now) == 0.0
    writer.prune(now)
    assert log.events[-1] == {"level": "info", "event": "auth-log-pruned", "rows": 1, "days": 1}
    assert writer.timeout(now) == 3600.0
    writer.close()


async def hand_off(writer: AuthLogWriter, eng: Any, times: range) -> None:
    for n in times:
        eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS,
                    float(n))  # fmt: skip
        writer.flush(float(n))


def real_writer(tmp_path: Path, eng: Any, log: Any, **kw: Any) -> AuthLogWriter:
    return AuthLogWriter(eng, log, db=str(tmp_path / "gw.db"), key_file=str(tmp_path / "k"),
                         node="gw", worker=2, **kw)  # fmt: skip


def stored(tmp_path: Path) -> list[tuple[float, int, str]]:
    store = open_backend(tmp_path / "gw.db", tmp_path / "k", read_only=True)
    try:
        return [(r.time, r.worker, r.method) for r in store.auth_log("acme.example")]
    finally:
        store.close()


def test_the_writer_process_stores_the_batches_and_drains_at_close(tmp_path: Path) -> None:
    open_backend(tmp_path / "gw.db", tmp_path / "k").close()

    async def scenario() -> int | None:
        eng, _ = engine(Accounts(ALICE))
        writer = real_writer(tmp_path, eng, ListLog())
        await writer.start()
        process = writer.process
        await hand_off(writer, eng, range(3))
        await writer.close(10.0)
        assert eng.auth_log is None
        return None if process is None else process.returncode

    assert asyncio.run(scenario()) == 0
    assert stored(tmp_path) == [(0.0, 2, "pap"), (1.0, 2, "pap"), (2.0, 2, "pap")]


def test_a_killed_writer_is_started_again_and_later_batches_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_backend(tmp_path / "gw.db", tmp_path / "k").close()
    monkeypatch.setattr("radiusgw.server.authlog.FLUSH_INTERVAL", 0.05)
    monkeypatch.setattr("radiusgw.server.authlog.RESTART_DELAY", 0.0)
    log = ListLog()

    async def scenario() -> None:
        eng, _ = engine(Accounts(ALICE))
        writer = real_writer(tmp_path, eng, log)
        await writer.start()
        assert writer.process is not None
        first = writer.process.pid
        os.kill(first, signal.SIGKILL)
        await writer.process.wait()
        running = asyncio.create_task(writer.run())
        deadline = time.monotonic() + 10
        while (writer.process is None or writer.process.pid == first) and (
            time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        running.cancel()
        await hand_off(writer, eng, range(5, 7))
        await writer.close(10.0)

    asyncio.run(scenario())
    events = [e["event"] for e in log.events]
    assert events.count("auth-log-writer-started") == 2 and "auth-log-writer-exited" in events
    assert stored(tmp_path) == [(5.0, 2, "pap"), (6.0, 2, "pap")]


def test_a_hand_off_comes_early_once_the_lists_hold_flush_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the pause of a hand-off stays short: the worker does not wait out the
    interval once the engine holds ``FLUSH_ANSWERS`` answers."""
    open_backend(tmp_path / "gw.db", tmp_path / "k").close()
    monkeypatch.setattr("radiusgw.server.authlog.FLUSH_INTERVAL", 60.0)
    monkeypatch.setattr("radiusgw.server.authlog.FLUSH_ANSWERS", 3)
    monkeypatch.setattr("radiusgw.server.authlog.TICK", 0.01)

    def answer(n: int) -> None:
        eng.on_auth(pap_request("alice@acme.example", b"wonderland", b"acme-secret"), ACME_NAS,
                    float(n))  # fmt: skip

    async def scenario() -> tuple[int, int]:
        writer = real_writer(tmp_path, eng, ListLog())
        running = asyncio.create_task(writer.run())
        answer(1)
        answer(2)
        await asyncio.sleep(0.3)  # 30 ticks: two answers held, the interval far off
        before = writer.held()
        answer(3)
        deadline = time.monotonic() + 10
        while writer.held() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        after = writer.held()
        running.cancel()
        await writer.close(10.0)
        return before, after

    eng, _ = engine(Accounts(ALICE))
    assert asyncio.run(scenario()) == (2, 0)
    assert stored(tmp_path) == [(1.0, 2, "pap"), (2.0, 2, "pap"), (3.0, 2, "pap")]


def test_a_writer_that_does_not_read_costs_batches_not_answers(tmp_path: Path) -> None:
    answers = 40_000  # about 2 MB of frames: past the pipe (1 MiB) and the buffer (100 kB)
    open_backend(tmp_path / "gw.db", tmp_path / "k").close()
    log = ListLog()

    async def scenario() -> int:
        eng, _ = engine(Accounts(ALICE))
        writer = real_writer(tmp_path, eng, log, capacity=100_000)
        await writer.start()
        assert writer.process is not None
        os.kill(writer.process.pid, signal.SIGSTOP)  # reads nothing: the pipe fills
        try:
            for n in range(answers):
                eng.on_auth(
                    pap_request("alice@acme.example", b"wonderland", b"acme-secret"),
                    ACME_NAS,
                    float(n),
                )
                if n % 10 == 9:
                    writer.flush(float(n))
            dropped = writer.dropped
        finally:
            os.kill(writer.process.pid, signal.SIGCONT)
        await writer.close(20.0)
        return dropped, (writer.process is None and 1) or 0

    dropped, _ = asyncio.run(scenario())
    assert 0 < dropped < answers and dropped % 10 == 0  # whole batches, each counted
    assert "auth-log-dropped" in [e["event"] for e in log.events]
    assert len(stored(tmp_path)) == answers - dropped  # what was taken is all written


def test_the_writer_process_ignores_sigterm_and_ends_at_the_end_of_its_pipe(
    tmp_path: Path,
) -> None:
    open_backend(tmp_path / "gw.db", tmp_path / "k").close()

    async def scenario() -> int | None:
        eng, _ = engine(Accounts(ALICE))
        writer = real_writer(tmp_path, eng, ListLog())
        await writer.start()
        process = writer.process
        assert process is not None
        await hand_off(writer, eng, range(2))
        await asyncio.sleep(1.0)  # its interpreter is up and its handlers are set
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert process.returncode is None
        await writer.close(10.0)
        return process.returncode

    assert asyncio.run(scenario()) == 0
    assert len(stored(tmp_path)) == 2
