"""The one settings object of a running gateway, built by the CLI from its flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    realms: Path = Path("./realms")
    db: Path = Path("./radiusgw.db")
    key_file: Path | None = None  # default: <db>.key
    listen: str = "0.0.0.0"
    auth_port: int = 1812
    acct_port: int = 1813
    workers: int = 1
    access_log: bool = False
    log_level: str = "info"
    drain_timeout: float = 5.0
    cache_poll_interval: float = 1.0  # how soon account changes reach a running server
    # A live session with no accounting for 3 x its Acct-Interim-Interval (this one when the NAS
    # sent none) is closed as stale.
    default_interim_interval: float = 600.0

    @property
    def journal_dir(self) -> Path:
        """The workers' accounting journals (``radiusgw.store.journal``), beside the database."""
        # Not "<db>-journal": that is the name of SQLite's own rollback journal.
        return Path(f"{self.db}.journal")

    @property
    def key_path(self) -> Path:
        return self.key_file if self.key_file is not None else Path(f"{self.db}.key")
