"""Issue 18.2: /live and /ready as the listener decides them, and the listen address."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from radiusgw.errors import ConfigError
from radiusgw.server.health import Health, mark_ready, parse_listen


def test_listen_addresses_take_ipv4_and_bracketed_ipv6() -> None:
    assert parse_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("localhost:9100", "127.0.0.1", "::1:9100x", "127.0.0.1:70000"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_live_needs_every_worker_running(tmp_path: Path) -> None:
    health = Health(2, str(tmp_path), lambda: None)
    assert health.live() == "worker 0 is not running"
    health.started(0, 100)
    health.started(1, 101)
    assert health.live() is None
    health.exited(1, 101, restart=True)
    assert health.live() == "worker 1 is not running"


def test_ready_needs_every_worker_serving_and_the_store_answering(tmp_path: Path) -> None:
    failing = threading.Event()

    def check() -> None:
        if failing.is_set():
            raise OSError("unable to open database file")

    health = Health(1, str(tmp_path), check)
    health.started(0, 100)
    assert health.ready() == "worker 0 is starting"
    mark_ready(str(tmp_path), 100)
    assert health.ready() is None
    failing.set()
    assert health.ready() == "the store does not answer: unable to open database file"
    failing.clear()
    assert health.ready() is None
    health.exited(0, 100, restart=False)
    assert not (tmp_path / "ready-100").exists()  # a new pid must say it serves again
    health.close()


def test_a_store_that_hangs_is_not_ready_within_the_deadline(tmp_path: Path) -> None:
    release = threading.Event()
    health = Health(1, str(tmp_path), release.wait, deadline=0.05)
    health.started(0, 7)
    mark_ready(str(tmp_path), 7)
    assert health.ready() == "the store did not answer within 0.05 s"
    assert health.ready() == "the store did not answer within 0.05 s"  # the same check waits
    release.set()
    health.close()
