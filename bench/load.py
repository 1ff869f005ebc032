"""A RADIUS load tool: a fixed window of outstanding requests over several UDP sockets.

Every request gets a fresh Request Authenticator (so the password is hidden anew, RFC 2865
§5.2), and every answer is verified (Response Authenticator, Message-Authenticator) before it
counts. A request unanswered within ``--timeout`` counts as a timeout and frees its slot. With
``--processes N`` the window is split over N processes so that the tool is not the limit.

Prints one JSON object: answered per second, accepts/rejects, timeouts, p50/p99/p99.9 latency.

    python -m bench.load --port 1812 --secret acme-secret \
        --user alice@acme.example --password wonderland --mode pap --duration 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

from radiusgw.radius import crypto
from radiusgw.radius.attributes import Code
from radiusgw.radius.packet import DecodeError, decode, encode_attributes


@dataclass(frozen=True)
class Job:
    host: str
    port: int
    secret: bytes
    user: bytes
    password: bytes
    mode: str  # "pap" | "chap"
    window: int
    sockets: int
    duration: float
    timeout: float


def _request(job: Job, ident: int) -> tuple[bytes, bytes]:
    auth = os.urandom(16)
    if job.mode == "chap":
        cred = (3, crypto.chap_password(ident, job.password, auth))
    else:
        cred = (2, crypto.hide_password(job.password, job.secret, auth))
    attrs = encode_attributes([(1, job.user), cred, (4, bytes((127, 0, 0, 1)))])
    raw = crypto.sign_request(Code.ACCESS_REQUEST, ident, attrs, job.secret, authenticator=auth)
    return raw, auth


def _verify(raw: bytes, secret: bytes, request_auth: bytes) -> int | None:
    try:
        p = decode(raw)
    except DecodeError:
        return None
    if not crypto.response_authenticator_matches(raw, secret, request_auth):
        return None
    off = p.message_authenticator_offset
    if off < 0 or not crypto.response_message_authenticator_matches(raw, off, secret, request_auth):
        return None
    return p.code


def run_job(job: Job) -> dict[str, Any]:
    socks = []
    for _ in range(job.sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        s.bind(("127.0.0.1", 0))
        s.connect((job.host, job.port))
        s.setblocking(False)
        socks.append(s)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    poller = select.epoll()
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
    # Per socket: free identifiers, and the outstanding ones: id -> (sent at, authenticator).
    free = [list(range(256)) for _ in socks]
    outstanding: list[dict[int, tuple[float, bytes]]] = [{} for _ in socks]
    latencies: list[float] = []
    accepts = rejects = invalid = timeouts = sent = 0
    in_flight = 0
    next_sock = 0
    secret = job.secret
    start = time.perf_counter()
    end = start + job.duration
    last_sweep = start

    def fill(now: float) -> None:
        nonlocal in_flight, next_sock, sent
        while in_flight < job.window:
            for _ in range(len(socks)):
                i = next_sock
                next_sock = (next_sock + 1) % len(socks)
                if free[i]:
                    break
            else:
                return
            ident = free[i].pop()
            raw, auth = _request(job, ident)
            try:
                socks[i].send(raw)
            except BlockingIOError:
                free[i].append(ident)
                return
            outstanding[i][ident] = (now, auth)
            in_flight += 1
            sent += 1

    now = start
    while now < end:
        fill(now)
        for fd, _ in poller.poll(0.05):
            i = by_fd[fd]
            s = socks[i]
            while True:
                try:
                    raw = s.recv(4096)
                except BlockingIOError:
                    break
                if len(raw) < 20:
                    invalid += 1
                    continue
                entry = outstanding[i].pop(raw[1], None)
                if entry is None:
                    continue  # a late answer to a request already timed out
                sent_at, auth = entry
                free[i].append(raw[1])
                in_flight -= 1
                code = _verify(raw, secret, auth)
                if code is None:
                    invalid += 1
                    continue
                latencies.append(time.perf_counter() - sent_at)
                if code == Code.ACCESS_ACCEPT:
                    accepts += 1
                else:
                    rejects += 1
        now = time.perf_counter()
        if now - last_sweep > 0.1:
            last_sweep = now
            for i, pending in enumerate(outstanding):
                for ident in [k for k, (t, _) in pending.items() if now - t > job.timeout]:
                    del pending[ident]
                    free[i].append(ident)
                    in_flight -= 1
                    timeouts += 1
    elapsed = time.perf_counter() - start
    for s in socks:
        s.close()
    return {
        "elapsed": elapsed,
        "sent": sent,
        "accepts": accepts,
        "rejects": rejects,
        "invalid": invalid,
        "timeouts": timeouts,
        "latencies": latencies,
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[k]


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = max(r["elapsed"] for r in results)
    answered = sum(r["accepts"] + r["rejects"] for r in results)
    return {
        "answered_per_s": round(answered / elapsed, 1),
        "answered": answered,
        "accepts": sum(r["accepts"] for r in results),
        "rejects": sum(r["rejects"] for r in results),
        "timeouts": sum(r["timeouts"] for r in results),
        "invalid": sum(r["invalid"] for r in results),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "p999_ms": round(_percentile(latencies, 0.999) * 1000, 3),
        "elapsed_s": round(elapsed, 2),
    }


def run(job: Job, processes: int = 1) -> dict[str, Any]:
    if processes <= 1:
        return summarize([run_job(job)])
    part = Job(**{**job.__dict__, "window": max(1, job.window // processes)})
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return summarize(pool.map(run_job, [part] * processes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1812)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mode", choices=["pap", "chap"], default="pap")
    ap.add_argument("--window", type=int, default=128, help="requests outstanding at once")
    ap.add_argument("--sockets", type=int, default=4)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    a = ap.parse_args()
    job = Job(
        a.host,
        a.port,
        a.secret.encode(),
        a.user.encode(),
        a.password.encode(),
        a.mode,
        a.window,
        a.sockets,
        a.duration,
        a.timeout,
    )
    print(json.dumps({"mode": a.mode, "window": a.window, **run(job, a.processes)}))


if __name__ == "__main__":
    main()
