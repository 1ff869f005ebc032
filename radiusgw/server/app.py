"""``serve(settings)``: validate, bind, then run one worker here or supervise several.

With ``workers == 1`` the worker runs in this process (and reloads the realm files itself on
SIGHUP); with more, ``supervisor`` forks them over shared SO_REUSEPORT sockets and owns the
reloads. Either way the realm files are read once per start or reload (``RealmSet``).
"""

from __future__ import annotations

import os
import socket
import sys

from radiusgw.errors import ConfigError, RadiusGwError
from radiusgw.server.logging import configure
from radiusgw.server.realm_set import RealmSet
from radiusgw.server.settings import Settings
from radiusgw.server.sockets import worker_sockets
from radiusgw.server.supervisor import Supervisor
from radiusgw.server.worker import run_worker
from radiusgw.store.backend import display_name, open_backend


def serve(settings: Settings) -> int:
    """Run the gateway in the foreground; the exit code (0 after a clean SIGTERM drain)."""
    log = configure(settings.log_level, node=settings.node)
    try:
        realms = RealmSet.load(settings.realms)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        log.error("refused-to-start", reason="invalid realm files", problems=exc.problems)
        return 1
    # Create the database and its key once, before any worker opens them concurrently.
    open_backend(settings.db, settings.key_path, node=settings.node).close()
    workers = max(1, settings.workers)
    try:
        auth_socks = worker_sockets(settings.listen, settings.auth_port, workers)
        acct_socks = worker_sockets(settings.listen, settings.acct_port, workers)
    except OSError as exc:
        raise RadiusGwError(f"cannot listen on {settings.listen}: {exc.strerror}") from exc
    log.info(
        "serving",
        database=display_name(settings.db),
        listen=settings.listen,
        auth_port=auth_socks[0].getsockname()[1],
        acct_port=acct_socks[0].getsockname()[1],
        workers=workers,
        pid=os.getpid(),
        **realms.summary(),
    )

    def run_one(
        index: int,
        auth: socket.socket,
        acct: socket.socket,
        realms: RealmSet,
        updates: int | None,
    ) -> int:
        worker_log = log.bind(worker=index, pid=os.getpid())
        return run_worker(settings, realms, auth, acct, worker_log, index, updates=updates)

    from radiusgw.server.api_thread import start_api  # uvicorn only when the API is asked for

    api = start_api(settings, log) if settings.api_listen else None
    try:
        if workers == 1:
            return run_one(0, auth_socks[0], acct_socks[0], realms, None)
        return Supervisor(auth_socks, acct_socks, run_one, realms, settings.realms, log).run()
    finally:
        if api is not None:
            api.stop()
