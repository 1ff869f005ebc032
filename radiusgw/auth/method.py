"""The interface every authentication method implements, and the verdict it returns.

A method reads the request's credential attributes and the account (``password``, ``enabled``;
None for a user with no account) and returns a ``Verdict``: the outcome, the ``Refusal`` of a
reject (``radiusgw.refusal``: its reason is the Reply-Message), and the wire-encoded reply
attributes the method itself adds (MS-CHAP2-Success
and the MPPE keys to an accept; MS-CHAP-Error or EAP-Message to a reject). The account's own
reply attributes, and anything the realm adds, are the engine's to append: a method knows only
its protocol.

Rules every method keeps:
- Unknown user and wrong password give the same reason (``UNKNOWN_OR_WRONG``) and the same
  method attributes, so that a reject does not tell which accounts exist.
- ``DISABLED`` is told only to a caller who proved the password: the password is checked first.
- Digests are compared with ``hmac.compare_digest``.
- Cheap where it is hot: PAP and CHAP return the shared constant verdicts below, so that a PAP
  request allocates nothing here. Methods are stateless singletons.

``refuse`` is for a reject decided outside the method (a locked account, a Calling-Station-Id
that does not match): the refusal is the engine's, the attributes the method's (MS-CHAP-Error),
so that the client shows the right message. ``Outcome`` tells a failed login (counted by a
lockout) from a request that presented nothing to check.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from radiusgw.radius.packet import Packet
from radiusgw.refusal import Refusal

UNKNOWN_OR_WRONG: Final = Refusal("unknown user or wrong password")
DISABLED: Final = Refusal("account disabled")
NO_CREDENTIALS: Final = Refusal("no User-Password, CHAP-Password or MS-CHAP response")


class Outcome(enum.Enum):
    ACCEPT = "accept"
    BAD_CREDENTIALS = "bad-credentials"  # unknown user or wrong password: a failed login
    DISABLED = "disabled"  # right password, account disabled
    NO_CREDENTIALS = "no-credentials"  # nothing this realm can check
    NOT_OFFERED = "not-offered"  # a method the realm does not offer (EAP)
    LOCKED = "locked"  # locked out after failed logins (issue 17.4); refused unchecked
    NOT_PERMITTED = "not-permitted"  # from a Calling-Station-Id the account does not allow


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet), and an MS-CHAP accept builds one per request. Not frozen,
# for the same reason; read-only (the constants below are shared).
@dataclass(init=False, slots=True)
class Verdict:
    outcome: Outcome
    refusal: Refusal | None  # a reject's; None for an accept
    reply: bytes  # wire-encoded attributes the method adds to the answer

    def __init__(
        self, outcome: Outcome, refusal: Refusal | None = None, reply: bytes = b""
    ) -> None:
        self.outcome = outcome
        self.refusal = refusal
        self.reply = reply


class Account(Protocol):
    """What a method reads of an account (``radiusgw.engine.cache.CachedAccount``)."""

    @property
    def password(self) -> bytes: ...

    @property
    def enabled(self) -> bool: ...


class Method(Protocol):
    name: str  # for logs and docs: "pap", "chap", "mschap", "mschapv2", "eap"

    def verify(
        self,
        packet: Packet,
        first: Mapping[int, bytes],
        secret: bytes,
        account: Account | None,
    ) -> Verdict:
        """The verdict on ``packet`` (``first``: each attribute type's first value; ``secret``:
        the NAS's shared secret) for ``account`` (None: no such user)."""
        ...

    def refuse(
        self, packet: Packet, first: Mapping[int, bytes], outcome: Outcome, refusal: Refusal
    ) -> Verdict:
        """A reject the engine decided, with this method's failure attributes."""
        ...


# The verdicts of PAP and CHAP (and of any method with nothing to add): shared, never built
# per request.
ACCEPTED: Final = Verdict(Outcome.ACCEPT)
BAD_CREDENTIALS: Final = Verdict(Outcome.BAD_CREDENTIALS, UNKNOWN_OR_WRONG)
ACCOUNT_DISABLED: Final = Verdict(Outcome.DISABLED, DISABLED)
NOTHING_TO_CHECK: Final = Verdict(Outcome.NO_CREDENTIALS, NO_CREDENTIALS)


class Plain:
    """Base of the methods with no attributes of their own to add to a reject (PAP, CHAP)."""

    __slots__ = ()

    def refuse(
        self, packet: Packet, first: Mapping[int, bytes], outcome: Outcome, refusal: Refusal
    ) -> Verdict:
        return Verdict(outcome, refusal)


class NoCredentials(Plain):
    """The method of a request that names none this realm offers."""

    __slots__ = ()
    name = "none"

    def verify(
        self, packet: Packet, first: Mapping[int, bytes], secret: bytes, account: Account | None
    ) -> Verdict:
        return NOTHING_TO_CHECK


NO_METHOD: Final = NoCredentials()
