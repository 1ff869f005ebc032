"""L2TPv2 Attribute-Value Pairs (RFC 2661 §4): types, the ``Avp`` value object, typed values.

An ``Avp`` holds its value in the clear: hiding (RFC 2661 §4.3) happens in the message codec,
which knows the secret and the Random Vector, and the ``hidden`` flag says only whether the AVP
travels hidden. Values stay bytes; the helpers here turn the few the control channel reads into
ints, strings and ``ResultCode``.

Rules, from RFC 2661 §4.1 and §4.4:
- Vendor ID 0 is the IETF space; every type in ``AvpType`` is in it.
- The M bit on an AVP we do not recognise ends the tunnel; without M it is ignored.
- Message Type, Result Code, Protocol Version, Host Name, Receive Window Size and Random Vector
  MUST NOT be hidden (``NEVER_HIDDEN``); the others the control channel sends MAY be.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class MessageType(IntEnum):
    """Control message types (RFC 2661 §3.2); 0, 5 and 13 are reserved."""

    SCCRQ = 1  # Start-Control-Connection-Request
    SCCRP = 2  # Start-Control-Connection-Reply
    SCCCN = 3  # Start-Control-Connection-Connected
    STOPCCN = 4  # Stop-Control-Connection-Notification
    HELLO = 6
    OCRQ = 7  # Outgoing-Call-Request
    OCRP = 8
    OCCN = 9
    ICRQ = 10  # Incoming-Call-Request
    ICRP = 11
    ICCN = 12
    CDN = 14  # Call-Disconnect-Notify
    WEN = 15  # WAN-Error-Notify
    SLI = 16  # Set-Link-Info


class AvpType(IntEnum):
    """IETF AVP types (vendor 0), RFC 2661 §4.4.1 to §4.4.6."""

    MESSAGE_TYPE = 0
    RESULT_CODE = 1
    PROTOCOL_VERSION = 2
    FRAMING_CAPABILITIES = 3
    BEARER_CAPABILITIES = 4
    TIE_BREAKER = 5
    FIRMWARE_REVISION = 6
    HOST_NAME = 7
    VENDOR_NAME = 8
    ASSIGNED_TUNNEL_ID = 9
    RECEIVE_WINDOW_SIZE = 10
    CHALLENGE = 11
    Q931_CAUSE_CODE = 12
    CHALLENGE_RESPONSE = 13
    ASSIGNED_SESSION_ID = 14
    CALL_SERIAL_NUMBER = 15
    MINIMUM_BPS = 16
    MAXIMUM_BPS = 17
    BEARER_TYPE = 18
    FRAMING_TYPE = 19
    PACKET_PROCESSING_DELAY = 20
    CALLED_NUMBER = 21
    CALLING_NUMBER = 22
    SUB_ADDRESS = 23
    TX_CONNECT_SPEED = 24
    PHYSICAL_CHANNEL_ID = 25
    INITIAL_RECEIVED_LCP_CONFREQ = 26
    LAST_SENT_LCP_CONFREQ = 27
    LAST_RECEIVED_LCP_CONFREQ = 28
    PROXY_AUTHEN_TYPE = 29
    PROXY_AUTHEN_NAME = 30
    PROXY_AUTHEN_CHALLENGE = 31
    PROXY_AUTHEN_ID = 32
    PROXY_AUTHEN_RESPONSE = 33
    CALL_ERRORS = 34
    ACCM = 35
    RANDOM_VECTOR = 36
    PRIVATE_GROUP_ID = 37
    RX_CONNECT_SPEED = 38
    SEQUENCING_REQUIRED = 39


class StopCcnResult(IntEnum):
    """Result codes of StopCCN (RFC 2661 §4.4.2)."""

    CLEAR = 1  # General request to clear control connection
    GENERAL_ERROR = 2  # General error; the Error Code says which
    ALREADY_EXISTS = 3  # Control channel already exists
    NOT_AUTHORIZED = 4  # Requester is not authorized to establish a control channel
    BAD_VERSION = 5  # Protocol version not supported; Error Code holds the highest supported
    SHUTTING_DOWN = 6  # Requester is being shut down
    FSM_ERROR = 7  # Finite State Machine error


class GeneralError(IntEnum):
    """General error codes (RFC 2661 §4.4.2), carried after the result code."""

    NONE = 0
    NO_CONTROL_CONNECTION = 1
    BAD_LENGTH = 2
    BAD_VALUE = 3  # a field out of range, or a reserved field non-zero
    NO_RESOURCES = 4
    BAD_SESSION_ID = 5
    VENDOR_SPECIFIC = 6  # xl2tpd uses it for every refusal, tunnel authentication included
    TRY_ANOTHER = 7
    UNKNOWN_MANDATORY_AVP = 8


# RFC 2661 §4.4: "This AVP MUST NOT be hidden" for these.
NEVER_HIDDEN = frozenset(
    {
        AvpType.MESSAGE_TYPE,
        AvpType.RESULT_CODE,
        AvpType.PROTOCOL_VERSION,
        AvpType.HOST_NAME,
        AvpType.RECEIVE_WINDOW_SIZE,
        AvpType.RANDOM_VECTOR,
    }
)

# RFC 2661 §4.4.3 Framing Capabilities: bit 31 is S (synchronous), bit 30 is A (asynchronous).
FRAMING_SYNC = 0x1
FRAMING_ASYNC = 0x2
# RFC 2661 §4.4.3 Bearer Capabilities: D (digital) and A (analog).
BEARER_DIGITAL = 0x1
BEARER_ANALOG = 0x2
# RFC 2661 §4.4.3 Protocol Version: version 1, revision 0 for RFC 2661.
PROTOCOL_VERSION_1_0 = b"\x01\x00"
# RFC 2661 §5.8: a peer that sends no Receive Window Size AVP can take 4 messages.
DEFAULT_RECEIVE_WINDOW = 4


@dataclass(frozen=True, slots=True)
class Avp:
    """One AVP with its value in the clear (RFC 2661 §4.1).

    ``hidden`` marks an AVP that travels hidden (§4.3): the codec encrypts it on encode and has
    decrypted it on decode. ``vendor_id`` 0 is the IETF space.
    """

    attr_type: int
    value: bytes = b""
    mandatory: bool = True
    hidden: bool = False
    vendor_id: int = 0


@dataclass(frozen=True, slots=True)
class ResultCode:
    """The Result Code AVP (RFC 2661 §4.4.2): result, optional error code, optional message."""

    result: int
    error: int | None = None
    message: str = ""

    def to_bytes(self) -> bytes:
        """Wire value; an error message implies an error code (0 when none was given)."""
        out = self.result.to_bytes(2, "big")
        if self.error is not None or self.message:
            out += (self.error or 0).to_bytes(2, "big")
            out += self.message.encode("utf-8")
        return out

    @classmethod
    def from_bytes(cls, value: bytes) -> ResultCode | None:
        """None when the value is shorter than its 2-octet result code."""
        if len(value) < 2:
            return None
        result = int.from_bytes(value[:2], "big")
        if len(value) < 4:
            return cls(result)
        error = int.from_bytes(value[2:4], "big")
        return cls(result, error, value[4:].decode("utf-8", "replace"))

    def __str__(self) -> str:
        text = f"result {self.result}"
        if self.error is not None:
            text += f", error {self.error}"
        if self.message:
            text += f": {self.message}"
        return text


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def as_u16(value: bytes | None) -> int | None:
    """A 2-octet unsigned value, or None when absent or of another length."""
    return int.from_bytes(value, "big") if value is not None and len(value) == 2 else None


def as_u32(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def as_text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def known(attr_type: int, vendor_id: int) -> bool:
    """Whether the control channel recognises the AVP (for the M-bit rule of §4.1)."""
    return vendor_id == 0 and attr_type in AvpType._value2member_map_


def message_type_avp(message_type: MessageType) -> Avp:
    """The first AVP of every non-ZLB control message; its M bit is set (RFC 2661 §4.4.1)."""
    return Avp(AvpType.MESSAGE_TYPE, u16(message_type))
