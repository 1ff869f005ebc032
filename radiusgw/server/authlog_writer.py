"""The authentication log's writer process (issue 18.3): a worker's rows, from a pipe to the store.

Why a process and not a thread of the worker: with the rows made and bound on a thread in the
worker's interpreter, group PAP answered 27,988/s against 52,684/s with the log off
(``python -m bench.run --scenario pap --ops-cost 8``, 4 workers, 100,000 users). The thread
held the GIL while it walked each request and bound each row, and the event loop waited for
the interpreter after every ``recvfrom`` and ``sendto``. Here the worker only swaps a list and
marshals it (``frame``); everything else happens in this process, on the other core.

The pipe carries frames: a 4-octet big-endian length, then ``marshal`` of ``(taken, entries)``,
``entries`` the engine's flat list of ``AUTH_LOG_FIELDS`` values per answer, with the request's
octets in place of the decoded packet.
``marshal`` because both ends are this program at the same version (the worker starts this
process from its own interpreter, ``sys.executable``), and it is the fastest of the standard
library's encoders for tuples of str, bytes, float and None. The pipe is private to the two.

Rules:
- Run at the lowest CPU priority (``lower_priority``): on a machine the answers keep busy, the
  log waits for the time they leave, and catches up when the load falls.
- Read the pipe whenever something is there, so that the worker never waits on it; write
  ``BATCH`` rows per transaction between two reads. While the store refuses or the writer is
  behind, hold up to ``CAPACITY`` octets of frames, drop the oldest frames past that, and count
  their rows (``auth-log-dropped``, at most once per ``DROP_LOG_INTERVAL``). Try the store
  again every ``RETRY_INTERVAL``; say once that it failed (``auth-log-write-failed``) and once
  that it recovered (``auth-log-write-resumed``).
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
import marshal
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from radiusgw.auth.chap import CHAP
from radiusgw.auth.eap import EAP_NOT_OFFERED
from radiusgw.auth.method import NO_METHOD
from radiusgw.auth.microsoft import MSCHAP_V1, MSCHAP_V2
from radiusgw.auth.pap import PAP
from radiusgw.client.ids import show_destination
from radiusgw.domain import AUTH_LOG_FIELDS, AuthLogValues
from radiusgw.radius.attributes import MICROSOFT, Attr, Microsoft
from radiusgw.server.logging import configure
from radiusgw.store.backend import Backend, open_backend

DB_ENV: Final = "RADIUSGW_DB"
CAPACITY: Final = 64 << 20  # octets of frames held while the store is slow or away (~900,000 rows)
BATCH: Final = 2_000  # rows per transaction
NICE: Final = 19  # the writer's CPU priority where SCHED_IDLE is not to be had
RETRY_INTERVAL: Final = 1.0
DROP_LOG_INTERVAL: Final = 60.0
PRUNE_INTERVAL: Final = 3600.0
COLLECT_INTERVAL: Final = 60.0  # the cyclic garbage collector's turn (``main`` turns off its own)
DAY: Final = 86_400.0
MAX_FRAME: Final = 1 << 30  # a length past this is not one of ours: the pipe is out of step
_LENGTH: Final = 4
_FRAMED_IP: Final = 8  # RFC 2865 §5.8
_HEADER: Final = 20  # RFC 2865 §3
_USER_PASSWORD: Final = int(Attr.USER_PASSWORD)
_CHAP_PASSWORD: Final = int(Attr.CHAP_PASSWORD)
_EAP_MESSAGE: Final = int(Attr.EAP_MESSAGE)
_VENDOR_SPECIFIC: Final = int(Attr.VENDOR_SPECIFIC)
_MICROSOFT: Final = MICROSOFT.to_bytes(4, "big")
_MS_CHAP_RESPONSE: Final = int(Microsoft.MS_CHAP_RESPONSE)
_MS_CHAP2_RESPONSE: Final = int(Microsoft.MS_CHAP2_RESPONSE)

# (when the worker took it: the time of entries without one, the engine's flat list: per answer
# time or None, NAS address, realm, User-Name, result, reason, the request's octets, the
# answer's octets, LNS address, upstream (host, port))
Chunk = tuple[float, list[Any]]


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
    if not (isinstance(chunk, tuple) and len(chunk) == 2 and isinstance(chunk[1], list)):
        raise FrameError(f"a frame of {type(chunk).__name__}, not (time, entries)")
    if len(chunk[1]) % AUTH_LOG_FIELDS:
        raise FrameError(f"{len(chunk[1])} values, not {AUTH_LOG_FIELDS} per answer")
    return chunk


def answers_in(body: bytes) -> int:
    """How many answers a frame's body holds."""
    return len(chunk_of(body)[1]) // AUTH_LOG_FIELDS


