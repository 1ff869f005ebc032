"""The one settings object of a running gateway, built by the CLI from its flags.

``Settings.tuning`` holds the runtime knobs that have no flag (``Tuning``): poll and log
intervals, bounds, the supervisor's restart pacing, and two experiments of ``bench/ablate.py``.
Every part of the server takes its values through its constructor.

``db`` is the ``--db`` value as given: an SQLite file path, or a ``postgresql://`` URL (the
store's registry tells them apart: ``radiusgw.store.backend.scheme_of``). It stays a string: a
``Path`` would fold the URL's ``//`` into one slash. What lives beside an SQLite file (the
password key ``DB.key``, the accounting journals ``DB.journal``) cannot live beside a URL: for
one, the defaults are ``./radiusgw.key`` and ``./radiusgw.journal`` in the working directory,
and ``--key-file`` and ``--journal-dir`` say otherwise.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from radiusgw.store import journal
from radiusgw.store.backend import scheme_of

URL_KEY_FILE = Path("./radiusgw.key")  # the password key when --db is a URL
URL_JOURNAL_DIR = Path("./radiusgw.journal")  # the journals when --db is a URL


@dataclass(frozen=True, slots=True)
class Tuning:
    """The runtime knobs that have no flag: one place for the values every part of a running
    gateway is built with (each takes them through its constructor, never from a module
    global). The defaults are the product; a test, or ``bench/ablate.py``, builds other ones.
    """

    # -- a worker (radiusgw.server.worker)
    counters_log_interval: float = 60.0  # the ``counters`` line, when a counter changed
    usage_poll_interval: float = 2.0  # how often quotas and LNS loads are re-read
    stale_sweep_interval: float = 60.0  # worker 0 closes stale sessions this often
    # -- the engine (radiusgw.engine.Engine)
    dedup_window: float = 5.0  # a retransmission within it gets the cached answer (RFC 5080)
    reservation_ttl: float = 60.0  # seconds an accept's session slot waits for its Start
    # -- the accounting path (radiusgw.server.accounting)
    max_backlog: int = 200_000  # records acknowledged but not yet in the store: shed beyond
    # While the applier works but is this many records behind (about a second of one worker's
    # full rate), the worker stops reading Accounting-Requests until it is half as far behind:
    # the NAS waits instead of the session table (flow control: radiusgw.server.accounting).
    pause_backlog: int = 5_000
    retry_interval: float = 1.0  # a failed store transaction is tried again after this
    # The applier commits at most this often; what arrives meanwhile joins the next transaction.
    # Committing whatever was queued, at once, meant hundreds of small fsync'd transactions a
    # second rewriting the same index pages: at 8,000 records/s open loop on 4 workers, p99 80 ms
    # and 1.7 s (2,130 lost) against 16 and 25 ms (none lost) with this pause (two runs each).
    apply_interval: float = 0.1
    # The applier's transactions take at most this many records (more only if one loop
    # iteration's batch holds more): an outage's backlog, 200,000 records, in one transaction
    # would hold SQLite's write lock for seconds, and on PostgreSQL take an advisory lock per
    # session past the lock table's default size (about 12,000: "out of shared memory", retried
    # the same for ever). The journal's replay applies batches of the same size.
    apply_max_records: int = journal.BATCH_RECORDS
    # The applier thread runs this many nice levels above the event loops. On SQLite the
    # appliers of every worker queue for one write lock, and a holder the kernel preempts for
    # the loops (two cores, four workers) holds it longer: under a closed loop of Starts and
    # Stops it was held 97 % of the time, half of it off the CPU, and the workers paused
    # reading while their appliers waited. Raised, 26,000 -> 29,600 records/s answered
    # (bench.profile --scenario acct, four pairs). Its work is the accounting's own, so under
    # Access-Requests alone it takes nothing from them.
    applier_priority: int = 10
    # -- the proxy edge (radiusgw.server.proxy_edge)
    source_sockets: int = 4  # per address family; 256 requests outstanding per socket and server
    replay_tick: float = 1.0  # worker 0 looks at the spool this often
    status_publish_interval: float = 5.0  # the upstream status table, at least this often
    # -- the store decisions (radiusgw.server.decisions)
    max_lookups: int = 10_000  # account look-ups waiting for the store, per worker
    preload_chunk: int = 2_000  # accounts put into the cache between two turns of the loop
    # -- the supervisor (radiusgw.server.supervisor)
    restart_burst: int = 5  # restarts of one worker within restart_window before slowing down
    restart_window: float = 10.0
    restart_delay: float = 1.0  # a worker crashing in a loop must not spin the machine
    # -- experiments only (``python -m bench.ablate``), never the product: no flag sets them.
    journal_sync: bool = True  # False: the journal is written but not fdatasync'd
    store_writes: bool = True  # False: the accounting applier writes nothing to the store


DEFAULT_TUNING = Tuning()  # what a part is built with when it is given none (tests)


@dataclass(frozen=True, slots=True)
class Settings:
    realms: Path = Path("./realms")
    db: str = "./radiusgw.db"  # an SQLite path or a postgresql:// URL, as given
    key_file: Path | None = None  # default: <db>.key, or ./radiusgw.key for a URL
    journal: Path | None = None  # --journal-dir; default: <db>.journal, or ./radiusgw.journal
    # This gateway's name in a fleet (issue 15.5): in every log line, its heartbeat row
    # (``radiusgw fleet status``) and what it writes to a shared database.
    node: str = field(default_factory=socket.gethostname)
    listen: str = "0.0.0.0"
    auth_port: int = 1812
    acct_port: int = 1813
    workers: int = 1
    access_log: bool = False
    # ADDR:PORT of the operations listener (/metrics, /live, /ready: issue 18); None: off.
    metrics_listen: str | None = None
    log_level: str = "info"
    drain_timeout: float = 5.0
    cache_poll_interval: float = 1.0  # how soon account changes reach a running server
    # How long an Access-Request waits for the store (an account look-up, a session slot)
    # before the worker decides without it (radiusgw.server.decisions).
    store_deadline: float = 2.0
    # Accounts each worker reads into its cache when it starts (radiusgw.engine.cache); 0: none.
    cache_preload: int = 100_000
    # A live session with no accounting for 3 x its Acct-Interim-Interval (this one when the NAS
    # sent none) is closed as stale.
    default_interim_interval: float = 600.0
    # --dictionary: the operator's FreeRADIUS-format dictionaries, read after the shipped ones
    # (reply attributes by name: realm files and accounts; issue 17.5).
    dictionaries: tuple[Path, ...] = ()
    # The authentication log (issue 18.3): rows kept this many days; 0 keeps none.
    auth_log_days: int = 90
    # The management API (issue 18.4): ADDR:PORT, and the TOML file of its bearer tokens.
    api_listen: str | None = None
    api_tokens: Path | None = None
    tuning: Tuning = DEFAULT_TUNING  # the knobs with no flag

    @property
    def is_url(self) -> bool:
        """Whether ``db`` names a database server (PostgreSQL), not an SQLite file."""
        return scheme_of(self.db) != "sqlite"

    @property
    def journal_dir(self) -> Path:
        """The workers' accounting journals (``radiusgw.store.journal``), beside the database."""
        if self.journal is not None:
            return self.journal
        if self.is_url:
            return URL_JOURNAL_DIR
        # Not "<db>-journal": that is the name of SQLite's own rollback journal.
        return Path(f"{self.db}.journal")

    @property
    def key_path(self) -> Path:
        if self.key_file is not None:
            return self.key_file
        return URL_KEY_FILE if self.is_url else Path(f"{self.db}.key")
