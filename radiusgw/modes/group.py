"""Group mode (第1条 グループ): the ISP checks the user's PAP or CHAP password itself.

Sans-I/O: the caller hands in the request's credential attributes and the cached account; the
result is None (accept) or the reason to reject. Digests are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from radiusgw.radius import crypto

if TYPE_CHECKING:  # the engine's package imports this module: no cycle at run time
    from radiusgw.engine.cache import CachedAccount

UNKNOWN_OR_WRONG = "unknown user or wrong password"
DISABLED = "account disabled"
NO_CREDENTIALS = "no User-Password or CHAP-Password"


def check_credentials(
    account: CachedAccount | None,
    *,
    secret: bytes,
    authenticator: bytes,
    user_password: bytes | None,
    chap_password: bytes | None,
    chap_challenge: bytes | None,
) -> str | None:
    """None when the credentials match; else the reject reason (same text for unknown user
    and wrong password, so that a reject does not tell which accounts exist)."""
    if user_password is None and chap_password is None:
        return NO_CREDENTIALS
    if account is None:
        return UNKNOWN_OR_WRONG
    if user_password is not None:
        # RFC 2865 §5.2: hidden with the NAS's secret and the Request Authenticator.
        clear = crypto.unhide_password(user_password, secret, authenticator)
        ok = clear is not None and hmac.compare_digest(clear, account.password)
    else:
        assert chap_password is not None
        # RFC 2865 §5.3: the challenge is CHAP-Challenge, else the Request Authenticator.
        challenge = chap_challenge if chap_challenge is not None else authenticator
        ok = crypto.chap_matches(chap_password, challenge, account.password)
    if not ok:
        return UNKNOWN_OR_WRONG
    if not account.enabled:
        return DISABLED
    return None
