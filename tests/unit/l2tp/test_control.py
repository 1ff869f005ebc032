"""The LAC side of the control connection, driven by hand-built LNS messages and explicit time."""

from __future__ import annotations

from hashlib import md5
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radiusgw.l2tp.avp import (
    Avp,
    AvpType,
    GeneralError,
    MessageType,
    ResultCode,
    StopCcnResult,
    message_type_avp,
    u16,
    u32,
)
from radiusgw.l2tp.control import ControlConnection, Dropped, FailureKind, State
from radiusgw.l2tp.message import ControlMessage, decode, encode
from tests.unit.l2tp import vectors

SECRET = b"s3cret"
LOCAL = vectors.LOCAL_TUNNEL_ID
LNS_TUNNEL = 0x29B8
LNS_CHALLENGE = bytes(range(200, 216))
LNS_ADDRESS = ("192.0.2.1", 1701)


def sent(conn: ControlConnection) -> list[bytes]:
    """What the connection puts on the wire now (every datagram goes to the LNS)."""
    out = conn.datagrams_to_send(0.0)
    assert all(destination == conn.peer for _, destination in out)
    return [data for data, _ in out]


def last_drop(conn: ControlConnection) -> str:
    """The reason of the last datagram the connection dropped (its last ``Dropped`` event)."""
    reason = ""
    while (event := conn.next_event()) is not None:
        if isinstance(event, Dropped):
            reason = event.reason
    return reason


def counting_random(n: int) -> bytes:
    return bytes(range(n))  # the challenge is 00..0f, as in vectors.SCCRQ


class FakeLns:
    """The LNS's side, by hand: its own Ns and Nr, and the messages it would send."""

    def __init__(self, secret: bytes | None = SECRET) -> None:
        self.secret = secret
        self.ns = 0
        self.nr = 0

    def take(self, datagram: bytes) -> ControlMessage:
        message = decode(datagram, self.secret)
        if not message.is_zlb and message.ns == self.nr:
            self.nr += 1
        return message

    def send(self, message_type: int, *avps: Avp, tunnel_id: int = LOCAL) -> bytes:
        head = Avp(AvpType.MESSAGE_TYPE, u16(message_type))
        message = ControlMessage(tunnel_id, 0, self.ns, self.nr, (head, *avps))
        self.ns += 1
        return encode(message, self.secret)

    def zlb(self) -> bytes:
        return encode(ControlMessage(LOCAL, 0, self.ns, self.nr))

    def sccrp(
        self,
        sccrq: ControlMessage,
        *,
        response: bytes | None = None,
        challenge: bytes | None = LNS_CHALLENGE,
        version: bytes = b"\x01\x00",
        tunnel_id: int = LNS_TUNNEL,
    ) -> bytes:
        avps = [
            Avp(AvpType.PROTOCOL_VERSION, version),
            Avp(AvpType.FRAMING_CAPABILITIES, u32(3)),
            Avp(AvpType.HOST_NAME, b"lns1"),
            Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(tunnel_id)),
            Avp(AvpType.RECEIVE_WINDOW_SIZE, u16(4)),
        ]
        their_challenge = sccrq.get(AvpType.CHALLENGE)
        if response is None and their_challenge is not None and self.secret is not None:
            response = md5(b"\x02" + self.secret + their_challenge).digest()
        if response is not None:
            avps.append(Avp(AvpType.CHALLENGE_RESPONSE, response))
        if challenge is not None:
            avps.append(Avp(AvpType.CHALLENGE, challenge))
        return self.send(MessageType.SCCRP, *avps)

    def stopccn(self, result: ResultCode, tunnel_id: int = LOCAL) -> bytes:
        return self.send(
            MessageType.STOPCCN,
            Avp(AvpType.ASSIGNED_TUNNEL_ID, u16(LNS_TUNNEL)),
            Avp(AvpType.RESULT_CODE, result.to_bytes()),
            tunnel_id=tunnel_id,
        )


