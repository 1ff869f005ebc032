"""A worker's life in three parts (startup, main loop, shutdown), as uvicorn's server has it.

A signal handler only notes the signal; the main loop acts on it: a SIGHUP noted while the worker
starts is a reload once the loop runs, and a SIGTERM at any moment ends in a drain that answers
what the worker had taken, then exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from pathlib import Path

from radiusgw.radius import crypto
from radiusgw.radius.attributes import AcctStatusType, Code
from radiusgw.server import signals
from radiusgw.server.realm_set import RealmSet
from radiusgw.server.settings import Settings
from radiusgw.server.worker import Worker
from radiusgw.store.backend import open_backend
from tests.integration.gateway import GLOBEX, running_gateway, write_realms
from tests.integration.nas import accounting, pap
from tests.unit.engine.helpers import ListLog

SECRET = b"acme-secret"


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _stored(db: Path) -> int:
    store = open_backend(str(db), Path(f"{db}.key"), create=False)
    try:
        return store.count_accounting()
    finally:
        store.close()


async def test_the_handlers_only_note_and_the_main_loop_reloads_then_the_drain_answers(
    realms: Path, db: Path
) -> None:
    settings = Settings(
        realms=realms, db=str(db), node="lifecycle", cache_preload=0, auth_log_days=0
    )
    log = ListLog()
    worker = Worker(settings, RealmSet.load(realms), log)
    auth, acct, nas = _udp(), _udp(), _udp()
    loop = asyncio.get_running_loop()
    with signals.deferred(), nas:
        try:
            await worker.startup(auth, acct)
            started = worker.realms
            # A SIGHUP noted during start-up: the handler changes nothing itself.
            write_realms(realms, globex=GLOBEX.replace("Globex", "Globex Renamed"))
            worker.handle_reload()
            assert worker.reload_requested and worker.realms is started
            main = asyncio.create_task(worker.main_loop())
            for _ in range(1000):  # the loop's next turns: the main loop reads the files
                if worker.realms is not started:
                    break
                await asyncio.sleep(0.01)
            assert worker.realms.digest != started.digest
            assert not worker.reload_requested and not main.done()
            # An accounting record taken, then SIGTERM before it is journalled.
            request = accounting("alice@acme.example", SECRET, AcctStatusType.START, "s-1")
            worker._acct_in.on_datagram(request, nas.getsockname())
            assert worker.accounting.outstanding == 1
            worker.handle_exit()
            assert worker.should_exit and not worker.draining
            await main
            assert await worker.shutdown() == 0
        finally:
            for sig in signals.HANDLED:
                loop.remove_signal_handler(sig)
            gc.unfreeze()
            auth.close()  # closed already, unless start-up failed
            acct.close()
        nas.settimeout(5)
        reply = nas.recv(4096)
    assert crypto.response_authenticator_matches(reply, SECRET, request[4:20])
    events = [e["event"] for e in log.events]
    assert events.index("worker-ready") < events.index("reloaded")
    assert events.index("reload-applied") < events.index("draining") < events.index("stopped")
    assert next(e for e in log.events if e["event"] == "draining")["accounting"] == 1
    assert _stored(db) == 1


def test_sigterm_while_starting_answers_what_came_and_exits_0(realms: Path, db: Path) -> None:
    with running_gateway(realms, db, wait_ready=False) as gw, _udp() as nas:
        serving = gw.wait_for("serving")[0]  # the sockets are bound; the worker is starting
        requests = [
            accounting("alice@acme.example", SECRET, AcctStatusType.START, f"s-{n}", ident=n)
            for n in range(20)
        ]
        for request in requests:
            nas.sendto(request, ("127.0.0.1", serving["acct_port"]))
        gw.signal(signal.SIGTERM)
        gw.signal(signal.SIGTERM)  # again, perhaps while it drains: still one clean exit
        gw.signal(signal.SIGHUP)
        assert gw.process.wait(30) == 0
        nas.settimeout(5)
        answered = set()
        for _ in requests:
            reply = nas.recv(4096)
            answered.add(reply[1])
            assert crypto.response_authenticator_matches(reply, SECRET, requests[reply[1]][4:20])
        (stopped,) = gw.wait_for("stopped")
    assert answered == set(range(20))
    assert stopped["accounting_requests"] == 20
    assert _stored(db) == 20
    assert not any("Traceback" in line for line in gw.raw_lines)


def test_a_sighup_while_starting_is_a_reload_once_the_main_loop_runs(
    realms: Path, db: Path
) -> None:
    with running_gateway(realms, db, wait_ready=False) as gw:
        serving = gw.wait_for("serving")[0]
        (realms / "acme.toml").write_text(
            (realms / "acme.toml").read_text().replace("acme-secret", "new-secret")
        )
        gw.signal(signal.SIGHUP)
        reloaded = gw.wait_for("reloaded")[0]
        ready = gw.wait_for("worker-ready")[0]
        assert reloaded["digest"] != serving["digest"] == ready["digest"]
        events = [e["event"] for e in gw.lines]
        assert events.index("worker-ready") < events.index("reloaded")
        request = pap("alice@acme.example", b"wonderland", b"new-secret")
        with _udp() as nas:
            nas.settimeout(5)
            nas.sendto(request, ("127.0.0.1", serving["auth_port"]))
            reply = nas.recv(4096)
        assert reply[0] == Code.ACCESS_ACCEPT
        assert crypto.response_authenticator_matches(reply, b"new-secret", request[4:20])
        assert gw.stop() == 0
