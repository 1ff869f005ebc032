"""L2TPv2 (RFC 2661) control channel, sans-I/O: the codec and the LAC side of a tunnel.

- ``avp``: AVP and message types, result codes, the ``Avp`` value object.
- ``crypto``: hidden AVP values (§4.3) and the tunnel Challenge Response (§5.1.1).
- ``message``: the control message codec (§3.1, §4.1); ``L2tpDecodeError``.
- ``reliable``: Ns/Nr sequencing, acknowledgement and retransmission (§5.8).
- ``control``: ``ControlConnection``, tunnel set-up and tear-down from the LAC side (§7.2.1).

No sockets and no clock: ``radiusgw.server.lns_probe`` drives a connection through the one UDP
edge (``radiusgw.server.datagrams``).
"""

from __future__ import annotations

from radiusgw.l2tp.avp import Avp, AvpType, GeneralError, MessageType, ResultCode, StopCcnResult
from radiusgw.l2tp.control import ControlConnection, Failure, FailureKind, State
from radiusgw.l2tp.message import ControlMessage, L2tpDecodeError, decode, encode

__all__ = [
    "Avp",
    "AvpType",
    "ControlConnection",
    "ControlMessage",
    "Failure",
    "FailureKind",
    "GeneralError",
    "L2tpDecodeError",
    "MessageType",
    "ResultCode",
    "State",
    "StopCcnResult",
    "decode",
    "encode",
]
