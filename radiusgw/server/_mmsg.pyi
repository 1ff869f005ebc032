"""Several UDP datagrams per system call (``_mmsg.c``, built by ``make compiled`` on Linux)."""

from typing import Any, Final

BATCH: Final[int]
ADDRESS_CACHE: Final[int]

def receive(fd: int, count: int, /) -> list[tuple[bytes, Any]]: ...
def send(fd: int, datagrams: list[tuple[bytes, Any]], /) -> int: ...
