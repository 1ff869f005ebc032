"""Work handed to a store thread, each item with the time by which the loop decides without it.

A database that stopped answering (a hung server, a network that drops its packets) holds a
thread's query for as long as TCP does, far past a NAS's 3-5 s retransmission timer. The loop
does not wait for it: every item taken into a thread is ``start``ed here, and items whose
deadline passed come back from ``expired`` for the caller's fallback (issue 15.6). An answer
that arrives later finds its item gone (``finish`` is False) and is ignored.

The deadline is the same for every item, so items expire in the order they started: a dict
kept in insertion order is the queue, and ``expired`` stops at the first item still in time.
Sans-I/O: times come in as ``now`` (monotonic seconds).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Deadlines(Generic[T]):
    """Items in flight, oldest first, keyed by identity (items need not be hashable)."""

    __slots__ = ("_items", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._items: dict[int, tuple[float, T]] = {}

    def start(self, item: T, now: float) -> None:
        self._items[id(item)] = (now + self.timeout, item)

    def waiting(self, item: T) -> bool:
        """Whether ``item`` is still in flight (neither finished nor expired)."""
        return id(item) in self._items

    def finish(self, item: T) -> bool:
        """Take ``item`` out; False if it was not in flight (expired, and decided already)."""
        return self._items.pop(id(item), None) is not None

    def expired(self, now: float) -> list[T]:
        """Take out and return the items whose deadline is past, oldest first."""
        items = self._items
        out: list[T] = []
        for due, item in items.values():
            if due > now:
                break
            out.append(item)
        for item in out:
            del items[id(item)]
        return out

    def __len__(self) -> int:
        return len(self._items)
