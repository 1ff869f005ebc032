"""The accounting journal: acknowledged records on disk before the SQLite store has them.

RFC 2866 §2 lets the server answer an Accounting-Request once the record is safely kept. The
journal is what keeps it: each worker appends its records to its own file and fdatasyncs once
per batch, with no lock shared between processes, then answers. The records reach the store
(accounting rows and the session table) a moment later, applied by the worker's applier in
large transactions that also record how far into the journal they got. This is FreeRADIUS's
"buffered-sql" pattern (detail file first, SQL after), with the fsync it leaves out.

Files: ``<directory>/<name>.<segment>``, segment numbers growing. A worker starts a new segment
whenever it opens its journal and when one passes ``SEGMENT_BYTES``. Zeros are written ahead of
the records, ``FILL_BYTES`` at a time, and the records overwrite them: an fdatasync after an
append must also commit the file's new size (ext4: a journal commit each time), one after an
overwrite only the data. Apart from the gateway, 3,000-octet writes each fdatasync'd on this
machine's ext4: appended 254-317 us and 111-118 us of the process's CPU a sync (the whole
machine's, with the file system's own thread: 128 us), overwriting zeros written ahead 141-149
us and 59-62 us (64 us). Reading takes the segment's data to end at its last non-zero octet.

A position (segment, offset) names the end of a batch; the store keeps the last applied one per
journal name in the same transaction as the records, so a record is applied exactly once across
any crash.

Record layout (little-endian): body length u32, CRC-32 of the body u32, then the body:
received f64, Acct-Status-Type i64 (-1: none), the lengths (u16, 0xFFFF for None) of the
NAS address, routed realm, User-Name and Acct-Session-Id, the packet's length u16, then those
strings (UTF-8) and the datagram as received. A frame is valid when its length is what its
fixed part says, its CRC matches and its body decodes.

Damage is never silent, and never costs the records after it. Where no valid frame starts,
reading scans on for the next one (resynchronising on the framing) and reports what it skipped
as a ``Damage``: a damaged record (a flipped bit, a bad sector) loses only itself, and the
owner logs ``journal-damaged``; bytes at a segment's end that only begin a frame are a write
torn by a crash, never acknowledged, and logged as ``journal-truncated``.

The segment a writer has open is never removed: ``replay`` of its journal first moves the
writer past the position the store has recorded (a database restored without its journal, or
with an older one, records segments the directory no longer has) and then prunes only below
both, so what the writer appends is read by the next replay.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from radiusgw.accounting import EVENT_TYPES, AccountingError, from_record
from radiusgw.domain import AccountingRecord, Quarantined
from radiusgw.errors import StoreError
from radiusgw.store.durable import fsync_directory

SEGMENT_BYTES = 64 * 1024 * 1024
# Records applied to the store in one transaction at most: the replay's batches here, and the
# live applier's (``radiusgw.server.settings.Tuning.apply_max_records``, which says why).
BATCH_RECORDS = 2000
# Zeros written ahead of the records, this many at a time (``JournalWriter.commit``); a multiple
# of it ends a segment's file, so its zero tail is shorter than this.
FILL_BYTES = 1024 * 1024
_ZEROS = bytes(FILL_BYTES)
_HEAD = struct.Struct("<II")  # body length, CRC-32 of the body
_FIXED = struct.Struct("<dqHHHHH")  # received, status, 4 string lengths, packet length
_NONE = 0xFFFF
_MAX_BODY = _FIXED.size + 4 * 0xFFFE + 0xFFFF
# A body's length fits in 3 octets, so the fourth octet of a header is 0: resynchronising looks
# for a frame only where there is one (``bytes.find``), not at every offset.
assert _MAX_BODY < 2**24


class JournalError(StoreError):
    """The journal cannot be written or read; the message names the file."""


class Position(NamedTuple):
    """The end of a batch in a journal: records before it are in the store once applied."""

    segment: int
    offset: int


def encode(records: Sequence[AccountingRecord]) -> bytes:
    """The journal bytes of ``records``, in order.

    On the event loop, per record: written out rather than with a comprehension per field
    (0.81 instead of 2.04 us a record, 33 records; mypyc compiling either gained nothing). A
    None string is an empty part of the join: only its length field says None."""
    head = _HEAD.pack
    fixed = _FIXED.pack
    out: list[bytes] = []
    for r in records:
        nas = r.nas_address.encode()
        realm, username, session_id = r.realm, r.username, r.session_id
        status, packet = r.status_type, r.packet
        realm_b = b"" if realm is None else realm.encode()
        user_b = b"" if username is None else username.encode()
        session_b = b"" if session_id is None else session_id.encode()
        lengths = fixed(
            r.received,
            -1 if status is None else status,
            len(nas),
            _NONE if realm is None else len(realm_b),
            _NONE if username is None else len(user_b),
            _NONE if session_id is None else len(session_b),
            len(packet),
        )
        body = b"".join((lengths, nas, realm_b, user_b, session_b, packet))
        out.append(head(len(body), zlib.crc32(body)))
        out.append(body)
    return b"".join(out)


def _frame_at(data: bytes, at: int) -> tuple[AccountingRecord, int] | None:
    """The record of the valid frame starting at ``at``, and where the frame ends; else None."""
    end = at + _HEAD.size + _FIXED.size
    if end > len(data):
        return None
    length, crc = _HEAD.unpack_from(data, at)
    fixed = _FIXED.unpack_from(data, at + _HEAD.size)
    # The body is the fixed part, the strings and the packet: nothing else, nothing less.
    if length != _FIXED.size + sum(n for n in fixed[2:6] if n != _NONE) + fixed[6]:
        return None
    end = at + _HEAD.size + length
    body = data[at + _HEAD.size : end]
    if len(body) < length or zlib.crc32(body) != crc:
        return None
    try:
        return _decode_body(body), end
    except (struct.error, UnicodeDecodeError, ValueError):
        return None


def _resync(data: bytes, at: int, limit: int) -> int:
    """The offset of the first valid frame at or after ``at`` and before ``limit`` (a frame's
    first three octets are not all zeros); ``limit`` if there is none."""
    while True:
        zero = data.find(b"\x00", at + 3, limit + 3)  # a frame's header has a 0 as fourth octet
        if zero < 0:
            return limit
        at = zero - 3
        if _frame_at(data, at) is not None:
            return at
        at += 1


def _decode_body(body: bytes) -> AccountingRecord:
    received, status, *lengths = _FIXED.unpack_from(body)
    packet_length = lengths.pop()
    at = _FIXED.size
    texts: list[str | None] = []
    for length in lengths:
        if length == _NONE:
            texts.append(None)
        else:
            texts.append(body[at : at + length].decode())
            at += length
    packet = body[at : at + packet_length]
    nas_address, realm, username, session_id = texts
    assert nas_address is not None  # always written
    status_type = None if status < 0 else status
    record = AccountingRecord(
        received=received,
        nas_address=nas_address,
        realm=realm,
        username=username,
        status_type=status_type,
        session_id=session_id,
        packet=packet,
    )
    if status_type in EVENT_TYPES:
        # The event the engine parsed on receipt, parsed again (still being built: not shared).
        with contextlib.suppress(AccountingError):
            record.event = from_record(record)
    return record


# -- segment files --------------------------------------------------------------------------


def segments(directory: Path, name: str) -> list[tuple[int, Path]]:
    """The segment files of journal ``name``, oldest first."""
    pattern = re.compile(re.escape(name) + r"\.(\d+)")
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalError(
            f"cannot list the journal directory {directory}: {exc.strerror}"
        ) from None
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match is not None:
            found.append((int(match[1]), directory / entry))
    return sorted(found)


def names(directory: Path) -> list[str]:
    """The journal names that have segment files in ``directory``."""
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted({entry.rpartition(".")[0] for entry in entries if "." in entry})


class JournalWriter:
    """Appends batches to one journal; owned by one thread of one process.

    Opening starts a new segment after every existing one, so a segment is only ever written
    by one writer and a torn tail of a crashed one stays at its end.
    """

    def __init__(self, directory: Path, name: str, *, sync: bool = True) -> None:
        """``sync=False`` is an experiment, never the product (``bench/ablate.py``'s
        journal-sync): batches are written but not fdatasync'd, so an acknowledged record can be
        lost in a power cut (RFC 2866 §2)."""
        self.directory = directory
        self.name = name
        self._sync = sync
        self._fd = -1
        self._offset = 0  # every byte before it is durable: each write is synced before the next
        self.segment = 0
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal directory {directory}: {exc.strerror}"
            ) from None
        existing = segments(directory, name)
        self._open(existing[-1][0] + 1 if existing else 1)

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.{self.segment:012d}"

    def start_after(self, segment: int) -> None:
        """Write from now on to a segment numbered above ``segment``, if this one is not.

        Before the first write only (``replay``): the segment left is empty, and removed.
        """
        if self.segment > segment:
            return
        empty = self.path
        self._open(segment + 1)
        with contextlib.suppress(FileNotFoundError):
            empty.unlink()

    def _open(self, segment: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.segment = segment
        try:
            # Not O_APPEND: Linux's pwrite appends there, whatever the offset.
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fsync_directory(self.directory)
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal segment {self.path}: {exc.strerror}"
            ) from None
        self._offset = 0
        self._filled = 0  # octets of the file as zeros written ahead or records over them

    def append(self, records: Sequence[AccountingRecord]) -> Position:
        """Write ``records`` and fdatasync; their end position once they are durable."""
        return self.commit([encode(records)])[0]

    def commit(self, batches: Sequence[bytes]) -> list[Position]:
        """Write ``batches`` (``encode``d records) in one write, fdatasync, and return the end
        position of each once all are durable. On a ``JournalError`` none of them is kept.

        The accounting pipeline calls it on a thread of its own, the only one that writes this
        journal. Every write is synced before the next, so a segment is durable whole when a
        commit leaves it for the next one.
        """
        data = b"".join(batches)
        if self._fd < 0 or (self._offset + len(data) > SEGMENT_BYTES and self._offset > 0):
            self._open(self.segment + 1)
        start = self._offset
        try:
            if start + len(data) > self._filled:
                self._fill(start + len(data))
            view = memoryview(data)
            at = start
            while view:
                written = os.pwrite(self._fd, view, at)
                view = view[written:]
                at += written
        except OSError as exc:
            self._cut(start)  # the next batch must not follow a torn one
            raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from None
        try:
            if self._sync:
                os.fdatasync(self._fd)
        except OSError as exc:
            # Linux may have dropped the pages that failed: nothing of this write is trusted.
            self._cut(start)
            raise JournalError(f"cannot sync the journal {self.path}: {exc.strerror}") from None
        self._offset = start + len(data)
        ends = []
        end = self._offset
        for batch in reversed(batches):
            ends.append(Position(self.segment, end))
            end -= len(batch)
        return ends[::-1]

    def _fill(self, end: int) -> None:
        """Write zeros from the end of the file to the first multiple of ``FILL_BYTES`` at or
        past ``end``; the commit's fdatasync makes them durable with its records."""
        target = -(-end // FILL_BYTES) * FILL_BYTES
        while self._filled < target:
            self._filled += os.pwrite(self._fd, _ZEROS[: target - self._filled], self._filled)

    def _cut(self, offset: int) -> None:
        try:
            os.ftruncate(self._fd, offset)
            self._filled = offset
        except OSError:  # the next commit opens a new segment instead
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes of a segment that held no valid frame, skipped by reading (module docstring)."""

    path: Path
    offset: int  # where the skipped bytes begin
    skipped: int  # how many
    truncated: bool  # a frame cut short at the segment's end (a torn write); else damaged


def read(
    directory: Path,
    name: str,
    after: Position | None,
    batch: int = BATCH_RECORDS,
    damaged: Callable[[Damage], None] | None = None,
) -> Iterator[tuple[list[AccountingRecord], Position]]:
    """Batches of the records of journal ``name`` after position ``after`` (None: all), each
    with the position of its end. Bytes with no valid frame are skipped up to the next valid
    one, and each such stretch is told to ``damaged`` (module rule)."""
    for segment, path in segments(directory, name):
        if after is not None and segment < after.segment:
            continue  # applied: kept only until pruned
        start = after.offset if after is not None and segment == after.segment else 0
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise JournalError(f"cannot read the journal segment {path}: {exc.strerror}") from None
        records: list[AccountingRecord] = []
        at = start
        limit = written_end(data)
        while at < limit:
            found = _frame_at(data, at)
            if found is None:
                resume = _resync(data, at + 1, limit)
                if damaged is not None:
                    damaged(Damage(path, at, resume - at, _torn(data, at, resume, limit)))
                at = resume
                continue
            record, at = found
            records.append(record)
            if len(records) >= batch:
                yield records, Position(segment, at)
                records = []
        if records:
            yield records, Position(segment, at)


def written_end(data: bytes) -> int:
    """Where a segment's data ends: after its last octet that is not zero (the zeros after it
    were written ahead; a frame ending in zeros is read whole all the same)."""
    end = len(data)
    while end > 0:
        start = max(0, end - FILL_BYTES)
        kept = len(data[start:end].rstrip(b"\x00"))
        if kept:
            return start + kept
        end = start
    return 0


def _torn(data: bytes, at: int, resume: int, limit: int) -> bool:
    """Whether the bytes from ``at`` on are a frame whose write a crash cut short: they run to
    the data's end (``limit``) and the length they begin with runs past it. (A damaged last
    frame whose own last octets are zeros looks the same, and is said torn.)"""
    if resume < limit:
        return False
    if limit - at < _HEAD.size:
        return True
    length: int = _HEAD.unpack_from(data, at)[0]
    return length <= _MAX_BODY and at + _HEAD.size + length > limit


def prune(directory: Path, name: str, before: int, keep: int | None = None) -> int:
    """Remove the segments of ``name`` numbered below ``before`` (all applied) but ``keep``
    (the one being written); how many."""
    removed = 0
    for segment, path in segments(directory, name):
        if segment < before and segment != keep:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise JournalError(
                    f"cannot remove the journal segment {path}: {exc.strerror}"
                ) from None
            removed += 1
    if removed:
        fsync_directory(directory)
    return removed


class JournalStore(Protocol):
    def write_accounting(
        self, records: Sequence[AccountingRecord], journal: tuple[str, Position] | None = None
    ) -> list[Quarantined]: ...

    def journal_position(self, name: str) -> Position | None: ...


@dataclass(slots=True)
class Replayed:
    """What ``replay`` did: records read and applied (those kept aside among them), and the
    stretches of the journal it had to skip."""

    records: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def replay(
    store: JournalStore, directory: Path, name: str, writer: JournalWriter | None = None
) -> Replayed:
    """Apply what journal ``name`` holds beyond its stored position.

    Run by the journal's owner, with its ``writer``, before it writes again (or, for a journal
    nobody owns any more, by the worker that adopts it). Segments wholly applied are removed
    after, never the writer's (module rule). Records the store refuses are kept aside by it.
    """
    done = Replayed()
    position = store.journal_position(name)
    if writer is not None and position is not None:
        writer.start_after(position.segment)
    for records, end in read(directory, name, position, damaged=done.damage.append):
        done.quarantined += store.write_accounting(records, (name, end))
        done.records += len(records)
        position = end
    if position is not None:
        prune(directory, name, position.segment, None if writer is None else writer.segment)
    return done
