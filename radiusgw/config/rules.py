"""The service terms' rules over the parsed realm files, and the ``Registry`` built from them.

The loader reads each file into a ``ParsedFile`` (the objects it could build, each with the place
it was written). The rules here look at one contract, or across all files:

- 第5条1: a contract is usable only with (≥1 client and ≥1 group or proxy realm) or ≥1 VPDN
  realm. It counts registrations, so it is checked only once its file read without a problem;
  otherwise a skipped, broken ``[[client]]`` would make it report a false missing client.
- 第6条: group and proxy cannot be used together by one contract.
- 第5条3(1): a realm name (case-insensitive) belongs to exactly one contract.
- Contract ids are unique: the store and the logs name a contract by its id.
- RFC 2865 §3: the source address of a request selects its shared secret, so one address is one
  NAS, whether a customer's client or a carrier's access server.
- RFC 2868 §3.1: tunnel attributes are grouped by tags 0x01..0x1F, so a VPDN realm offers its
  LAC at most 31 LNS.

Each problem is one line naming the file and the key, and for a duplicate the first place too.
A later file's duplicate is the one reported: the first file keeps the name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from radiusgw.config.model import Carrier, Client, Contract, Mode, Nas, Realm, Registry

T = TypeVar("T")

# RFC 2868 §3.1: "Tag ... greater than 0x00 and less than or equal to 0x1F".
MAX_LNS_PER_REALM = 0x1F


@dataclass(frozen=True, slots=True)
class Placed(Generic[T]):
    """An object together with where it was written: the file and its dotted key path."""

    value: T
    source: str
    path: str  # e.g. "realm[0]"

    def at(self, key: str) -> str:
        """``realms/acme.toml: realm[0].name``: the start of a problem line about ``key``."""
        return f"{self.source}: {self.path}.{key}"


@dataclass(slots=True)
class ParsedFile:
    """What the loader could build from one realm file, and the problems it found there."""

    source: str
    problems: list[str] = field(default_factory=list)
    is_contract: bool = False  # the file has [contract] and no [[carrier]]
    contract: Placed[Contract] | None = None  # None when the [contract] table is broken
    clients: list[Placed[Client]] = field(default_factory=list)
    realms: list[Placed[Realm]] = field(default_factory=list)
    carriers: list[Placed[Carrier]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every registration of the file was read: rules that count them may run."""
        return not self.problems


class Checker:
    """Checks files one at a time, in load order, remembering the first place of each name.

    Problems come out per file, so ``radiusgw check`` can print them grouped by file.
    """

    def __init__(self) -> None:
        self._contract_ids: dict[str, str] = {}
        self._realm_names: dict[str, Placed[Realm]] = {}
        self._nas_addresses: dict[str, Placed[Client] | Placed[Carrier]] = {}

    def check(self, parsed: ParsedFile) -> list[str]:
        """Every rule about ``parsed``, and about it against the files checked before."""
        problems: list[str] = []
        if parsed.is_contract:
            problems += _usable_contract(parsed)
            problems += _group_or_proxy(parsed)
            problems += _lns_tags(parsed)
        problems += self._unique_contract_id(parsed)
        problems += self._unique_realm_names(parsed)
        problems += self._unique_nas_addresses(parsed)
        return problems

    def _unique_contract_id(self, parsed: ParsedFile) -> list[str]:
        if parsed.contract is None:
            return []
        contract_id = parsed.contract.value.id
        first = self._contract_ids.setdefault(contract_id, parsed.source)
        if first == parsed.source:
            return []
        return [
            f'{parsed.contract.at("id")}: "{contract_id}" is already the id of the contract '
            f"in {first}; a contract id names one contract"
        ]

    def _unique_realm_names(self, parsed: ParsedFile) -> list[str]:
        """第5条3(1): a realm belongs to exactly one contract (names are case-insensitive)."""
        problems: list[str] = []
        for placed in parsed.realms:
            name = placed.value.name  # already lower case
            first = self._realm_names.setdefault(name, placed)
            if first is not placed:
                problems.append(
                    f'{placed.at("name")}: "{name}" is already a realm in {first.source} '
                    f"({first.path}.name); a realm belongs to exactly one contract (第5条3(1))"
                )
        return problems

    def _unique_nas_addresses(self, parsed: ParsedFile) -> list[str]:
        """RFC 2865 §3: the source address selects the shared secret, so it is registered once."""
        problems: list[str] = []
        registered: list[Placed[Client] | Placed[Carrier]] = [*parsed.clients, *parsed.carriers]
        for placed in registered:
            address = placed.value.address
            first = self._nas_addresses.setdefault(address, placed)
            if first is not placed:
                problems.append(
                    f"{placed.at('address')}: {address} is already registered in {first.source} "
                    f"({first.path}.address); one source address is one NAS, as it selects the "
                    "shared secret (RFC 2865 §3)"
                )
        return problems


