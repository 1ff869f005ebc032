"""Group mode (第1条 グループ): the ISP checks the user's password itself.

Methods offered (also to a VPDN realm with ``authenticate = true``), chosen per request from the
attributes present, in this order: PAP (User-Password, RFC 2865 §5.2), CHAP (CHAP-Password,
§5.3), EAP (EAP-Message, RFC 3579: not offered, answered with an EAP-Failure), MS-CHAPv2 and
MS-CHAPv1 (Microsoft vendor attributes, RFC 2548). A request with none of them gets
``NO_METHOD``'s verdict. The methods and their verdicts live in ``radiusgw.auth``.

The choice is a few dictionary membership tests on the attributes already decoded, and returns
a shared method object: PAP and CHAP cost what they did before there was a choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from radiusgw.auth.chap import CHAP
from radiusgw.auth.eap import EAP_NOT_OFFERED
from radiusgw.auth.method import NO_METHOD, Method
from radiusgw.auth.microsoft import MSCHAP_V1, MSCHAP_V2, responses
from radiusgw.auth.pap import PAP
from radiusgw.radius.attributes import Attr, Microsoft
from radiusgw.radius.packet import Packet

_USER_PASSWORD: Final = int(Attr.USER_PASSWORD)
_CHAP_PASSWORD: Final = int(Attr.CHAP_PASSWORD)
_EAP_MESSAGE: Final = int(Attr.EAP_MESSAGE)
_VENDOR_SPECIFIC: Final = int(Attr.VENDOR_SPECIFIC)
_MS_CHAP2_RESPONSE: Final = int(Microsoft.MS_CHAP2_RESPONSE)
_MS_CHAP_RESPONSE: Final = int(Microsoft.MS_CHAP_RESPONSE)


def choose(packet: Packet, first: Mapping[int, bytes]) -> Method:
    """The method that answers this request (``first``: each attribute type's first value)."""
    if _USER_PASSWORD in first:
        return PAP
    if _CHAP_PASSWORD in first:
        return CHAP
    if _EAP_MESSAGE in first:
        return EAP_NOT_OFFERED
    if _VENDOR_SPECIFIC in first:
        ms = responses(packet)
        if _MS_CHAP2_RESPONSE in ms:
            return MSCHAP_V2
        if _MS_CHAP_RESPONSE in ms:
            return MSCHAP_V1
    return NO_METHOD
