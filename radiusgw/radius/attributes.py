"""Wire numbers of RADIUS: packet codes and the attribute types the gateway reads or writes.

IntEnums for readable code and messages; the hot path binds the few it needs to module-level
ints (``USER_NAME = int(Attr.USER_NAME)``) so that no name is looked up per packet. The full,
operator-extensible dictionary (vendor attributes included) is ``radiusgw.radius.dictionary``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Code(IntEnum):
    ACCESS_REQUEST = 1  # RFC 2865 §4.1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4  # RFC 2866 §4.1
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12  # RFC 5997
    STATUS_CLIENT = 13
    DISCONNECT_REQUEST = 40  # RFC 5176
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45


class Attr(IntEnum):
    USER_NAME = 1
    USER_PASSWORD = 2
    CHAP_PASSWORD = 3
    NAS_IP_ADDRESS = 4
    NAS_PORT = 5
    SERVICE_TYPE = 6
    FRAMED_PROTOCOL = 7
    FRAMED_IP_ADDRESS = 8
    REPLY_MESSAGE = 18
    STATE = 24
    CLASS = 25
    VENDOR_SPECIFIC = 26
    SESSION_TIMEOUT = 27
    IDLE_TIMEOUT = 28
    CALLED_STATION_ID = 30
    CALLING_STATION_ID = 31
    NAS_IDENTIFIER = 32
    PROXY_STATE = 33
    ACCT_STATUS_TYPE = 40  # RFC 2866 §5.1
    ACCT_DELAY_TIME = 41
    ACCT_INPUT_OCTETS = 42
    ACCT_OUTPUT_OCTETS = 43
    ACCT_SESSION_ID = 44
    ACCT_AUTHENTIC = 45
    ACCT_SESSION_TIME = 46
    ACCT_INPUT_PACKETS = 47
    ACCT_OUTPUT_PACKETS = 48
    ACCT_TERMINATE_CAUSE = 49
    ACCT_MULTI_SESSION_ID = 50
    ACCT_LINK_COUNT = 51
    ACCT_INPUT_GIGAWORDS = 52  # RFC 2869 §5.1
    ACCT_OUTPUT_GIGAWORDS = 53
    EVENT_TIMESTAMP = 55
    CHAP_CHALLENGE = 60
    NAS_PORT_TYPE = 61
    TUNNEL_TYPE = 64  # RFC 2868 §3.1
    TUNNEL_MEDIUM_TYPE = 65
    TUNNEL_CLIENT_ENDPOINT = 66
    TUNNEL_SERVER_ENDPOINT = 67
    ACCT_TUNNEL_CONNECTION = 68  # RFC 2867
    TUNNEL_PASSWORD = 69
    CONNECT_INFO = 77
    EAP_MESSAGE = 79  # RFC 3579 §3.1
    MESSAGE_AUTHENTICATOR = 80  # RFC 3579 §3.2
    TUNNEL_PRIVATE_GROUP_ID = 81
    TUNNEL_ASSIGNMENT_ID = 82
    TUNNEL_PREFERENCE = 83
    ACCT_INTERIM_INTERVAL = 85
    NAS_PORT_ID = 87
    TUNNEL_CLIENT_AUTH_ID = 90
    TUNNEL_SERVER_AUTH_ID = 91
    NAS_IPV6_ADDRESS = 95  # RFC 3162
    FRAMED_IPV6_PREFIX = 97
    ERROR_CAUSE = 101  # RFC 5176 §3.5


class AcctStatusType(IntEnum):
    """RFC 2866 §5.1 and RFC 2867 §4.1."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3
    ACCOUNTING_ON = 7
    ACCOUNTING_OFF = 8
    TUNNEL_START = 9
    TUNNEL_STOP = 10
    TUNNEL_REJECT = 11
    TUNNEL_LINK_START = 12
    TUNNEL_LINK_STOP = 13
    TUNNEL_LINK_REJECT = 14
    FAILED = 15


MICROSOFT: Final = 311  # RFC 2548 §2: the Vendor-Id of the Microsoft attributes


class Microsoft(IntEnum):
    """Microsoft's vendor attribute types (RFC 2548 §2), inside Vendor-Specific 311."""

    MS_CHAP_RESPONSE = 1  # §2.1.3
    MS_CHAP_ERROR = 2  # §2.1.5
    MS_MPPE_ENCRYPTION_POLICY = 7  # §2.4.4
    MS_MPPE_ENCRYPTION_TYPES = 8  # §2.4.5
    MS_CHAP_DOMAIN = 10  # §2.1.4
    MS_CHAP_CHALLENGE = 11  # §2.1.2
    MS_CHAP_MPPE_KEYS = 12  # §2.4.1
    MS_MPPE_SEND_KEY = 16  # §2.4.2
    MS_MPPE_RECV_KEY = 17  # §2.4.3
    MS_CHAP2_RESPONSE = 25  # §2.3 (MS-CHAP-V2)
    MS_CHAP2_SUCCESS = 26  # §2.3
