"""The operations listener (issue 18): ``/metrics``, ``/live`` and ``/ready`` on one HTTP port.

``serve --metrics-listen ADDR:PORT`` (off unless given) runs it in the process that owns the
sockets: the supervisor, or the single worker's process with ``--workers 1``. It runs on a
thread of its own (the standard library's WSGI server around prometheus-client's exposition),
never on a worker's event loop, so a scrape costs the workers nothing, and the listener answers
even while a worker is stuck.

- ``/metrics``: the Prometheus text format, merged from every process's files
  (``radiusgw.server.metrics``).
- ``/live``: 200 while the serving process and every worker run (``Health`` knows the children
  the supervisor forked and reaped), else 503 saying which worker is not running.
- ``/ready``: 200 when every worker serves (it said ``worker-ready``: a marker file the worker
  writes in the metrics directory, named by its pid), the realm set is loaded, and the store
  answers a cheap read (``last_change``) within ``deadline`` seconds on a thread of its own;
  else 503 with the reason as one line of text.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from radiusgw.errors import ConfigError

READY_MARKER = "ready-{pid}"  # in the metrics directory: the worker with that pid serves
STORE_CHECK_DEADLINE = 2.0  # seconds /ready waits for the store's answer


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT`` (an IPv6 address in brackets: ``[::1]:9100``) -> (address, port)."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep:
            raise ValueError
        ipaddress.ip_address(host)
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(
            [f"--metrics-listen {value!r}: expected ADDR:PORT, e.g. 127.0.0.1:9100 or [::1]:9100"]
        ) from None
    return host, port


def mark_ready(directory: str | None, pid: int) -> None:
    """A worker serves: say so to the listener (no-op without metrics)."""
    if directory:
        Path(directory, READY_MARKER.format(pid=pid)).touch()


class Health:
    """What the listener reports: the workers by index, and how to ask the store.

    The supervisor's loop (or the single worker's process) writes ``started``/``exited``; the
    listener thread reads; a lock keeps the two apart."""

    def __init__(
        self,
        workers: int,
        directory: str,
        check_store: Callable[[], object],
        *,
        deadline: float = STORE_CHECK_DEADLINE,
        restarts: Any = None,
    ) -> None:
        """``restarts``: the ``radiusgw_worker_restarts`` counter (``Metrics``)."""
        self.workers = workers
        self.directory = directory
        self.realms_loaded = True  # serve refuses to start without a valid set
        self._restarts = restarts
        self._check_store = check_store
        self._deadline = deadline
        self._lock = threading.Lock()
        self._pids: dict[int, int] = {}  # worker index -> pid
        self._store: ThreadPoolExecutor | None = None
        self._pending: Future[object] | None = None

    def started(self, index: int, pid: int) -> None:
        with self._lock:
            self._pids[index] = pid

    def exited(self, index: int, pid: int, *, restart: bool) -> None:
        """Worker ``index`` (``pid``) died or stopped; ``restart``: it is forked again."""
        from prometheus_client import multiprocess

        with self._lock:
            if self._pids.get(index) == pid:
                del self._pids[index]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.directory, READY_MARKER.format(pid=pid)))
        multiprocess.mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]
        if restart and self._restarts is not None:
            self._restarts.labels(str(index)).inc()

    def live(self) -> str | None:
        """None when the supervisor and every worker run, else why not."""
        with self._lock:
            pids = dict(self._pids)
        missing = [i for i in range(self.workers) if i not in pids]
        if missing:
            return f"worker {missing[0]} is not running"
        return None

    def ready(self) -> str | None:
        """None when ready to serve, else why not (one sentence)."""
        why = self.live()
        if why is not None:
            return why
        if not self.realms_loaded:
            return "the realm set is not loaded"
        with self._lock:
            pids = sorted(self._pids.items())
        for index, pid in pids:
            if not os.path.exists(os.path.join(self.directory, READY_MARKER.format(pid=pid))):
                return f"worker {index} is starting"
        return self._store_answers()

    def _store_answers(self) -> str | None:
        """Ask the store on a thread of its own; a check still running from an earlier scrape
        (a database that hangs) is waited for, not started again."""
        if self._store is None:
            self._store = ThreadPoolExecutor(1, thread_name_prefix="ready-store")
        if self._pending is None or self._pending.done():
            self._pending = self._store.submit(self._check_store)
        try:
            self._pending.result(timeout=self._deadline)
        except FutureTimeout:
            return f"the store did not answer within {self._deadline:g} s"
        except Exception as exc:
            return f"the store does not answer: {exc}"
        return None

    def close(self) -> None:
        if self._store is not None:
            self._store.shutdown(wait=False, cancel_futures=True)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is no news for the log


class Listener:
    """The HTTP server on its own thread; ``port`` is the one bound (``ADDR:0`` picks one)."""

    def __init__(self, listen: str, health: Health) -> None:
        from prometheus_client import CollectorRegistry, multiprocess
        from prometheus_client.exposition import make_wsgi_app

        host, port = parse_listen(listen)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=health.directory)  # type: ignore[no-untyped-call]
        self._metrics = make_wsgi_app(registry)
        self.health = health
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(WSGIServer):
            address_family = family

        self._server = make_server(host, port, self._app, Server, _Quiet)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._serve, name="metrics-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        from radiusgw.server.signals import hold

        hold()  # this thread never takes the server's signals (radiusgw.server.signals)
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.health.close()

    def _app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics(environ, start)
            return result
        if path in ("/live", "/ready"):
            why = self.health.live() if path == "/live" else self.health.ready()
            status = "200 OK" if why is None else "503 Service Unavailable"
            body = ("ok" if why is None else why).encode() + b"\n"
            start(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        start("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"/metrics, /live, /ready\n"]
