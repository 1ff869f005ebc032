"""The ``radiusgw`` command (also ``python -m radiusgw``): thin click commands over the package.

``serve`` builds one ``Settings`` and hands it to ``radiusgw.server.serve``; ``check`` reads the
realm files; ``account`` manages the accounts of group realms (and of VPDN realms that
authenticate) in the store; ``session list`` and ``usage`` read the session table kept from
accounting (``radiusgw.store.sessions``); ``accounting quarantine`` lists the records the store
refused and kept aside (``radiusgw.store.quarantine``); ``fleet status`` the nodes' heartbeats
(``radiusgw.server.heartbeat``). ``--db`` is a string as given: an SQLite path or a PostgreSQL
URL (never a ``Path``, which would fold ``postgresql://`` into one slash). The commands and
flags are the operator interface (docs/operations.md): extend them, rename nothing.

Rules:

- An operator mistake ends as one sentence on stderr and a non-zero exit, never a traceback:
  ``RadiusGwError`` and click's own errors exit 1, usage errors exit 2, and a ``ConfigError``
  prints its problem lines (each naming the file and the key) and exits 1.
- stdout carries results, one line per item; stderr carries errors and the progress bar, which
  is drawn only when stderr is a terminal.
- A password is never printed, not even in an error message, and never needs to be on the
  command line (where ``ps`` shows it): ``account add`` reads it from standard input.
- Text that came from a NAS, an LNS or an upstream (user names, session ids, reasons) is printed
  through ``printable``: a control character in it reaches the terminal escaped, never raw.
- A command that only reads opens the database read-only: it creates and changes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import ipaddress
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import click
from pyrad.dictionary import Dictionary

from radiusgw import __version__
from radiusgw.config import check_directory, load_registry
from radiusgw.config.model import Mode, Realm, Registry
from radiusgw.domain import AccountRow, AuthLogRow
from radiusgw.errors import ConfigError, RadiusGwError, StoreError
from radiusgw.radius.dictionary import DictionaryError, load_dictionary
from radiusgw.radius.reply import encode_all, parse_pair, parse_pairs
from radiusgw.server.settings import Settings, Tuning
from radiusgw.sessions import month_bounds
from radiusgw.store.authlog import RESULTS
from radiusgw.store.backend import Backend, open_backend
from radiusgw.store.sqlite import MAX_TIMEOUT

DEFAULTS = Settings()  # one place for the defaults: ./realms, ./radiusgw.db, 0.0.0.0, 1812 ...
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CSV_REQUIRED = ("username", "password")
FLEET_WITHIN = 300.0  # seconds: ``fleet status`` lists the nodes heard from in this time
CSV_COLUMNS = (
    *CSV_REQUIRED,
    *("framed_ip", "session_timeout", "idle_timeout", "calling_station_id", "reply"),
)
AUTHLOG_HEADER = ("time", "node", "worker", "nas", "realm", "user", "method", "result", "reason",
                  "framed_ip", "lns", "upstream")  # fmt: skip


class ImportFileError(RadiusGwError):
    """The CSV file of ``account import`` cannot be read as accounts."""


class _Cli(click.Group):
    """The root group; its ``main`` turns every operator mistake into one line on stderr."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        code = _run(
            lambda: super(_Cli, self).main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


def _run(invoke: Callable[[], Any]) -> int:
    try:
        result = invoke()
    except click.UsageError as exc:
        hint = f" See '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
        _fail(f"{exc.format_message()}{hint}")
        return exc.exit_code
    except click.ClickException as exc:
        _fail(exc.format_message())
        return exc.exit_code
    except click.Abort:
        _fail("aborted")
        return 1
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        return 1
    except RadiusGwError as exc:
        _fail(str(exc))
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}")
        return 1
    return result if isinstance(result, int) else 0


def _fail(sentence: str) -> None:
    click.echo(f"error: {sentence}", err=True)


# -- shared options ----------------------------------------------------------------------------

_realms_option = click.option(
    "--realms",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULTS.realms,
    show_default=True,
    help="Directory of realm files (*.toml).",
)
DB_ENVVAR = "RADIUSGW_DB"
_db_option = click.option(
    "--db",
    # A string, not a click.Path: a Path folds postgresql://host into postgresql:/host.
    type=str,
    default=DEFAULTS.db,
    show_default=True,
    # From the environment when the flag is absent (issue 15.1), so that a database URL with
    # its password never has to appear in ``ps``.
    envvar=DB_ENVVAR,
    show_envvar=True,
    help="The SQLite database file, or postgresql://user@host:port/dbname (a fleet's).",
)
_key_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The key that encrypts stored passwords (default: the --db path + '.key'; "
    "./radiusgw.key when --db is a URL).",
)


