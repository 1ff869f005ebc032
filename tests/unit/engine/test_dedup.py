"""The duplicate cache pays for expiry in small pieces (a stall-free first request after idle)
and keeps nothing the garbage collector has to walk."""

import gc

from radiusgw.engine.dedup import EXPIRE_PER_PUT, RUN, DuplicateCache, Key


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
    tracked += sum(1 for k in cache._keys if gc.is_tracked(k))
    assert tracked < 200  # of 40,000 objects


def test_an_entry_lives_the_window_and_at_most_a_run_more() -> None:
    cache = DuplicateCache(window=5.0)
    cache.put(key(1), b"first", now=100.0)
    cache.put(key(2), b"same run", now=100.0 + RUN / 2)
    cache.expire(100.0 + RUN / 2 + 5.0)  # the window after the later one: both still there
    assert cache.get(key(1)) == b"first" and cache.get(key(2)) == b"same run"
    cache.expire(100.0 + RUN + 5.0)
    assert len(cache) == 0


def test_runs_expire_in_order_and_a_later_run_waits_for_its_own_time() -> None:
    cache = DuplicateCache(window=5.0)
    for n in range(10):
        cache.put(key(n), b"early", now=100.0)
    for n in range(10, 20):
        cache.put(key(n), b"late", now=103.0)
    cache.expire(105.5)
    assert [cache.get(key(n)) for n in (9, 10, 19)] == [None, b"late", b"late"]
    cache.expire(108.5)
    assert len(cache) == 0


def test_arrivals_within_a_run_share_one_expiry() -> None:
    # A burst's entries are each their key and answer: no (time, key) per entry.
    cache = DuplicateCache(window=5.0)
    for n in range(1000):
        cache.put(key(n), b"a", now=100.0 + n * RUN / 1000)
    assert len(cache._runs) == 1
    cache.put(key(1000), b"b", now=100.0 + RUN)
    assert len(cache._runs) == 2
