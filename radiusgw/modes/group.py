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
from radiusgw.radius.attributes import MICROSOFT, Attr, Microsoft
from radiusgw.radius.packet import HEADER_LENGTH, Packet

_USER_PASSWORD: Final = int(Attr.USER_PASSWORD)
_CHAP_PASSWORD: Final = int(Attr.CHAP_PASSWORD)
_EAP_MESSAGE: Final = int(Attr.EAP_MESSAGE)
_VENDOR_SPECIFIC: Final = int(Attr.VENDOR_SPECIFIC)
_MS_CHAP2_RESPONSE: Final = int(Microsoft.MS_CHAP2_RESPONSE)
_MS_CHAP_RESPONSE: Final = int(Microsoft.MS_CHAP_RESPONSE)
_MICROSOFT: Final = MICROSOFT.to_bytes(4, "big")


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


def method_of(request: bytes) -> str:
    """The name of the method ``choose`` takes for the request whose octets these are, for the
    authentication log of an answer of any mode (a VPDN or proxy realm's request is not
    decoded for a method). One walk over the octets, compiled a C loop, that stops at a
    User-Password (PAP's requests: at the second attribute); a Vendor-Specific whose
    sub-attributes do not parse is skipped, as ``responses`` skips it."""
    end = len(request)
    chap = eap = v1 = v2 = False
    pos = HEADER_LENGTH
    while pos < end:
        if pos + 2 > end:
            return NO_METHOD.name  # what the engine could not have decoded
        kind = request[pos]
        length = request[pos + 1]
        if length < 2 or pos + length > end:
            return NO_METHOD.name
        if kind == _USER_PASSWORD:
            return PAP.name  # first in the order: nothing later changes the answer
        elif kind == _CHAP_PASSWORD:
            chap = True
        elif kind == _EAP_MESSAGE:
            eap = True
        elif kind == _VENDOR_SPECIFIC and request[pos + 2 : pos + 6] == _MICROSOFT:
            has_v1 = has_v2 = False
            sub, stop = pos + 6, pos + length
            while sub < stop:
                if sub + 2 > stop or request[sub + 1] < 2 or sub + request[sub + 1] > stop:
                    has_v1 = has_v2 = False
                    break
                if request[sub] == _MS_CHAP_RESPONSE:
                    has_v1 = True
                elif request[sub] == _MS_CHAP2_RESPONSE:
                    has_v2 = True
                sub += request[sub + 1]
            v1 = v1 or has_v1
            v2 = v2 or has_v2
        pos += length
    if chap:
        return CHAP.name
    if eap:
        return EAP_NOT_OFFERED.name
    if v2:
        return MSCHAP_V2.name
    if v1:
        return MSCHAP_V1.name
    return NO_METHOD.name
