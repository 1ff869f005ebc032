"""Types of the conftest fixtures, for the tests' annotations."""

from collections.abc import Callable
from pathlib import Path

Write = Callable[[str, str], Path]  # write(name, toml_text) -> path of the file written
Problems = Callable[[], list[str]]  # problems() -> check_directory lines, directory left out

# Pieces of realm files that tests glue together (``write`` drops indentation).
HEAD = """
[contract]
id = "c"
name = "C"
"""
CLIENT = """
[[client]]
address = "192.0.2.1"
secret = "client-secret"
"""
GROUP_REALM = """
[[realm]]
name = "c.example"
mode = "group"
max_accounts = 10
"""
PROXY_REALM = """
[[realm]]
name = "p.example"
mode = "proxy"
[[realm.server]]
address = "203.0.113.20"
secret = "upstream-secret"
"""
VPDN_REALM = """
[[realm]]
name = "v.example"
mode = "vpdn"
carrier = "K"
[[realm.lns]]
address = "192.0.2.10"
secret = "tunnel-secret"
"""
GROUP_CONTRACT = HEAD + CLIENT + GROUP_REALM
