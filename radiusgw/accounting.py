"""Accounting-Requests read into typed events, without I/O: what the session table works from.

``parse`` takes a decoded Accounting-Request (``radiusgw.radius.packet.decode`` of the datagram
kept in ``AccountingRecord.packet``) and returns an ``AccountingEvent``; ``from_record`` does the
decoding too. They raise only ``AccountingError`` (a ``ValueError``) with the reason, for a
request the session table cannot use; the record itself is stored whatever happens here.

Rules:

- The status type is Acct-Status-Type (RFC 2866 §5.1), including the tunnel types of RFC 2867
  §4.1. A request without it, or with a value neither RFC defines, is an ``AccountingError``.
- Octet counts are absolute counters since the session began: Acct-Input-Octets plus
  Acct-Input-Gigawords × 2^32 (RFC 2869 §5.1), and the same for output (RFC 2869 §5.2).
  Both are 32-bit unsigned (RFC 2866 §5.3/§5.4, RFC 2869 §5.1/§5.2), as are Acct-Session-Time
  and the other integers here: a value of any length but 4 octets is malformed (below), so a
  count is at most 2^64 - 1, which the session table keeps exactly.
- The event happened at ``received - Acct-Delay-Time`` on this gateway's clock (RFC 2866 §5.2);
  the NAS's own Event-Timestamp (RFC 2869 §5.3) is kept as it came, but not used for ordering,
  because NAS clocks drift and every other time in the store is the gateway's.
- The session's LNS is the first Tunnel-Server-Endpoint (RFC 2868 §3.3). Its first octet is a
  tag when it is 0x00..0x1F and is then dropped; above 0x1F it is the first octet of the text.
  An IP address is normalised as the realm files normalise LNS addresses, so the two compare.
- The user is split at the last '@' as the router does: ``username`` is the part before it
  (all of User-Name when there is no '@'); the realm is the one the router matched, passed in.
- An attribute with a malformed value (an integer not 4 octets, an address of the wrong size)
  is treated as absent: one bad attribute from a NAS must not lose the rest of the record.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from radiusgw.radius.attributes import AcctStatusType, Attr, Code
from radiusgw.radius.packet import DecodeError, Packet, decode

if TYPE_CHECKING:  # radiusgw.store imports this module (through sessions): no cycle at run time
    from radiusgw.domain import AccountingRecord

GIGAWORD: Final = 2**32  # RFC 2869 §5.1: one wrap of the 32-bit Acct-Input-Octets counter
MAX_TAG: Final = 0x1F  # RFC 2868 §3.3: a first octet up to 0x1F is a tag, not text

# Status types after which the session is known to be running (or to have just ended).
SESSION_TYPES: Final = frozenset(
    {AcctStatusType.START, AcctStatusType.INTERIM_UPDATE, AcctStatusType.STOP}
)
# RFC 2866 §5.1: Accounting-On/Off mean the NAS (re)started or is going down: its sessions ended.
NAS_RESTART_TYPES: Final = frozenset({AcctStatusType.ACCOUNTING_ON, AcctStatusType.ACCOUNTING_OFF})
# The Acct-Status-Type values, as plain ints, whose events the session table uses: the engine
# parses these once, on receipt, so that the accounting writer does not decode them again.
EVENT_TYPES: Final = frozenset(int(t) for t in SESSION_TYPES | NAS_RESTART_TYPES)


class AccountingError(ValueError):
    """The request cannot be read as an accounting event; ``str()`` says why."""


# init=False, the __init__ written out: compiled, the one dataclasses generates is interpreted
# (radiusgw.radius.packet.Packet)
@dataclass(init=False, slots=True)
class AccountingEvent:
    """One Accounting-Request, typed. Times are unix seconds on the gateway's clock.

    Read-only by convention, not frozen: one is built per Accounting-Request on the event loop,
    and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) took twice as long.
    """

    status: AcctStatusType
    nas_address: str  # the datagram's source: the NAS as the gateway knows it
    received: float
    event_time: float  # received - Acct-Delay-Time
    realm: str | None = None  # as routed (lower case); None when the router refused it
    user_name: str | None = None  # User-Name as sent
    username: str | None = None  # the part before the last '@'
    session_id: str | None = None  # Acct-Session-Id (RFC 2866 §5.5)
    nas_ip_address: str | None = None  # NAS-IP-Address or NAS-IPv6-Address (RFC 3162)
    nas_identifier: str | None = None
    input_octets: int = 0
    output_octets: int = 0
    session_time: int | None = None  # Acct-Session-Time, seconds (RFC 2866 §5.7)
    terminate_cause: int | None = None  # Acct-Terminate-Cause (RFC 2866 §5.10)
    interim_interval: int | None = None  # Acct-Interim-Interval, seconds (RFC 2869 §5.16)
    lns: str | None = None  # Tunnel-Server-Endpoint, tag removed
    framed_ip: str | None = None  # Framed-IP-Address
    event_timestamp: int | None = None  # Event-Timestamp as the NAS stated it
    delay: int = 0  # Acct-Delay-Time, seconds

    def __init__(
        self,
        status: AcctStatusType,
        nas_address: str,
        received: float,
        event_time: float,
        realm: str | None = None,
        user_name: str | None = None,
        username: str | None = None,
        session_id: str | None = None,
        nas_ip_address: str | None = None,
        nas_identifier: str | None = None,
        input_octets: int = 0,
        output_octets: int = 0,
        session_time: int | None = None,
        terminate_cause: int | None = None,
        interim_interval: int | None = None,
        lns: str | None = None,
        framed_ip: str | None = None,
        event_timestamp: int | None = None,
        delay: int = 0,
    ) -> None:
        self.status = status
        self.nas_address = nas_address
        self.received = received
        self.event_time = event_time
        self.realm = realm
        self.user_name = user_name
        self.username = username
        self.session_id = session_id
        self.nas_ip_address = nas_ip_address
        self.nas_identifier = nas_identifier
        self.input_octets = input_octets
        self.output_octets = output_octets
        self.session_time = session_time
        self.terminate_cause = terminate_cause
        self.interim_interval = interim_interval
        self.lns = lns
        self.framed_ip = framed_ip
        self.event_timestamp = event_timestamp
        self.delay = delay


def from_record(record: AccountingRecord) -> AccountingEvent:
    """The event of a stored record: the one the engine parsed, else the datagram decoded again."""
    if record.event is not None:
        return record.event
    try:
        packet = decode(record.packet)
    except DecodeError as exc:
        raise AccountingError(f"not a RADIUS packet: {exc}") from None
    return parse(
        packet, nas_address=record.nas_address, received=record.received, realm=record.realm
    )


def parse(
    packet: Packet,
    *,
    nas_address: str,
    received: float,
    realm: str | None = None,
    first: dict[int, bytes] | None = None,
) -> AccountingEvent:
    """Read an Accounting-Request (RFC 2866 §4.1); ``AccountingError`` if it has no usable type.

    ``first`` is ``packet.first_values()`` when the caller has it already.
    """
    if packet.code != Code.ACCOUNTING_REQUEST:
        raise AccountingError(f"code {packet.code} is not an Accounting-Request")
    if first is None:
        first = packet.first_values()
    get = first.get
    raw_status = _integer(packet, first, _STATUS)
    if raw_status is None:
        raise AccountingError("no Acct-Status-Type (RFC 2866 §5.1)")
    status = _STATUS_TYPES.get(raw_status)
    if status is None:
        raise AccountingError(f"Acct-Status-Type {raw_status} is not defined")
    delay = _integer(packet, first, _DELAY) or 0
    user_name = _text(get(_USER_NAME))
    octets_in = _integer(packet, first, _IN) or 0
    octets_out = _integer(packet, first, _OUT) or 0
    giga_in = _integer(packet, first, _IN_GIGA) or 0
    giga_out = _integer(packet, first, _OUT_GIGA) or 0
    return AccountingEvent(
        status=status,
        nas_address=nas_address,
        received=received,
        event_time=received - delay,
        realm=None if realm is None else realm.lower(),
        user_name=user_name,
        username=None if user_name is None else local_part(user_name),
        session_id=_text(get(_SESSION_ID)),
        nas_ip_address=_address(get(_NAS_IP), 4) or _address(get(_NAS_IPV6), 16),
        nas_identifier=_text(get(_NAS_IDENTIFIER)),
        input_octets=octets_in + giga_in * GIGAWORD,
        output_octets=octets_out + giga_out * GIGAWORD,
        session_time=_integer(packet, first, _SESSION_TIME),
        terminate_cause=_integer(packet, first, _TERMINATE_CAUSE),
        interim_interval=_integer(packet, first, _INTERIM),
        lns=tunnel_endpoint(get(_SERVER_ENDPOINT)),
        framed_ip=_address(get(_FRAMED_IP), 4),
        event_timestamp=_integer(packet, first, _EVENT_TIMESTAMP),
        delay=delay,
    )


def local_part(user_name: str) -> str:
    """The user without its realm: the text before the last '@' (all of it without one)."""
    at = user_name.rfind("@")
    return user_name if at < 0 else user_name[:at]


def tunnel_endpoint(value: bytes | None) -> str | None:
    """A Tunnel-Server-Endpoint value as text, its tag octet removed (RFC 2868 §3.3)."""
    if not value:
        return None
    if value[0] <= MAX_TAG:
        value = value[1:]
    endpoint = value.decode("utf-8", "replace").strip()
    if not endpoint:
        return None
    if endpoint.replace(".", "").isdigit():
        return endpoint  # dotted IPv4 is already normal (ipaddress refuses leading zeros)
    try:
        return str(ipaddress.ip_address(endpoint))
    except ValueError:
        return endpoint  # RFC 2868 §3.3 allows a fully qualified domain name


def _integer(packet: Packet, first: dict[int, bytes], attr_type: int) -> int | None:
    """An integer attribute (RFC 2865 §5: 4 octets, big-endian): its first value, or if that is
    malformed the first well-formed one; None if it has none.

    The octets are combined by hand: compiled, an index into bytes is a native integer, where
    ``int.from_bytes`` is a method looked up and called (with a set of the integer types
    intersected with the packet's and a dictionary of the results, the integers were half of
    ``parse``'s 3.6 us)."""
    value = first.get(attr_type)
    if value is None:
        return None
    if len(value) != 4:
        value = next((v for t, v in packet.attributes if t == attr_type and len(v) == 4), b"")
        if not value:
            return None
    return (value[0] << 24) | (value[1] << 16) | (value[2] << 8) | value[3]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _address(value: bytes | None, size: int) -> str | None:
    if value is None or len(value) != size:
        return None
    if size == 4:
        return f"{value[0]}.{value[1]}.{value[2]}.{value[3]}"  # what ipaddress gives, faster
    return str(ipaddress.ip_address(value))


_STATUS: Final = int(Attr.ACCT_STATUS_TYPE)
_DELAY: Final = int(Attr.ACCT_DELAY_TIME)
_IN: Final = int(Attr.ACCT_INPUT_OCTETS)
_OUT: Final = int(Attr.ACCT_OUTPUT_OCTETS)
_IN_GIGA: Final = int(Attr.ACCT_INPUT_GIGAWORDS)
_OUT_GIGA: Final = int(Attr.ACCT_OUTPUT_GIGAWORDS)
_SESSION_TIME: Final = int(Attr.ACCT_SESSION_TIME)
_TERMINATE_CAUSE: Final = int(Attr.ACCT_TERMINATE_CAUSE)
_INTERIM: Final = int(Attr.ACCT_INTERIM_INTERVAL)
_EVENT_TIMESTAMP: Final = int(Attr.EVENT_TIMESTAMP)
_USER_NAME: Final = int(Attr.USER_NAME)
_SESSION_ID: Final = int(Attr.ACCT_SESSION_ID)
_NAS_IP: Final = int(Attr.NAS_IP_ADDRESS)
_NAS_IPV6: Final = int(Attr.NAS_IPV6_ADDRESS)
_NAS_IDENTIFIER: Final = int(Attr.NAS_IDENTIFIER)
_SERVER_ENDPOINT: Final = int(Attr.TUNNEL_SERVER_ENDPOINT)
_FRAMED_IP: Final = int(Attr.FRAMED_IP_ADDRESS)
_STATUS_TYPES: Final = {
    int(t): t for t in AcctStatusType
}  # a dict look-up: no enum call per request
