"""The ``radiusgw`` command as ``make run`` installs it, run the way an operator runs it: from
another directory, with nothing on PYTHONPATH.

mypyc puts the shared library of the compiled modules at the top of the tree, beside the
package rather than in it. An editable install that maps only the package (setuptools'
default finder) left that library off the path: every ``radiusgw`` command failed with "No
module named '<hash>__mypyc'" once the modules were compiled, while the tests, run from the
tree, passed. The Makefile installs in "compat" mode, which puts the tree on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "radiusgw"


def run_outside(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` run from ``cwd`` with nothing on PYTHONPATH, as an operator's shell runs it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def command() -> Path:
    if not COMMAND.exists():
        pytest.skip(f"no radiusgw command beside {sys.executable}: not installed here")
    return COMMAND


def test_the_command_runs_from_another_directory(command: Path, tmp_path: Path) -> None:
    result = run_outside([str(command), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: radiusgw" in result.stdout


def test_the_command_gets_the_compiled_modules_where_they_are_built(tmp_path: Path) -> None:
    built = sorted((ROOT / "radiusgw" / "engine").glob("core.*.so"))
    if not built:
        pytest.skip("the pure-Python tree: nothing compiled to find")
    found = run_outside(
        [sys.executable, "-c", "import radiusgw.engine.core as c; print(c.__file__)"], tmp_path
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == built[0]