def framed_ip(answer: bytes | None) -> str | None:
    """The Framed-IP-Address of an answer (RFC 2865 §5.8), walking its attributes once."""
    if not answer:
        return None
    i, end = 20, len(answer) - 1
    while i < end:
        length = answer[i + 1]
        if length < 2:
            return None
        if answer[i] == _FRAMED_IP and length == 6:
            # formatted here, not by socket.inet_ntoa: compiled, a call into another module is
            # a dictionary lookup and a vectorcall, a tenth of the writer's time (py-spy)
            return f"{answer[i + 2]}.{answer[i + 3]}.{answer[i + 4]}.{answer[i + 5]}"
        i += length
    return None


def method_of(request: bytes) -> str:
    """The authentication method the request carries, as ``radiusgw.modes.group.choose`` names
    it: User-Password, then CHAP-Password, then EAP-Message, then Microsoft's MS-CHAP2-Response
    and MS-CHAP-Response in a Vendor-Specific that parses (RFC 2865 §5.26, RFC 2548 §2.3).
    One walk over the octets (compiled, this is a C loop), no decoded packet: this runs once
    per answer the gateway gave."""
    end = len(request)
    chap = eap = v1 = v2 = False
    pos = _HEADER
    while pos < end:
        if pos + 2 > end:
            return NO_METHOD.name  # what the engine could not have decoded
        kind = request[pos]
        length = request[pos + 1]
        if length < 2 or pos + length > end:
            return NO_METHOD.name
        if kind == _USER_PASSWORD:
            # First in the order, so nothing later changes the answer: a request that was
            # answered was decoded, so the rest of it is well formed (PAP stops here, early).
            return PAP.name
        elif kind == _CHAP_PASSWORD:
            chap = True
        elif kind == _EAP_MESSAGE:
            eap = True
        elif kind == _VENDOR_SPECIFIC and request[pos + 2 : pos + 6] == _MICROSOFT:
            has_v1 = has_v2 = False
            sub, stop = pos + 6, pos + length
            while sub < stop:
                if sub + 2 > stop or request[sub + 1] < 2 or sub + request[sub + 1] > stop:
                    has_v1 = has_v2 = False  # not sub-attributes: skipped, as vsa.find does
                    break
                if request[sub] == _MS_CHAP_RESPONSE:
                    has_v1 = True
                elif request[sub] == _MS_CHAP2_RESPONSE:
                    has_v2 = True
                sub += request[sub + 1]
            v1 = v1 or has_v1
            v2 = v2 or has_v2
        pos += length
    if chap:
        return CHAP.name
    if eap:
        return EAP_NOT_OFFERED.name
    if v2:
        return MSCHAP_V2.name
    if v1:
        return MSCHAP_V1.name
    return NO_METHOD.name


