"""The duplicate cache pays for expiry in small pieces (a stall-free first request after idle)
and keeps nothing the garbage collector has to walk."""

import gc

from radiusgw.engine.dedup import EXPIRE_PER_PUT, DuplicateCache, Key


def key(n: int) -> Key:
    return ("192.0.2.1", 1812, n % 256, n.to_bytes(16, "big"))


def test_an_entry_is_found_within_the_window() -> None:
    cache = DuplicateCache(window=5.0)
    cache.put(key(1), b"answer", now=100.0)
    cache.put(key(2), b"other", now=104.9)
    assert cache.get(key(1)) == b"answer"


def test_a_new_request_removes_at_most_a_few_expired_entries() -> None:
    cache = DuplicateCache(window=5.0)
    burst = 1000
    for n in range(burst):
        cache.put(key(n), b"a", now=100.0)
    cache.put(key(burst), b"b", now=200.0)  # after an idle spell: the whole burst is expired
    assert len(cache) == burst + 1 - EXPIRE_PER_PUT
    for n in range(burst + 1, burst + 1 + burst // EXPIRE_PER_PUT + 1):
        cache.put(key(n), b"c", now=200.0)
    assert cache.get(key(burst - 1)) is None  # the backlog is gone after burst / 16 requests
    assert cache.get(key(burst)) == b"b"


def test_expire_without_a_limit_removes_every_expired_entry() -> None:
    cache = DuplicateCache(window=5.0)
    for n in range(100):
        cache.put(key(n), b"a", now=100.0)
    cache.expire(106.0)
    assert len(cache) == 0


def test_entries_leave_the_collectors_lists_before_the_oldest_generation() -> None:
    # What stays in the cache for its window must not pile up in the oldest generation, where
    # every full collection would walk it (see the module docstring). A few stragglers are
    # possible (a tuple made while a collection runs); with the source address nested in the
    # key, about one entry in ten stayed tracked here.
    cache = DuplicateCache(window=5.0)
    for n in range(20_000):
        address = (f"192.0.2.{n % 250}", 1812 + n)  # as recvfrom gives it: a fresh tuple
        cache.put((address[0], address[1], n % 256, n.to_bytes(16, "big")), b"a", now=100.0)
    gc.collect(1)  # the young generations only: never a full collection
    tracked = sum(1 for k in cache._answers if gc.is_tracked(k))
    tracked += sum(1 for e in cache._expiry if gc.is_tracked(e))
    assert tracked < 200  # of 40,000 objects
