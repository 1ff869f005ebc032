"""The authentication log's writer process (issue 18.3): a worker's rows, from a pipe to the store.

Why a process and not a thread of the worker: with the rows made and bound on a thread in the
worker's interpreter, group PAP answered 27,988/s against 52,684/s with the log off
(``python -m bench.run --scenario pap --ops-cost 8``, 4 workers, 100,000 users). The thread
held the GIL while it walked each request and bound each row, and the event loop waited for
the interpreter after every ``recvfrom`` and ``sendto``. Here the worker only swaps its lists
and marshals them (``frame``); the store's writing happens in this process, on the other core.

Nothing here is done per answer: the engine records each answer's final values, flat in one
list per realm; the worker marshals each list once (``radiusgw.store.authlog.pack``), and the
SQLite store keeps those octets as they are, one compressed chunk per realm. With a row made
per answer here (the method found by a walk over the request's octets, the Framed-IP's text
from the answer's, a tuple per row, the rows grouped by realm again), this process took 1.8-2.0
us of CPU per answer, on the cores the answers need; with the lists unmarshalled and
marshalled again, 1.0-1.1 us (``python -m bench.profile --scenario pap --workers 4
--no-py-spy``).

The pipe carries frames: a 4-octet big-endian length, then ``marshal`` of ``(taken, entries)``,
``entries`` the packed lists by realm (``radiusgw.domain.PackedEntries``).

Rules:
- Run at the lowest CPU priority (``lower_priority``): on a machine the answers keep busy, the
  log waits for the time they leave, and catches up when the load falls.
- Wake at the first frame, then let frames gather in the pipe (``PIPE_SIZE``, a megabyte;
  the worker's transport buffers past it, never waiting) until they are enough or the first
  has waited ``WRITE_DELAY``; then read them and write them in one transaction (``Writer``).
  Woken per frame, this process took 0.5-0.6 us an answer under group PAP at 80,000/s.
- While the store refuses or the writer is behind, hold up to ``CAPACITY`` octets of frames,
  drop the oldest frames past that, and count their rows (``auth-log-dropped``, at most once
  per ``DROP_LOG_INTERVAL``). Try the store again every ``RETRY_INTERVAL``; say once that it
  failed (``auth-log-write-failed``) and once that it recovered (``auth-log-write-resumed``).
- End at the pipe's end-of-file: the worker's drain, or its death (even ``kill -9``). Then
  write what is held, trying the store for at most ``--drain-timeout`` seconds. SIGTERM,
  SIGINT and SIGHUP are ignored: a service manager or a terminal signals the whole group, and
  the worker decides when the log ends.
- With ``--prune-days N`` (worker 0's writer), delete rows older than N days at start and every
  ``PRUNE_INTERVAL`` (``auth-log-pruned``).

Run by the worker (``radiusgw.server.authlog.WRITER_MAIN``, which calls ``main``) with the
arguments ``--node N --worker I --key-file F [--prune-days D]`` and the database in
``RADIUSGW_DB`` (the environment, not the command line: a PostgreSQL URL may hold a password,
and ``ps`` shows arguments to every user).
"""

from __future__ import annotations

import argparse
import collections
import gc
import itertools
import marshal
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from radiusgw.domain import AuthLogBatch, PackedEntries
from radiusgw.server.logging import configure
from radiusgw.store.backend import Backend, open_backend

DB_ENV: Final = "RADIUSGW_DB"
CAPACITY: Final = 64 << 20  # frames' octets held while the store is away (~1,000,000 answers)
NICE: Final = 19  # the writer's CPU priority where SCHED_IDLE is not to be had
RETRY_INTERVAL: Final = 1.0
DROP_LOG_INTERVAL: Final = 60.0
PRUNE_INTERVAL: Final = 3600.0
WRITE_ANSWERS: Final = 8_000  # answers held that are written at once (``Writer``)
WRITE_FRAMES: Final = 64  # frames in one transaction at most
WRITE_DELAY: Final = 0.25  # seconds a frame waits at most for others to share its transaction
COLLECT_INTERVAL: Final = 60.0  # the cyclic garbage collector's turn (``main`` turns off its own)
DAY: Final = 86_400.0
READ_SIZE: Final = 1 << 20  # octets read from the pipe at most at once (its size: PIPE_SIZE)
MAX_FRAME: Final = 1 << 30  # a length past this is not one of ours: the pipe is out of step
_LENGTH: Final = 4

# (when the worker took it: the time of entries without one, the packed lists by realm)
Chunk = tuple[float, dict[str | None, PackedEntries]]


class FrameError(ValueError):
    """The pipe carried something that is not a frame of ours."""


