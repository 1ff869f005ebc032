"""L2TPv2 control message codec (RFC 2661 §3.1, §4.1, §4.3): bytes to ``ControlMessage`` and back.

The control header, RFC 2661 §3.1::

    |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |            Length             |
    |           Tunnel ID           |           Session ID          |
    |              Ns               |              Nr               |

Rules:
- A control message has T, L and S set and O and P clear; Ver is 2. Reserved (x) bits are
  ignored on receipt and sent as zero. Octets past Length are ignored; fewer are an error.
- The header is 12 octets; a control message with nothing after it is a ZLB (zero-length body),
  the bare acknowledgement of §5.8.
- An AVP (§4.1) is |M|H|rsvd(4)|Length(10)|Vendor ID(16)|Attribute Type(16)|value; Length
  counts the 6-octet header. The first AVP of a message is its Message Type (§4.4.1), never
  hidden. An AVP with a reserved bit set is unrecognised (§4.1): skipped without M, refused
  with M (an unrecognised mandatory AVP ends the tunnel, so the message cannot be used).
- A hidden AVP (§4.3) needs the tunnel secret and a Random Vector AVP earlier in the message;
  the most recent one counts. ``decode`` reveals hidden values and ``encode`` hides them, so an
  ``Avp`` always holds its value in the clear.

``decode`` raises only ``L2tpDecodeError`` (a ``ValueError``) with the reason; the property
tests show nothing else escapes. ``encode`` raises ``ValueError`` for a message it cannot put
on the wire (a programming error, not remote garbage).
"""

from __future__ import annotations

from dataclasses import dataclass

from radiusgw.l2tp.avp import Avp, AvpType, MessageType, ResultCode
from radiusgw.l2tp.crypto import BLOCK, hide_value, reveal_value

HEADER_LENGTH = 12
AVP_HEADER_LENGTH = 6
MAX_AVP_LENGTH = 0x03FF  # 10-bit Length field (§4.1)
MAX_MESSAGE_LENGTH = 0xFFFF

# Header flags (§3.1)
T_BIT = 0x8000  # control message
L_BIT = 0x4000  # Length present
S_BIT = 0x0800  # Ns and Nr present
O_BIT = 0x0200  # Offset Size present: MUST be 0 on control messages
P_BIT = 0x0100  # priority: MUST be 0 on control messages
VERSION_MASK = 0x000F
VERSION = 2
CONTROL_FLAGS = T_BIT | L_BIT | S_BIT | VERSION

# AVP flags (§4.1)
M_BIT = 0x8000
H_BIT = 0x4000
AVP_RESERVED = 0x3C00
AVP_LENGTH_MASK = 0x03FF


class L2tpDecodeError(ValueError):
    """The datagram is not a usable L2TPv2 control message; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One control message: header fields and AVPs in wire order (none for a ZLB)."""

    tunnel_id: int
    session_id: int = 0
    ns: int = 0
    nr: int = 0
    avps: tuple[Avp, ...] = ()

    @property
    def is_zlb(self) -> bool:
        return not self.avps

    @property
    def message_type(self) -> int | None:
        """The Message Type (a ``MessageType`` when known), or None for a ZLB."""
        if not self.avps:
            return None
        value = int.from_bytes(self.avps[0].value, "big")
        return MessageType(value) if value in MessageType._value2member_map_ else value

    def get(self, attr_type: int) -> bytes | None:
        """The value of the first IETF AVP of ``attr_type``, or None."""
        for avp in self.avps:
            if avp.attr_type == attr_type and avp.vendor_id == 0:
                return avp.value
        return None

    def result_code(self) -> ResultCode | None:
        return ResultCode.from_bytes(self.get(AvpType.RESULT_CODE) or b"")

    def __str__(self) -> str:
        kind = "ZLB" if self.is_zlb else _type_name(self.message_type)
        return f"{kind} tunnel={self.tunnel_id} session={self.session_id} Ns={self.ns} Nr={self.nr}"


def _type_name(message_type: int | None) -> str:
    return message_type.name if isinstance(message_type, MessageType) else f"type {message_type}"


def decode(data: bytes, secret: bytes | None = None) -> ControlMessage:
    """Parse one datagram as a control message, revealing hidden AVPs with ``secret``."""
    received = len(data)
    if received < HEADER_LENGTH:
        raise L2tpDecodeError(f"{received} octets is shorter than the 12-octet control header")
    flags = int.from_bytes(data[0:2], "big")
    if not flags & T_BIT:
        raise L2tpDecodeError("a data message (T bit clear), not a control message")
    if flags & VERSION_MASK != VERSION:
        raise L2tpDecodeError(f"version {flags & VERSION_MASK}, not 2 (RFC 2661 §3.1)")
    if not flags & L_BIT or not flags & S_BIT:
        raise L2tpDecodeError("a control message must have the L and S bits set (§3.1)")
    if flags & (O_BIT | P_BIT):
        raise L2tpDecodeError("a control message must have the O and P bits clear (§3.1)")
    length = int.from_bytes(data[2:4], "big")
    if length < HEADER_LENGTH:
        raise L2tpDecodeError(f"Length {length} is shorter than the control header")
    if length > received:
        raise L2tpDecodeError(f"Length {length} but only {received} octets arrived")
    avps = _decode_avps(data, length, secret)
    return ControlMessage(
        tunnel_id=int.from_bytes(data[4:6], "big"),
        session_id=int.from_bytes(data[6:8], "big"),
        ns=int.from_bytes(data[8:10], "big"),
        nr=int.from_bytes(data[10:12], "big"),
        avps=tuple(avps),
    )


