"""EAP (RFC 3579) where it is not offered: an Access-Reject the supplicant understands at once.

A group realm checks passwords itself and runs no EAP server. An Access-Request carrying
EAP-Message gets an Access-Reject with an EAP-Message holding an EAP-Failure (RFC 3579 §2.6.1:
"the Access-Reject MUST include an EAP-Message attribute encapsulating an EAP-Failure"): code 4,
the Identifier of the request's EAP packet, length 4 (RFC 3748 §4.2). The engine adds the
Message-Authenticator every answer carries (§3.2: required with EAP-Message). Without it the
supplicant would wait out its timeouts before giving up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from radiusgw.auth.method import Account, Outcome, Plain, Verdict
from radiusgw.radius.attributes import Attr
from radiusgw.radius.packet import Packet
from radiusgw.refusal import Refusal

_EAP_MESSAGE: Final = int(Attr.EAP_MESSAGE)
EAP_FAILURE: Final = 4  # RFC 3748 §4.2
NOT_OFFERED: Final = Refusal("EAP is not offered in this realm")


def eap_failure(identifier: int) -> bytes:
    """A wire-encoded EAP-Message attribute holding an EAP-Failure (RFC 3748 §4.2)."""
    return bytes((_EAP_MESSAGE, 6, EAP_FAILURE, identifier, 0, 4))


class EapNotOffered(Plain):
    __slots__ = ()
    name = "eap"

    def verify(
        self, packet: Packet, first: Mapping[int, bytes], secret: bytes, account: Account | None
    ) -> Verdict:
        return self.refuse(packet, first, Outcome.NOT_OFFERED, NOT_OFFERED)

    def refuse(
        self, packet: Packet, first: Mapping[int, bytes], outcome: Outcome, refusal: Refusal
    ) -> Verdict:
        eap = first.get(_EAP_MESSAGE, b"")
        # The Identifier is the EAP packet's second octet; a packet too short to have one
        # is answered with 0 (the supplicant then drops it, as it would drop any mismatch).
        return Verdict(outcome, refusal, eap_failure(eap[1] if len(eap) >= 2 else 0))


EAP_NOT_OFFERED: Final = EapNotOffered()
