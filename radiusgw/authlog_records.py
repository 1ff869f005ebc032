"""The authentication log's records: an answer's values as octets, written where it is answered.

The engine adds one record per Access-Request it answers (``AuthLog.add``) to the octets of the
answer's realm (``Recorder``); the worker takes them every hand-off (``AuthLog.take``) as one
``PackedEntries`` per realm, sends them to its writer process, and the store keeps those octets
as they are, one chunk per realm (``radiusgw.store.authlog``). ``values_of`` reads them back
into the flat list of ``AUTH_LOG_FIELDS`` values per answer that the readers work from.

Why octets and not the values themselves: the engine used to append each answer's nine values
to a list, and the worker ``marshal``-ed the lists at the hand-off. So every answer's user name
and time stayed alive until then, and the hand-off walked and freed them cold: under group PAP
with 100,000 users ``marshal``'s ``w_object`` alone took 0.43 us an answer, ten times what it
takes on the same lists warm, and the lists' growth 0.1 us of copying (``python -m
bench.beside --perf``). Here each value is copied into the realm's ``bytearray`` while it is
still in the cache, nothing is kept, and the hand-off copies one run of octets per realm. The
same command, both with the log (five rounds at once): 16.57 against 16.97 us an answer in the
gateway, -0.1 to -2.1 % round by round; the writers the same.

Layout (integers big-endian):
- ``TIME`` then an IEEE 754 double: the time of the answers after it (the engine's ``now``),
  until the next ``TIME``; written only when the time changes (the edge reads the clock per
  datagram, so under load that is about once an answer: one ``struct`` call each).
- ``TIMED`` (at the last ``TIME``) or ``UNTIMED`` (answered without a clock: the hand-off's
  time, ``AuthLogBatch.taken``), then the answer's values, each as below, in this order: NAS,
  method, result, reason, LNS, upstream, User-Name, Framed-IP. The first six are the same for
  most answers: they are encoded once per combination and kept (``AuthLog``, at most
  ``PREFIXES`` of them), so an answer costs a look-up, the user's octets and the Framed-IP's.
- A value: ``NONE``; ``TEXT`` with a one-octet length, or ``LONG_TEXT`` with a two-octet one,
  then UTF-8; ``OCTETS`` with a one-octet length, then the octets (the Framed-IP's four, as the
  answer has them: the readers make the text). An upstream's (host, port) is kept as its text.

Rules:
- Sans-I/O and clock-free: the engine passes its ``now``; ``take`` is given the hand-off's.
- A damaged run of octets (a damaged file) is a ``RecordError`` from ``values_of``, never
  anything else, so that the store can name the file and the chunk.
- Chunks of the layout before this one (``marshal`` of the flat list) are still read.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any, Final

from radiusgw.client.ids import show_destination
from radiusgw.domain import AUTH_LOG_FIELDS, PackedEntries

TIME: Final = 0x01
TIMED: Final = 0x02
UNTIMED: Final = 0x03
NONE: Final = 0x00
TEXT: Final = 0x04
LONG_TEXT: Final = 0x05
OCTETS: Final = 0x06
PREFIXES: Final = 4096  # combinations kept; past it the cache starts again (a hostile mix)
_LONG: Final = 0xFFFF  # the longest text (a User-Name is at most 253 octets, RFC 2865 §5.1)
_DOUBLE: Final = struct.Struct(">d")
_TIME_OCTETS: Final = bytes((TIME,))
_NONE_OCTETS: Final = bytes((NONE,))
# A one-octet length's header, by length: one concatenation per value on the answer's path.
_TEXT_HEADERS: Final = tuple(bytes((TEXT, n)) for n in range(256))
_OCTETS_HEADERS: Final = tuple(bytes((OCTETS, n)) for n in range(256))
# The layout before this one starts with marshal's list: "[" (0x5B), with its ref flag 0xDB.
_MARSHALLED: Final = (0x5B, 0xDB)


class RecordError(ValueError):
    """Octets that are not authentication-log records."""


def _text(octets: bytearray, value: str) -> None:
    data = value.encode()[:_LONG]
    if len(data) < 256:
        octets += _TEXT_HEADERS[len(data)]
    else:
        octets.append(LONG_TEXT)
        octets += len(data).to_bytes(2, "big")
    octets += data


def _value(octets: bytearray, value: object) -> None:
    """Any value of a record, by its type (the prefixes, and rows written again as text)."""
    if value is None:
        octets += _NONE_OCTETS
    elif isinstance(value, str):
        _text(octets, value)
    elif isinstance(value, bytes):
        octets += _OCTETS_HEADERS[len(value[:255])]
        octets += value[:255]
    elif isinstance(value, tuple) and len(value) >= 2:  # an upstream's (host, port[, ...])
        _text(octets, show_destination((value[0], value[1])))
    else:
        raise TypeError(f"an authentication-log value of {type(value).__name__}")


class Recorder:
    """One realm's records since the last hand-off."""

    def __init__(self) -> None:
        self.octets = bytearray()
        self.count = 0
        self.first = float("inf")  # the least and greatest time written (``TIME``)
        self.last = float("-inf")
        self.untimed = False  # an answer without a time: the hand-off's time is among them
        self._time = float("nan")  # the last ``TIME`` written (NaN equals nothing)

    def time(self, when: float) -> None:
        """Records from now on are at ``when``."""
        if when != self._time:
            self._time = when
            self.octets += _TIME_OCTETS
            self.octets += _DOUBLE.pack(when)
            if when < self.first:
                self.first = when
            if when > self.last:
                self.last = when

    def packed(self, taken: float) -> PackedEntries:
        """What the hand-off sends: the least and greatest time, the count, the octets."""
        first, last = self.first, self.last
        if self.untimed or not self.count:
            first, last = min(first, taken), max(last, taken)
        return (first, last, self.count, bytes(self.octets))


