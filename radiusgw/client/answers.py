"""Is this datagram the authentic answer to a request we signed? One check for every RADIUS client.

The proxy's upstream client (Access-Request, Accounting-Request, Status-Server) and the Dynamic
Authorization client (Disconnect-Request) verify answers the same way, in this order:

- the code answers the request's code (RFC 2865 §4, RFC 2866 §4.2, RFC 5176 §3);
- the Response Authenticator is MD5(Code + Identifier + Length + Request Authenticator +
  Attributes + Secret) (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3);
- a Message-Authenticator, when present, is the HMAC-MD5 over the answer with the Request
  Authenticator in place (RFC 3579 §3.2, RFC 5176 §3.4); an Access-* answer without one is
  refused when ``require_message_authenticator`` says so (BlastRADIUS: only it protects an
  Access-* answer against a forged MD5 collision).

``verify_answer`` runs on every answer; ``answer_problem`` only on the refusal path, to say why.
"""

from __future__ import annotations

from typing import Final

from radiusgw.radius import crypto
from radiusgw.radius.attributes import Code
from radiusgw.radius.packet import DecodeError, Packet, decode

ACCESS_ANSWERS: Final = frozenset(
    (int(Code.ACCESS_ACCEPT), int(Code.ACCESS_REJECT), int(Code.ACCESS_CHALLENGE))
)  # RFC 2865 §4
ACCOUNTING_ANSWERS: Final = frozenset((int(Code.ACCOUNTING_RESPONSE),))  # RFC 2866 §4.2
DISCONNECT_ANSWERS: Final = frozenset(
    (int(Code.DISCONNECT_ACK), int(Code.DISCONNECT_NAK))
)  # RFC 5176 §3

_NAMES: Final = {
    ACCESS_ANSWERS: "Access-Accept/Reject/Challenge",
    ACCOUNTING_ANSWERS: "Accounting-Response",
    DISCONNECT_ANSWERS: "Disconnect-ACK/NAK",
}


def verify_answer(
    raw: bytes,
    secret: bytes,
    request_authenticator: bytes,
    codes: frozenset[int],
    *,
    require_message_authenticator: bool = False,
) -> Packet | None:
    """The decoded answer if it is one of ``codes`` and authentic, else None."""
    try:
        answer = decode(raw)
    except DecodeError:
        return None
    if answer.code not in codes:
        return None
    if not crypto.response_authenticator_matches(answer.raw, secret, request_authenticator):
        return None
    offset = answer.message_authenticator_offset
    if offset >= 0:
        if not crypto.response_message_authenticator_matches(
            answer.raw, offset, secret, request_authenticator
        ):
            return None
    elif require_message_authenticator and answer.code in ACCESS_ANSWERS:
        # Access-* answers to Status-Server too (draft-ietf-radext-deprecating-radius, the
        # BlastRADIUS advice); an Accounting-Response is not an authorisation, so not required.
        return None
    return answer


def answer_problem(
    raw: bytes,
    secret: bytes,
    request_authenticator: bytes,
    codes: frozenset[int],
    *,
    require_message_authenticator: bool = False,
) -> str:
    """Why an answer was refused (``verify_answer`` or ``rewrite.nas_reply`` gave None).

    It decodes and checks again, naming the first check that fails; one sentence, no secret.
    """
    try:
        answer = decode(raw)
    except DecodeError as exc:
        return f"malformed: {exc}"
    if answer.code not in codes:
        expected = _NAMES.get(codes, "an answer to it")
        return f"code {answer.code} does not answer the request (not {expected})"
    if not crypto.response_authenticator_matches(answer.raw, secret, request_authenticator):
        return "Response Authenticator does not match (forged, or another secret)"
    offset = answer.message_authenticator_offset
    if offset >= 0:
        if not crypto.response_message_authenticator_matches(
            answer.raw, offset, secret, request_authenticator
        ):
            return "Message-Authenticator does not match (forged, or another secret)"
    elif require_message_authenticator and answer.code in ACCESS_ANSWERS:
        return "Message-Authenticator missing (require_message_authenticator = true)"
    return "its attributes cannot be translated for the NAS"
