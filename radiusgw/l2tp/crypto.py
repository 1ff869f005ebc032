"""The cryptography of the L2TPv2 control channel: hidden AVPs and tunnel authentication.

Both are MD5 over the tunnel secret, as RFC 2661 demands; digests are compared with
``hmac.compare_digest``. Functions take and return bytes and never log.

- Hidden AVP values, RFC 2661 §4.3. The value is first wrapped in the hidden subformat
  (2-octet original length, the value, padding), then XORed 16 octets at a time with
  b(1) = MD5(Attribute Type as 2 octets + secret + Random Vector) and
  b(i) = MD5(secret + c(i-1)), c(i) being the previous ciphertext block. A last block shorter
  than 16 octets takes the first octets of its b(i). The Random Vector is the value of the most
  recent Random Vector AVP before the hidden AVP in the same message.
- Tunnel authentication, RFC 2661 §5.1.1 (CHAP-like, RFC 1994): a Challenge Response is
  MD5(message type as one octet + secret + challenge), the message type being that of the
  message carrying the response: 2 (SCCRP) from the LNS, 3 (SCCCN) from the LAC.
"""

from __future__ import annotations

import hmac

from radiusgw.l2tp.avp import MessageType
from radiusgw.radius.crypto import md5

BLOCK = 16


def _keystream_xor(data: bytes, first_key: bytes, secret: bytes, *, decrypt: bool) -> bytes:
    """XOR ``data`` block by block; the chaining always runs on the ciphertext blocks."""
    out = bytearray()
    key = first_key
    for i in range(0, len(data), BLOCK):
        block = data[i : i + BLOCK]
        mixed = bytes(a ^ b for a, b in zip(block, key, strict=False))
        out += mixed
        cipher = block if decrypt else mixed
        key = md5(secret + cipher).digest()
    return bytes(out)


def _first_key(attr_type: int, secret: bytes, random_vector: bytes) -> bytes:
    # RFC 2661 §4.3: the Attribute Type (2 octets, network order), the secret, the vector.
    return md5(attr_type.to_bytes(2, "big") + secret + random_vector).digest()


def hide_value(
    attr_type: int, value: bytes, secret: bytes, random_vector: bytes, padding: bytes = b""
) -> bytes:
    """The hidden form of an AVP value (RFC 2661 §4.3): encrypt(length + value + padding).

    ``padding`` is for the caller to choose (any octets, to mask the length); the message
    codec rounds the subformat up to whole 16-octet blocks with zeros.
    """
    if len(value) > 0xFFFF:
        raise ValueError("a hidden value's original length must fit in 2 octets")
    plain = len(value).to_bytes(2, "big") + value + padding
    return _keystream_xor(
        plain, _first_key(attr_type, secret, random_vector), secret, decrypt=False
    )


def reveal_value(
    attr_type: int, hidden: bytes, secret: bytes, random_vector: bytes
) -> bytes | None:
    """The original value of a hidden AVP, or None when the subformat does not fit.

    None means fewer than the 2 octets of original length arrived, or the decrypted original
    length runs past the data: with a wrong secret this is the likely outcome, but not a
    certain one (a wrong secret can also decrypt to a plausible length and garbage).
    """
    if len(hidden) < 2:
        return None
    plain = _keystream_xor(
        hidden, _first_key(attr_type, secret, random_vector), secret, decrypt=True
    )
    length = int.from_bytes(plain[:2], "big")
    if length > len(plain) - 2:
        return None
    return plain[2 : 2 + length]


def challenge_response(message_type: MessageType | int, secret: bytes, challenge: bytes) -> bytes:
    """RFC 2661 §5.1.1: MD5(message type as one octet + secret + challenge)."""
    return md5(bytes((int(message_type) & 0xFF,)) + secret + challenge).digest()


def response_matches(
    response: bytes, message_type: MessageType | int, secret: bytes, challenge: bytes
) -> bool:
    """Whether a received Challenge Response is the one our secret and challenge give."""
    expected = challenge_response(message_type, secret, challenge)
    return hmac.compare_digest(expected, response)
