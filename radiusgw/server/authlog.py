"""The authentication log's hand-off in the worker (issue 18.3): the engine's records, to a process.

The engine adds a record per Access-Request it answers to ``Engine.auth_log``
(``radiusgw.authlog_records.AuthLog``: octets per realm). Every ``FLUSH_INTERVAL``, or at the
next ``TICK`` once it holds ``FLUSH_ANSWERS`` answers, the worker takes them (``AuthLog.take``:
each realm's octets with its times' bounds and count) into one frame and writes the frame to
the pipe of its writer process (``radiusgw.server.authlog_writer``), which stores them. The
loop only copies each realm's octets and makes one frame: no row is made and no database is
touched in the worker's interpreter (why: that module's docstring).

Rules:
- A hand-off is one pause of the loop, and it grows faster than its lists: framing and freeing
  half a second of a worker's answers under full load (16,000 PAP answers, a 974 kB frame) took
  6.4 ms, 2,000 answers 0.32 ms (best of 15), so the requests that waited out the pause were
  many and the cost per answer 2.5 times as high. ``FLUSH_ANSWERS`` bounds the pause under load;
  ``FLUSH_INTERVAL`` bounds how late a row reaches the store when the load is light.
- One look every ``TICK``, loaded or idle: each look is a turn of the loop for a timer and a
  task, about 25 us, in the loop that answers. Looking every 12.5 ms while answers came (to
  hand off every 250) cost 0.45 us an answer under group PAP with 100,000 users (4 workers at
  11,500 answers/s each), every 1.25 ms 1.8 us, where the whole log costs 2 (``python -m
  bench.beside``, with the engine recording nothing, so that only the looks were weighed).
- Never in the way of an answer: the pipe is written without blocking. While the writer is
  behind, frames wait in the pipe transport's buffer, at most ``capacity`` octets; past that a
  batch is dropped and counted (``dropped``; ``auth-log-dropped`` logged at most once per
  ``DROP_LOG_INTERVAL``). The writer holds and drops its own share while the store is away.
- A writer that exits (it should not) is logged (``auth-log-writer-exited``) and started again
  at the next flush, at most once per ``RESTART_DELAY``; what it held is counted as dropped by
  it (its log says so) and what was in its pipe is lost, so a crash loses at most a second of
  log rows, never an answer.
- At a drain the worker closes the pipe; the writer writes what it has and exits, waited for
  within the drain timeout (then killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
import time
from typing import Any

from radiusgw.authlog_records import AuthLog
from radiusgw.domain import PackedEntries
from radiusgw.engine.core import Engine
from radiusgw.server.authlog_writer import DB_ENV, answers, frame

FLUSH_INTERVAL = 0.5  # seconds between two hand-offs: rows reach the store within about this
FLUSH_ANSWERS = 500  # answers held that make the next look hand off before FLUSH_INTERVAL
TICK = 0.05  # seconds between two looks at how much is held
CAPACITY = 16 << 20  # octets of frames waiting for the writer (about 250,000 answers)
PIPE_SIZE = 1 << 20  # Linux's fs.pipe-max-size for unprivileged processes, by default
DROP_LOG_INTERVAL = 60.0
RESTART_DELAY = 1.0
# Not ``-m``: the writer's module may be compiled (mypyc), and ``-m`` runs only Python source.
WRITER_MAIN = "import sys; from radiusgw.server.authlog_writer import main; sys.exit(main())"


class AuthLogWriter:
    """One worker's auth-log hand-off; see the module docstring. Call it from the loop."""

    def __init__(
        self,
        engine: Engine,
        log: Any,
        *,
        db: str,
        key_file: str,
        node: str,
        worker: int,
        prune_days: int = 0,
        drain_timeout: float = 5.0,
        log_level: str = "info",
        capacity: int = CAPACITY,
    ) -> None:
        self.engine = engine
        self.log = log
        self.capacity = capacity
        self.dropped = 0
        self.process: asyncio.subprocess.Process | None = None
        self._db = db
        self._argv = [
            sys.executable,
            "-c",
            WRITER_MAIN,
            "--node",
            node,
            "--worker",
            str(worker),
            "--key-file",
            key_file,
            "--prune-days",
            str(prune_days),
            "--drain-timeout",
            str(drain_timeout),
            "--log-level",
            log_level,
        ]
        self._started = float("-inf")
        self._drop_logged = float("-inf")
        engine.auth_log = AuthLog()

    async def start(self) -> None:
        self._started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            env={**os.environ, DB_ENV: self._db},
        )
        self._widen_pipe()
        self.log.info("auth-log-writer-started", pid=self.process.pid)

    def _widen_pipe(self) -> None:
        """Make the pipe hold a whole frame (``PIPE_SIZE``), so that a flush is one ``write``;
        at Linux's default 64 KiB a 900 KiB frame took 15 turns of the loop, each a wake-up of
        the writer. Where the kernel refuses (``fs.pipe-max-size``), the transport buffers."""
        stdin = None if self.process is None else self.process.stdin
        pipe = None if stdin is None else stdin.transport.get_extra_info("pipe")
        if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    def flush(self, now: float) -> None:
        """Take the engine's records and write them to the writer's pipe as one frame."""
        log = self.engine.auth_log
        if log is None or not log.count:
            return
        entries = log.take(now)
        process = self.process
        pipe = None if process is None or process.returncode is not None else process.stdin
        if pipe is None or pipe.is_closing():
            self._drop(entries, now, "writer not running")
            return
        if pipe.transport.get_write_buffer_size() > self.capacity:
            self._drop(entries, now, "writer behind")
            return
        pipe.write(frame((now, entries)))

    def _drop(self, entries: dict[str | None, PackedEntries], now: float, why: str) -> None:
        self.dropped += answers(entries)
        if now - self._drop_logged >= DROP_LOG_INTERVAL:
            self._drop_logged = now
            self.log.warning("auth-log-dropped", dropped=self.dropped, why=why)

    def held(self) -> int:
        """How many answers the engine's records hold now."""
        log = self.engine.auth_log
        return 0 if log is None else log.count

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            held = self.held()
            if now - last < FLUSH_INTERVAL and held < FLUSH_ANSWERS:
                continue
            last = now
            process = self.process
            if process is not None and process.returncode is not None:
                self.log.warning(
                    "auth-log-writer-exited", pid=process.pid, status=process.returncode
                )
                self.process = None
            if self.process is None and time.monotonic() - self._started >= RESTART_DELAY:
                try:
                    await self.start()
                except OSError as exc:  # no process could be made: the next turn tries again
                    self.log.error("auth-log-writer-failed", error=str(exc))
            self.flush(time.time())

    async def close(self, timeout: float) -> None:
        """Hand over what is left, close the pipe, and wait (``timeout`` s) for the writer."""
        self.flush(time.time())
        self.engine.auth_log = None
        process, self.process = self.process, None
        if process is None:
            return
        try:
            async with asyncio.timeout(timeout):
                if process.stdin is not None:
                    process.stdin.close()
                    with contextlib.suppress(ConnectionError):
                        await process.stdin.wait_closed()
                await process.wait()
        except TimeoutError:
            self.log.error("auth-log-writer-killed", pid=process.pid)
            process.kill()
            await process.wait()