def frame(chunk: Chunk) -> bytes:
    """One frame for the pipe (called on the worker's loop: one C call and a concatenation)."""
    body = marshal.dumps(chunk)
    return len(body).to_bytes(_LENGTH, "big") + body


def take_frames(buffer: bytearray) -> list[bytes]:
    """The bodies of the whole frames at the start of ``buffer``, removed from it; a partial
    frame stays."""
    bodies: list[bytes] = []
    pos = 0
    while len(buffer) - pos >= _LENGTH:
        length = int.from_bytes(buffer[pos : pos + _LENGTH], "big")
        if length > MAX_FRAME:
            raise FrameError(f"frame length {length} past {MAX_FRAME}")
        end = pos + _LENGTH + length
        if end > len(buffer):
            break
        bodies.append(bytes(buffer[pos + _LENGTH : end]))
        pos = end
    del buffer[:pos]
    return bodies


def chunk_of(body: bytes) -> Chunk:
    """A frame's body as the worker made it: ``(taken, entries)``."""
    try:
        chunk = marshal.loads(body)
    except (EOFError, ValueError, TypeError) as exc:
        raise FrameError(f"a frame that does not unmarshal: {exc}") from None
    if not (
        isinstance(chunk, tuple)
        and len(chunk) == 2
        and isinstance(chunk[0], float)
        and isinstance(chunk[1], dict)
    ):
        raise FrameError(f"a frame of {type(chunk).__name__}, not (time, entries)")
    for realm, packed in chunk[1].items():
        if not (realm is None or isinstance(realm, str)) or not (
            isinstance(packed, tuple)
            and len(packed) == 4
            and isinstance(packed[0], float)
            and isinstance(packed[1], float)
            and isinstance(packed[2], int)
            and isinstance(packed[3], bytes)
        ):
            raise FrameError(f"entries of {type(realm).__name__}, not a realm's packed list")
    return chunk


def answers(entries: Mapping[str | None, PackedEntries]) -> int:
    """How many answers packed lists hold."""
    return sum(packed[2] for packed in entries.values())


class Held(NamedTuple):
    """A frame held until it is written."""

    arrived: float
    octets: int
    answers: int
    chunk: Chunk


