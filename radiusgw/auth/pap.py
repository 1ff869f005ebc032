"""PAP (RFC 2865 §5.2): User-Password, hidden with the NAS's secret and Request Authenticator."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final

from radiusgw.auth.method import (
    ACCEPTED,
    ACCOUNT_DISABLED,
    BAD_CREDENTIALS,
    Account,
    Plain,
    Verdict,
)
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Attr
from radiusgw.radius.packet import Packet

_USER_PASSWORD: Final = int(Attr.USER_PASSWORD)


class Pap(Plain):
    __slots__ = ()
    name = "pap"

    def verify(
        self, packet: Packet, first: Mapping[int, bytes], secret: bytes, account: Account | None
    ) -> Verdict:
        if account is None:
            return BAD_CREDENTIALS
        clear = crypto.unhide_password(first[_USER_PASSWORD], secret, packet.authenticator)
        if clear is None or not hmac.compare_digest(clear, account.password):
            return BAD_CREDENTIALS
        return ACCEPTED if account.enabled else ACCOUNT_DISABLED


PAP: Final = Pap()
