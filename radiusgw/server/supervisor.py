"""Several workers on one port: fork them, keep them running, hand them signals and realm sets.

Modelled on uvicorn's multiprocess supervisor: a signal handler only notes the signal, and the
supervisor's loop acts on it.

- Sockets. The supervisor binds every worker's sockets first (``sockets.worker_sockets``) and
  keeps them open for the life of the server, so the SO_REUSEPORT group and its order never
  change: a worker that dies is forked again on the same sockets, and datagrams that arrive
  meanwhile wait in its socket's buffer.
- SIGTERM and SIGINT are passed to every worker (each drains and exits 0); from the moment the
  handler notes one, no worker is forked again, also not one whose restart was pending (a worker
  that crashed ``Tuning.restart_burst`` times within ``Tuning.restart_window`` is forked again
  only after ``Tuning.restart_delay``, logged as ``worker-died`` with
  ``action="restart-delayed"``).
- SIGHUP: the supervisor reads the realm files once (``RealmSet.load``, every ``secret_file``
  too) and logs one ``reloaded`` line with the set's digest, then writes the set to every
  worker's pipe; each worker applies it and logs ``reload-applied`` with the same digest. An
  invalid set is refused here, once (``reload-refused``), and the workers keep theirs. A worker
  forked later starts with the current set. Workers ignore SIGHUP themselves, so all of them
  serve one set (``radiusgw.server.realm_set``).
- Until its loop runs, the three signals wait blocked (``radiusgw.server.signals``), and a
  worker is forked with them blocked: it unblocks them once its own handlers are in place.

The loop sleeps in ``select`` on the signal wake-up pipe (``signal.set_wakeup_fd``) and on the
worker pipes that have a set still to write; a pipe is written without blocking, so a worker
that is slow to read (still replaying its journal) never holds the supervisor up.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiusgw.server import signals
from radiusgw.server.health import Health
from radiusgw.server.realm_set import RealmSet, frame, reload
from radiusgw.server.settings import DEFAULT_TUNING, Tuning

# run_one(index, auth socket, acct socket, the realm set, the read end of its pipe) -> exit code
RunOne = Callable[[int, socket.socket, socket.socket, RealmSet, int], int]


@dataclass
class _Child:
    index: int
    pipe: int  # write end of the worker's realm-set pipe, non-blocking
    unsent: bytes = b""  # the rest of the frame being written
    queued: bytes = b""  # the newest set's frame, not begun yet (an older one is dropped)

    def flush(self) -> None:
        while True:
            if not self.unsent:
                self.unsent, self.queued = self.queued, b""
                if not self.unsent:
                    return
            try:
                written = os.write(self.pipe, self.unsent)
            except BlockingIOError:
                return
            except BrokenPipeError:  # it died; the reaper forks it again with the current set
                self.unsent = self.queued = b""
                return
            self.unsent = self.unsent[written:]


class Supervisor:
    def __init__(
        self,
        auth_socks: list[socket.socket],
        acct_socks: list[socket.socket],
        run_one: RunOne,
        realms: RealmSet,
        directory: Path,
        log: Any,
        health: Health | None = None,
        *,
        tuning: Tuning = DEFAULT_TUNING,
    ) -> None:
        """One worker per socket pair, each forked with ``realms``; SIGHUP reads ``directory``.
        ``health`` (``--metrics-listen``) learns of every fork and death (issue 18.2);
        ``tuning``: how often a crashing worker is forked again."""
        self._health = health
        self._restart_burst = tuning.restart_burst
        self._restart_window = tuning.restart_window
        self._restart_delay = tuning.restart_delay
        self._auth = auth_socks
        self._acct = acct_socks
        self._run_one = run_one
        self._realms = realms
        self._directory = directory
        self._log = log
        self._children: dict[int, _Child] = {}  # by pid
        self._restarts: dict[int, list[float]] = {i: [] for i in range(len(auth_socks))}
        self._due: dict[int, float] = {}  # worker index -> when to fork it again (monotonic)
        self._noted: list[int] = []  # signals not yet acted on
        self._stopping = False
        self._failed = False
        self._wake = (-1, -1)

    def run(self) -> int:
        """Fork every worker and keep them running until SIGTERM; the exit code."""
        self._wake = os.pipe()
        for fd in self._wake:
            os.set_blocking(fd, False)
        previous_wakeup = signal.set_wakeup_fd(self._wake[1], warn_on_full_buffer=False)
        for sig in (*signals.HANDLED, signal.SIGCHLD):
            signal.signal(sig, self._note)
        try:
            for index in range(len(self._auth)):
                self._spawn(index)
            signals.deliver()
            while self._step():
                pass
        finally:
            signals.hold()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(previous_wakeup)
            for fd in (*self._wake, *(c.pipe for c in self._children.values())):
                os.close(fd)
            for sock in (*self._auth, *self._acct):
                sock.close()
        return 1 if self._failed else 0

    # -- the loop -----------------------------------------------------------------------

    def _note(self, sig: int, _frame: Any) -> None:
        self._noted.append(sig)

    def _step(self) -> bool:
        """Act on what happened; wait for more. False once every worker has exited."""
        noted = set()
        while self._noted:  # one pop at a time: a handler may append meanwhile
            noted.add(self._noted.pop())
        if signal.SIGTERM in noted or signal.SIGINT in noted:
            self._stop(signal.SIGINT if signal.SIGINT in noted else signal.SIGTERM)
        elif signal.SIGHUP in noted and not self._stopping:
            self._reload()
        self._reap()
        if self._stopping and not self._children:
            return False
        now = time.monotonic()
        for index, when in sorted(self._due.items()):
            if when <= now:
                del self._due[index]
                self._spawn(index)
        for child in self._children.values():
            child.flush()
        writing = [c.pipe for c in self._children.values() if c.unsent or c.queued]
        timeout = max(0.0, min(self._due.values()) - now) if self._due else None
        select.select([self._wake[0]], writing, [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake[0], 512):
                pass
        return True

    def _stop(self, sig: int) -> None:
        self._stopping = True
        self._due.clear()
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reload(self) -> None:
        realms = reload(self._directory, self._realms, self._log, workers=len(self._children))
        if realms is None:
            return
        self._realms = realms
        data = frame(realms)
        for child in self._children.values():
            child.queued = data

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            os.close(child.pipe)
            code = os.waitstatus_to_exitcode(status)
            if self._health is not None:
                self._health.exited(child.index, pid, restart=not self._stopping)
            if self._stopping:
                if code != 0:
                    self._failed = True
                    self._log.error("worker-exit", worker=child.index, pid=pid, code=code)
                continue
            now = time.monotonic()
            recent = [t for t in self._restarts[child.index] if now - t < self._restart_window]
            self._restarts[child.index] = [*recent, now]
            delayed = len(recent) >= self._restart_burst
            self._log.error(
                "worker-died",
                worker=child.index,
                pid=pid,
                code=code,
                action="restart-delayed" if delayed else "restart",
                **({"delay_s": self._restart_delay} if delayed else {}),
            )
            if delayed:
                self._due[child.index] = now + self._restart_delay
            else:
                self._spawn(child.index)

    # -- a worker -----------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        if self._stopping or signal.SIGTERM in self._noted or signal.SIGINT in self._noted:
            return  # a stop began (perhaps noted, not yet acted on): never fork after it
        read_end, write_end = os.pipe()
        # The child starts with the signals blocked; it unblocks them once it handles them.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals.HANDLED)
        pid = os.fork()
        if pid == 0:
            self._become_worker(index, read_end, write_end)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_end)
        os.set_blocking(write_end, False)
        self._children[pid] = _Child(index, write_end)
        if self._health is not None:
            self._health.started(index, pid)

    def _become_worker(self, index: int, read_end: int, write_end: int) -> None:
        code = 70
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor reloads
            # Only its own read end stays open: the pipe's end is then the supervisor's end.
            for fd in (write_end, *self._wake, *(c.pipe for c in self._children.values())):
                os.close(fd)
            for j, (a, b) in enumerate(zip(self._auth, self._acct, strict=True)):
                if j != index:
                    a.close()
                    b.close()
            code = self._run_one(
                index, self._auth[index], self._acct[index], self._realms, read_end
            )
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
