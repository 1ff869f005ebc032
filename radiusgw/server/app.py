"""``serve(settings)``: validate, bind, then run one worker here or supervise several.

With ``workers == 1`` the worker runs in this process; with more, ``supervisor`` forks them
over shared SO_REUSEPORT sockets.
"""

from __future__ import annotations

import os
import socket
import sys

from radiusgw.config import load_registry
from radiusgw.errors import ConfigError, RadiusGwError
from radiusgw.server.logging import configure
from radiusgw.server.settings import Settings
from radiusgw.server.sockets import worker_sockets
from radiusgw.server.supervisor import supervise
from radiusgw.server.worker import run_worker
from radiusgw.store import open_store


def serve(settings: Settings) -> int:
    """Run the gateway in the foreground; the exit code (0 after a clean SIGTERM drain)."""
    log = configure(settings.log_level)
    try:
        registry = load_registry(settings.realms)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        log.error("refused-to-start", reason="invalid realm files", problems=exc.problems)
        return 1
    # Create the database and its key once, before any worker opens them concurrently.
    open_store(settings.db, settings.key_path).close()
    workers = max(1, settings.workers)
    try:
        auth_socks = worker_sockets(settings.listen, settings.auth_port, workers)
        acct_socks = worker_sockets(settings.listen, settings.acct_port, workers)
    except OSError as exc:
        raise RadiusGwError(f"cannot listen on {settings.listen}: {exc.strerror}") from exc
    log.info(
        "serving",
        listen=settings.listen,
        auth_port=auth_socks[0].getsockname()[1],
        acct_port=acct_socks[0].getsockname()[1],
        workers=workers,
        pid=os.getpid(),
        contracts=len(registry.contracts),
        realms=len(registry.realms),
        nas=len(registry.nas),
    )

    def run_one(index: int, auth: socket.socket, acct: socket.socket) -> int:
        return run_worker(
            settings, registry, auth, acct, log.bind(worker=index, pid=os.getpid()), index
        )

    if workers == 1:
        return run_one(0, auth_socks[0], acct_socks[0])
    return supervise(workers, auth_socks, acct_socks, run_one, log)