def build_registry(files: Sequence[ParsedFile]) -> Registry:
    """The registry of files that passed ``check`` with no problem (the loader makes sure)."""
    contracts = {p.value.id: p.value for f in files if (p := f.contract) is not None}
    realms = {realm.name: realm for c in contracts.values() for realm in c.realms}
    carriers = tuple(p.value for f in files for p in f.carriers)
    nas: dict[str, Nas] = {}
    for contract in contracts.values():
        for client in contract.clients:
            nas[client.address] = Nas(
                address=client.address,
                secret=client.secret,
                require_message_authenticator=client.require_message_authenticator,
                rate_limit=client.rate_limit,
                contract_id=contract.id,
                coa_port=client.coa_port,
            )
    for carrier in carriers:
        nas[carrier.address] = Nas(
            address=carrier.address,
            secret=carrier.secret,
            require_message_authenticator=carrier.require_message_authenticator,
            rate_limit=carrier.rate_limit,
            carrier=carrier.type,
        )
    return Registry(
        contracts=contracts,
        realms=realms,
        carriers=carriers,
        nas=nas,
        files=tuple(f.source for f in files),
    )


# -- one contract ----------------------------------------------------------------------


def _usable_contract(parsed: ParsedFile) -> list[str]:
    """第5条1: (≥1 client and ≥1 group or proxy realm) or ≥1 VPDN realm."""
    if not parsed.complete:
        return []
    modes = {p.value.mode for p in parsed.realms}
    if Mode.VPDN in modes or (parsed.clients and modes & {Mode.GROUP, Mode.PROXY}):
        return []
    if modes:  # group or proxy realms, but nobody registered to send their requests
        return [
            f"{parsed.source}: client: a contract with a group or proxy realm needs at least "
            "one [[client]], the terminal that sends its requests (第5条1)"
        ]
    return [
        f"{parsed.source}: realm: a contract needs at least one [[realm]]: a group or proxy "
        "realm with a [[client]], or a vpdn realm (第5条1)"
    ]


def _group_or_proxy(parsed: ParsedFile) -> list[str]:
    """第6条: group and proxy cannot be used together by one contract."""
    first: dict[Mode, Placed[Realm]] = {}
    for placed in parsed.realms:
        mode = placed.value.mode
        if mode not in (Mode.GROUP, Mode.PROXY):
            continue
        other = first.get(Mode.PROXY if mode is Mode.GROUP else Mode.GROUP)
        if other is not None:
            return [
                f'{placed.at("mode")}: {mode.value} realm "{placed.value.name}" and '
                f'{other.value.mode.value} realm "{other.value.name}" ({other.path}) in one '
                "contract; group and proxy cannot be used together by one contract (第6条)"
            ]
        first.setdefault(mode, placed)
    return []


def _lns_tags(parsed: ParsedFile) -> list[str]:
    """RFC 2868 §3.1: each LNS offered to the LAC takes one tag of 1..31."""
    return [
        f"{placed.at('lns')}: {len(placed.value.lns)} LNS; at most {MAX_LNS_PER_REALM} per "
        "realm, one RFC 2868 tag (1..31) each (RFC 2868 §3.1)"
        for placed in parsed.realms
        if len(placed.value.lns) > MAX_LNS_PER_REALM
    ]
