"""The modules mypyc compiles (the Makefile's ``COMPILED``) declare their constants ``Final``.

Compiled, a module-level name that is not ``Final`` is looked up in the module's dictionary
at every use (a hash and a probe, in C); a ``Final`` one is a C static, or a literal folded
into the code. The engine read a dozen such names per request before they were declared.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]+")


def compiled_modules() -> list[Path]:
    makefile = (ROOT / "Makefile").read_text()
    block = makefile[makefile.index("COMPILED :=") :].split("\n\n", 1)[0]
    return [ROOT / name for name in re.findall(r"radiusgw/[\w/]+\.py", block)]


def plain_constants(path: Path, root: Path = ROOT) -> list[str]:
    """The module-level ALL_CAPS names of ``path`` bound by a plain ``=``."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno} {target.id}"
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and CONSTANT.fullmatch(target.id)
    ]


def test_the_makefile_names_the_compiled_modules() -> None:
    modules = compiled_modules()
    assert ROOT / "radiusgw/engine/core.py" in modules
    assert all(path.is_file() for path in modules)


def test_every_constant_of_a_compiled_module_is_final() -> None:
    found = [name for path in compiled_modules() for name in plain_constants(path)]
    assert found == [], "declare these Final (compiled, a plain global is a dictionary lookup)"


def test_the_check_sees_a_plain_constant(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("from typing import Final\n\nSEEN = 1\nKEPT: Final = 2\nlower = 3\n")
    assert plain_constants(module, tmp_path) == ["probe.py:3 SEEN"]
