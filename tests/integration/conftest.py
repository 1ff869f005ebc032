from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway import Gateway, default_realms, radiusgw, running_gateway


@pytest.fixture
def realms(tmp_path: Path) -> Path:
    return default_realms(tmp_path / "realms")


@pytest.fixture
def db(tmp_path: Path, realms: Path) -> Path:
    path = tmp_path / "gw.db"
    for realm, user, password, *extra in [
        ("acme.example", "alice", "wonderland", "--framed-ip", "10.0.0.5"),
        ("acme.example", "bob", "builder"),
        ("legacy.example", "old", "timer"),
    ]:
        radiusgw(
            "account",
            "add",
            realm,
            user,
            "--password",
            password,
            "--db",
            str(path),
            "--realms",
            str(realms),
            *extra,
        )
    return path


@pytest.fixture
def gateway(realms: Path, db: Path) -> Iterator[Gateway]:
    with running_gateway(realms, db) as gw:
        yield gw
