"""A FreeRADIUS 3.2 (Debian) configuration under a directory of its own: never /etc.

One virtual server on 127.0.0.1 high ports, ``pap``/``chap``/``files`` (and optionally ``mschap``)
for authentication, ``detail`` for accounting, and optionally proxy realms (``suffix`` realm module,
one home server per realm). Shared by the integration tests (FreeRADIUS as the customer's server
behind a proxy realm) and the benchmark (FreeRADIUS as the performance peer, and as the upstream of
the proxy scenario), so that both run the same server the same way.

With ``sql`` (``SqlAccounting``) accounting goes to PostgreSQL through ``rlm_sql`` instead of the
detail file, as production FreeRADIUS keeps its sessions: Debian's stock
``mods-config/sql/main/postgresql/queries.conf`` and ``schema.sql`` (package
``freeradius-postgresql``), the stock ``acct_unique`` policy in preacct (without it every record
has an empty AcctUniqueId and all land on one row) and the ``expr`` module the queries' and the
policy's ``%{tolower:...}`` and ``%{md5:...}`` need. The stock files are read from /etc, never
written.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The receive buffer the gateway asks for on its sockets (radiusgw/server/sockets.py); Linux
# caps both at net.core.rmem_max. Without it FreeRADIUS keeps the kernel default (208 KiB
# here) and, in open loop, lost requests to RcvbufErrors at 27,000 PAP/s with a p99 of 2.7 ms:
# the buffer, not the server, was full while its listener thread waited for a core.
RECV_BUFF = 8 * 1024 * 1024

# Debian's stock files for rlm_sql on PostgreSQL (freeradius-postgresql, freeradius-config).
SQL_DIR = Path("/etc/freeradius/3.0/mods-config/sql/main/postgresql")
SQL_SCHEMA = SQL_DIR / "schema.sql"
SQL_QUERIES = SQL_DIR / "queries.conf"
ACCOUNTING_POLICY = Path("/etc/freeradius/3.0/policy.d/accounting")  # acct_unique
RLM_SQL_POSTGRESQL = Path("/usr/lib/freeradius/rlm_sql_postgresql.so")


@dataclass(frozen=True, slots=True)
class SqlAccounting:
    """Where rlm_sql writes accounting: a PostgreSQL database loaded with ``SQL_SCHEMA``."""

    host: str
    port: int
    database: str
    login: str = "postgres"


def sql_missing() -> str | None:
    """Why FreeRADIUS cannot write accounting to PostgreSQL here, or None if it can."""
    for path in (RLM_SQL_POSTGRESQL, SQL_SCHEMA, SQL_QUERIES, ACCOUNTING_POLICY):
        if not path.exists():
            return f"{path} is missing (Debian package freeradius-postgresql; `make peers`)"
    return None


@dataclass(frozen=True, slots=True)
class HomeRealm:
    """A realm FreeRADIUS proxies to one home server (``realm NAME { auth_pool ... }``)."""

    name: str
    address: str
    auth_port: int
    acct_port: int
    secret: str


def _clients(secret: str, clients: Mapping[str, str]) -> str:
    # The first client is 127.0.0.1 with the server's secret; ``clients`` adds others
    # (address -> secret), e.g. a carrier's LAC sending from 127.0.0.2.
    entries = {"127.0.0.1": secret, **clients}
    return "".join(
        f"""
        client c{n} {{
          ipaddr = {address}
          secret = {client_secret}
          require_message_authenticator = no
        }}"""
        for n, (address, client_secret) in enumerate(entries.items())
    )


def _proxy(realms: Sequence[HomeRealm]) -> str:
    if not realms:
        return "proxy_requests = no\n"
    text = "proxy_requests = yes\nproxy server {\n  default_fallback = no\n}\n"
    for n, r in enumerate(realms):
        # RFC 5080 §2.2.2 / FreeRADIUS defaults, but no status checks: the upstream is local
        # and always up, and a check would add traffic the gateway does not send.
        text += textwrap.dedent(f"""\
            home_server home{n} {{
              type = auth+acct
              ipaddr = {r.address}
              port = {r.auth_port}
              secret = {r.secret}
              response_window = 20
              zombie_period = 40
              revive_interval = 120
              status_check = none
              max_outstanding = 65536
            }}
            home_server_pool pool{n} {{
              type = fail-over
              home_server = home{n}
            }}
            realm {r.name} {{
              auth_pool = pool{n}
              acct_pool = pool{n}
            }}
            """)
    return text


def write_config(
    directory: Path,
    *,
    secret: str,
    users: str,
    auth_port: int,
    acct_port: int,
    threads: int = 8,
    clients: Mapping[str, str] | None = None,
    proxy_realms: Sequence[HomeRealm] = (),
    listen: str = "127.0.0.1",
    sign_replies: bool = False,
    eap: bool = False,
    mschap: bool = False,
    sql: SqlAccounting | None = None,
) -> Path:
    """Write radiusd.conf and the ``files`` users file under ``directory``; return raddb.

    Start it with ``freeradius -f -d <raddb> -n radiusd -l stdout``. Accounting goes to
    ``<directory>/acct/detail``. ``listen`` is its address (``::1`` for IPv6). With ``sign_replies``
    every Access-Accept, Access-Reject and answer to Status-Server carries a Message-Authenticator,
    as a server patched for BlastRADIUS sends them; Debian's 3.2.1 by itself adds one only to EAP
    answers. ``eap`` adds the eap module with EAP-MD5 only (no certificates needed). ``mschap`` adds
    the mschap module (MS-CHAPv1/v2 from the users' Cleartext-Password; see ``MSCHAP``). With
    ``sql``, accounting goes to that PostgreSQL database through rlm_sql (stock queries,
    ``acct_unique`` in preacct) instead of the detail file.
    """
    raddb = directory / "raddb"
    for sub in ("raddb", "logs", "run", "acct"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (raddb / "users").write_text(textwrap.dedent(users))
    # With proxy realms, ``suffix`` first sets Proxy-To-Realm for user@realm (and strips it).
    suffix = "suffix\n            " if proxy_realms else ""
    listen_key = "ipv6addr" if ":" in listen else "ipaddr"
    # A Message-Authenticator in the reply list is computed when the reply is encoded.
    sign = "update reply {\n              Message-Authenticator := 0x00\n            }"
    signed = sign if sign_replies else ""
    status = f"Autz-Type Status-Server {{\n              {signed}\n              ok\n            }}"
    eap_module = (
        "eap {\n            default_eap_type = md5\n            md5 {\n            }\n          }"
    )
    eap_authorize = "eap {\n              ok = return\n            }\n            " if eap else ""
    eap_authenticate = "Auth-Type EAP {\n              eap\n            }" if eap else ""
    ms_module, ms_authorize, ms_authenticate = MSCHAP if mschap else ("", "", "")
    sql_module = "" if sql is None else _sql_module(sql)
    # The stock policies (acct_unique among them), read where Debian installs them.
    policy = "" if sql is None else f"policy {{\n  $INCLUDE {ACCOUNTING_POLICY}\n}}\n"
    acct_unique = "" if sql is None else "acct_unique"
    accounting = "detail" if sql is None else "sql"
    (raddb / "radiusd.conf").write_text(
        textwrap.dedent(f"""\
        prefix = /usr
        exec_prefix = /usr
        sysconfdir = /etc
        localstatedir = {directory}
        sbindir = /usr/sbin
        logdir = {directory}/logs
        raddbdir = {raddb}
        radacctdir = {directory}/acct
        name = freeradius
        confdir = ${{raddbdir}}
        modconfdir = ${{confdir}}/mods-config
        run_dir = {directory}/run
        db_dir = {directory}
        libdir = /usr/lib/freeradius
        pidfile = ${{run_dir}}/radiusd.pid
        max_request_time = 30
        cleanup_delay = 5
        max_requests = 262144
        hostname_lookups = no
        log {{
          destination = stdout
          colourise = no
          auth = no
        }}
        security {{
          allow_core_dumps = no
          max_attributes = 200
          reject_delay = 0
          status_server = yes
        }}
        thread pool {{
          start_servers = {threads}
          max_servers = {threads}
          min_spare_servers = 1
          max_spare_servers = {threads}
          max_requests_per_server = 0
        }}""")
        + _clients(secret, clients or {})
        + "\n"
        + _proxy(proxy_realms)
        + textwrap.dedent(f"""\
        modules {{
          pap {{
          }}
          chap {{
          }}
          files {{
            filename = {raddb}/users
          }}
          detail {{
            filename = {directory}/acct/detail
            permissions = 0600
            header = "%t"
          }}
          always ok {{
            rcode = ok
          }}
          realm suffix {{
            format = suffix
            delimiter = "@"
          }}
          {eap_module if eap else ""}
          {ms_module}
          {sql_module}
        }}
        {policy}
        server default {{
          listen {{
            type = auth
            {listen_key} = {listen}
            port = {auth_port}
            recv_buff = {RECV_BUFF}
          }}
          listen {{
            type = acct
            {listen_key} = {listen}
            port = {acct_port}
            recv_buff = {RECV_BUFF}
          }}
          authorize {{
            {suffix}{eap_authorize}chap
            {ms_authorize}files
            pap
            {status}
          }}
          authenticate {{
            Auth-Type PAP {{
              pap
            }}
            Auth-Type CHAP {{
              chap
            }}
            {eap_authenticate}
            {ms_authenticate}
          }}
          preacct {{
            {acct_unique}
            {suffix}
          }}
          accounting {{
            {accounting}
            ok
          }}
          post-auth {{
            {signed}
            Post-Auth-Type REJECT {{
              {signed}
            }}
          }}
        }}
        """)
    )
    return raddb


# The mschap module with its defaults (MPPE keys, MS-MPPE-Encryption-Policy allowed, 40- or
# 128-bit), as the Debian default site runs it: (the module, its authorize line, its authenticate
# section). In authorize it only sets Auth-Type MS-CHAP for a request with MS-CHAP-Challenge and
# a response (others pass untouched), beside ``chap`` as in Debian's sites-available/default;
# in authenticate it checks the response against the Cleartext-Password ``files`` set.
MSCHAP = (
    "mschap {\n          }",
    "mschap\n            ",
    "Auth-Type MS-CHAP {\n              mschap\n            }",
)


def _sql_module(sql: SqlAccounting) -> str:
    """rlm_sql on PostgreSQL as Debian's mods-available/sql sets it up, with the stock queries,
    and ``expr`` for their xlats."""
    # The pool follows the thread pool, as the stock module's ``${thread[pool]...}`` does: one
    # connection per thread, opened at start.
    return textwrap.dedent(f"""\
        expr {{
        }}
        sql {{
          dialect = "postgresql"
          driver = "rlm_sql_postgresql"
          server = "{sql.host}"
          port = {sql.port}
          login = "{sql.login}"
          password = ""
          radius_db = "{sql.database}"
          postgresql {{
            send_application_name = yes
          }}
          acct_table1 = "radacct"
          acct_table2 = "radacct"
          postauth_table = "radpostauth"
          authcheck_table = "radcheck"
          groupcheck_table = "radgroupcheck"
          authreply_table = "radreply"
          groupreply_table = "radgroupreply"
          usergroup_table = "radusergroup"
          delete_stale_sessions = yes
          pool {{
            start = ${{thread[pool].start_servers}}
            min = ${{thread[pool].min_spare_servers}}
            max = ${{thread[pool].max_servers}}
            spare = ${{thread[pool].max_spare_servers}}
            uses = 0
            retry_delay = 30
            lifetime = 0
            idle_timeout = 60
          }}
          client_table = "nas"
          group_attribute = "SQL-Group"
          $INCLUDE {SQL_QUERIES}
        }}""")


FREERADIUS = "/usr/sbin/freeradius"


def launch(raddb: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """FreeRADIUS in the foreground on the config ``write_config`` made, logging to a file.

    The caller waits for "Ready to process requests" in the log and stops it by its PID.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [FREERADIUS, "-f", "-d", str(raddb), "-n", "radiusd", "-l", "stdout"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
