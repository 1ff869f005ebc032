"""The API's bearer tokens, from the TOML file ``--api-tokens FILE`` (issue 18.4).

```toml
[[token]]
name = "noc"                  # who, in the audit log
token = "a long random string"
[[token]]
name = "acme-portal"
token = "another long random string"
contract = "acme"             # optional: this contract's realms only (第5条: tenant isolation)
```

Rules:
- The file holds secrets: it is refused when group or others may read or write it (as ssh
  refuses a private key), and when a key is unknown, a name repeats, or a token is shorter than
  ``MIN_LENGTH`` characters. Each problem is one sentence naming the file (and the entry).
- A presented token is compared with every known one in constant time (``hmac.compare_digest``),
  so that the time taken tells nothing about how much of a token was right.
"""

from __future__ import annotations

import hmac
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from radiusgw.errors import RadiusGwError

MIN_LENGTH = 16
_KEYS = {"name", "token", "contract"}


class TokenFileError(RadiusGwError):
    """The tokens file cannot be used (one sentence naming it)."""


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    secret: bytes
    contract: str | None = None  # None: operator-wide

    def __repr__(self) -> str:  # never the secret
        return f"Token(name={self.name!r}, contract={self.contract!r})"


def load_tokens(path: Path) -> tuple[Token, ...]:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenFileError(
                f"{path} may be read or written by group or others (mode {stat.S_IMODE(mode):o});"
                f" it holds secrets: chmod 600 {path}"
            )
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TokenFileError(f"cannot read the API tokens file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"token"}
    if unknown:
        raise TokenFileError(f"{path}: unknown key {sorted(unknown)[0]!r}; only [[token]] tables")
    entries = data.get("token", [])
    if not isinstance(entries, list) or not entries:
        raise TokenFileError(f"{path} has no [[token]] entries")
    tokens: list[Token] = []
    for n, entry in enumerate(entries, start=1):
        where = f"{path}: token {n}"
        if not isinstance(entry, dict):
            raise TokenFileError(f"{where} is not a table")
        extra = set(entry) - _KEYS
        if extra:
            raise TokenFileError(f"{where}: unknown key {sorted(extra)[0]!r}")
        name, secret, contract = entry.get("name"), entry.get("token"), entry.get("contract")
        if not isinstance(name, str) or not name:
            raise TokenFileError(f"{where}: name must be a non-empty string")
        if not isinstance(secret, str) or len(secret) < MIN_LENGTH:
            raise TokenFileError(
                f"{where} ({name}): token must be at least {MIN_LENGTH} characters"
            )
        if contract is not None and (not isinstance(contract, str) or not contract):
            raise TokenFileError(f"{where} ({name}): contract must be a non-empty string")
        if any(t.name == name for t in tokens):
            raise TokenFileError(f"{where}: the name {name!r} is used twice")
        tokens.append(Token(name, secret.encode("utf-8"), contract))
    return tuple(tokens)


def find(tokens: tuple[Token, ...], presented: str) -> Token | None:
    """The token ``presented`` is, comparing with every one (constant time per token)."""
    given = presented.encode("utf-8")
    found = None
    for token in tokens:
        if hmac.compare_digest(token.secret, given) and found is None:
            found = token
    return found