def started(secret: bytes | None = SECRET, **options: bool) -> tuple[ControlConnection, FakeLns]:
    conn = ControlConnection(
        LOCAL, secret, "probe", 0.0, peer=LNS_ADDRESS, random=counting_random, **options
    )
    conn.start(0.0)
    return conn, FakeLns(secret)


def exchange(
    conn: ControlConnection, lns: FakeLns, datagram: bytes, now: float
) -> list[ControlMessage]:
    """Deliver ``datagram`` to the connection; what it sends back, as the LNS reads it."""
    conn.receive_datagram(datagram, LNS_ADDRESS, now)
    return [lns.take(d) for d in sent(conn)]


def established() -> tuple[ControlConnection, FakeLns]:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    exchange(conn, lns, lns.sccrp(sccrq), 0.1)
    exchange(conn, lns, lns.zlb(), 0.2)
    assert conn.state is State.ESTABLISHED
    return conn, lns


# -- set-up ----------------------------------------------------------------------------------


def test_start_sends_the_sccrq_of_rfc_2661_6_1_octet_for_octet() -> None:
    conn, _ = started()
    assert sent(conn) == [vectors.SCCRQ]
    assert conn.state is State.WAIT_CTL_REPLY and conn.get_timer() == 1.0


def test_without_a_secret_the_sccrq_carries_no_challenge() -> None:
    conn, lns = started(secret=None)
    assert lns.take(sent(conn)[0]).get(AvpType.CHALLENGE) is None


def test_xl2tpd_sccrp_is_answered_with_the_sccrn_xl2tpd_accepted() -> None:
    conn, _ = started()
    sent(conn)
    conn.receive_datagram(vectors.XL2TPD_SCCRP, LNS_ADDRESS, 0.1)
    assert sent(conn) == [vectors.SCCCN]
    assert conn.state is State.WAIT_CTL_CONN_ACK
    assert (conn.peer_tunnel_id, conn.peer_host_name) == (vectors.XL2TPD_TUNNEL_ID, "lns1")


def test_good_sccrp_then_acknowledged_sccn_is_established() -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    (scccn,) = exchange(conn, lns, lns.sccrp(sccrq), 0.25)
    assert scccn.message_type is MessageType.SCCCN
    assert (scccn.tunnel_id, scccn.ns, scccn.nr) == (LNS_TUNNEL, 1, 1)
    assert scccn.get(AvpType.CHALLENGE_RESPONSE) == md5(b"\x03" + SECRET + LNS_CHALLENGE).digest()
    assert conn.state is State.WAIT_CTL_CONN_ACK and conn.reply_at == 0.25
    assert exchange(conn, lns, lns.zlb(), 0.3) == []
    assert conn.state is State.ESTABLISHED and conn.established_at == 0.3
    assert conn.failure is None and conn.get_timer() is None


def test_hidden_challenge_response_follows_a_random_vector() -> None:
    conn, lns = started(hide_avps=True)
    sccrq = lns.take(sent(conn)[0])
    (scccn,) = exchange(conn, lns, lns.sccrp(sccrq), 0.1)
    types = [(a.attr_type, a.hidden) for a in scccn.avps]
    assert types == [(0, False), (AvpType.RANDOM_VECTOR, False), (AvpType.CHALLENGE_RESPONSE, True)]
    assert scccn.get(AvpType.CHALLENGE_RESPONSE) == md5(b"\x03" + SECRET + LNS_CHALLENGE).digest()


def test_hiding_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        ControlConnection(1, None, "probe", 0.0, peer=LNS_ADDRESS, hide_avps=True)


# -- tunnel authentication -------------------------------------------------------------------


