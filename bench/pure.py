"""What the compiled build gains (issue 19.4): the gateway as ``make compiled`` built it, side by
side with the same code as pure Python, in one run (``bench.run --pure SECONDS``).

The hot path (the codec, crypto, engine, modes, router, the RADIUS client and the proxy's
rewriting, the auth-log writer: the Makefile's ``COMPILED``) is compiled with mypyc into
extension modules next to their sources, which Python imports in their place. The pure gateway
runs from a copy of the package without them (``pure_tree``, first on its ``PYTHONPATH``), so
both run the same commit. Group PAP and proxy under the run's last shape, A B per round, each
gateway on a copy of the run's database; the gain is the compiled rate over the pure one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.ops_cost import Variant

PACKAGE = Path(__file__).resolve().parent.parent / "radiusgw"
SCENARIOS = {"pap": "group PAP", "proxy": "proxy to FreeRADIUS"}  # key -> title
VARIANTS = (
    Variant("compiled", "compiled with mypyc", False, 90),
    Variant("pure", "pure Python (the same commit)", False, 90, pure=True),
)


def compiled_present() -> bool:
    """Whether the package has extension modules to compare against (``make compiled``)."""
    return any(PACKAGE.rglob("*.so"))


def pure_tree(work: Path) -> Path:
    """A directory holding a copy of the package without its extension modules, for
    ``PYTHONPATH``."""
    root = work / "pure-python"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(
        PACKAGE, root / "radiusgw", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    return root


def section(shape: str, seconds: float, runs: dict[str, Any]) -> dict[str, Any]:
    """The report's section from the means of the rounds, by scenario and variant key."""
    out: dict[str, Any] = {"shape": shape, "seconds": seconds, "scenarios": runs}
    return out | judge(out)


def judge(section: dict[str, Any]) -> dict[str, Any]:
    """Per scenario: the compiled rate over the pure one."""
    return {
        "gain": {
            key: round(
                runs["compiled"]["answered_per_s"] / max(runs["pure"]["answered_per_s"], 1e-9), 2
            )
            for key, runs in section["scenarios"].items()
        }
    }
