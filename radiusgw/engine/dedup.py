"""Duplicate detection (RFC 5080 §2.2.2): a retransmission gets the first answer again.

A request is the same when it comes from the same source address and port with the same
Identifier and Request Authenticator within the window (5 s). The first answer is replayed
without processing again; while the first copy is still being processed (an accounting record
waiting for its durable write), copies are dropped, so a record is never written twice.

Expiry is paid in small pieces: each new request removes at most ``EXPIRE_PER_PUT`` expired
entries. After an idle spell the whole previous burst is expired at once otherwise (tens of
thousands of entries: a stall of tens of milliseconds for the first request). Entries leave at
up to that many times the arrival rate, so the backlog is gone after a small fraction of the
previous burst's requests; until then an entry may outlive the window, which only means a very
late retransmission still gets its first answer.

The keys are flat tuples of a string, integers and bytes. Such a tuple is taken out of the
garbage collector's lists by the first collection of the young generations that sees it, and
so is the (expiry, key) tuple that holds it. With the source address as a nested tuple about
one entry in ten survived into the oldest generation instead, for the 5 s window. There they
made a full collection every few seconds at 12,000 requests/s per worker: 8-15 ms each with
the worker answering nothing, measured with a gc.callbacks timer under radload (PAP, 4
workers); see the commit for the figures after. That first young collection comes from the
UDP edge's count of datagrams read (``radiusgw.server.datagrams.YoungCollections``): keys that
the expiry frees and the next requests make again come from the tuple free list, which
CPython does not count towards the collector's own threshold.

What an entry costs is what a worker pays, twice, per request: made on arrival, and freed five
seconds later, when its memory has long left the processor's caches. At 20,000 requests/s a
worker holds 100,000 entries. So an entry is the key, its authenticator and the answer, and
nothing else: the source's host and port are the objects the UDP edge shares between the
datagrams of one source (``radiusgw/server/_mmsg.c``), and the expiry is kept per run of
arrivals within ``RUN`` seconds of each other, not per entry: a (time, key) tuple and a float
per request were two more objects to make and to free cold. An entry therefore lives between
the window and the window plus ``RUN``. What holding entries costs: under proxy load a window
of 5 s instead of 0.2 s took about a tenth more CPU per answer (``bench.profile --scenario
proxy``, 44.0 and 43.1 against 39.3 and 39.8 us).
"""

from __future__ import annotations

from collections import deque
from typing import Final

PENDING: Final = b""  # marker: seen, answer not ready yet

EXPIRE_PER_PUT: Final = 16
RUN: Final = 0.01  # seconds of arrivals that share one expiry

Key = tuple[str, int, int, bytes]  # source address, port, Identifier, Request Authenticator
# How this module holds a key. Compiled (mypyc), a ``Key`` is a C struct, made into a Python
# tuple again wherever it goes into a container: the dictionary and the expiry queue would each
# get a tuple of their own, and after a young collection 1,633 of the test's 40,000 objects
# stayed tracked (``test_entries_leave_the_collectors_lists_before_the_oldest_generation``
# allows 200). Typed as a tuple of objects, the key is one Python tuple, shared by both.
_Held = tuple[object, ...]


class DuplicateCache:
    __slots__ = ("_answers", "_gone", "_keys", "_made", "_run_ends", "_runs", "window")

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._answers: dict[_Held, bytes] = {}
        self._keys: deque[_Held] = deque()  # in arrival order
        # One (expiry, number of the run's first key) per run: keys are numbered in arrival
        # order from 0, ``_made`` of them so far, ``_gone`` (the first in ``_keys``) expired.
        self._runs: deque[tuple[float, int]] = deque()
        self._run_ends = float("-inf")  # when the newest run takes no more arrivals
        self._made = 0
        self._gone = 0

    def get(self, key: _Held) -> bytes | None:
        """The answer sent (``PENDING`` if not sent yet), or None for a new request."""
        return self._answers.get(key)

    def put(self, key: _Held, answer: bytes, now: float) -> None:
        self._answers[key] = answer
        self._keys.append(key)
        if now >= self._run_ends:  # a new run: its keys expire together, each after the window
            self._run_ends = now + RUN
            self._runs.append((now + RUN + self.window, self._made))
        self._made += 1
        self.expire(now, EXPIRE_PER_PUT)

    def complete(self, key: _Held, answer: bytes) -> None:
        """The answer of a PENDING request; it keeps the expiry set when it arrived."""
        if key in self._answers:
            self._answers[key] = answer

    def forget(self, key: _Held) -> None:
        self._answers.pop(key, None)

    def expire(self, now: float, limit: int | None = None) -> None:
        """Remove entries expired at ``now``: all of them, or at most ``limit``."""
        keys = self._keys
        runs = self._runs
        answers = self._answers
        left = len(keys) if limit is None else limit
        while left and keys:
            while len(runs) > 1 and runs[1][1] <= self._gone:  # the oldest key's run is the next
                runs.popleft()
            if runs[0][0] > now:
                return
            answers.pop(keys.popleft(), None)
            self._gone += 1
            left -= 1

    def __len__(self) -> int:
        return len(self._answers)
