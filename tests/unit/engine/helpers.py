"""A registry and an engine built by hand, for tests of the sans-I/O core (no files, no sockets)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radiusgw.config.model import (
    CarrierType,
    Contract,
    Lns,
    Mode,
    Nas,
    Realm,
    Registry,
)
from radiusgw.domain import Account
from radiusgw.engine import AccountLookup, Deferred, Engine
from radiusgw.engine.cache import AccountCache
from radiusgw.server.decisions import read_accounts

ACME_NAS = ("127.0.0.10", 40000)
GLOBEX_NAS = ("127.0.0.11", 40001)
LAC_D = ("127.0.0.20", 1701)
LAC_K = ("127.0.0.21", 1701)
STRANGER = ("127.0.0.99", 5555)


class ListLog:
    """Collects log events as dicts (the engine's log is structlog-shaped)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, level: str, event: str, **kw: Any) -> None:
        self.events.append({"level": level, "event": event, **kw})

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, **kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, **kw)


def registry(*, acme_ends: dt.date | None = None, require_ma: bool = True) -> Registry:
    acme_realm = Realm("acme.example", Mode.GROUP, "acme", "acme.toml", max_accounts=10)
    globex_realm = Realm("globex.example", Mode.GROUP, "globex", "globex.toml", max_accounts=10)
    vpdn_realm = Realm(
        "vpn.initech.example",
        Mode.VPDN,
        "initech",
        "initech.toml",
        carrier=CarrierType.DOCOMO,
        lns=(Lns("192.0.2.10", b"tunnel"),),
    )
    vpdn_auth = Realm(
        "auth.initech.example",
        Mode.VPDN,
        "initech",
        "initech.toml",
        carrier=CarrierType.DOCOMO,
        authenticate=True,
        max_accounts=10,
        lns=(Lns("192.0.2.20", b"tunnel-2"),),
    )
    contracts = {
        "acme": Contract("acme", "ACME", "acme.toml", ends=acme_ends, realms=(acme_realm,)),
        "globex": Contract("globex", "Globex", "globex.toml", realms=(globex_realm,)),
        "initech": Contract("initech", "Initech", "initech.toml", realms=(vpdn_realm, vpdn_auth)),
    }
    nas = {
        ACME_NAS[0]: Nas(ACME_NAS[0], b"acme-secret", require_ma, None, contract_id="acme"),
        GLOBEX_NAS[0]: Nas(GLOBEX_NAS[0], b"globex-secret", True, None, contract_id="globex"),
        LAC_D[0]: Nas(LAC_D[0], b"lac-secret", True, None, carrier=CarrierType.DOCOMO),
        LAC_K[0]: Nas(LAC_K[0], b"kddi-secret", True, None, carrier=CarrierType.KDDI),
    }
    realms = {r.name: r for r in (acme_realm, globex_realm, vpdn_realm, vpdn_auth)}
    return Registry(contracts=contracts, realms=realms, nas=nas)


class Accounts:
    """A dict standing in for the store's primary-key look-up; counts the look-ups."""

    def __init__(self, *accounts: Account) -> None:
        self.rows = {(a.realm, a.username): a for a in accounts}
        self.lookups = 0

    def fetch(self, realm: str, username: str) -> Account | None:
        self.lookups += 1
        return self.rows.get((realm, username))


class _FetchStore:
    """The one store method the look-up thread calls (``read_accounts``)."""

    def __init__(self, fetch: Callable[[str, str], Account | None]) -> None:
        self.get_account = fetch


class ResolvingEngine:
    """An Engine whose account look-ups are answered before ``on_auth`` returns: what the
    worker's look-up thread does (``read_accounts``, then ``looked_up``), without the thread.
    ``lookups_seen`` counts the look-ups the engine asked for. It wraps the engine rather than
    subclassing it: a mypyc-compiled class takes no interpreted subclass."""

    def __init__(
        self, registry: Registry, fetch: Callable[[str, str], Account | None], **kw: Any
    ) -> None:
        object.__setattr__(self, "_engine", Engine(registry, AccountCache(), **kw))
        object.__setattr__(self, "_store", _FetchStore(fetch))
        object.__setattr__(self, "lookups_seen", 0)

    def _resolved(self, result: Any, now: float) -> Any:
        if isinstance(result, AccountLookup):
            object.__setattr__(self, "lookups_seen", self.lookups_seen + 1)
            (account,) = read_accounts(self._store, [result])  # type: ignore[arg-type]
            return self._engine.looked_up(result, account, now)
        return result

    def on_auth(self, data: bytes, addr: Any, now: float) -> bytes | Deferred | None:
        return self._resolved(self._engine.on_auth(data, addr, now), now)  # type: ignore[no-any-return]

    def on_stream(self, data: bytes, peer: Any, now: float) -> Any:
        return self._resolved(self._engine.on_stream(data, peer, now), now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._engine, name, value)


def engine(accounts: Accounts, **kw: Any) -> tuple[Any, ListLog]:
    log = ListLog()
    reg = kw.pop("registry", None) or registry()
    return ResolvingEngine(reg, accounts.fetch, log=log, **kw), log


def damage_accounts_table(db: Path) -> None:
    """Overwrite the pages of the ``accounts`` table in a closed SQLite store file with junk,
    as a failing disk would: SQLite then answers every read of it "database disk image is
    malformed", while the rest of the file (schema, change log) still reads."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'accounts'"
        ).fetchone()
    finally:
        conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def padding(size: int) -> list[tuple[int, bytes]]:
    """Proxy-State attributes of ``size`` octets in all, as proxies on the way add them."""
    states = []
    n = 0
    while size > 0:
        value_size = min(253, size - 2)
        if size - (value_size + 2) in (1, 2):  # never leave less than a 3-octet attribute
            value_size -= 3
        states.append((33, bytes([n % 256]) * value_size))
        size -= value_size + 2
        n += 1
    return states