def rows_of(chunks: Sequence[Chunk], node: str, worker: int) -> list[AuthLogValues]:
    """The store's rows for the entries of ``chunks``, as plain tuples (``AuthLogValues``):
    this runs once per answer the gateway gave, and a named tuple's constructor cost more than
    the rest of the row (2.6 against 1.1 us a row, measured on 2,000-entry frames)."""
    rows: list[AuthLogValues] = []
    append = rows.append
    fields = AUTH_LOG_FIELDS
    for taken, values in chunks:
        for i in range(0, len(values), fields):
            when: float | None = values[i]
            result: str = values[i + 4]
            answer: bytes | None = values[i + 7]
            upstream = values[i + 9]
            append(
                (
                    taken if when is None else when,
                    node,
                    worker,
                    values[i + 1],
                    values[i + 2],
                    values[i + 3],
                    method_of(values[i + 6]),
                    result,
                    values[i + 5],
                    framed_ip(answer) if result == "accept" else None,
                    values[i + 8],
                    None if upstream is None else show_destination(upstream),
                )
            )
    return rows


class Writer:
    """The process's state: frames held, the store, the clocks of retry and pruning. Its steps
    take ``now`` so that tests drive them without the pipe.

    Frames are held as the pipe brought them (about 70 octets an answer) and made into rows
    only when written, ``BATCH`` at a time: one transaction holds the log's lock for
    milliseconds, and the pipe is read between two of them."""

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
        self.held: collections.deque[bytes] = collections.deque()
        self.held_octets = 0
        self.dropped = 0
        self.written = 0
        self.failing = False
        self._rows: list[AuthLogValues] = []  # the oldest frame's rows not yet written
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
        """Whether rows wait to be written."""
        return bool(self._rows or self.held)

    def take(self, bodies: Sequence[bytes], now: float) -> None:
        for body in bodies:
            self.held.append(body)
            self.held_octets += len(body)
        while self.held_octets > self.capacity and len(self.held) > 1:
            oldest = self.held.popleft()
            self.held_octets -= len(oldest)
            self.dropped += answers_in(oldest)
            if now - self._drop_logged >= DROP_LOG_INTERVAL:
                self._drop_logged = now
                self.log.warning("auth-log-dropped", dropped=self.dropped, capacity=self.capacity)

    def write(self, now: float) -> bool:
        """Write the next ``BATCH`` rows in one transaction, unless a failed try is too recent;
        whether nothing is left to write."""
        if not self._rows:
            if not self.held:
                return True
            oldest = self.held.popleft()
            self.held_octets -= len(oldest)
            self._rows = rows_of([chunk_of(oldest)], self._node, self._worker)
        if now < self._retry_at:
            return False
        batch = self._rows[:BATCH]
        try:
            self.store().write_auth_log(batch)
        except Exception as exc:  # the database's trouble: held, tried again
            self._retry_at = now + RETRY_INTERVAL
            if not self.failing:
                self.failing = True
                self.log.warning("auth-log-write-failed", error=str(exc))
            return False
        del self._rows[:BATCH]
        self.written += len(batch)
        if self.failing:
            self.failing = False
            self.log.info("auth-log-write-resumed")
        return not self.pending

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
        due = self._prune_at
        if self.pending:
            due = min(due, self._retry_at)
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
        collect_at = time.monotonic() + COLLECT_INTERVAL
        try:
            while True:
                now = time.time()
                readable, _, _ = select.select([fd], [], [], self.timeout(now))
                now = time.time()
                if time.monotonic() >= collect_at:
                    gc.collect()
                    collect_at = time.monotonic() + COLLECT_INTERVAL
                if readable:
                    data = os.read(fd, 1 << 20)
                    if not data:
                        break
                    buffer += data
                    self.take(take_frames(buffer), now)
                self.write(now)
                self.prune(now)
            deadline = time.monotonic() + drain_timeout
            while not self.write(time.time()) and time.monotonic() < deadline:
                if self.failing:
                    time.sleep(min(RETRY_INTERVAL, max(0.0, deadline - time.monotonic())))
            if buffer or self.pending:
                lost = len(self._rows) + sum(answers_in(body) for body in self.held)
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
    # The rows are tuples of strings and numbers, freed by their reference counts; the cyclic
    # collector, left to its thresholds, ran every 700 of them and took 14 % of this process
    # (py-spy, group PAP at 40,000 answers/s). ``serve`` runs it once a ``COLLECT_INTERVAL``
    # for what else may leave a cycle (a driver's objects, an exception's traceback).
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
