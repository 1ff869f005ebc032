"""Realm files -> the frozen objects of ``radiusgw.config.model``, with every problem listed.

``load_registry(directory)`` reads every ``*.toml`` of the directory (sorted by name, not
recursive, hidden files skipped), builds the objects, applies ``rules`` and returns a
``Registry``; or raises ``ConfigError`` listing every problem, one line each, naming the file
and the dotted key. ``check_directory`` returns those lines for ``radiusgw check``.

The schema is docs/operations.md's "Realm files", plus the timers and policies the model carries:
- a file with ``[contract]`` is one customer's contract (第4条): ``[[client]]`` and
  ``[[realm]]`` tables, ``[[realm.server]]`` under a proxy realm, ``[[realm.lns]]`` under a
  vpdn realm (those are read by ``radiusgw.config.realm``);
- a file with ``[[carrier]]`` tables registers carrier access servers (第2条); a file with
  both, or neither, is refused;
- unknown keys are errors at every level, and so is a key of another realm mode;
- defaults are the model's (one place), e.g. ``require_message_authenticator = true``.

A problem in one file never hides another: each file is read to its end, the entries that could
be built still take part in the cross-file rules, and no ``Registry`` is built unless there is no
problem at all. An ``ends`` date in the past is not a problem: the contract's realms are then
answered with Access-Reject (第9条), which is the server's business.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from pyrad.dictionary import Dictionary

from radiusgw.config import rules
from radiusgw.config.fields import Table, show
from radiusgw.config.model import Carrier, CarrierType, Client, Contract, Registry
from radiusgw.config.realm import REALM_KEYS, read_realm
from radiusgw.config.rules import ParsedFile, Placed
from radiusgw.errors import ConfigError
from radiusgw.radius.dictionary import load_dictionary

T = TypeVar("T")

FILE_KEYS = ("contract", "client", "realm", "carrier")
CONTRACT_KEYS = ("id", "name", "ends")
_SECRET = ("secret", "secret_file")
CLIENT_KEYS = ("address", *_SECRET, "require_message_authenticator", "rate_limit", "coa_port")
CARRIER_KEYS = ("type", "address", *_SECRET, "require_message_authenticator", "rate_limit")

# What a range or a host name is told, per kind of address.
_CLIENT_IP = "a client is one IP address (第5条2)"
_CARRIER_IP = "a carrier access server is one IP address"

# The model's defaults are the files' defaults; read them from the one place they are written.
_CLIENT = Client(address="", secret=b"", contract_id="", source="")
_CARRIER = Carrier(type=CarrierType.DOCOMO, address="", secret=b"", source="")


def load_registry(directory: Path | str, dictionaries: Sequence[Path] = ()) -> Registry:
    """Read and check every realm file of ``directory``; raise ``ConfigError`` listing all.

    ``dictionaries``: the operator's extra dictionaries (``--dictionary DIR``), read with the
    shipped ones only if a realm names reply attributes (``DictionaryError`` if unreadable).
    """
    read: list[Dictionary] = []

    def dictionary() -> Dictionary:
        if not read:
            read.append(load_dictionary(dictionaries))
        return read[0]

    parsed = [read_file(path, dictionary) for path in realm_files(Path(directory))]
    checker = rules.Checker()  # in file order: a later duplicate is reported, naming the first
    problems = [line for p in parsed for line in (*p.problems, *checker.check(p))]
    if problems:
        raise ConfigError(problems)
    return rules.build_registry(parsed)


def check_directory(directory: Path | str, dictionaries: Sequence[Path] = ()) -> list[str]:
    """The problems of ``directory`` as lines; empty when it loads (``radiusgw check``)."""
    try:
        load_registry(directory, dictionaries)
    except ConfigError as exc:
        return exc.problems
    return []


def realm_files(directory: Path) -> list[Path]:
    """The ``*.toml`` files directly in ``directory``, by name; editors' hidden files skipped."""
    if not directory.is_dir():
        why = "does not exist" if not directory.exists() else "is not a directory"
        raise ConfigError([f"{directory}: the realm directory {why}"])
    files = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("."))
    if not files:
        raise ConfigError([f"{directory}: the realm directory holds no realm files (*.toml)"])
    return files


