"""``serve(settings)``: validate, bind, then run one worker here or supervise several.

With ``workers == 1`` the worker runs in this process (and reloads the realm files itself on
SIGHUP); with more, ``supervisor`` forks them over shared SO_REUSEPORT sockets and owns the
reloads. Either way the realm files are read once per start or reload (``RealmSet``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import Any

from radiusgw.errors import ConfigError, RadiusGwError
from radiusgw.server.health import Health, Listener
from radiusgw.server.logging import configure
from radiusgw.server.metrics import Metrics, multiproc_dir
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
        realms = RealmSet.load(settings.realms, settings.dictionaries)
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

    with contextlib.ExitStack() as operations:
        metrics = health = None
        if settings.metrics_listen is not None:  # issue 18: before any worker forks
            metrics, health = _operations(settings, workers, log, operations)

        if settings.api_listen:  # issue 18.4: uvicorn only when the API is asked for
            from radiusgw.server.api_thread import start_api

            api = start_api(settings, log)
            if api is not None:
                operations.callback(api.stop)

        def run_one(
            index: int,
            auth: socket.socket,
            acct: socket.socket,
            realms: RealmSet,
            updates: int | None,
        ) -> int:
            worker_log = log.bind(worker=index, pid=os.getpid())
            return run_worker(
                settings, realms, auth, acct, worker_log, index, updates=updates, metrics=metrics
            )

        if workers == 1:
            if health is not None:
                health.started(0, os.getpid())
            return run_one(0, auth_socks[0], acct_socks[0], realms, None)
        supervisor = Supervisor(
            auth_socks,
            acct_socks,
            run_one,
            realms,
            settings.realms,
            log,
            health,
            tuning=settings.tuning,
        )
        return supervisor.run()


def _operations(
    settings: Settings, workers: int, log: Any, stack: contextlib.ExitStack
) -> tuple[Metrics, Health]:
    """The metrics directory, the metrics and the /metrics, /live, /ready listener, each
    undone by ``stack`` when ``serve`` returns."""
    assert settings.metrics_listen is not None
    directory = stack.enter_context(multiproc_dir())
    metrics = Metrics()
    metrics.start_time.set(time.time())

    def check_store() -> None:
        store = open_backend(settings.db, settings.key_path, create=False, node=settings.node)
        try:
            store.last_change()
        finally:
            store.close()

    health = Health(workers, directory, check_store, restarts=metrics.worker_restarts)
    try:
        listener = Listener(settings.metrics_listen, health)
    except OSError as exc:
        raise RadiusGwError(f"cannot listen on {settings.metrics_listen}: {exc.strerror}") from exc
    listener.start()
    stack.callback(listener.stop)
    log.info("metrics-listening", address=settings.metrics_listen, port=listener.port)
    return metrics, health
