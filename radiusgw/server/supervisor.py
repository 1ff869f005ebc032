"""Several workers on one port: fork them, keep them running, pass signals on.

The supervisor binds every worker's sockets first (``sockets.worker_sockets``) and keeps them
open for the life of the server, so the SO_REUSEPORT group and its order never change: a worker
that dies is forked again on the same sockets, and datagrams that arrive meanwhile wait in its
socket's buffer. SIGTERM and SIGINT are passed to every worker (each drains and exits 0), SIGHUP
too (each re-reads the realm files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

RESTART_BURST = 5  # restarts of one worker within RESTART_WINDOW before slowing down
RESTART_WINDOW = 10.0


def supervise(
    workers: int,
    auth_socks: list[socket.socket],
    acct_socks: list[socket.socket],
    run_one: Callable[[int, socket.socket, socket.socket], int],
    log: Any,
) -> int:
    children: dict[int, int] = {}
    restarts: dict[int, list[float]] = {i: [] for i in range(workers)}
    stopping = False
    failed = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                for j, (a, b) in enumerate(zip(auth_socks, acct_socks, strict=True)):
                    if j != index:
                        a.close()
                        b.close()
                code = run_one(index, auth_socks[index], acct_socks[index])
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        children[pid] = index

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for index in range(workers):
        spawn(index)

    while children:
        pid, status = os.wait()  # retried after our signal handlers run (PEP 475)
        if pid not in children:
            continue
        index = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            if code != 0:
                failed = True
                log.error("worker-exit", worker=index, pid=pid, code=code)
            continue
        log.error("worker-died", worker=index, pid=pid, code=code, action="restart")
        now = time.monotonic()
        recent = [t for t in restarts[index] if now - t < RESTART_WINDOW]
        if len(recent) >= RESTART_BURST:
            time.sleep(1.0)  # a worker crashing in a loop must not spin the machine
        restarts[index] = [*recent, now]
        spawn(index)
    for sock in (*auth_socks, *acct_socks):
        sock.close()
    return 1 if failed else 0
