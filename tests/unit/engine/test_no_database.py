"""The engine depends on the domain records, not on a database module (issue 15.1): importing
``radiusgw.engine`` imports neither SQLite's nor PostgreSQL's driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DRIVERS = ("sqlite3", "_sqlite3", "psycopg", "psycopg_pool")


def test_importing_the_engine_imports_no_database_driver() -> None:
    check = (
        "import sys, radiusgw.engine, radiusgw.domain, radiusgw.sessions\n"
        f"loaded = [name for name in {DRIVERS!r} if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
