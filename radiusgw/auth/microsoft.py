"""MS-CHAPv1 (RFC 2433) and MS-CHAPv2 (RFC 2759) over RADIUS, with the attributes of RFC 2548.

The request carries MS-CHAP-Challenge (§2.1.2: 8 octets for v1, 16 for v2) and MS-CHAP-Response
(§2.1.3) or MS-CHAP2-Response (§2.3), each inside a Microsoft Vendor-Specific (311). The
challenge is the NAS's; the gateway keeps no state between requests.

An accept adds:
- v2: MS-CHAP2-Success, the Ident of the response and the authenticator response "S=..."
  (RFC 2759 §8.7), which the peer checks to know the server knew its password; MS-MPPE-Recv-Key
  and MS-MPPE-Send-Key, the RFC 3079 §3 start keys, salt-encrypted (RFC 2548 §2.4.2-3) with
  salts unique in the packet;
- v1: MS-CHAP-MPPE-Keys (§2.4.1), hidden as User-Password is (RFC 2865 §5.2);
- both: MS-MPPE-Encryption-Policy 1 (allowed, §2.4.4) and MS-MPPE-Encryption-Types 6 (40- or
  128-bit RC4, §2.4.5): what FreeRADIUS's mschap module sends by default.

A reject adds MS-CHAP-Error (§2.1.5) with the Ident of the response and the failure string of
RFC 2759 §6 / RFC 2433 §5: "E=691" (wrong password, and unknown user: the same answer) or
"E=647" (account disabled, told only after the password matched; also a locked-out account),
"E=649" (a Calling-Station-Id the account does not allow); R=0, since a retry would need a
new challenge from the NAS. v2 adds C= (a new challenge, required by §6), V=3 and M=.

The NT response is computed over the User-Name as sent, without a "DOMAIN\\" prefix (RFC 2759
§8.2: the user name without any domain; FreeRADIUS's with_ntdomain_hack). With a realm,
"alice@acme.example" is the name the peer typed and hashed.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Final

from radiusgw.auth import mschap
from radiusgw.auth.method import (
    DISABLED,
    NOTHING_TO_CHECK,
    UNKNOWN_OR_WRONG,
    Account,
    Outcome,
    Verdict,
)
from radiusgw.radius import crypto, vsa
from radiusgw.radius.attributes import MICROSOFT, Attr, Microsoft
from radiusgw.radius.packet import Packet, integer
from radiusgw.refusal import Refusal

_USER_NAME: Final = int(Attr.USER_NAME)
_CHALLENGE: Final = int(Microsoft.MS_CHAP_CHALLENGE)
_RESPONSE_V1: Final = int(Microsoft.MS_CHAP_RESPONSE)
_RESPONSE_V2: Final = int(Microsoft.MS_CHAP2_RESPONSE)
_ERROR: Final = int(Microsoft.MS_CHAP_ERROR)
_SUCCESS: Final = int(Microsoft.MS_CHAP2_SUCCESS)
_MPPE_KEYS: Final = int(Microsoft.MS_CHAP_MPPE_KEYS)
_SEND_KEY: Final = int(Microsoft.MS_MPPE_SEND_KEY)
_RECV_KEY: Final = int(Microsoft.MS_MPPE_RECV_KEY)
_RESPONSE_LENGTH: Final = 50  # both responses: RFC 2548 §2.1.3 and §2.3 (Vendor-Length 52)

WRONG_PASSWORD: Final = 691  # RFC 2759 §6 ERROR_AUTHENTICATION_FAILURE
ACCOUNT_DISABLED: Final = 647  # RFC 2759 §6 ERROR_ACCOUNT_DISABLED
NO_DIALIN_PERMISSION: Final = 649  # RFC 2759 §6 ERROR_NO_DIALIN_PERMISSION
ENCRYPTION_ALLOWED: Final = 1  # RFC 2548 §2.4.4
RC4_40_OR_128: Final = 6  # RFC 2548 §2.4.5: 0x2 (40-bit) | 0x4 (128-bit)
_MESSAGES: Final = {
    WRONG_PASSWORD: "Authentication failed",
    ACCOUNT_DISABLED: "Account disabled",
    NO_DIALIN_PERMISSION: "No dial-in permission",
}
# The engine's refusals (issue 17.4): a lockout is an account disabled for a time (§6 has no
# lockout code), a Calling-Station-Id not allowed is no dial-in permission from there.
_CODES: Final = {
    Outcome.DISABLED: ACCOUNT_DISABLED,
    Outcome.LOCKED: ACCOUNT_DISABLED,
    Outcome.NOT_PERMITTED: NO_DIALIN_PERMISSION,
}

# Added to every MS-CHAP accept, encoded once.
_POLICY: Final = vsa.attribute(
    MICROSOFT, int(Microsoft.MS_MPPE_ENCRYPTION_POLICY), integer(ENCRYPTION_ALLOWED)
) + vsa.attribute(MICROSOFT, int(Microsoft.MS_MPPE_ENCRYPTION_TYPES), integer(RC4_40_OR_128))


def responses(packet: Packet) -> Mapping[int, bytes]:
    """The Microsoft sub-attributes of the request, first value of each type."""
    return vsa.find(packet.attributes, MICROSOFT)


def _error(ident: int, code: int, version: int) -> bytes:
    """MS-CHAP-Error (RFC 2548 §2.1.5): Ident + the failure string of RFC 2759 §6."""
    text = f"E={code} R=0"
    if version == 2:
        text += f" C={os.urandom(16).hex().upper()} V=3 M={_MESSAGES[code]}"
    return vsa.attribute(MICROSOFT, _ERROR, bytes((ident,)) + text.encode("ascii"))


class _MsChap:
    """What v1 and v2 share: finding the response, the order of checks, the failure answer."""

    __slots__ = ()
    name = ""
    version = 0
    challenge_length = 0
    response_type = 0

    def verify(
        self, packet: Packet, first: Mapping[int, bytes], secret: bytes, account: Account | None
    ) -> Verdict:
        ms = responses(packet)
        challenge = ms.get(_CHALLENGE)
        response = ms.get(self.response_type)
        if (
            challenge is None
            or response is None
            or len(challenge) != self.challenge_length
            or len(response) != _RESPONSE_LENGTH
        ):
            return NOTHING_TO_CHECK
        ident = response[0]
        if account is None:
            return self._failure(ident, Outcome.BAD_CREDENTIALS, UNKNOWN_OR_WRONG)
        accepted = self._check(packet, first, secret, account, challenge, response)
        if accepted is None:
            return self._failure(ident, Outcome.BAD_CREDENTIALS, UNKNOWN_OR_WRONG)
        if not account.enabled:
            return self._failure(ident, Outcome.DISABLED, DISABLED)
        return accepted

    def refuse(
        self, packet: Packet, first: Mapping[int, bytes], outcome: Outcome, refusal: Refusal
    ) -> Verdict:
        response = responses(packet).get(self.response_type)
        if not response:
            return Verdict(outcome, refusal)
        return self._failure(response[0], outcome, refusal)

    def _failure(self, ident: int, outcome: Outcome, refusal: Refusal) -> Verdict:
        code = _CODES.get(outcome, WRONG_PASSWORD)
        return Verdict(outcome, refusal, _error(ident, code, self.version))

    def _check(
        self,
        packet: Packet,
        first: Mapping[int, bytes],
        secret: bytes,
        account: Account,
        challenge: bytes,
        response: bytes,
    ) -> Verdict | None:
        """The accept verdict when the response proves the password, else None."""
        raise NotImplementedError


class MsChapV1(_MsChap):
    """RFC 2433 over RADIUS: MS-CHAP-Response is Ident, Flags, LM-Response, NT-Response."""

    __slots__ = ()
    name = "mschap"
    version = 1
    challenge_length = 8
    response_type = _RESPONSE_V1

    def _check(
        self,
        packet: Packet,
        first: Mapping[int, bytes],
        secret: bytes,
        account: Account,
        challenge: bytes,
        response: bytes,
    ) -> Verdict | None:
        password = account.password
        # RFC 2548 §2.1.3: Flags 1 says use the NT-Response; 0 says only the LM-Response counts,
        # and LAN Manager responses are not accepted (RFC 2433 §A.8: LmPasswordHash is DES over
        # the upper-cased password in 7-octet halves; Windows has not sent it since Vista).
        if not response[1] & 1:
            return None
        expected = mschap.challenge_response(challenge, mschap.nt_password_hash(password))
        if not hmac.compare_digest(expected, response[26:50]):
            return None
        keys = crypto.hide_blocks(mschap.mppe_v1_keys(password), secret, packet.authenticator)
        return Verdict(Outcome.ACCEPT, None, vsa.attribute(MICROSOFT, _MPPE_KEYS, keys) + _POLICY)


class MsChapV2(_MsChap):
    """RFC 2759 over RADIUS: MS-CHAP2-Response is Ident, Flags, Peer-Challenge (16), Reserved
    (8), NT-Response (24)."""

    __slots__ = ()
    name = "mschapv2"
    version = 2
    challenge_length = 16
    response_type = _RESPONSE_V2

    def _check(
        self,
        packet: Packet,
        first: Mapping[int, bytes],
        secret: bytes,
        account: Account,
        challenge: bytes,
        response: bytes,
    ) -> Verdict | None:
        user_name = first.get(_USER_NAME, b"")
        user_name = user_name[user_name.rfind(b"\\") + 1 :]  # RFC 2759 §8.2: no domain
        peer_challenge, nt_response = response[2:18], response[26:50]
        password_hash = mschap.nt_password_hash(account.password)
        expected = mschap.generate_nt_response(challenge, peer_challenge, user_name, password_hash)
        if not hmac.compare_digest(expected, nt_response):
            return None
        success = bytes((response[0],)) + mschap.authenticator_response(
            password_hash, nt_response, peer_challenge, challenge, user_name
        )
        send, recv = mschap.mppe_v2_keys(password_hash, nt_response)
        salts = crypto.SaltSource()
        authenticator = packet.authenticator
        reply = (
            vsa.attribute(MICROSOFT, _SUCCESS, success)
            + vsa.attribute(
                MICROSOFT, _RECV_KEY, crypto.salt_encrypt(recv, secret, authenticator, salts.next())
            )
            + vsa.attribute(
                MICROSOFT, _SEND_KEY, crypto.salt_encrypt(send, secret, authenticator, salts.next())
            )
            + _POLICY
        )
        return Verdict(Outcome.ACCEPT, None, reply)


MSCHAP_V1: Final = MsChapV1()
MSCHAP_V2: Final = MsChapV2()