def test_a_wrong_challenge_response_is_a_secret_mismatch_and_stops_the_tunnel() -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    (stop,) = exchange(conn, lns, lns.sccrp(sccrq, response=bytes(16)), 0.1)
    assert conn.failure is not None and conn.failure.kind is FailureKind.SECRET_MISMATCH
    assert "does not match our secret" in conn.failure.detail
    assert stop.message_type is MessageType.STOPCCN
    assert stop.get(AvpType.ASSIGNED_TUNNEL_ID) == u16(LOCAL)
    result = stop.result_code()
    assert result is not None and (result.result, result.error) == (2, 6)
    assert conn.state is State.CLOSING
    exchange(conn, lns, lns.zlb(), 0.2)
    assert conn.state is State.CLOSED and not conn.established


def test_a_missing_challenge_response_is_a_secret_mismatch() -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    lns.secret = None  # an LNS with no secret for us does not answer the challenge
    exchange(conn, lns, lns.sccrp(sccrq), 0.1)
    assert conn.failure is not None and conn.failure.kind is FailureKind.SECRET_MISMATCH
    assert "did not answer our Challenge" in conn.failure.detail


def test_an_lns_challenge_without_our_secret_is_a_secret_mismatch() -> None:
    conn, lns = started(secret=None)
    sccrq = lns.take(sent(conn)[0])
    (stop,) = exchange(conn, lns, lns.sccrp(sccrq), 0.1)
    assert stop.message_type is MessageType.STOPCCN
    assert conn.failure is not None and conn.failure.kind is FailureKind.SECRET_MISMATCH


def test_no_secret_and_no_challenge_either_way_comes_up() -> None:
    conn, lns = started(secret=None)
    sccrq = lns.take(sent(conn)[0])
    (scccn,) = exchange(conn, lns, lns.sccrp(sccrq, challenge=None), 0.1)
    assert scccn.avps == (message_type_avp(MessageType.SCCCN),)
    exchange(conn, lns, lns.zlb(), 0.2)
    assert conn.state is State.ESTABLISHED


def test_stopccn_2_6_after_the_acknowledged_sccn_is_a_secret_mismatch() -> None:
    # xl2tpd with a different secret: ZLB for the SCCCN, then StopCCN 2/6 (as xl2tpd answers).
    conn, lns = established()
    refusal = ResultCode(2, 6, "Invalid challenge authentication")
    (ack,) = exchange(conn, lns, lns.stopccn(refusal), 0.3)
    assert ack.is_zlb and ack.nr == 2
    assert conn.state is State.CLOSED
    assert conn.failure is not None and conn.failure.kind is FailureKind.SECRET_MISMATCH
    assert conn.failure.result == refusal and conn.peer_result == refusal


def test_the_crossing_stopccn_2_6_still_counts_after_our_own_stop() -> None:
    conn, lns = established()
    conn.stop(0.3)
    lns.take(sent(conn)[0])
    lns.nr -= 1  # xl2tpd had already closed: it does not count our StopCCN
    exchange(conn, lns, lns.stopccn(ResultCode(2, 6, "Invalid challenge authentication")), 0.31)
    assert conn.failure is not None and conn.failure.kind is FailureKind.SECRET_MISMATCH


def test_stopccn_2_6_from_an_lns_that_did_not_challenge_us_is_a_refusal() -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    exchange(conn, lns, lns.sccrp(sccrq, challenge=None), 0.1)
    exchange(conn, lns, lns.zlb(), 0.2)
    exchange(conn, lns, lns.stopccn(ResultCode(2, 6, "no")), 0.3)
    assert conn.failure is not None and conn.failure.kind is FailureKind.REFUSED


# -- refusals and protocol errors ------------------------------------------------------------


def test_stopccn_instead_of_sccrp_is_a_refusal_with_its_codes() -> None:
    conn, lns = started()
    lns.take(sent(conn)[0])
    result = ResultCode(StopCcnResult.NOT_AUTHORIZED, 0, "go away")
    (ack,) = exchange(conn, lns, lns.stopccn(result), 0.1)
    assert ack.is_zlb and ack.nr == 1
    assert conn.state is State.CLOSED and conn.get_timer() is None
    assert conn.failure is not None and conn.failure.kind is FailureKind.REFUSED
    assert conn.failure.detail == "the LNS refused the tunnel (result 4, error 0: go away)"


