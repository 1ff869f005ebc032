"""The error hierarchy: one root, one branch per place an error can come from.

Operator mistakes (a bad realm file, an unknown realm in ``account add``) are ``RadiusGwError``
subclasses whose ``str()`` is one sentence fit for stderr. Remote garbage never becomes one of
these: the codec raises its own ``ValueError`` (``radiusgw.radius.packet.DecodeError``) and the
server drops and counts it.
"""

from __future__ import annotations


class RadiusGwError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(RadiusGwError):
    """One or more problems in the realm files; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(RadiusGwError):
    """The account or accounting store refused an operation (one sentence, for operators)."""


class AccountLimitError(StoreError):
    """Adding accounts would pass the realm's ``max_accounts`` (第7条)."""
