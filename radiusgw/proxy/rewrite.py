"""Proxy rewriting: a NAS request into an upstream request, an upstream answer into a NAS reply.

Pure functions, bytes and values in, datagrams out; the caller picks identifiers and keeps the
authenticators. A proxy is a server to the NAS and a client to the upstream, so every secret-bound
value is translated from one hop to the other and nothing signed by one side is passed on as is.

Upstream request (``upstream_request``):
- Access-Request (RFC 2865 §4.1): a new random Request Authenticator (§3). User-Password is
  un-hidden with the NAS's secret and Request Authenticator and hidden again with the upstream
  secret and the new authenticator (§5.2). CHAP-Password passes through; when the NAS sent no
  CHAP-Challenge its Request Authenticator was the challenge, so it is added as CHAP-Challenge
  (§5.3), since our new authenticator would otherwise become the challenge. The NAS's
  Message-Authenticator is dropped and a fresh one added (RFC 3579 §3.2).
- Accounting-Request (RFC 2866 §4.1): the same attributes, Request Authenticator recomputed with
  the upstream secret (§3); ``extra_delay`` seconds are added to Acct-Delay-Time (§5.2), created
  when absent, for records replayed from the spool. A NAS Message-Authenticator is dropped.
- With ``strip``, User-Name loses its realm: the text from the LAST '@' on. Not in an
  Access-Request that carries EAP-Message: the NAS copied the EAP-Response/Identity into
  User-Name (RFC 3579 §2.1), the EAP server compares the two and rejects a mismatch (FreeRADIUS:
  "Identity does not match User-Name"), and the identity inside EAP is not ours to rewrite.
- The NAS's Proxy-State attributes stay in order and ours is appended after them (RFC 2865 §5.33).

NAS reply (``nas_reply``): the upstream answer is verified before anything is read from it: the code
must answer the request's code, the Response Authenticator must match (RFC 2865 §3, RFC 2866 §3),
and a Message-Authenticator, when present, must match (RFC 3579 §3.2); an Access-Accept,
Access-Reject or Access-Challenge without one is refused when the server's
``require_message_authenticator`` says so (BlastRADIUS: only the Message-Authenticator protects an
Access-* answer against a forged MD5 collision). Anything that fails gives None, and
``radiusgw.client.answers.answer_problem`` then says why (for the log; it runs only on that path).
Then our Proxy-State is removed (the NAS's stay, in order), salt-encrypted attributes are decrypted
with the upstream secret and authenticator and encrypted again for the NAS's secret and Request
Authenticator with fresh salts unique in the packet: Tunnel-Password (RFC 2868 §3.5, tag octet
first) and MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 §2.4.2-3, Vendor-Specific 311, no tag);
MS-CHAP-MPPE-Keys (§2.4.1), hidden like User-Password, is decrypted and hidden again the same way.
The reply is signed for the NAS with its Identifier; Access-Accept/Reject/Challenge carry a
Message-Authenticator (RFC 3579 §3.2).

Probes (RFC 5997): ``status_server`` and ``probe_request`` build the datagrams that check an
upstream's health; ``radiusgw.client.answers.verify_answer`` checks any answer to a request
we signed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from radiusgw.client.answers import ACCESS_ANSWERS, ACCOUNTING_ANSWERS
from radiusgw.config.model import UpstreamServer
from radiusgw.radius import crypto, vsa
from radiusgw.radius.attributes import MICROSOFT as MICROSOFT_VENDOR
from radiusgw.radius.attributes import AcctStatusType, Attr, Code, Microsoft
from radiusgw.radius.crypto import md5
from radiusgw.radius.packet import (
    HEADER_LENGTH,
    MAX_LENGTH,
    Packet,
    as_integer,
    decode,
    encode,
    encode_attributes,
    integer,
)

PROBE_USER: Final = b"radiusgw-probe"  # the user of status_check = "request" probes
PROBE_PASSWORD: Final = b"radiusgw-probe"
NAS_IDENTIFIER: Final = b"radiusgw"  # RFC 2865 §4.1: a request names its NAS (here: the gateway)
MICROSOFT: Final = MICROSOFT_VENDOR.to_bytes(
    4, "big"
)  # RFC 2548 §2: a Microsoft VSA's first octets
MS_CHAP_MPPE_KEYS: Final = int(Microsoft.MS_CHAP_MPPE_KEYS)  # RFC 2548 §2.4.1 (MS-CHAP v1)
MS_MPPE_SEND_KEY: Final = int(Microsoft.MS_MPPE_SEND_KEY)  # RFC 2548 §2.4.2
MS_MPPE_RECV_KEY: Final = int(Microsoft.MS_MPPE_RECV_KEY)  # RFC 2548 §2.4.3
MAX_DELAY: Final = 2**32 - 1  # Acct-Delay-Time is a 32-bit unsigned integer (RFC 2866 §5.2)

_ACCESS_REQUEST: Final = int(Code.ACCESS_REQUEST)
_ACCOUNTING_REQUEST: Final = int(Code.ACCOUNTING_REQUEST)
_STATUS_SERVER: Final = int(Code.STATUS_SERVER)
_USER_NAME: Final = int(Attr.USER_NAME)
_USER_PASSWORD: Final = int(Attr.USER_PASSWORD)
_CHAP_PASSWORD: Final = int(Attr.CHAP_PASSWORD)
_CHAP_CHALLENGE: Final = int(Attr.CHAP_CHALLENGE)
_PROXY_STATE: Final = int(Attr.PROXY_STATE)
_MESSAGE_AUTHENTICATOR: Final = int(Attr.MESSAGE_AUTHENTICATOR)
_ACCT_DELAY_TIME: Final = int(Attr.ACCT_DELAY_TIME)
_ACCT_STATUS_TYPE: Final = int(Attr.ACCT_STATUS_TYPE)
_ACCT_SESSION_ID: Final = int(Attr.ACCT_SESSION_ID)
_NAS_IDENTIFIER: Final = int(Attr.NAS_IDENTIFIER)
_TUNNEL_PASSWORD: Final = int(Attr.TUNNEL_PASSWORD)
_VENDOR_SPECIFIC: Final = int(Attr.VENDOR_SPECIFIC)
_EAP_MESSAGE: Final = int(Attr.EAP_MESSAGE)  # RFC 3579 §3.1

_ANSWERS: Final = {_ACCESS_REQUEST: ACCESS_ANSWERS, _ACCOUNTING_REQUEST: ACCOUNTING_ANSWERS}

_CHAP_CHALLENGE_HEADER: Final = bytes((_CHAP_CHALLENGE, 18))
_PASSWORD16_HEADER: Final = bytes((_USER_PASSWORD, 18))  # its value: a Request Authenticator

Attributes = list[tuple[int, bytes]]


class RewriteError(ValueError):
    """The NAS request cannot be forwarded as it is; ``str()`` says why (remote data, not ours)."""


def strip_realm(user_name: bytes) -> bytes:
    """``user@realm`` -> ``user``: cut at the LAST '@', as the router matches realms.

    A name that would be left empty is kept whole: User-Name is at least one octet (RFC 2865 §5.1).
    """
    at = user_name.rfind(b"@")
    return user_name[:at] if at > 0 else user_name


def upstream_request(
    nas_packet: Packet,
    nas_secret: bytes,
    server: UpstreamServer,
    *,
    strip: bool,
    identifier: int,
    proxy_state: bytes,
    extra_delay: float = 0.0,
    authenticator: bytes | None = None,
) -> tuple[bytes, bytes]:
    """The datagram to send upstream and its Request Authenticator (to verify the answer with).

    ``server`` is the realm's ``UpstreamServer`` (only its secret is read). ``authenticator``
    is the new Request Authenticator of an Access-Request (16 random octets, RFC 2865 §3),
    drawn here when not given. Raises
    ``RewriteError`` when the NAS request cannot be forwarded (a code other than Access-Request
    and Accounting-Request, a malformed User-Password, or a result over 4096 octets).
    """
    code = nas_packet.code
    try:
        if code == _ACCESS_REQUEST:
            return _access_request(
                nas_packet, nas_secret, server.secret, strip, identifier, proxy_state, authenticator
            )
        if code == _ACCOUNTING_REQUEST:
            return _accounting_request(
                nas_packet, server.secret, strip, identifier, proxy_state, extra_delay
            )
    except RewriteError:
        raise
    except ValueError as exc:  # sign_request: over 4096 octets (RFC 2865 §3)
        raise RewriteError(str(exc)) from None
    raise RewriteError(f"code {code} is not forwarded (only Access-Request and Accounting-Request)")


def _access_request(
    nas: Packet,
    nas_secret: bytes,
    secret: bytes,
    strip: bool,
    identifier: int,
    proxy_state: bytes,
    authenticator: bytes | None,
) -> tuple[bytes, bytes]:
    if authenticator is None:
        authenticator = crypto.new_authenticator()
    # The NAS's attributes are copied from its datagram as runs of wire octets; only the few
    # that change are re-encoded (this is the per-request hot path of proxy mode).
    raw = nas.raw or encode(nas)
    parts: list[bytes] = []
    start = pos = HEADER_LENGTH  # ``start``: the run of attributes not yet copied
    chap = challenge = eap = False
    stripped: list[tuple[int, int, int]] = []  # (index in parts, wire start, end) per name cut
    for attr_type, value in nas.attributes:
        end = pos + 2 + len(value)
        if attr_type == _USER_NAME:
            if strip:
                name = strip_realm(value)
                if len(name) != len(value):
                    stripped.append((len(parts) + 1, pos, end))
                    parts += (raw[start:pos], bytes((_USER_NAME, len(name) + 2)), name)
                    start = end
        elif attr_type == _USER_PASSWORD:
            if len(value) == 16:  # the usual password, one block: re-hidden with one XOR
                hidden = _rehide16(value, nas_secret, nas.authenticator, secret, authenticator)
                parts += (raw[start:pos], _PASSWORD16_HEADER, hidden)
                start = end
                pos = end
                continue
            plain = crypto.unhide_password(value, nas_secret, nas.authenticator)
            if plain is None:
                raise RewriteError(
                    f"User-Password of {len(value)} octets is not 16..128 in steps of 16 "
                    "(RFC 2865 §5.2)"
                )
            hidden = crypto.hide_password(plain, secret, authenticator)
            parts += (raw[start:pos], bytes((_USER_PASSWORD, len(hidden) + 2)), hidden)
            start = end
        elif attr_type == _MESSAGE_AUTHENTICATOR:
            # Signed with the NAS's secret; a fresh one goes last (RFC 3579 §3.2).
            parts.append(raw[start:pos])
            start = end
        elif attr_type == _CHAP_PASSWORD:
            chap = True
        elif attr_type == _CHAP_CHALLENGE:
            challenge = True
        elif attr_type == _EAP_MESSAGE:
            eap = True
        pos = end
    parts.append(raw[start:pos])
    if eap:
        # RFC 3579 §2.1: User-Name is the EAP identity; the name goes as the NAS sent it. (Put
        # back afterwards, not checked before: the usual request carries no EAP and pays nothing.)
        for index, name_start, name_end in stripped:
            parts[index], parts[index + 1] = raw[name_start:name_end], b""
    if chap and not challenge:
        # RFC 2865 §5.3: without CHAP-Challenge the Request Authenticator is the challenge; ours
        # is new, so the NAS's must travel as CHAP-Challenge for the upstream to check the hash.
        parts += (_CHAP_CHALLENGE_HEADER, nas.authenticator)
    # RFC 2865 §5.33: ours after the NAS's.
    parts += (bytes((_PROXY_STATE, len(proxy_state) + 2)), proxy_state)
    datagram = crypto.sign_request(
        _ACCESS_REQUEST, identifier, b"".join(parts), secret, authenticator=authenticator
    )
    return datagram, authenticator


@lru_cache(maxsize=1024)
def _md5_of(secret: bytes) -> Any:
    """MD5 state after ``secret``: the prefix of every RFC 2865 §5.2 block key, once per secret."""
    return md5(secret)


def _rehide16(
    hidden: bytes, nas_secret: bytes, nas_authenticator: bytes, secret: bytes, authenticator: bytes
) -> bytes:
    """A one-block User-Password from the NAS hop to the upstream hop (RFC 2865 §5.2).

    p = c xor MD5(S_nas + RA_nas) and c' = p xor MD5(S + RA): the padded block itself never
    needs its zeros stripped and put back (the result is what unhide then hide give).
    """
    theirs = _md5_of(nas_secret).copy()
    theirs.update(nas_authenticator)
    ours = _md5_of(secret).copy()
    ours.update(authenticator)
    return (
        int.from_bytes(hidden, "big")
        ^ int.from_bytes(theirs.digest(), "big")
        ^ int.from_bytes(ours.digest(), "big")
    ).to_bytes(16, "big")


def _accounting_request(
    nas: Packet, secret: bytes, strip: bool, identifier: int, proxy_state: bytes, extra: float
) -> tuple[bytes, bytes]:
    add = int(extra + 0.5) if extra > 0 else 0  # whole seconds (RFC 2866 §5.2)
    out: Attributes = []
    delayed = False
    for attr_type, value in nas.attributes:
        if attr_type == _USER_NAME:
            if strip:
                value = strip_realm(value)
        elif attr_type == _MESSAGE_AUTHENTICATOR:
            continue  # RFC 3579 defines none for accounting; the NAS's was for its secret
        elif attr_type == _ACCT_DELAY_TIME and add and not delayed:
            # A value that is not 4 octets is treated as 0 rather than forwarded broken.
            value = integer(min((as_integer(value) or 0) + add, MAX_DELAY))
            delayed = True
        out.append((attr_type, value))
    if add and not delayed:
        out.append((_ACCT_DELAY_TIME, integer(min(add, MAX_DELAY))))
    out.append((_PROXY_STATE, proxy_state))
    # RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret).
    datagram = crypto.sign_request(
        _ACCOUNTING_REQUEST, identifier, encode_attributes(out), secret, message_authenticator=False
    )
    return datagram, datagram[4:20]


def status_server(secret: bytes, *, identifier: int) -> tuple[bytes, bytes]:
    """A Status-Server (RFC 5997 §3) and its Request Authenticator.

    It must carry a Message-Authenticator (RFC 5997 §3); the same packet serves the
    authentication port (answered with Access-Accept) and the accounting port (Accounting-Response).
    """
    attrs = encode_attributes([(_NAS_IDENTIFIER, NAS_IDENTIFIER)])
    datagram = crypto.sign_request(_STATUS_SERVER, identifier, attrs, secret)
    return datagram, datagram[4:20]


def probe_request(secret: bytes, *, identifier: int, accounting: bool) -> tuple[bytes, bytes]:
    """A real request, to probe a server that does not answer Status-Server.

    Authentication: an Access-Request for ``radiusgw-probe`` (accept or reject, any verified
    answer proves the server alive). Accounting: as FreeRADIUS does, an Accounting-Request Stop
    for session ``radiusgw-probe``, so that a customer can recognise and ignore it.
    """
    if accounting:
        attrs: Attributes = [
            (_USER_NAME, PROBE_USER),
            (_ACCT_STATUS_TYPE, integer(int(AcctStatusType.STOP))),
            (_ACCT_SESSION_ID, PROBE_USER),
            (_NAS_IDENTIFIER, NAS_IDENTIFIER),
        ]
        datagram = crypto.sign_request(
            _ACCOUNTING_REQUEST,
            identifier,
            encode_attributes(attrs),
            secret,
            message_authenticator=False,
        )
        return datagram, datagram[4:20]
    authenticator = crypto.new_authenticator()
    attrs = [
        (_USER_NAME, PROBE_USER),
        (_USER_PASSWORD, crypto.hide_password(PROBE_PASSWORD, secret, authenticator)),
        (_NAS_IDENTIFIER, NAS_IDENTIFIER),
    ]
    datagram = crypto.sign_request(
        _ACCESS_REQUEST, identifier, encode_attributes(attrs), secret, authenticator=authenticator
    )
    return datagram, authenticator


def nas_reply(
    upstream_raw: bytes,
    server_secret: bytes,
    upstream_request_authenticator: bytes,
    nas_packet: Packet,
    nas_secret: bytes,
    our_proxy_state: bytes,
    *,
    require_message_authenticator: bool = False,
) -> bytes | None:
    """The upstream's answer, verified and translated into the reply for the NAS; None if unusable.

    ``require_message_authenticator`` also refuses Access-* answers without one (BlastRADIUS
    hardening; the server's setting, true by default); without it a missing one is accepted.
    A wrong one is always refused.
    """
    codes = _ANSWERS.get(nas_packet.code)
    if codes is None:
        return None
    # One walk over the datagram with the checks of ``decode`` (RFC 2865 §3), noting what the
    # translation needs, instead of a Packet: this runs once per proxied request.
    received = len(upstream_raw)
    if received < HEADER_LENGTH:
        return None
    length = (upstream_raw[2] << 8) | upstream_raw[3]
    if length < HEADER_LENGTH or length > MAX_LENGTH or length > received:
        return None
    raw = upstream_raw if length == received else upstream_raw[:length]
    code = raw[0]
    if code not in codes:
        return None
    drop: list[int] = []  # where the attributes not passed on start: Message-Authenticators
    ma_offset = ours = -1
    salted = False
    pos = HEADER_LENGTH
    while pos < length:
        if pos + 2 > length:
            return None
        end = pos + raw[pos + 1]
        if end < pos + 2 or end > length:
            return None
        attr_type = raw[pos]
        if attr_type == _MESSAGE_AUTHENTICATOR:
            # Signed with the upstream secret; sign_response adds ours.
            drop.append(pos)
            if ma_offset < 0:
                ma_offset = pos + 2
        elif attr_type == _PROXY_STATE:
            # RFC 2865 §5.33: take out the Proxy-State we added (the last one with our value);
            # the NAS's own stay where they are, in their order.
            if raw[pos + 2 : end] == our_proxy_state:
                ours = pos
        elif attr_type == _TUNNEL_PASSWORD or (
            attr_type == _VENDOR_SPECIFIC and raw[pos + 2 : pos + 6] == MICROSOFT
        ):
            salted = True
        pos = end
    # RFC 2865 §3, RFC 2866 §3: the Response Authenticator; RFC 3579 §3.2 the Message-Authenticator.
    if not crypto.response_authenticator_matches(
        raw, server_secret, upstream_request_authenticator
    ):
        return None
    if ma_offset >= 0:
        if not crypto.response_message_authenticator_matches(
            raw, ma_offset, server_secret, upstream_request_authenticator
        ):
            return None
    elif require_message_authenticator and codes is ACCESS_ANSWERS:
        return None
    if salted:
        attributes = _translate(
            decode(raw),
            our_proxy_state,
            server_secret,
            upstream_request_authenticator,
            nas_secret,
            nas_packet,
        )
        if attributes is None:
            return None
    else:
        if ours >= 0:
            drop.append(ours)
            drop.sort()
        parts = []
        start = HEADER_LENGTH
        for cut in drop:
            parts.append(raw[start:cut])
            start = cut + raw[cut + 1]
        parts.append(raw[start:])
        attributes = b"".join(parts)
    # None when adding our Message-Authenticator passes 4096 octets (RFC 2865 §3).
    return crypto.sign_response(
        code,
        nas_packet.identifier,
        nas_packet.authenticator,
        attributes,
        nas_secret,
        message_authenticator=code in ACCESS_ANSWERS,
    )


def _translate(
    answer: Packet,
    our_proxy_state: bytes,
    server_secret: bytes,
    upstream_request_authenticator: bytes,
    nas_secret: bytes,
    nas_packet: Packet,
) -> bytes | None:
    """The attributes of a verified answer that carries salt-encrypted ones, for the NAS."""
    attrs = list(answer.attributes)
    for i in range(len(attrs) - 1, -1, -1):  # RFC 2865 §5.33, as in ``nas_reply``
        if attrs[i][0] == _PROXY_STATE and attrs[i][1] == our_proxy_state:
            del attrs[i]
            break
    salts = crypto.SaltSource()
    out: Attributes = []
    for attr_type, value in attrs:
        if attr_type == _MESSAGE_AUTHENTICATOR:
            continue
        if attr_type == _TUNNEL_PASSWORD:
            translated = _tunnel_password(
                value, server_secret, upstream_request_authenticator, nas_secret, nas_packet, salts
            )
            if translated is None:
                return None
            value = translated
        elif attr_type == _VENDOR_SPECIFIC and value[:4] == MICROSOFT:
            translated = _microsoft(
                value, server_secret, upstream_request_authenticator, nas_secret, nas_packet, salts
            )
            if translated is None:
                return None
            value = translated
        out.append((attr_type, value))
    return encode_attributes(out)


def _resalt(
    value: bytes,
    secret: bytes,
    authenticator: bytes,
    nas_secret: bytes,
    nas_packet: Packet,
    salts: crypto.SaltSource,
) -> bytes | None:
    """Salt + cipher for the upstream hop -> salt + cipher for the NAS hop (RFC 2868 §3.5)."""
    plain = crypto.salt_decrypt(value, secret, authenticator)
    if plain is None:
        return None
    return crypto.salt_encrypt(plain, nas_secret, nas_packet.authenticator, salts.next())


def _tunnel_password(
    value: bytes,
    secret: bytes,
    authenticator: bytes,
    nas_secret: bytes,
    nas_packet: Packet,
    salts: crypto.SaltSource,
) -> bytes | None:
    # RFC 2868 §3.5: Tag (always present for Tunnel-Password), Salt, String.
    if len(value) < 1:
        return None
    body = _resalt(value[1:], secret, authenticator, nas_secret, nas_packet, salts)
    return None if body is None else value[:1] + body


def _microsoft(
    value: bytes,
    secret: bytes,
    authenticator: bytes,
    nas_secret: bytes,
    nas_packet: Packet,
    salts: crypto.SaltSource,
) -> bytes | None:
    """A Microsoft VSA (RFC 2548 §2: Vendor-Id, then type/length/value sub-attributes).

    MS-MPPE-Send-Key and MS-MPPE-Recv-Key are salt-encrypted (§2.4.2-3, no tag) and
    MS-CHAP-MPPE-Keys is hidden like User-Password (§2.4.1, RFC 2865 §5.2); all three are
    translated. Other sub-attributes pass as they are. A VSA whose sub-attributes do not parse
    is passed unchanged (it can hold no key we could read).
    """
    parsed = vsa.split(value)
    if parsed is None:
        return value
    subs = parsed[1]
    changed = False
    for n, (sub_type, data) in enumerate(subs):
        if sub_type in (MS_MPPE_SEND_KEY, MS_MPPE_RECV_KEY):
            body = _resalt(data, secret, authenticator, nas_secret, nas_packet, salts)
            if body is None:
                return None
            subs[n] = (sub_type, body)
            changed = True
        elif sub_type == MS_CHAP_MPPE_KEYS:
            keys = crypto.unhide_blocks(data, secret, authenticator)
            if keys is None:
                return None
            subs[n] = (sub_type, crypto.hide_blocks(keys, nas_secret, nas_packet.authenticator))
            changed = True
    return vsa.join(MICROSOFT_VENDOR, subs) if changed else value
