"""A store thread's priority (radiusgw.server.batches.raise_priority), on the real kernel: raised
where the process may, refused with the reason where it may not, the thread running on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from radiusgw.server.batches import raise_priority

ROOT = Path(__file__).resolve().parents[3]
NOBODY = 65534
# Run as ``nobody`` (no CAP_SYS_NICE), in a thread other than the main one: the outcome, then
# the nice values of the main thread and of the one that asked.
_ASK = """
import os, threading
from radiusgw.server.batches import raise_priority
seen = []
def ask():
    seen.append(raise_priority(10))
    seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
thread = threading.Thread(target=ask)
thread.start()
thread.join()
print(repr(seen[0]), os.getpriority(os.PRIO_PROCESS, 0), seen[1], sep="|")
"""

linux_root = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs Linux, root to change user, and setpriv (util-linux)",
)


def _as_nobody(*capabilities: str) -> list[str]:
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            *capabilities,
            sys.executable,
            "-c",
            _ASK,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    return result.stdout.strip().split("|")


@linux_root
def test_a_thread_raised_runs_ten_levels_above_the_rest_of_its_process() -> None:
    seen: list[object] = []

    def ask() -> None:
        seen.append(raise_priority(10))
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    main = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == [None, max(-20, main - 10)]


@linux_root
def test_without_the_capability_it_is_refused_with_the_reason_and_nothing_changes() -> None:
    outcome, main, asked = _as_nobody()
    assert "LimitNICE" in outcome and "Permission denied" in outcome
    assert int(asked) == int(main) == 0


@linux_root
def test_a_user_given_cap_sys_nice_raises_it() -> None:
    # What systemd's AmbientCapabilities=CAP_SYS_NICE gives a service user. (LimitNICE=-10, an
    # RLIMIT_NICE of 30, is the other way; raising that limit takes CAP_SYS_RESOURCE, which
    # the machines these tests run on may not give even to root.)
    outcome, main, asked = _as_nobody("--inh-caps=+sys_nice", "--ambient-caps=+sys_nice")
    assert outcome == "None"
    assert (int(main), int(asked)) == (0, -10)


def test_nothing_is_asked_for_zero_levels() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert raise_priority(0) is None
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
