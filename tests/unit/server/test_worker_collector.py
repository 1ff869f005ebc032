"""What lives as long as the worker is kept out of the cyclic collector's walks
(``radiusgw.server.worker.kept_from_the_collector``, around the account cache's preload)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from radiusgw.server.worker import kept_from_the_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


class Entry:
    """An object the collector tracks, as a cached account is."""


async def test_the_collector_is_off_during_the_work_and_what_it_made_is_frozen_after(
    collector_restored: None,
) -> None:
    kept: list[Entry] = []
    seen_enabled: list[bool] = []

    async def preload() -> None:
        for _ in range(3):
            seen_enabled.append(gc.isenabled())
            kept.extend(Entry() for _ in range(1_000))
            await asyncio.sleep(0)

    await kept_from_the_collector(preload())
    assert seen_enabled == [False, False, False]
    assert gc.isenabled()
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(entry) in walked for entry in kept)  # none left for a collection to walk
    assert gc.get_freeze_count() >= len(kept)


async def test_a_failed_or_cancelled_preload_turns_the_collector_back_on(
    collector_restored: None,
) -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise OSError("store gone")

    with pytest.raises(OSError):
        await kept_from_the_collector(failing())
    assert gc.isenabled()

    task = asyncio.create_task(kept_from_the_collector(asyncio.sleep(60)))
    await asyncio.sleep(0)
    assert not gc.isenabled()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.isenabled()
