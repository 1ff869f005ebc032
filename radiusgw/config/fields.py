"""A typed reader over one TOML table that records problems instead of raising.

``radiusgw check`` must list every problem of every realm file at once, one line each, naming
the file and the key. So nothing here raises on bad input: a ``Table`` wraps one TOML table and
knows where it is (the file and the dotted key path, e.g. ``realm[0].server[1]``); each reader
method returns the typed value, or ``None`` (or the default) after recording one line
``FILE: PATH.KEY: sentence`` in the shared problem list. ``Table.finish`` then reports every key
nobody read: a typo, or a key that belongs to another kind of table. Unknown keys are errors so
that typos cannot pass silently (docs/operations.md, "Realm files").

Rules of the readers:
- booleans are TOML booleans and integers are TOML integers (``true`` is not ``1``);
- strings that must name something (ids, names) are non-empty;
- a secret is never echoed in a problem line, only its type or length.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TypeVar, overload

E = TypeVar("E", bound=StrEnum)

# A required key given as ``True`` gets the standard sentence; a string replaces it.
Required = bool | str

_MISSING = "required key is missing"


def kind(value: object) -> str:
    """The TOML type of a value, with its article: what a message may say about a secret."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, dt.datetime):
        return "a datetime"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dt.time):
        return "a time"
    if isinstance(value, Mapping):
        return "a table"
    return "an array"