class Writer:
    """The process's state: frames held, the store, the clocks of retry and pruning. Its steps
    take ``now`` so that tests drive them without the pipe.

    Frames are held as the pipe brought them (about 60 octets an answer, a few hundred answers
    a frame) and written together, up to ``WRITE_FRAMES`` in one transaction, once they hold
    ``WRITE_ANSWERS`` answers or the oldest has waited ``WRITE_DELAY``: at one transaction per
    frame the log's writers took 0.9 us an answer under group PAP at 80,000/s with frames of
    250 answers, against 0.3 with frames of 2,000 (so about 170 us a transaction whatever it
    held, and 0.2 us an answer)."""

    def __init__(
        self,
        open_store: Callable[[], Backend],
        log: Any,
        *,
        node: str,
        worker: int,
        prune_days: int = 0,
        capacity: int = CAPACITY,
    ) -> None:
        self.log = log
        self.capacity = capacity
        self.held: collections.deque[Held] = collections.deque()
        self.held_octets = 0
        self.held_answers = 0
        self.dropped = 0
        self.written = 0
        self.failing = False
        self._open_store = open_store
        self._store: Backend | None = None
        self._node = node
        self._worker = worker
        self._prune_days = prune_days
        self._retry_at = float("-inf")
        self._prune_at = float("-inf") if prune_days else float("inf")
        self._drop_logged = float("-inf")

    @property
    def pending(self) -> bool:
        """Whether answers wait to be written."""
        return bool(self.held)

    def take(self, bodies: Sequence[bytes], now: float) -> None:
        for body in bodies:
            chunk = chunk_of(body)
            held = Held(now, len(body), answers(chunk[1]), chunk)
            self.held.append(held)
            self.held_octets += held.octets
            self.held_answers += held.answers
        while self.held_octets > self.capacity and len(self.held) > 1:
            oldest = self._pop()
            self.dropped += oldest.answers
            if now - self._drop_logged >= DROP_LOG_INTERVAL:
                self._drop_logged = now
                self.log.warning("auth-log-dropped", dropped=self.dropped, capacity=self.capacity)

    def _pop(self) -> Held:
        oldest = self.held.popleft()
        self.held_octets -= oldest.octets
        self.held_answers -= oldest.answers
        return oldest

    def due(self) -> float:
        """When the frames held are to be written (``inf``: none held)."""
        if not self.held:
            return float("inf")
        if self.held_answers >= WRITE_ANSWERS or len(self.held) >= WRITE_FRAMES:
            return self._retry_at
        return max(self._retry_at, self.held[0].arrived + WRITE_DELAY)

    def write(self, now: float) -> bool:
        """Write the oldest frames held (at most ``WRITE_FRAMES``) in one transaction, unless a
        failed try is too recent; whether nothing is left to write."""
        if not self.held:
            return True
        if now < self._retry_at:
            return False
        frames = list(itertools.islice(self.held, WRITE_FRAMES))
        batches = [AuthLogBatch(self._node, self._worker, *held.chunk) for held in frames]
        try:
            self.store().write_auth_log(batches)
        except Exception as exc:  # the database's trouble: held, tried again
            self._retry_at = now + RETRY_INTERVAL
            if not self.failing:
                self.failing = True
                self.log.warning("auth-log-write-failed", error=str(exc))
            return False
        for _ in frames:
            self.written += self._pop().answers
        if self.failing:
            self.failing = False
            self.log.info("auth-log-write-resumed")
        return not self.held

    def prune(self, now: float) -> None:
        if now < self._prune_at:
            return
        self._prune_at = now + PRUNE_INTERVAL
        try:
            deleted = self.store().prune_auth_log(now - self._prune_days * DAY)
        except Exception as exc:  # the next round tries again
            self.log.warning("auth-log-prune-failed", error=str(exc))
            return
        if deleted:
            self.log.info("auth-log-pruned", rows=deleted, days=self._prune_days)

    def timeout(self, now: float) -> float | None:
        """How long the process may sleep on the pipe before a write, a retry or a prune."""
        due = min(self._prune_at, self.due())
        return None if due == float("inf") else max(0.0, due - now)

    def store(self) -> Backend:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def serve(self, fd: int, drain_timeout: float) -> int:
        """Read frames from ``fd`` until its end, writing as they come; then write what is held
        (for at most ``drain_timeout`` seconds). The exit status."""
        buffer = bytearray()
        # One space for every read: ``os.read`` of a megabyte allocated (mmap) and gave back
        # (munmap) that much per call, which was a third of this process's time awake.
        space = bytearray(READ_SIZE)
        collect_at = time.monotonic() + COLLECT_INTERVAL
        try:
            while True:
                now = time.time()
                if self.pending:  # frames gather in the pipe meanwhile: one wake-up a write
                    time.sleep(max(0.0, min(self.due(), self._prune_at) - now))
                    now = time.time()
                readable, _, _ = select.select([fd], [], [], self.timeout(now))
                now = time.time()
                if time.monotonic() >= collect_at:
                    gc.collect()
                    collect_at = time.monotonic() + COLLECT_INTERVAL
                if readable:
                    length = os.readv(fd, [space])
                    if not length:
                        break
                    buffer += memoryview(space)[:length]
                    self.take(take_frames(buffer), now)
                if now >= self.due():
                    self.write(now)
                self.prune(now)
            deadline = time.monotonic() + drain_timeout
            while not self.write(time.time()) and time.monotonic() < deadline:
                if self.failing:
                    time.sleep(min(RETRY_INTERVAL, max(0.0, deadline - time.monotonic())))
            if buffer or self.pending:
                lost = self.held_answers
                self.log.warning("auth-log-lost", rows=lost, octets=len(buffer))
                return 1
            return 0
        finally:
            self.close()


def lower_priority() -> None:
    """Run only on CPU time the answers leave: SCHED_IDLE, where Linux has it (a task of that
    policy is preempted at once by any other that wakes; nice 19 still took its turns, and
    the workers' closed-loop rate fell with it), else nice 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(NICE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="radiusgw-authlog-writer")
    parser.add_argument("--node", required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--prune-days", type=int, default=0)
    parser.add_argument("--drain-timeout", type=float, default=5.0)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # a worker may start us with some blocked
    lower_priority()
    # What a frame unmarshals to is freed by reference counts; the cyclic collector, left to
    # its thresholds, ran every 700 new objects and took 14 % of this process when it made a
    # tuple per answer (py-spy, group PAP at 40,000 answers/s). ``serve`` runs it once a
    # ``COLLECT_INTERVAL`` for what else may leave a cycle (a driver's objects, a traceback).
    gc.disable()
    db = os.environ[DB_ENV]
    log = configure(args.log_level, node=args.node, worker=args.worker, process="auth-log")
    writer = Writer(
        lambda: open_backend(db, args.key_file, node=args.node),
        log,
        node=args.node,
        worker=args.worker,
        prune_days=args.prune_days,
    )
    try:
        return writer.serve(sys.stdin.fileno(), args.drain_timeout)
    except FrameError as exc:  # a bug, not the weather: say so, and let the worker start another
        log.error("auth-log-pipe-broken", error=str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
