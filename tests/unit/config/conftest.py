"""Fixtures for the realm-file tests: a realm directory under tmp_path and ways to fill it."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiusgw.config import check_directory
from tests.unit.config.helpers import Problems, Write


@pytest.fixture
def realms(tmp_path: Path) -> Path:
    directory = tmp_path / "realms"
    directory.mkdir()
    return directory


@pytest.fixture
def write(realms: Path) -> Write:
    """Write one realm file into the realm directory, each line's indentation dropped.

    TOML ignores indentation, so tests may indent their files and glue pieces together.
    """

    def write(name: str, text: str) -> Path:
        path = realms / name
        path.write_text("".join(f"{line.strip()}\n" for line in text.splitlines()), "utf-8")
        return path

    return write


@pytest.fixture
def problems(realms: Path) -> Problems:
    """``check_directory`` of the realm directory, with the directory left out of file names.

    So a line reads ``acme.toml: realm[0].mode: ...``, as it would for ``--realms .``.
    """

    def problems() -> list[str]:
        return [line.replace(f"{realms}/", "") for line in check_directory(realms)]

    return problems