def read_file(path: Path, dictionary: Callable[[], Dictionary] = load_dictionary) -> ParsedFile:
    """One realm file: what could be built from it, and its problems (never raises but for an
    unreadable dictionary)."""
    source = str(path)
    parsed = ParsedFile(source)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        parsed.problems.append(f"{source}: not valid TOML: {exc}")
        return parsed
    except UnicodeDecodeError:
        parsed.problems.append(f"{source}: not valid TOML: the file is not UTF-8 text")
        return parsed
    except OSError as exc:
        parsed.problems.append(f"{source}: cannot read the file: {exc.strerror or exc}")
        return parsed

    root = Table.root(data, source=source, known=FILE_KEYS, problems=parsed.problems)
    has_contract = any(root.has(key) for key in ("contract", "client", "realm"))
    has_carriers = root.has("carrier")
    if has_contract and has_carriers:
        parsed.problems.append(
            f"{source}: has both contract tables ([contract], [[client]], [[realm]]) and "
            "[[carrier]] tables; a realm file is either one contract or carrier access servers"
        )
    elif not has_contract and not has_carriers:
        parsed.problems.append(
            f"{source}: has neither a [contract] table nor [[carrier]] tables; a realm file is "
            "either one contract or carrier access servers"
        )
    base = path.parent  # secret_file paths are relative to the realm file
    if has_contract:
        parsed.is_contract = not has_carriers
        _read_contract(root, base, parsed, dictionary)
    if has_carriers:
        parsed.carriers = _built(
            _carrier(t, base) for t in root.tables("carrier", known=CARRIER_KEYS)
        )
    root.finish()
    return parsed


# -- a contract file -------------------------------------------------------------------


def _read_contract(
    root: Table, base: Path, parsed: ParsedFile, dictionary: Callable[[], Dictionary]
) -> None:
    head = root.table(
        "contract",
        known=CONTRACT_KEYS,
        required="required key is missing: a file with [[client]] or [[realm]] tables is one "
        "contract and needs a [contract] table",
    )
    contract_id = name = ends = None
    if head is not None:
        contract_id = head.text("id", required=True)
        if contract_id is not None and any(char.isspace() for char in contract_id):
            head.problem("id", f"{show(contract_id)} is not a contract id: it has spaces")
            contract_id = None
        name = head.text("name", required=True)
        ends = head.date("ends")  # 第9条: a past date is no load error, the realms get rejects
        head.finish()
    # A broken [contract] table does not stop the registrations being read for their problems.
    owner = contract_id or ""
    parsed.clients = _built(
        _client(t, owner, base) for t in root.tables("client", known=CLIENT_KEYS)
    )
    parsed.realms = _built(
        read_realm(t, owner, base, dictionary) for t in root.tables("realm", known=REALM_KEYS)
    )
    if contract_id is not None and name is not None:
        contract = Contract(
            id=contract_id,
            name=name,
            source=parsed.source,
            ends=ends,
            clients=tuple(p.value for p in parsed.clients),
            realms=tuple(p.value for p in parsed.realms),
        )
        parsed.contract = Placed(contract, parsed.source, "contract")


def _client(t: Table, contract_id: str, base: Path) -> Placed[Client] | None:
    """クライアント: one registered terminal = one IP address (第5条2)."""
    address = t.address("address", one_ip=_CLIENT_IP)
    secret = t.secret(base)
    require_ma = t.flag(
        "require_message_authenticator", default=_CLIENT.require_message_authenticator
    )
    rate_limit = t.integer("rate_limit", low=1)  # requests per second (第14条2)
    coa_port = t.integer("coa_port", low=1, high=65535)  # RFC 5176 Disconnect-Request
    t.finish()
    if address is None or secret is None:
        return None
    client = Client(
        address=address,
        secret=secret,
        contract_id=contract_id,
        source=t.source,
        require_message_authenticator=require_ma,
        rate_limit=rate_limit,
        coa_port=coa_port,
    )
    return Placed(client, t.source, t.path)


def _carrier(t: Table, base: Path) -> Placed[Carrier] | None:
    """A carrier's access server (LAC): タイプD, K or E (第2条)."""
    carrier_type = t.enum("type", CarrierType, required=True)
    address = t.address("address", one_ip=_CARRIER_IP)
    secret = t.secret(base)
    require_ma = t.flag(
        "require_message_authenticator", default=_CARRIER.require_message_authenticator
    )
    rate_limit = t.integer("rate_limit", low=1)  # requests per second (第14条2)
    t.finish()
    if carrier_type is None or address is None or secret is None:
        return None
    carrier = Carrier(
        type=carrier_type,
        address=address,
        secret=secret,
        source=t.source,
        require_message_authenticator=require_ma,
        rate_limit=rate_limit,
    )
    return Placed(carrier, t.source, t.path)


# -- helpers ---------------------------------------------------------------------------


def _built(entries: Iterable[T | None]) -> list[T]:
    """The entries that could be built; the others have recorded their problems."""
    return [entry for entry in entries if entry is not None]
