"""The realm set a gateway serves: read and checked once per start or reload, named by a digest.

Workers never read the realm folder themselves. The supervisor (with ``--workers 1``, the one
worker) reads every realm file and every ``secret_file`` once (``load_registry``) and hands the
same ``RealmSet`` to every worker: to a worker it forks, at the fork (the child has the
supervisor's memory), and to a running one as one frame on that worker's pipe (``frame``,
``FrameReader``). So all workers serve the same contracts and secrets, also when a file changes
while it is being read, and a worker forked again after a crash serves the set of the last
reload, not the one of the start.

The digest names the set in the log lines (``serving``, ``reloaded``, ``reload-applied``,
``worker-ready``): the first 16 hex digits of SHA-256 over the registry's ``repr``, which holds
every field of every contract, client, realm, upstream server, LNS and carrier, the secrets read
from ``secret_file`` included. The same files give the same digest; a changed secret another.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiusgw.config import load_registry
from radiusgw.config.model import Registry
from radiusgw.errors import ConfigError
from radiusgw.radius.dictionary import DictionaryError

_LENGTH = 4  # octets of a frame's length prefix, big-endian


@dataclass(frozen=True, slots=True)
class RealmSet:
    registry: Registry
    digest: str
    dictionaries: tuple[Path, ...] = ()  # --dictionary: a reload reads with the same ones

    @classmethod
    def load(cls, directory: Path | str, dictionaries: tuple[Path, ...] = ()) -> RealmSet:
        """Read and check ``directory`` once; ``ConfigError`` lists every problem."""
        registry = load_registry(directory, dictionaries)
        return cls(registry, digest_of(registry), dictionaries)

    def summary(self) -> dict[str, object]:
        """What the log lines say of a set: its digest and its size (never a secret)."""
        return {
            "digest": self.digest,
            "contracts": len(self.registry.contracts),
            "realms": len(self.registry.realms),
            "nas": len(self.registry.nas),
        }


def reload(directory: Path | str, current: RealmSet, log: Any, *, workers: int) -> RealmSet | None:
    """SIGHUP: the set of ``directory`` read anew and logged as ``reloaded``; or None, logged
    as ``reload-refused`` with every problem, when it is invalid (``current`` stays)."""
    try:
        realms = RealmSet.load(directory, current.dictionaries)
    except (ConfigError, DictionaryError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        log.error(
            "reload-refused",
            problems=problems,
            kept="previous realm files",
            digest=current.digest,
        )
        return None
    log.info("reloaded", previous=current.digest, workers=workers, **realms.summary())
    return realms


def digest_of(registry: Registry) -> str:
    return hashlib.sha256(repr(registry).encode()).hexdigest()[:16]


def frame(realms: RealmSet) -> bytes:
    """``realms`` as one frame for a worker's pipe: a length, then the pickle.

    Pickle is safe here only because both ends are this program: the pipe is made by the
    supervisor before it forks and nothing else can write to it.
    """
    data = pickle.dumps(realms, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_LENGTH, "big") + data


class FrameReader:
    """The worker's end: bytes in as they come off the pipe, whole realm sets out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[RealmSet]:
        self._buffer += data
        sets: list[RealmSet] = []
        while len(self._buffer) >= _LENGTH:
            end = _LENGTH + int.from_bytes(self._buffer[:_LENGTH], "big")
            if len(self._buffer) < end:
                break
            realms = pickle.loads(self._buffer[_LENGTH:end])
            del self._buffer[:end]
            assert isinstance(realms, RealmSet)
            sets.append(realms)
        return sets