def _decode_avps(data: bytes, end: int, secret: bytes | None) -> list[Avp]:
    avps: list[Avp] = []
    random_vector: bytes | None = None
    pos = HEADER_LENGTH
    while pos < end:
        if pos + AVP_HEADER_LENGTH > end:
            raise L2tpDecodeError(f"AVP header at offset {pos} runs past Length")
        bits = int.from_bytes(data[pos : pos + 2], "big")
        avp_length = bits & AVP_LENGTH_MASK
        if avp_length < AVP_HEADER_LENGTH:
            raise L2tpDecodeError(f"AVP at offset {pos} has length {avp_length} < 6")
        if pos + avp_length > end:
            raise L2tpDecodeError(f"AVP at offset {pos} runs past Length")
        mandatory = bool(bits & M_BIT)
        hidden = bool(bits & H_BIT)
        vendor_id = int.from_bytes(data[pos + 2 : pos + 4], "big")
        attr_type = int.from_bytes(data[pos + 4 : pos + 6], "big")
        value = data[pos + AVP_HEADER_LENGTH : pos + avp_length]
        first = not avps
        pos += avp_length
        if bits & AVP_RESERVED:
            if mandatory:
                raise L2tpDecodeError(f"mandatory AVP {attr_type} has reserved bits set (§4.1)")
            continue  # an unrecognised optional AVP is ignored
        ietf = vendor_id == 0
        if first and not (ietf and attr_type == AvpType.MESSAGE_TYPE):
            raise L2tpDecodeError("the first AVP is not the Message Type (§4.4.1)")
        if ietf and attr_type == AvpType.MESSAGE_TYPE and (first and len(value) != 2):
            raise L2tpDecodeError(f"Message Type of {len(value)} octets, not 2")
        if hidden:
            if ietf and attr_type in (AvpType.MESSAGE_TYPE, AvpType.RANDOM_VECTOR):
                raise L2tpDecodeError(f"AVP {attr_type} must not be hidden (§4.4)")
            if secret is None:
                raise L2tpDecodeError(f"hidden AVP {attr_type} but no tunnel secret")
            if random_vector is None:
                raise L2tpDecodeError(f"hidden AVP {attr_type} with no Random Vector before it")
            revealed = reveal_value(attr_type, value, secret, random_vector)
            if revealed is None:
                raise L2tpDecodeError(f"hidden AVP {attr_type} does not decrypt (wrong secret?)")
            value = revealed
        elif ietf and attr_type == AvpType.RANDOM_VECTOR:
            random_vector = value
        avps.append(Avp(attr_type, value, mandatory, hidden, vendor_id))
    return avps


def encode(message: ControlMessage, secret: bytes | None = None) -> bytes:
    """A control message to wire format, hiding the AVPs marked ``hidden`` with ``secret``."""
    for name, field in (
        ("tunnel_id", message.tunnel_id),
        ("session_id", message.session_id),
        ("ns", message.ns),
        ("nr", message.nr),
    ):
        if not 0 <= field <= 0xFFFF:
            raise ValueError(f"{name} {field} does not fit in 16 bits")
    if message.avps:
        first = message.avps[0]
        if first.attr_type != AvpType.MESSAGE_TYPE or first.vendor_id or first.hidden:
            raise ValueError("the first AVP must be a plain Message Type (§4.4.1)")
    body = b"".join(_encode_avps(message.avps, secret))
    length = HEADER_LENGTH + len(body)
    if length > MAX_MESSAGE_LENGTH:
        raise ValueError(f"control message of {length} octets exceeds 65535")
    header = b"".join(
        value.to_bytes(2, "big")
        for value in (
            CONTROL_FLAGS,
            length,
            message.tunnel_id,
            message.session_id,
            message.ns,
            message.nr,
        )
    )
    return header + body


def _encode_avps(avps: tuple[Avp, ...], secret: bytes | None) -> list[bytes]:
    parts: list[bytes] = []
    random_vector: bytes | None = None
    for avp in avps:
        if not 0 <= avp.attr_type <= 0xFFFF or not 0 <= avp.vendor_id <= 0xFFFF:
            raise ValueError(f"AVP type {avp.attr_type} / vendor {avp.vendor_id} out of range")
        ietf = avp.vendor_id == 0
        value = avp.value
        if avp.hidden:
            if ietf and avp.attr_type in (AvpType.MESSAGE_TYPE, AvpType.RANDOM_VECTOR):
                raise ValueError(f"AVP {avp.attr_type} must not be hidden (§4.4)")
            if secret is None or random_vector is None:
                raise ValueError("a hidden AVP needs the secret and a Random Vector AVP before it")
            # Pad the subformat (2-octet length + value) to whole blocks (§4.3 allows any).
            padding = bytes(-(2 + len(value)) % BLOCK)
            value = hide_value(avp.attr_type, value, secret, random_vector, padding)
        elif ietf and avp.attr_type == AvpType.RANDOM_VECTOR:
            random_vector = avp.value
        avp_length = AVP_HEADER_LENGTH + len(value)
        if avp_length > MAX_AVP_LENGTH:
            raise ValueError(f"AVP {avp.attr_type} of {avp_length} octets exceeds 1023")
        bits = avp_length | (M_BIT if avp.mandatory else 0) | (H_BIT if avp.hidden else 0)
        parts.append(
            bits.to_bytes(2, "big")
            + avp.vendor_id.to_bytes(2, "big")
            + avp.attr_type.to_bytes(2, "big")
            + value
        )
    return parts