def show(value: object) -> str:
    """A value as the operator wrote it in TOML, for problem lines."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return f"{kind(value)} {value.isoformat()}"
    return kind(value)


# Sizes for traffic_quota (第14条2). SI prefixes are powers of 1000, IEC ones powers of 1024;
# a bare number is octets. Matched case-insensitively ("gb" is "GB"; "gib" stays binary).
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_UNITS: Mapping[str, int] = {
    "": 1,
    "b": 1,
    **{p: 1000**n for n, p in enumerate("kmgtp", start=1)},
    **{f"{p}b": 1000**n for n, p in enumerate("kmgtp", start=1)},
    **{f"{p}ib": 1024**n for n, p in enumerate("kmgtp", start=1)},
}


def parse_octets(text: str) -> int | None:
    """``"500GB"`` -> 500_000_000_000; ``"750MiB"``; ``"1000000"``. None if not a whole size."""
    match = _SIZE.fullmatch(text)
    if match is None or match[2].lower() not in _UNITS:
        return None
    try:
        octets = Decimal(match[1]) * _UNITS[match[2].lower()]
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal digits
        return None
    if octets != octets.to_integral_value():
        return None  # "1.0001KB" is not a whole number of octets
    return int(octets)


class Table:
    """One TOML table of a realm file, read key by key with problems recorded, not raised."""

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        source: str,
        path: str,
        header: str,
        known: Collection[str],
        problems: list[str],
    ) -> None:
        self.data = data
        self.source = source  # the file, as messages name it
        self.path = path  # e.g. "realm[0].server[1]"; "" for the file's top level
        self.header = header  # e.g. "realm.server": how the TOML table header spells it
        self.known = frozenset(known)
        self.problems = problems
        self._read: set[str] = set()

    @classmethod
    def root(
        cls, data: Mapping[str, object], *, source: str, known: Collection[str], problems: list[str]
    ) -> Table:
        return cls(data, source=source, path="", header="", known=known, problems=problems)

    # -- places and problems -------------------------------------------------------------

    def where(self, key: str | None = None) -> str:
        """The dotted path of ``key`` (or of this table itself) as problem lines show it."""
        if key is None:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str | None, message: str) -> None:
        place = self.where(key)
        self.problems.append(
            f"{self.source}: {place}: {message}" if place else f"{self.source}: {message}"
        )

    def has(self, key: str) -> bool:
        return key in self.data

    def ignore(self, keys: Iterable[str]) -> None:
        """Mark keys as dealt with when no sentence about them would be true (e.g. bad mode)."""
        self._read.update(keys)

    def finish(self, misplaced: Mapping[str, str] | None = None) -> None:
        """Report every key nobody read: ``misplaced`` says why a known key is wrong here."""
        for key in self.data:
            if key in self._read:
                continue
            if misplaced and key in misplaced:
                self.problem(key, misplaced[key])
                continue
            close = difflib.get_close_matches(key, sorted(self.known - {key}), n=1, cutoff=0.75)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            self.problem(key, f"unknown key{hint}")

    def _take(self, key: str, required: Required) -> object | None:
        """The raw value, or None when absent (recording a problem if it is required)."""
        assert key in self.known, f"{key} is not a known key of [{self.header}]"
        self._read.add(key)
        if key in self.data:
            return self.data[key]
        if required:
            self.problem(key, required if isinstance(required, str) else _MISSING)
        return None

    # -- scalars -------------------------------------------------------------------------

    def text(
        self, key: str, *, required: Required = False, max_octets: int | None = None
    ) -> str | None:
        """A non-empty string."""
        value = self._take(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {show(value)}")
            return None
        if not value:
            self.problem(key, "must not be empty")
            return None
        if max_octets is not None and len(value.encode()) > max_octets:
            self.problem(key, f"is {len(value.encode())} octets long; at most {max_octets}")
            return None
        return value

    @overload
    def integer(self, key: str, *, low: int, high: int | None = None, default: int) -> int: ...

    @overload
    def integer(
        self, key: str, *, low: int, high: int | None = None, required: Required = False
    ) -> int | None: ...

    def integer(
        self,
        key: str,
        *,
        low: int,
        high: int | None = None,
        default: int | None = None,
        required: Required = False,
    ) -> int | None:
        """An integer in ``low..high``; the default when absent or wrong."""
        value = self._take(key, required)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(key, f"must be an integer, got {show(value)}")
            return default
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(key, f"must be {span}, got {value}")
            return default
        return value

    def port(self, key: str, *, default: int) -> int:
        return self.integer(key, low=1, high=65535, default=default)

    def number(self, key: str, *, default: float, low: float, above: bool = False) -> float:
        """A finite number (integer or float) ``>= low``, or ``> low`` when ``above``."""
        value = self._take(key, False)
        if value is None:
            return default
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            self.problem(key, f"must be a number, got {show(value)}")
            return default
        if value < low or (above and value == low):
            self.problem(
                key, f"must be {'more than' if above else 'at least'} {low:g}, got {value}"
            )
            return default
        return float(value)

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._take(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {show(value)}")
            return default
        return value

    @overload
    def enum(self, key: str, cls: type[E], *, default: E) -> E: ...

    @overload
    def enum(self, key: str, cls: type[E], *, required: Required) -> E | None: ...

    def enum(
        self, key: str, cls: type[E], *, default: E | None = None, required: Required = False
    ) -> E | None:
        value = self._take(key, required)
        if value is None:
            return default
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        self.problem(key, _one_of([member.value for member in cls], value))
        return default

    def one_of(self, key: str, options: Sequence[str], *, default: str) -> str:
        value = self._take(key, False)
        if value is None:
            return default
        if isinstance(value, str) and value in options:
            return value
        self.problem(key, _one_of(options, value))
        return default

    def date(self, key: str) -> dt.date | None:
        """A TOML local date (``2027-03-31``, unquoted); a datetime is not a date."""
        value = self._take(key, False)
        if value is None:
            return None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            self.problem(key, f"must be a TOML date like 2027-03-31 (no quotes), got {show(value)}")
            return None
        return value

    def address(self, key: str, *, one_ip: str) -> str | None:
        """One IPv4 or IPv6 address, normalised; ``one_ip`` is the sentence a range gets.

        e.g. ``one_ip = "a client is one IP address (第5条2)"``. Host names are refused too:
        the hot path matches a datagram's source address, never a name.
        """
        value = self._take(key, True)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be an IP address as a string, got {show(value)}")
            return None
        if "/" in value or "-" in value:
            self.problem(key, f"{show(value)} is a range; {one_ip}")
            return None
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            self.problem(key, f"{show(value)} is not an IP address; {one_ip}")
            return None
        if ip.is_unspecified or ip.is_multicast:
            self.problem(key, f"{show(value)} is not the address of one host; {one_ip}")
            return None
        return str(ip)

    def octets(self, key: str) -> int | None:
        """A size in octets: ``"500GB"``, ``"1.5TB"``, ``"750MiB"``, ``"1000000"`` or 1000000."""
        value = self._take(key, False)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            octets: int | None = value
        elif isinstance(value, str):
            octets = parse_octets(value)
        else:
            octets = None
        if octets is None:
            self.problem(
                key,
                f'{show(value)} is not a size; write e.g. "500GB", "1.5TB", "750MiB" '
                "(K/M/G/T are powers of 1000, Ki/Mi/Gi/Ti powers of 1024) or a number of octets",
            )
            return None
        if octets <= 0:
            self.problem(
                key, f"must be more than 0 octets, got {show(value)} (leave it out for no quota)"
            )
            return None
        return octets

    def secret(self, base: Path, *, max_octets: int | None = None, why: str = "") -> bytes | None:
        """``secret`` inline or ``secret_file`` (relative to the realm file), exactly one.

        A file's content loses its trailing newline. Stored as UTF-8 bytes; never shown.
        """
        inline, from_file = self._take("secret", False), self._take("secret_file", False)
        if inline is not None and from_file is not None:
            self.problem("secret_file", "give either secret or secret_file, not both")
            return None
        if inline is None and from_file is None:
            self.problem(
                "secret", f"{_MISSING} (give secret, or secret_file to read it from a file)"
            )
            return None
        if inline is not None:
            key = "secret"
            if not isinstance(inline, str):
                self.problem(key, f"must be a string, got {kind(inline)}")
                return None
            value = inline.encode()
        else:
            key = "secret_file"
            if not isinstance(from_file, str) or not from_file:
                self.problem(key, f"must be the path of a file, got {show(from_file)}")
                return None
            path = base / from_file
            try:
                value = path.read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                self.problem(key, f"cannot read {path}: {exc.strerror or exc}")
                return None
        if not value:
            self.problem(key, "the secret is empty")
            return None
        if max_octets is not None and len(value) > max_octets:
            self.problem(key, f"the secret is {len(value)} octets long; at most {max_octets}{why}")
            return None
        return value

    # -- nested tables -------------------------------------------------------------------

    def table(
        self, key: str, *, known: Collection[str], required: Required = False
    ) -> Table | None:
        """A single table, ``[key]``."""
        value = self._take(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            header = self._child_header(key)
            self.problem(key, f"must be one table [{header}], got {show(value)}")
            return None
        return Table(
            value,
            source=self.source,
            path=self.where(key),
            header=self._child_header(key),
            known=known,
            problems=self.problems,
        )

    def tables(
        self, key: str, *, known: Collection[str], required: Required = False
    ) -> list[Table]:
        """An array of tables, ``[[key]]``; empty when absent or wrong (problem recorded)."""
        value = self._take(key, False)
        header = self._child_header(key)
        if value is None or value == []:
            if required:
                self.problem(key, required if isinstance(required, str) else _MISSING)
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            self.problem(key, f"must be an array of tables [[{header}]], got {show(value)}")
            return []
        return [
            Table(
                item,
                source=self.source,
                path=f"{self.where(key)}[{index}]",
                header=header,
                known=known,
                problems=self.problems,
            )
            for index, item in enumerate(value)
        ]

    def _child_header(self, key: str) -> str:
        return f"{self.header}.{key}" if self.header else key


def _one_of(options: Iterable[str], value: object) -> str:
    listed = ", ".join(json.dumps(option) for option in options)
    return f"must be one of {listed}, got {show(value)}"
