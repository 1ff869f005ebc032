"""The duplicate cache pays for expiry in small pieces (a stall-free first request after idle)."""

from radiusgw.engine.dedup import EXPIRE_PER_PUT, DuplicateCache


def key(n: int) -> tuple[tuple[str, int], int, bytes]:
    return (("192.0.2.1", 1812), n % 256, n.to_bytes(16, "big"))


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
