"""CHAP (RFC 2865 §5.3, RFC 1994): CHAP-Password = ident + MD5(ident + password + challenge);
the challenge is CHAP-Challenge, else the Request Authenticator."""

from __future__ import annotations

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

_CHAP_PASSWORD: Final = int(Attr.CHAP_PASSWORD)
_CHAP_CHALLENGE: Final = int(Attr.CHAP_CHALLENGE)


class Chap(Plain):
    __slots__ = ()
    name = "chap"

    def verify(
        self, packet: Packet, first: Mapping[int, bytes], secret: bytes, account: Account | None
    ) -> Verdict:
        if account is None:
            return BAD_CREDENTIALS
        challenge = first.get(_CHAP_CHALLENGE)
        if challenge is None:
            challenge = packet.authenticator
        if not crypto.chap_matches(first[_CHAP_PASSWORD], challenge, account.password):
            return BAD_CREDENTIALS
        return ACCEPTED if account.enabled else ACCOUNT_DISABLED


CHAP: Final = Chap()