class _Prefix:
    """The encoded first values of a NAS's last answers, and what they were (by identity: the
    engine passes the same objects for the same values, the registry's and its constants)."""

    __slots__ = ("lns", "method", "octets", "reason", "result", "timed", "upstream")

    def __init__(
        self,
        timed: bool,
        method: str,
        result: str,
        reason: str,
        lns: str | None,
        upstream: object,
        octets: bytes,
    ) -> None:
        self.timed = timed
        self.method = method
        self.result = result
        self.reason = reason
        self.lns = lns
        self.upstream = upstream
        self.octets = octets


class AuthLog:
    """The engine's records by realm (lower case, as routed; None: no realm could be read)."""

    def __init__(self) -> None:
        self.by_realm: dict[str | None, Recorder] = {}
        self.count = 0  # answers recorded since the last ``take``
        # The first six values encoded: by NAS the last combination (a look-up and five
        # comparisons of identity, where a key of all seven cost 100 ns an answer, compiled),
        # and every combination by value (a miss of the first, or a value equal but not the
        # same object).
        self._last: dict[str, _Prefix] = {}
        self._prefixes: dict[tuple[object, ...], bytes] = {}

    def add(
        self,
        realm: str | None,
        when: float | None,
        nas: str,
        username: str,
        method: str,
        result: str,
        reason: str,
        framed_ip: bytes | str | None,
        lns: str | None,
        upstream: object,
    ) -> None:
        """One answer's record (``radiusgw.domain.AUTH_LOG_FIELDS``, their meaning). The engine's
        user names are decoded with "replace" (RFC 2865 §5.1 asks for UTF-8, not all NAS send
        it), so they encode without an error handler, the fastest way."""
        recorder = self.by_realm.get(realm)
        if recorder is None:
            recorder = self.by_realm[realm] = Recorder()
        timed = when is not None
        if when is not None:
            recorder.time(when)
        else:
            recorder.untimed = True
        last = self._last.get(nas)
        if (
            last is None
            or last.method is not method
            or last.result is not result
            or last.reason is not reason
            or last.lns is not lns
            or last.upstream is not upstream
            or last.timed != timed
        ):
            last = self._remember(timed, nas, method, result, reason, lns, upstream)
        octets = recorder.octets
        octets += last.octets
        name = username.encode()
        if len(name) < 256:
            octets += _TEXT_HEADERS[len(name)]
            octets += name
        else:
            _text(octets, username)
        if framed_ip is None:
            octets += _NONE_OCTETS
        elif isinstance(framed_ip, bytes) and len(framed_ip) < 256:
            octets += _OCTETS_HEADERS[len(framed_ip)]
            octets += framed_ip
        else:
            _value(octets, framed_ip)
        recorder.count += 1
        self.count += 1

    def _remember(
        self,
        timed: bool,
        nas: str,
        method: str,
        result: str,
        reason: str,
        lns: str | None,
        upstream: object,
    ) -> _Prefix:
        key = (timed, nas, method, result, reason, lns, upstream)
        octets = self._prefixes.get(key)
        if octets is None:
            encoded = bytearray((TIMED if timed else UNTIMED,))
            for value in key[1:]:
                _value(encoded, value)
            if len(self._prefixes) >= PREFIXES:
                self._prefixes.clear()
            octets = self._prefixes[key] = bytes(encoded)
        if len(self._last) >= PREFIXES:
            self._last.clear()
        prefix = self._last[nas] = _Prefix(timed, method, result, reason, lns, upstream, octets)
        return prefix

    def take(self, taken: float) -> dict[str | None, PackedEntries]:
        """Every realm's records, packed, and none kept; ``taken``: the hand-off's time."""
        by_realm = self.by_realm
        self.by_realm = {}
        self.count = 0
        return {realm: recorder.packed(taken) for realm, recorder in by_realm.items()}