def test_stopccn_to_tunnel_65535_while_waiting_for_sccrp_is_taken() -> None:
    # xl2tpd answers an SCCRQ it cannot parse so (the Tunnel ID it never learned, as -1).
    conn, lns = started()
    lns.take(sent(conn)[0])
    exchange(conn, lns, lns.stopccn(ResultCode(2, 6, "Invalid Hidden AVP"), 0xFFFF), 0.1)
    assert conn.failure is not None and conn.failure.kind is FailureKind.REFUSED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tunnel_id": 0}, "non-zero Assigned Tunnel ID"),
        ({"version": b"\x02\x00"}, "protocol version 0200"),
    ],
)
def test_a_bad_sccrp_is_a_protocol_error(change: dict[str, Any], reason: str) -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    (stop,) = exchange(conn, lns, lns.sccrp(sccrq, **change), 0.1)
    assert stop.message_type is MessageType.STOPCCN
    assert conn.failure is not None and conn.failure.kind is FailureKind.PROTOCOL_ERROR
    assert reason in conn.failure.detail


def test_an_unknown_mandatory_avp_ends_the_tunnel_and_an_optional_one_is_ignored() -> None:
    conn, lns = established()
    (ack,) = exchange(conn, lns, lns.send(MessageType.HELLO, Avp(200, b"x", mandatory=False)), 1)
    assert ack.is_zlb and conn.state is State.ESTABLISHED
    (stop,) = exchange(conn, lns, lns.send(MessageType.HELLO, Avp(200, b"x")), 2)
    result = stop.result_code()
    assert result is not None and result.error == GeneralError.UNKNOWN_MANDATORY_AVP
    assert conn.failure is not None and conn.failure.kind is FailureKind.PROTOCOL_ERROR


def test_an_unknown_message_type_ends_the_tunnel_only_with_the_m_bit() -> None:
    conn, lns = established()
    head = Avp(AvpType.MESSAGE_TYPE, u16(99), mandatory=False)
    optional = encode(ControlMessage(LOCAL, 0, lns.ns, lns.nr, (head,)))
    lns.ns += 1
    (ack,) = exchange(conn, lns, optional, 1)
    assert ack.is_zlb and conn.state is State.ESTABLISHED
    (stop,) = exchange(conn, lns, lns.send(99), 2)
    assert stop.message_type is MessageType.STOPCCN
    assert conn.failure is not None and conn.failure.kind is FailureKind.PROTOCOL_ERROR
    assert conn.failure.detail == "unknown message type 99 with the M bit set"


def test_call_messages_are_acknowledged_and_ignored_by_a_tunnel_only_lac() -> None:
    conn, lns = established()
    (ack,) = exchange(
        conn, lns, lns.send(MessageType.OCRQ, Avp(AvpType.ASSIGNED_SESSION_ID, u16(5))), 1
    )
    assert ack.is_zlb and conn.state is State.ESTABLISHED and conn.failure is None


def test_an_sccrq_from_the_lns_is_a_state_machine_error() -> None:
    conn, lns = established()
    (stop,) = exchange(conn, lns, lns.send(MessageType.SCCRQ), 1)
    result = stop.result_code()
    assert result is not None and result.result == StopCcnResult.FSM_ERROR


# -- keepalive, duplicates, garbage ----------------------------------------------------------


def test_hello_is_acknowledged_with_a_zlb() -> None:
    conn, lns = established()
    (ack,) = exchange(conn, lns, lns.send(MessageType.HELLO), 60.0)
    assert ack.is_zlb and (ack.tunnel_id, ack.ns, ack.nr) == (LNS_TUNNEL, 2, 2)


def test_a_retransmitted_sccrp_is_acknowledged_again_not_answered_twice() -> None:
    conn, lns = started()
    sccrq = lns.take(sent(conn)[0])
    sccrp = lns.sccrp(sccrq)
    exchange(conn, lns, sccrp, 0.1)
    (again,) = exchange(conn, lns, sccrp, 1.1)
    assert again.is_zlb and again.nr == 1


