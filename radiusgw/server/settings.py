"""The one settings object of a running gateway, built by the CLI from its flags.

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

from radiusgw.store.backend import scheme_of

URL_KEY_FILE = Path("./radiusgw.key")  # the password key when --db is a URL
URL_JOURNAL_DIR = Path("./radiusgw.journal")  # the journals when --db is a URL


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
