"""What the upstream client hands the edge besides datagrams: finished requests.

Values only (slotted, read-only), as h11 and aioquic hand out events; ``Completed`` carries the
edge's own context object back, typed by the client's ``C``. The other events are
``radiusgw.client.core.AnswerDropped`` and ``radiusgw.proxy.upstream.StateChange``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from radiusgw.client.ids import Destination

C = TypeVar("C")


class Failure(StrEnum):
    """Why a request completed without an answer (one sentence for the log)."""

    DOWN = "every server of the realm is down"
    NO_ANSWER = "no server of the realm answered"
    BUSY = "no identifier free towards any live server of the realm"
    UNFORWARDABLE = "the request cannot be forwarded"


# Not frozen: one is built per proxied request, and a frozen dataclass's __init__
# (object.__setattr__ per field) costs about 0.25 µs per field. Treat it as read-only.
@dataclass(slots=True)
class Completed(Generic[C]):
    """A forwarded request is finished: ``reply`` for the NAS, or ``failure``."""

    context: C
    reply: bytes | None
    failure: Failure | None = None
    detail: str = ""
    server: Destination | None = None  # who answered
    tried: tuple[Destination, ...] = ()  # a failure: the servers that left it unanswered
