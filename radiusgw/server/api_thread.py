"""The management API in the serving process (issue 18.4): its own thread, its own event loop.

The API (``radiusgw.api.app``) runs in the process that serves: the supervisor with several
workers, the single worker otherwise. It gets a thread of its own with an asyncio loop of its
own, under ``uvicorn.Server`` (uvicorn installs signal handlers only on the main thread, so
here it installs none: SIGTERM and SIGHUP stay the gateway's). It never runs on a worker's
loop, so an API call can never delay an answer to a NAS; its store calls go to a small thread
pool with ``Backend`` objects of its own.

The listening socket is bound here, before the thread starts, so that an address in use is one
sentence at start (``RadiusGwError``) and port 0 reports the port the OS chose (``api-listening``).
``POST /api/v1/reload`` sends SIGHUP to this process: the same reload as an operator's
``kill -HUP``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import threading
from typing import Any

import uvicorn

from radiusgw.api.app import Api
from radiusgw.api.tokens import load_tokens
from radiusgw.errors import RadiusGwError
from radiusgw.server.batches import name_os_thread
from radiusgw.server.settings import Settings

STOP_TIMEOUT = 5.0


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6) as (address, port); ``ValueError`` otherwise."""
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not ADDR:PORT")
    host = host.removeprefix("[").removesuffix("]")
    return str(ipaddress.ip_address(host)), int(port)


class ApiThread:
    def __init__(self, api: Api, host: str, port: int, log: Any) -> None:
        self.api = api
        self.log = log
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(128)
        except OSError as exc:
            self.socket.close()
            raise RadiusGwError(f"the API cannot listen on {host}:{port}: {exc.strerror}") from None
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            api.app, log_config=None, access_log=False, lifespan="off", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="api", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.log.info("api-listening", address=self.socket.getsockname()[0], port=self.port)

    def _run(self) -> None:
        name_os_thread("api")
        try:
            asyncio.run(self.server.serve(sockets=[self.socket]))
        except Exception as exc:  # logged, never taking the gateway down
            self.log.error("api-stopped", error=repr(exc))

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        self.socket.close()
        self.api.close()


def start_api(settings: Settings, log: Any) -> ApiThread | None:
    """The API of ``settings`` started, or None when ``--api-listen`` is not given."""
    if settings.api_listen is None:
        return None
    if settings.api_tokens is None:
        raise RadiusGwError(
            "--api-listen needs --api-tokens FILE: the API takes no anonymous calls"
        )
    host, port = parse_listen(settings.api_listen)
    pid = os.getpid()
    api = Api(
        db=settings.db,
        key_path=settings.key_path,
        realms=settings.realms,
        tokens=load_tokens(settings.api_tokens),
        log=log.bind(component="api"),
        node=settings.node,
        reload=lambda: os.kill(pid, signal.SIGHUP),
    )
    thread = ApiThread(api, host, port, log)
    thread.start()
    return thread
