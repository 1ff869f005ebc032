"""Reading one ``[[realm]]`` table: the keys of every mode, then its mode's own keys.

A realm (第5条3(1)) is the text after the last '@' of a user name; its mode says who answers:
- group: we hold the accounts; ``max_accounts`` is required, a contract term (第7条);
- proxy: the customer's RADIUS servers, ``[[realm.server]]``, at least one (第5条3(5));
- vpdn: a carrier (第2条) and the customer's LNS, ``[[realm.lns]]``, at least one (第5条3(3)),
  spread by ``balance`` (第8条 負荷分散オプション).
Every mode takes the session and traffic limits of 第14条2. A key of another mode is refused
naming the modes it belongs to (``lns`` in a group realm), so a realm cannot silently carry
settings that do nothing. Servers and LNS are single IP addresses, each listed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from pyrad.dictionary import Dictionary

from radiusgw.config.fields import Table, show
from radiusgw.config.model import Balance, CarrierType, Lns, Mode, PoolPolicy, Realm, UpstreamServer
from radiusgw.config.rules import Placed
from radiusgw.radius.dictionary import DictionaryError
from radiusgw.radius.reply import Encoded, encode_all

X = TypeVar("X", UpstreamServer, Lns)

_SECRET = ("secret", "secret_file")
SERVER_KEYS = (
    *("address", *_SECRET, "auth_port", "acct_port"),
    *("response_window", "retries", "revive_interval", "status_check"),
    "require_message_authenticator",
)
LNS_KEYS = (
    *("address", "port", *_SECRET, "preference", "weight", "max_sessions"),
    *("client_auth_id", "server_auth_id", "assignment_id"),
)
REALM_KEYS_ANY_MODE = (
    *("name", "mode", "max_sessions", "max_sessions_per_account", "traffic_quota"),
    "on_store_down",
)
# Account protection (issue 17.4): where there are accounts to protect.
LOCKOUT_KEYS = ("lockout_after", "lockout_window", "lockout_time")
REALM_KEYS_BY_MODE: Mapping[Mode, tuple[str, ...]] = {
    Mode.GROUP: ("max_accounts", *LOCKOUT_KEYS, "reply"),
    Mode.PROXY: ("strip", "pool", "on_upstream_down", "server"),
    Mode.VPDN: (
        *("carrier", "balance", "authenticate", "probe_interval", "on_all_down"),
        *("max_accounts", "lns", *LOCKOUT_KEYS),
    ),
}
_MODE_KEYS = frozenset(key for keys in REALM_KEYS_BY_MODE.values() for key in keys)
REALM_KEYS = (*REALM_KEYS_ANY_MODE, *sorted(_MODE_KEYS))

# What a range or a host name is told, per kind of address.
_SERVER_IP = "an upstream RADIUS server is one IP address (第5条3(5))"
_LNS_IP = "an LNS is one IP address (第5条3(3))"

# RFC 2868 §3.5: Tunnel-Password is tag (1) + salt (2) + a multiple of 16 octets holding a
# length octet and the password, in one attribute of at most 253 value octets: 240 - 1 = 239.
MAX_TUNNEL_PASSWORD = 239
# RFC 2868 §3.7, §3.9, §3.10: the ID attributes are tagged strings, 253 - 1 tag octet.
MAX_TUNNEL_ID = 252
# RFC 2868 §3.8: Tunnel-Preference is three octets.
MAX_PREFERENCE = 0xFFFFFF

# The model's defaults are the files' defaults; read them from the one place they are written.
_REALM = Realm(name="", mode=Mode.GROUP, contract_id="", source="")
_SERVER = UpstreamServer(address="", secret=b"")
_LNS = Lns(address="", secret=b"")


def read_realm(
    t: Table, contract_id: str, base: Path, dictionary: Callable[[], Dictionary]
) -> Placed[Realm] | None:
    """One ``[[realm]]`` table; None when its name or mode cannot be read (problem recorded).

    ``base`` is the realm file's directory, where ``secret_file`` paths start; ``dictionary``
    gives the attribute dictionary (read only when a realm has a ``[realm.reply]`` table).
    """
    name = _realm_name(t)
    mode = t.enum("mode", Mode, required=True)
    # 第14条2: the ISP may limit sessions and traffic, in any mode.
    realm = replace(
        _REALM,
        name=name or "",
        contract_id=contract_id,
        source=t.source,
        max_sessions=t.integer("max_sessions", low=1),
        max_sessions_per_account=t.integer("max_sessions_per_account", low=1),
        traffic_quota=t.octets("traffic_quota"),
        on_store_down=t.one_of("on_store_down", ("admit", "reject"), default=_REALM.on_store_down),
    )
    if mode is None:
        t.ignore(_MODE_KEYS)  # which of them apply depends on the mode nobody could read
        t.finish()
        return None
    realm = replace(realm, mode=mode)
    if mode is Mode.GROUP:
        realm = _lockout(t, _group(t, realm))
        realm = replace(realm, reply=_reply(t, realm.name, dictionary))
    elif mode is Mode.PROXY:
        realm = _proxy(t, realm, base)
    else:
        realm = _lockout(t, _vpdn(t, realm, base))
    t.finish(misplaced=_misplaced(mode))
    return None if name is None else Placed(realm, t.source, t.path)


def _realm_name(t: Table) -> str | None:
    name = t.text("name", required=True)
    if name is None:
        return None
    if "@" in name or any(char.isspace() for char in name):
        t.problem(
            "name",
            f"{show(name)} is not a realm name: a realm is the text after the last '@' of a "
            "user name, so it has no '@' and no spaces",
        )
        return None
    return name.lower()  # matched case-insensitively (docs/operations.md)


def _misplaced(mode: Mode) -> dict[str, str]:
    """Keys of other modes, with the sentence that says so (``lns`` in a group realm)."""
    return {
        key: f"not a key of a {mode} realm (it belongs to "
        + " and ".join(m.value for m in Mode if key in REALM_KEYS_BY_MODE[m])
        + " realms)"
        for key in _MODE_KEYS - set(REALM_KEYS_BY_MODE[mode])
    }


def _group(t: Table, realm: Realm) -> Realm:
    max_accounts = t.integer(
        "max_accounts",
        low=0,
        required="required for a group realm: the number of accounts is a contract term (第7条)",
    )
    return replace(realm, max_accounts=max_accounts)


def _lockout(t: Table, realm: Realm) -> Realm:
    """``lockout_after`` failed logins within ``lockout_window`` seconds lock an account for
    ``lockout_time`` seconds (issue 17.4); off without ``lockout_after``."""
    after = t.integer("lockout_after", low=1)
    window = t.number("lockout_window", default=_REALM.lockout_window, low=0, above=True)
    time = t.number("lockout_time", default=_REALM.lockout_time, low=0, above=True)
    if after is None:
        for key in ("lockout_window", "lockout_time"):
            if t.has(key):
                t.problem(key, "applies only with lockout_after, the failures that lock")
    elif realm.mode is Mode.VPDN and not realm.authenticate:
        t.problem(
            "lockout_after",
            "applies only with authenticate = true: without it the realm has no accounts",
        )
    return replace(realm, lockout_after=after, lockout_window=window, lockout_time=time)


def _reply(t: Table, name: str, dictionary: Callable[[], Dictionary]) -> tuple[Encoded, ...]:
    """``[realm.reply]``: attribute name = value (a list: one attribute per element), typed
    and encoded with the dictionary once, here; each bad one names the file, realm, attribute."""
    if not t.has("reply"):
        t.ignore(("reply",))
        return ()
    table = t.table("reply", known=())
    if table is None:
        return ()
    encoded: list[Encoded] = []
    for attribute, value in table.data.items():
        table.ignore((attribute,))
        try:
            encoded.extend(encode_all(dictionary(), [(attribute, value)]))
        except DictionaryError as exc:
            table.problem(attribute, f"realm {name!r}: {exc}")
    return tuple(encoded)


def _proxy(t: Table, realm: Realm, base: Path) -> Realm:
    strip = t.flag("strip", default=_REALM.strip)
    pool = t.enum("pool", PoolPolicy, default=_REALM.pool)
    on_down = t.one_of("on_upstream_down", ("drop", "reject"), default=_REALM.on_upstream_down)
    tables = t.tables(
        "server",
        known=SERVER_KEYS,
        required="a proxy realm needs at least one [[realm.server]], the customer's RADIUS "
        "server (第5条3(5))",
    )
    servers = _each_once(
        ((s, _server(s, base)) for s in tables), lambda s: (s.address, s.auth_port)
    )
    return replace(realm, strip=strip, pool=pool, on_upstream_down=on_down, servers=servers)


def _server(t: Table, base: Path) -> UpstreamServer | None:
    address = t.address("address", one_ip=_SERVER_IP)
    secret = t.secret(base)
    server = UpstreamServer(
        address=address or "",
        secret=secret or b"",
        auth_port=t.port("auth_port", default=_SERVER.auth_port),
        acct_port=t.port("acct_port", default=_SERVER.acct_port),
        # Timers in seconds: a zero window or revive interval would spin, so both are > 0.
        response_window=t.number(
            "response_window", default=_SERVER.response_window, low=0, above=True
        ),
        retries=t.integer("retries", low=0, default=_SERVER.retries),
        revive_interval=t.number(
            "revive_interval", default=_SERVER.revive_interval, low=0, above=True
        ),
        status_check=t.one_of(
            "status_check", ("status-server", "request", "none"), default=_SERVER.status_check
        ),
        require_message_authenticator=t.flag(
            "require_message_authenticator", default=_SERVER.require_message_authenticator
        ),
    )
    t.finish()
    return None if address is None or secret is None else server


def _vpdn(t: Table, realm: Realm, base: Path) -> Realm:
    carrier = t.enum(
        "carrier",
        CarrierType,
        required='required for a vpdn realm: the carrier ("D", "K" or "E") whose access servers '
        "it answers (第2条)",
    )
    balance = t.enum("balance", Balance, default=_REALM.balance)  # 第8条 負荷分散オプション
    authenticate = t.flag("authenticate", default=_REALM.authenticate)
    probe_interval = t.number("probe_interval", default=_REALM.probe_interval, low=0)  # 0 = off
    on_all_down = t.one_of("on_all_down", ("answer", "reject"), default=_REALM.on_all_down)
    max_accounts = t.integer("max_accounts", low=0)
    if max_accounts is not None and t.data.get("authenticate", False) is False:
        t.problem(
            "max_accounts",
            "applies only with authenticate = true: without it the realm has no accounts",
        )
    tables = t.tables(
        "lns",
        known=LNS_KEYS,
        required="a vpdn realm needs at least one [[realm.lns]], the customer's LNS (第5条3(3))",
    )
    lns = _each_once(((x, _lns(x, base)) for x in tables), lambda x: (x.address, x.port))
    return replace(
        realm,
        carrier=carrier,
        balance=balance,
        authenticate=authenticate,
        probe_interval=probe_interval,
        on_all_down=on_all_down,
        max_accounts=max_accounts,
        lns=lns,
    )


def _lns(t: Table, base: Path) -> Lns | None:
    address = t.address("address", one_ip=_LNS_IP)
    secret = t.secret(  # the L2TP tunnel secret, sent to the LAC as Tunnel-Password
        base,
        max_octets=MAX_TUNNEL_PASSWORD,
        why=", to fit one Tunnel-Password attribute (RFC 2868 §3.5)",
    )
    lns = Lns(
        address=address or "",
        secret=secret or b"",
        port=t.port("port", default=_LNS.port),
        preference=t.integer("preference", low=0, high=MAX_PREFERENCE, default=_LNS.preference),
        weight=t.integer("weight", low=1, default=_LNS.weight),
        max_sessions=t.integer("max_sessions", low=1),  # 第14条2: per LNS
        client_auth_id=t.text("client_auth_id", max_octets=MAX_TUNNEL_ID),
        server_auth_id=t.text("server_auth_id", max_octets=MAX_TUNNEL_ID),
        assignment_id=t.text("assignment_id", max_octets=MAX_TUNNEL_ID),
    )
    t.finish()
    return None if address is None or secret is None else lns


def _each_once(
    entries: Iterable[tuple[Table, X | None]], ident: Callable[[X], tuple[str, int]]
) -> tuple[X, ...]:
    """Servers or LNS of one realm, refusing the same address and port listed twice."""
    kept: list[X] = []
    first: dict[tuple[str, int], str] = {}
    for t, entry in entries:
        if entry is None:
            continue
        address, port = ident(entry)
        where = first.setdefault((address, port), t.path)
        if where != t.path:
            t.problem("address", f"{address} port {port} is already {where}; list each once")
            continue
        kept.append(entry)
    return tuple(kept)