def pack(values: list[Any], taken: float) -> PackedEntries:
    """A flat list of values (``AUTH_LOG_FIELDS`` per answer) as the engine would have recorded
    them: rows written again (``radiusgw.store.authlog.batches_of``) and tests."""
    log = AuthLog()
    for i in range(0, len(values) - AUTH_LOG_FIELDS + 1, AUTH_LOG_FIELDS):
        when, nas, username, method, result, reason, framed_ip, lns, upstream = values[
            i : i + AUTH_LOG_FIELDS
        ]
        log.add(None, when, nas, username, method, result, reason, framed_ip, lns, upstream)
    return log.take(taken).get(None, (taken, taken, 0, b""))


class _Reader:
    """A walk over records (``values_of``)."""

    def __init__(self, octets: bytes) -> None:
        self.octets = octets
        self.pos = 0

    def octet(self) -> int:
        if self.pos >= len(self.octets):
            raise RecordError(f"records end inside a record, at octet {self.pos}")
        value = self.octets[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.octets):
            raise RecordError(f"a value runs past the records' end, at octet {self.pos}")
        data = self.octets[self.pos : end]
        self.pos = end
        return data

    def value(self) -> object:
        kind = self.octet()
        if kind == NONE:
            return None
        if kind == TEXT:
            return self.take(self.octet()).decode("utf-8", "replace")
        if kind == LONG_TEXT:
            n = self.octet() << 8
            return self.take(n | self.octet()).decode("utf-8", "replace")
        if kind == OCTETS:
            return self.take(self.octet())
        raise RecordError(f"a value of kind {kind:#04x}, at octet {self.pos - 1}")


def values_of(octets: bytes) -> list[Any]:
    """The flat list of ``AUTH_LOG_FIELDS`` values per answer that ``octets`` hold (a time of
    None: the hand-off's); ``RecordError`` when they are not records."""
    if octets and octets[0] in _MARSHALLED:  # the layout before this one
        # marshal makes a list of the length its header says before it reads an item: a
        # damaged one would have it allocate up to 16 GiB. Each item takes an octet at least.
        if len(octets) < 5 or int.from_bytes(octets[1:5], "little") > len(octets):
            raise RecordError("a marshalled list longer than its octets")
        try:
            values = marshal.loads(octets)
        except (EOFError, ValueError, TypeError) as exc:
            raise RecordError(f"a marshalled list that does not load: {exc}") from None
        if not isinstance(values, list) or len(values) % AUTH_LOG_FIELDS:
            raise RecordError("a marshalled value that is not a list of answers")
        return values
    reader = _Reader(octets)
    out: list[Any] = []
    append = out.append
    when: float | None = None
    end = len(octets)
    while reader.pos < end:
        kind = reader.octet()
        if kind == TIME:
            when = _DOUBLE.unpack(reader.take(_DOUBLE.size))[0]
            continue
        if kind == TIMED:
            if when is None:
                raise RecordError(f"an answer at a time not given, at octet {reader.pos - 1}")
            at: float | None = when
        elif kind == UNTIMED:
            at = None
        else:
            raise RecordError(f"a record of kind {kind:#04x}, at octet {reader.pos - 1}")
        nas = reader.value()
        method = reader.value()
        result = reader.value()
        reason = reader.value()
        lns = reader.value()
        upstream = reader.value()
        username = reader.value()
        framed_ip = reader.value()
        append(at)
        append(nas)
        append(username)
        append(method)
        append(result)
        append(reason)
        append(framed_ip)
        append(lns)
        append(upstream)
    return out