_dictionary_option = click.option(
    "--dictionary",
    "dictionaries",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="A directory of extra FreeRADIUS-format dictionaries (its files dictionary and "
    "dictionary.*), read after the shipped ones; for reply attributes by name. Repeatable.",
)


def _check_ip(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IPv4 or IPv6 address") from None


def _check_listen(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from radiusgw.server.health import parse_listen

    if value is not None:
        try:
            parse_listen(value)
        except ConfigError as exc:
            raise click.BadParameter(exc.problems[0]) from None
    return value


def _check_node(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # A name an operator reads in logs and in 'fleet status': printable, one line, not empty.
    if value is not None and (not value.strip() or not value.isprintable() or len(value) > 255):
        raise click.BadParameter("a node name is 1 to 255 printable characters")
    return value


# -- commands ----------------------------------------------------------------------------------


@click.group(cls=_Cli, name="radiusgw", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radiusgw")
def cli() -> None:
    """RADIUS/L2TP authentication-outsourcing gateway: group, proxy and VPDN realms."""


@cli.command()
@_realms_option
@_db_option
@click.option(
    "--listen", default=DEFAULTS.listen, show_default=True, callback=_check_ip, help="Address."
)
@click.option(
    "--auth-port", type=click.IntRange(0, 65535), default=DEFAULTS.auth_port, show_default=True
)
@click.option(
    "--acct-port", type=click.IntRange(0, 65535), default=DEFAULTS.acct_port, show_default=True
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=DEFAULTS.workers,
    show_default=True,
    help="Worker processes sharing the ports.",
)
@_key_option
@click.option("--access-log", is_flag=True, help="Log one line per request answered.")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=DEFAULTS.log_level,
    show_default=True,
)
@click.option(
    "--interim-interval",
    type=click.FloatRange(min=1),
    default=DEFAULTS.default_interim_interval,
    show_default=True,
    help="Seconds; a session silent for 3 times its Acct-Interim-Interval (this when the NAS "
    "sent none) is closed as stale.",
)
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the accounting journals live (default: the --db path + '.journal'; "
    "./radiusgw.journal when --db is a URL).",
)
@click.option(
    "--node",
    default=None,
    callback=_check_node,
    help="This gateway's name in a fleet: in every log line and in 'fleet status' "
    "(default: the host name).",
)
@click.option(
    "--store-deadline",
    type=click.FloatRange(min=0.1),
    default=DEFAULTS.store_deadline,
    show_default=True,
    help="Seconds an Access-Request waits for the store (an account not cached, a session "
    "slot) before it is decided without: dropped, or the realm's on_store_down.",
)
@click.option(
    "--cache-preload",
    type=click.IntRange(min=0),
    default=DEFAULTS.cache_preload,
    show_default=True,
    help="Accounts each worker reads into its cache when it starts, in the background "
    "(0: none; the others are read at their first login).",
)
@click.option(
    "--metrics-listen",
    default=None,
    callback=_check_listen,
    metavar="ADDR:PORT",
    help="Serve /metrics (Prometheus), /live and /ready on this address ([::1]:9100 for "
    "IPv6); off unless given.",
)
@_dictionary_option
@click.option(
    "--auth-log-days",
    type=click.IntRange(min=0),
    default=DEFAULTS.auth_log_days,
    show_default=True,
    help="Days the authentication log keeps each Access-Request's outcome; 0 keeps none.",
)
@click.option(
    "--api-listen",
    metavar="ADDR:PORT",
    help="Serve the HTTP management API here (/api/v1; [v6]:PORT for IPv6). Off unless given.",
)
@click.option(
    "--api-tokens",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of the API's bearer tokens ([[token]] name, token, contract?); mode 0600.",
)
@click.pass_obj
def serve(
    tuning: Tuning | None,
    realms: Path,
    db: str,
    listen: str,
    auth_port: int,
    acct_port: int,
    workers: int,
    key_file: Path | None,
    access_log: bool,
    log_level: str,
    interim_interval: float,
    journal_dir: Path | None,
    node: str | None,
    store_deadline: float,
    cache_preload: int,
    metrics_listen: str | None,
    dictionaries: tuple[Path, ...],
    auth_log_days: int,
    api_listen: str | None,
    api_tokens: Path | None,
) -> int:
    """Run the gateway in the foreground.

    SIGTERM drains and exits 0; SIGHUP re-reads the realm files (an invalid set keeps the old).
    """
    from radiusgw.server import serve as run_gateway

    settings = Settings(
        realms=realms,
        db=db,
        key_file=key_file,
        journal=journal_dir,
        node=DEFAULTS.node if node is None else node,
        listen=listen,
        auth_port=auth_port,
        acct_port=acct_port,
        workers=workers,
        access_log=access_log,
        log_level=log_level.lower(),
        default_interim_interval=interim_interval,
        store_deadline=store_deadline,
        cache_preload=cache_preload,
        metrics_listen=metrics_listen,
        dictionaries=dictionaries,
        auth_log_days=auth_log_days,
        api_listen=api_listen,
        api_tokens=api_tokens,
        tuning=DEFAULTS.tuning if tuning is None else tuning,
    )
    if api_listen is not None:
        from radiusgw.server.api_thread import parse_listen

        try:
            parse_listen(api_listen)
        except ValueError:
            raise click.BadParameter(
                f"{api_listen!r} is not ADDR:PORT", param_hint="--api-listen"
            ) from None
        if api_tokens is None:
            raise click.UsageError("--api-listen needs --api-tokens FILE")
    return run_gateway(settings)


@cli.command()
@_realms_option
@_dictionary_option
def check(realms: Path, dictionaries: tuple[Path, ...]) -> int:
    """Validate every realm file.

    Prints one line per problem, naming the file and the key, and exits 1 if there is any.
    """
    problems = check_directory(realms, dictionaries)
    if problems:
        for problem in problems:
            click.echo(problem)
        return 1
    registry = load_registry(realms, dictionaries)
    click.echo(
        f"{_count(len(registry.files), 'file')} valid: "
        f"{_count(len(registry.contracts), 'contract')}, "
        f"{_count(len(registry.realms), 'realm')}, "
        f"{_count(len(registry.carriers), 'carrier')}"
    )
    return 0


@cli.group()
def account() -> None:
    """Manage the accounts of group realms.

    Also of VPDN realms with authenticate = true; proxy realms keep their accounts upstream.
    """


@account.command("add")
@click.argument("realm")
@click.argument("user")
@click.option(
    "--password",
    help="The password; visible to every user in `ps`: prefer --password-stdin.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line). Without either option a password "
    "piped in is read the same way, and a terminal is asked for it.",
)
@_db_option
@_realms_option
@click.option("--framed-ip", help="Framed-IP-Address to hand out (IPv4).")
@click.option("--session-timeout", type=click.IntRange(1, MAX_TIMEOUT), help="Seconds.")
@click.option("--idle-timeout", type=click.IntRange(1, MAX_TIMEOUT), help="Seconds.")
@click.option("--class", "class_", help="Class attribute to return (text).")
@click.option(
    "--calling-station-id",
    "calling_station_ids",
    multiple=True,
    help="A Calling-Station-Id (the caller's number or MAC) the account may log in from, "
    "compared case-insensitively. Repeatable; none: from anywhere.",
)
@click.option(
    "--reply",
    "replies",
    multiple=True,
    metavar="NAME=VALUE",
    help="A reply attribute by its dictionary name, e.g. 'Framed-Route=192.0.2.0/24 0.0.0.0 1'. "
    "Repeatable; it wins over the realm's attribute of the same name.",
)
@click.option(
    "--exist-ok",
    is_flag=True,
    help="Succeed without change when the account exists already (for scripts, `make run`).",
)
@_key_option
@_dictionary_option
def account_add(
    realm: str,
    user: str,
    password: str | None,
    password_stdin: bool,
    db: str,
    realms: Path,
    framed_ip: str | None,
    session_timeout: int | None,
    idle_timeout: int | None,
    class_: str | None,
    calling_station_ids: tuple[str, ...],
    replies: tuple[str, ...],
    exist_ok: bool,
    key_file: Path | None,
    dictionaries: tuple[Path, ...],
) -> None:
    """Add one account to REALM.

    The password comes from --password-stdin (or a pipe), a prompt on a terminal, or --password.
    """
    if password is not None and password_stdin:
        raise click.UsageError("give either --password or --password-stdin, not both")
    target = _account_realm(load_registry(realms, dictionaries), realm, realms)
    try:
        reply = tuple(parse_pair(text) for text in replies)
        if reply:
            encode_all(load_dictionary(dictionaries), reply)  # refused now, not at login
    except DictionaryError as exc:
        raise DictionaryError(f"account {user!r}: {exc}") from None
    if exist_ok and (Settings(db=db).is_url or Path(db).exists()):
        with _store(db, key_file) as store:
            if store.get_account(target.name, user) is not None:
                click.echo(f"account {user!r} exists in realm {target.name!r}; left as it is")
                return
    if password is None:
        password = _read_password(sys.stdin, prompt=not password_stdin)
    row = AccountRow(
        username=user,
        password=password,
        framed_ip=framed_ip,
        session_timeout=session_timeout,
        idle_timeout=idle_timeout,
        class_=None if class_ is None else class_.encode("utf-8"),
        calling_station_ids=calling_station_ids,
        reply=reply,
    )
    with _store(db, key_file) as store:
        store.add_account(target.name, row, max_accounts=target.max_accounts)
        count = store.count_accounts(target.name)
    limit = "" if target.max_accounts is None else f" of {target.max_accounts}"
    click.echo(f"added account {user!r} to realm {target.name!r} ({count}{limit} accounts)")


@account.command("import")
@click.argument("realm")
@click.argument(
    "csv_file",
    metavar="FILE.csv",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
)
@_db_option
@_realms_option
@_key_option
@_dictionary_option
def account_import(
    realm: str,
    csv_file: Path,
    db: str,
    realms: Path,
    key_file: Path | None,
    dictionaries: tuple[Path, ...],
) -> None:
    """Add every account of FILE.csv to REALM, or none.

    The header is username,password[,framed_ip] (session_timeout, idle_timeout,
    calling_station_id and reply may follow; several values of the last two separated by ';',
    reply as name=value pairs).
    """
    target = _account_realm(load_registry(realms, dictionaries), realm, realms)
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(csv_file.open(encoding="utf-8-sig", newline=""))
        # Reads the header now: a bad one opens no database.
        rows = _csv_rows(csv_file, stream, lambda: load_dictionary(dictionaries))
        progress: Callable[[int], None] | None = None
        if _is_terminal(sys.stderr):
            bar = stack.enter_context(
                click.progressbar(
                    length=max(1, _count_lines(csv_file) - 1), label="importing", file=sys.stderr
                )
            )

            def progress(done: int) -> None:
                bar.update(done - bar.pos)

        store = stack.enter_context(_store(db, key_file))
        try:
            imported = store.import_accounts(
                target.name, rows, max_accounts=target.max_accounts, progress=progress
            )
        except StoreError as exc:
            raise type(exc)(f"{csv_file}: {exc}") from None
    click.echo(f"imported {_count(imported, 'account')} into realm {target.name!r}")


@account.command("list")
@click.argument("realm")
@_db_option
@_key_option
def account_list(realm: str, db: str, key_file: Path | None) -> None:
    """List the accounts of REALM.

    One line per account: username, enabled or disabled, framed IP ('-' if none), tab-separated.
    Never the password.
    """
    with _store(db, key_file, read_only=True) as store:
        accounts = store.list_accounts(realm)
    for a in accounts:
        state = "enabled" if a.enabled else "disabled"
        click.echo(f"{printable(a.username)}\t{state}\t{printable(a.framed_ip or '-')}")
    if not accounts:
        click.echo(f"realm {realm.lower()!r} has no accounts", err=True)


@account.command("disable")
@click.argument("realm")
@click.argument("user")
@_db_option
@_key_option
def account_disable(realm: str, user: str, db: str, key_file: Path | None) -> None:
    """Refuse USER of REALM from now on.

    A running gateway notices within its cache poll interval (a second or so).
    """
    with _store(db, key_file, create=False) as store:
        store.set_enabled(realm, user, False)
    click.echo(f"disabled account {user!r} in realm {realm.lower()!r}")


@account.command("enable")
@click.argument("realm")
@click.argument("user")
@_db_option
@_key_option
def account_enable(realm: str, user: str, db: str, key_file: Path | None) -> None:
    """Accept USER of REALM again."""
    with _store(db, key_file, create=False) as store:
        store.set_enabled(realm, user, True)
    click.echo(f"enabled account {user!r} in realm {realm.lower()!r}")


@account.command("remove")
@click.argument("realm")
@click.argument("user")
@_db_option
@_key_option
def account_remove(realm: str, user: str, db: str, key_file: Path | None) -> None:
    """Delete USER of REALM."""
    with _store(db, key_file, create=False) as store:
        store.remove_account(realm, user)
    click.echo(f"removed account {user!r} from realm {realm.lower()!r}")


@account.command("unlock")
@click.argument("realm")
@click.argument("user")
@_db_option
@_key_option
def account_unlock(realm: str, user: str, db: str, key_file: Path | None) -> None:
    """Lift USER of REALM's lockout and forget its failed logins.

    A running gateway notices within its cache poll interval (a second or so).
    """
    with _store(db, key_file, create=False) as store:
        store.unlock_account(realm, user)
    click.echo(f"unlocked account {user!r} in realm {realm.lower()!r}")


@cli.group()
def db() -> None:
    """The database's schema (SQLite file or PostgreSQL of a fleet)."""


@db.command("migrate")
@click.option(
    "--db",
    "url",
    envvar="RADIUSGW_DB",
    show_envvar=True,
    help="postgresql://user@host:port/dbname (or an SQLite file path).",
)
def db_migrate(url: str | None) -> None:
    """Create or upgrade the schema to this version's; print the version reached.

    Every node of a fleet checks the schema when it starts and refuses one it does not know:
    run this once per upgrade, from any node or operator host (two at once are safe). Prefer
    RADIUSGW_DB to --db for a URL with a password: ps shows the command line.
    """
    from radiusgw.store.migrate import migrate_database

    if not url:
        raise StoreError("give the database: --db URL, or the environment variable RADIUSGW_DB")
    where, version = migrate_database(url)
    click.echo(f"{where}: schema version {version}")


@cli.group()
def lns() -> None:
    """The LNS of VPDN realms, as the L2TP health probes see them."""


_format_option = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


@lns.command("status")
@_db_option
@_format_option
def lns_status(db: str, fmt: str) -> None:
    """One line per probed LNS: realm, address, state, since when, and why."""
    with _store(db, None, read_only=True) as store:
        states = store.lns_states()
    _print_rows(
        [
            {
                "realm": s.realm,
                "lns": f"{s.address}:{s.port}",
                "status": s.status,
                "since": _iso(s.changed_at),
                "detail": s.detail,
            }
            for s in states
        ],
        fmt,
    )


@cli.group()
def session() -> None:
    """Sessions as accounting reports them (Start, Interim-Update, Stop)."""


@session.command("list")
@click.option("--realm", help="Only the sessions of this realm.")
@_db_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def session_list(realm: str | None, db: str, fmt: str) -> None:
    """List live sessions, oldest first.

    Text: user, realm, Acct-Session-Id, NAS address, LNS ('-' if none), start (ISO 8601, UTC),
    input octets, output octets, tab-separated. JSON: one object per line with those and more.
    """
    with _store(db, None, read_only=True) as store:
        rows = store.live_sessions(realm)
    for s in rows:
        start = _iso(s.start)
        if fmt == "json":
            click.echo(
                json.dumps(
                    {
                        "user": s.username,
                        "realm": s.realm,
                        "acct_session_id": s.acct_session_id,
                        "nas_address": s.nas_address,
                        "nas_ip_address": s.nas_ip_address,
                        "nas_identifier": s.nas_identifier,
                        "lns": s.lns,
                        "framed_ip": s.framed_ip,
                        "start": start,
                        "last_update": _iso(s.last_update),
                        "session_time": s.session_time,
                        "input_octets": s.input_octets,
                        "output_octets": s.output_octets,
                    }
                )
            )
        else:
            fields = (s.username, s.realm, s.acct_session_id, s.nas_address, s.lns or "-", start)
            click.echo("\t".join(map(printable, fields)) + f"\t{s.input_octets}\t{s.output_octets}")
    if not rows:
        where = "" if realm is None else f" in realm {realm.lower()!r}"
        click.echo(f"no live sessions{where}", err=True)


@session.command("disconnect")
@click.argument("realm")
@click.argument("user")
@click.option("--session", "session_id", help="Only the session with this Acct-Session-Id.")
@_db_option
@_realms_option
@click.option(
    "--wait",
    type=click.FloatRange(min=0.5),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each NAS's answer.",
)
def session_disconnect(
    realm: str, user: str, session_id: str | None, db: str, realms: Path, wait: float
) -> int:
    """Send a Disconnect-Request (RFC 5176) for USER's live sessions in REALM.

    USER is the account name, without '@realm'. Each session goes to its NAS's registered
    coa_port with its secret (hence --realms). One line per session: Acct-Session-Id, NAS,
    answer (ack, nak, no-answer, refused) and the NAK's Error-Cause; exit 1 unless every NAS
    acknowledged.
    """
    import asyncio

    from radiusgw.server.disconnect_once import disconnect
    from radiusgw.server.logging import configure

    registry = load_registry(realms)
    with _store(db, None, read_only=True) as store:
        rows = [
            s
            for s in store.live_sessions(realm)
            if s.username == user and (session_id is None or s.acct_session_id == session_id)
        ]
    if not rows:
        which = "" if session_id is None else f" with Acct-Session-Id {session_id!r}"
        raise click.ClickException(f"no live session of {user!r} in realm {realm.lower()!r}{which}")
    answers = asyncio.run(disconnect(rows, registry, configure("warning"), wait=wait))
    for a in answers:
        fields = [a.session.acct_session_id, a.session.nas_address, a.outcome]
        if a.error_cause is not None:
            fields.append(f"{a.error_cause} {a.as_dict()['error_cause_name']}")
        if a.detail:
            fields.append(a.detail)
        click.echo("\t".join(map(printable, fields)))
    return 0 if all(a.outcome == "ack" for a in answers) else 1


def _check_month(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        month_bounds(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month as YYYY-MM (e.g. 2025-03)") from None
    return value


@cli.command("usage")
@click.option("--realm", required=True, help="The realm.")
@click.option("--month", required=True, callback=_check_month, help="YYYY-MM, in UTC.")
@_db_option
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
def usage_command(realm: str, month: str, db: str, fmt: str) -> None:
    """Sessions, session time and octets of REALM in a calendar month (UTC).

    A session counts when it was up during the month; its time is the part inside the month; its
    octets count in the month it ended (or, while live, was last reported).
    """
    with _store(db, None, read_only=True) as store:
        row = store.usage(realm, month)
    fields = {
        "realm": row.realm,
        "month": row.month,
        "sessions": row.sessions,
        "session_time_seconds": row.session_time_seconds,
        "input_octets": row.input_octets,
        "output_octets": row.output_octets,
    }
    if fmt == "json":
        click.echo(json.dumps(fields))
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        writer.writerow(fields.values())
        click.echo(out.getvalue(), nl=False)


@cli.group()
def accounting() -> None:
    """Accounting records as the store keeps them."""


@accounting.command("quarantine")
@_db_option
@_format_option
def accounting_quarantine(db: str, fmt: str) -> None:
    """List the accounting records the store refused and kept aside, oldest first.

    Each was acknowledged to its NAS and is kept whole (the datagram as received, in hex) with
    the reason; the records around it were applied. Text: id, kept aside at, received at, NAS,
    realm, user, Acct-Session-Id, Acct-Status-Type ('-' if none), reason, packet, tab-separated,
    control characters escaped. JSON: one object per line.
    """
    with _store(db, None, read_only=True) as store:
        entries = store.quarantined()
    for e in entries:
        row: dict[str, Any] = {
            "id": e.id,
            "quarantined": _iso(e.quarantined),
            "received": _iso(e.received),
            "nas_address": e.nas_address,
            "realm": e.realm,
            "user": e.username,
            "acct_session_id": e.session_id,
            "status_type": e.status_type,
            "reason": e.reason,
            "packet": e.packet.hex(),
            "journal": e.journal,
        }
        if fmt == "json":
            click.echo(json.dumps(row))
        else:
            del row["journal"]
            click.echo("\t".join("-" if v is None else printable(v) for v in row.values()))
    if not entries:
        click.echo("no accounting records are kept aside", err=True)


@cli.group()
def proxy() -> None:
    """The customer RADIUS servers of proxy realms, as the gateway sees them."""


@proxy.command("status")
@_db_option
@_format_option
def proxy_status(db: str, fmt: str) -> None:
    """One line per realm, upstream server and port kind (per worker): state, since, traffic,
    and the node whose worker it is (a fleet's database; '-' for one node's file)."""
    from radiusgw.client.ids import show_destination

    with _store(db, None, read_only=True) as store:
        rows = store.upstream_rows()
    _print_rows(
        [
            {
                "realm": r.realm,
                "server": show_destination((r.address, r.port)),
                "kind": r.kind,
                "state": r.state,
                "since": _iso(r.since),
                "worker": r.worker,
                "outstanding": r.outstanding,
                "sent": r.sent,
                "answered": r.answered,
                "unanswered": r.unanswered,
                "node": "-" if r.node is None else r.node,
            }
            for r in rows
        ],
        fmt,
    )


@cli.group()
def fleet() -> None:
    """The gateway nodes that share the database, as their heartbeats show them."""


@fleet.command("status")
@_db_option
@_format_option
@click.option(
    "--within",
    type=click.FloatRange(min=1),
    default=FLEET_WITHIN,
    show_default=True,
    help="Seconds: list the nodes whose last heartbeat is at most this old.",
)
def fleet_status(db: str, fmt: str, within: float) -> None:
    """One line per node that wrote recently: name, version, last seen, age (seconds),
    journal backlog (records), last applied ('-' if never), started, tab-separated. A running
    node writes every few seconds; a greater age means it stopped or lost the database.
    JSON: one object per line.
    """
    now = time.time()
    with _store(db, None, read_only=True) as store:
        rows = [n for n in store.nodes() if now - n.last_seen <= within]
    _print_rows(
        [
            {
                "node": n.name,
                "version": n.version,
                "last_seen": _iso(n.last_seen),
                "age": round(max(0.0, now - n.last_seen), 1),
                "journal_backlog": n.journal_backlog,
                "last_applied": "-" if n.last_applied is None else _iso(n.last_applied),
                "started": _iso(n.started),
            }
            for n in rows
        ],
        fmt,
    )
    if not rows:
        click.echo(f"no node wrote in the last {within:g} s", err=True)


def _check_time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither ISO 8601 (2025-03-01T09:12:00+09:00) nor unix seconds"
        ) from None


def parse_time(value: str) -> float:
    """Unix seconds, or ISO 8601 (a time without an offset is UTC); ``ValueError`` otherwise."""
    try:
        return float(value)
    except ValueError:
        pass
    when = dt.datetime.fromisoformat(value.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def authlog_fields(row: AuthLogRow) -> dict[str, Any]:
    """One auth-log row as ``authlog`` and the API show it: time in ISO 8601, UTC."""
    fields: dict[str, Any] = dict(zip(AUTHLOG_HEADER, row, strict=True))
    fields["time"] = dt.datetime.fromtimestamp(row.time, dt.UTC).isoformat(timespec="milliseconds")
    return fields


@cli.command("authlog")
@click.option("--realm", required=True, help="The realm.")
@click.option("--user", help="Only this User-Name (as sent, user@realm).")
@click.option("--since", callback=_check_time, help="From this time (ISO 8601 or unix seconds).")
@click.option("--until", callback=_check_time, help="Before this time (ISO 8601 or unix).")
@click.option("--result", type=click.Choice(RESULTS), help="Only this result.")
@_db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
)
def authlog_command(
    realm: str,
    user: str | None,
    since: float | None,
    until: float | None,
    result: str | None,
    db: str,
    fmt: str,
) -> None:
    """The outcome of each Access-Request of REALM, oldest first (issue 18.3).

    Text: time (ISO 8601, UTC), node, worker, NAS, realm, user, method, result, reason,
    Framed-IP, LNS, upstream ('-' where none), tab-separated, control characters escaped.
    JSON: one object per line. CSV: a header line, then one line per row.
    """
    with _store(db, None, read_only=True) as store:
        rows = store.auth_log(realm, user=user, since=since, until=until, result=result)
    shown = [authlog_fields(r) for r in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(AUTHLOG_HEADER)
        for fields in shown:
            writer.writerow("" if v is None else v for v in fields.values())
        click.echo(out.getvalue(), nl=False)
    elif fmt == "json":
        for fields in shown:
            click.echo(json.dumps(fields))
    else:
        for fields in shown:
            click.echo("\t".join("-" if v is None else printable(v) for v in fields.values()))
    if not rows and fmt != "csv":
        click.echo(f"no authentication log rows in realm {realm.lower()!r}", err=True)


def _print_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    """JSON: one object per line; text: the values, tab-separated, in the same order."""
    for row in rows:
        if fmt == "json":
            click.echo(json.dumps(row))
        else:
            click.echo("\t".join(printable(v) for v in row.values()))


# The backslash and the usual controls by their C escape; the rest as \xNN, \uNNNN or \UNNNNNNNN.
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """``value`` as text that is safe on a terminal, escaped as ``repr`` escapes (no quotes).

    A NAS or an LNS chooses user names, session ids and reasons: an ESC in one would drive the
    operator's terminal, a newline or a tab would forge a line or a column. C0 and C1 controls,
    DEL and every other character Python does not call printable (line separators, bidi
    controls) are escaped, and the backslash too, so that the escaped text reads one way only.
    """
    text = str(value)
    if text.isprintable() and "\\" not in text:
        return text  # the usual case: nothing to do
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def main(tuning: Tuning | None = None) -> None:
    """The console script ``radiusgw``. ``tuning``: the knobs ``serve`` has no flag for, from
    a caller in this process (``bench/ablate.py``'s experiments); the command line cannot set
    them, and the console script passes none (the defaults: the product)."""
    cli.main(prog_name="radiusgw", obj=tuning)


# -- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _store(
    db: str, key_file: Path | None, *, create: bool = True, read_only: bool = False
) -> Iterator[Backend]:
    """The store ``--db`` names (radiusgw.store.backend), closed after the ``with``."""
    key = Settings(db=db, key_file=key_file).key_path
    store = open_backend(db, key, create=create, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def _read_password(stdin: TextIO, *, prompt: bool) -> str:
    """The password of ``account add``: asked for on a terminal (hidden, twice) when ``prompt``,
    else one line of standard input without its line ending (as ``docker login
    --password-stdin`` reads it)."""
    if prompt and _is_terminal(stdin):
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        assert isinstance(password, str)
        return password
    line = stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError(
            "no password: give it on standard input (--password-stdin), at the prompt of a "
            "terminal, or with --password"
        )
    return password


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


def _account_realm(registry: Registry, name: str, realms: Path) -> Realm:
    """The realm whose accounts we keep: a group realm or a VPDN realm that authenticates."""
    realm = registry.realms.get(name.lower())
    if realm is None:
        raise click.ClickException(f"realm {name!r} is not defined in any realm file in {realms}")
    if realm.mode is Mode.PROXY:
        raise click.ClickException(
            f"realm {realm.name!r} ({realm.source}) is a proxy realm: its accounts live on the "
            "customer's RADIUS servers, so the gateway keeps none"
        )
    if realm.mode is Mode.VPDN and not realm.authenticate:
        raise click.ClickException(
            f"realm {realm.name!r} ({realm.source}) is a VPDN realm with authenticate = false: "
            "the gateway does not check its passwords, so it keeps no accounts"
        )
    return realm


def _csv_rows(
    path: Path, stream: TextIO, dictionary: Callable[[], Dictionary] = load_dictionary
) -> Iterator[AccountRow]:
    """Check the header at once; return the rows (read lazily), each with its line number."""
    reader = csv.reader(stream)
    header = [name.strip().lower() for name in _next_record(path, reader, 1) or []]
    if not header:
        raise ImportFileError(
            f"{path} is empty: its first line must be the header username,password[,framed_ip]"
        )
    for name in header:
        if name not in CSV_COLUMNS:
            raise ImportFileError(
                f"{path}: line 1: unknown column {name!r}; the columns are username, password "
                "and optionally framed_ip, session_timeout, idle_timeout, calling_station_id, "
                "reply"
            )
        if header.count(name) > 1:
            raise ImportFileError(f"{path}: line 1: column {name!r} appears twice")
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        raise ImportFileError(
            f"{path}: line 1: the header lacks {' and '.join(missing)} "
            "(it must be username,password[,framed_ip])"
        )
    return _records(path, reader, header, dictionary if "reply" in header else None)


def _records(
    path: Path, reader: Any, header: list[str], dictionary: Callable[[], Dictionary] | None
) -> Iterator[AccountRow]:
    read: list[Dictionary] = []  # the dictionary, read at the first reply attribute
    # ``reader.line_num`` counts physical lines, so a quoted field spanning lines or a blank
    # line does not shift the numbers the operator is shown.
    while True:
        line = reader.line_num + 1
        fields = _next_record(path, reader, line)
        if fields is None:
            return
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if len(fields) != len(header):
            raise ImportFileError(
                f"{path}: line {line}: {len(fields)} fields where the header has "
                f"{len(header)}; nothing was imported"
            )
        values = dict(zip(header, fields, strict=True))
        reply: tuple[tuple[str, str], ...] = ()
        if dictionary is not None and values["reply"].strip():
            try:
                reply = tuple(parse_pairs(values["reply"]))
                if not read:
                    read.append(dictionary())
                encode_all(read[0], reply)
            except DictionaryError as exc:
                raise ImportFileError(
                    f"{path}: line {line}: account {values['username']!r}: {exc}; "
                    "nothing was imported"
                ) from None
        stations = values.get("calling_station_id", "")
        yield AccountRow(
            username=values["username"],
            password=values["password"],
            framed_ip=values.get("framed_ip", "").strip() or None,
            session_timeout=_seconds(path, values, "session_timeout", line),
            idle_timeout=_seconds(path, values, "idle_timeout", line),
            line=line,
            calling_station_ids=tuple(v.strip() for v in stations.split(";") if v.strip()),
            reply=reply,
        )


def _next_record(path: Path, reader: Any, line: int) -> list[str] | None:
    try:
        return list(next(reader))
    except StopIteration:
        return None
    except csv.Error as exc:
        raise ImportFileError(
            f"{path}: line {line}: not readable as CSV ({exc}); nothing was imported"
        ) from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{path} is not UTF-8 text; save it as UTF-8 CSV") from None


def _seconds(path: Path, values: dict[str, str], column: str, line: int) -> int | None:
    text = values.get(column, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ImportFileError(
            f"{path}: line {line}: {column} {text!r} is not a whole number of seconds; "
            "nothing was imported"
        ) from None


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