def test_garbage_and_other_tunnels_are_dropped_and_counted() -> None:
    conn, lns = established()
    conn.receive_datagram(b"\x00garbage-datagram", LNS_ADDRESS, 1.0)
    assert conn.dropped == 1
    assert last_drop(conn) == "a data message (T bit clear), not a control message"
    conn.receive_datagram(lns.send(MessageType.HELLO, tunnel_id=LOCAL + 1), LNS_ADDRESS, 1.0)
    assert conn.dropped == 2 and "not ours" in last_drop(conn)
    assert sent(conn) == [] and conn.state is State.ESTABLISHED


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=60), max_size=5), st.sampled_from(["wait", "up"]))
def test_arbitrary_datagrams_never_raise(datagrams: list[bytes], phase: str) -> None:
    conn, _ = established() if phase == "up" else started()
    for i, datagram in enumerate(datagrams):
        header = bytes.fromhex("c802") + (12 + len(datagram)).to_bytes(2, "big") + u16(LOCAL)
        conn.receive_datagram(header + bytes(6) + datagram, LNS_ADDRESS, float(i))
        conn.receive_datagram(datagram, LNS_ADDRESS, float(i))
        sent(conn)


# -- time ------------------------------------------------------------------------------------


def test_sccrq_is_retransmitted_at_1_2_4_8_16_s_then_timeout() -> None:
    conn, _ = started()
    (sccrq,) = sent(conn)
    timers = [conn.get_timer()]
    for _ in range(4):
        conn.handle_timer(conn.get_timer() or 0.0)
        assert sent(conn) == [sccrq]
        timers.append(conn.get_timer())
    assert timers == [1.0, 3.0, 7.0, 15.0, 31.0]  # waits of 1, 2, 4, 8 and 16 s
    conn.handle_timer(30.999)
    assert conn.state is State.WAIT_CTL_REPLY
    conn.handle_timer(31.0)
    assert conn.state is State.CLOSED and conn.closed_at == 31.0
    assert conn.failure is not None and conn.failure.kind is FailureKind.TIMEOUT
    assert conn.failure.detail == "no answer to SCCRQ after 5 tries"
    assert sent(conn) == [] and conn.get_timer() is None


def test_stop_sends_stopccn_with_our_tunnel_id_and_closes_on_its_ack() -> None:
    conn, lns = established()
    conn.stop(5.0)
    (stop,) = [lns.take(d) for d in sent(conn)]
    assert stop.message_type is MessageType.STOPCCN and stop.tunnel_id == LNS_TUNNEL
    assert stop.get(AvpType.ASSIGNED_TUNNEL_ID) == u16(LOCAL)
    assert stop.result_code() == ResultCode(1, 0)
    assert conn.state is State.CLOSING and conn.get_timer() == 6.0
    exchange(conn, lns, lns.zlb(), 5.1)
    assert conn.state is State.CLOSED and conn.failure is None and conn.established


def test_an_unacknowledged_stopccn_times_out_after_the_tunnel_was_up() -> None:
    conn, _ = established()
    conn.stop(10.0)
    while conn.state is State.CLOSING:
        conn.handle_timer(conn.get_timer() or 0.0)
    assert conn.closed_at == 41.0 and conn.established
    assert conn.failure is not None and conn.failure.kind is FailureKind.TIMEOUT
    assert conn.failure.detail == "StopCCN not acknowledged after 5 tries"


def test_a_hello_we_send_that_is_never_acknowledged_times_the_tunnel_out() -> None:
    conn, _ = established()
    conn.hello(100.0)
    assert len(sent(conn)) == 1
    while conn.state is State.ESTABLISHED:
        conn.handle_timer(conn.get_timer() or 0.0)
    assert conn.state is State.CLOSED and conn.closed_at == 131.0
    assert conn.failure is not None and conn.failure.kind is FailureKind.TIMEOUT
