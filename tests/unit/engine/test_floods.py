"""Issue 14.12: forged floods are cheap to drop, and their log lines are bounded per worker."""

from __future__ import annotations

import os
from typing import Any

import pytest

from radiusgw.engine import core
from radiusgw.engine.droplog import BURST, RATE
from radiusgw.radius import crypto
from radiusgw.radius.attributes import Code
from radiusgw.radius.packet import Packet, decode, encode_attributes
from tests.unit.engine.helpers import ACME_NAS, Accounts, engine
from tests.unit.engine.test_engine import ALICE, NOW, accounting_request, pap_request

FLOOD_SECONDS = 10.0


def test_spoofed_sources_and_forged_packets_give_a_bounded_number_of_lines() -> None:
    """12,000 spoofed source addresses and 5,000 packets with a wrong Message-Authenticator
    from a registered NAS in 10 s: a few lines a second, and a summary that counts the rest."""
    eng, log = engine(Accounts(ALICE))
    forged = pap_request("alice@acme.example", b"wonderland", b"not-the-secret")
    total = 17_000
    for i in range(total):
        now = NOW + FLOOD_SECONDS * i / total
        if i % 17 < 12:
            spoofed = (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1812)
            assert eng.on_auth(forged, spoofed, now) is None
        else:
            assert eng.on_auth(forged, ACME_NAS, now) is None
    c = eng.counters
    assert (c.dropped_unknown_client, c.dropped_bad_authenticator) == (12_000, 5_000)
    lines = [e for e in log.events if e["event"] == "dropped"]
    assert len(lines) <= BURST + RATE * FLOOD_SECONDS
    eng.drop_log.flush()
    (summary,) = [e for e in log.events if e["event"] == "drops-suppressed"]
    written = {
        why: sum(1 for e in lines if e["reason"] == reason)
        for why, reason in (
            ("unknown_client", "source address is not a registered NAS"),
            ("bad_authenticator", "Message-Authenticator does not match"),
        )
    }
    assert summary["unknown_client"] == 12_000 - written["unknown_client"]
    assert summary["bad_authenticator"] == 5_000 - written["bad_authenticator"]
    assert summary["total"] == total - len(lines)
    eng.drop_log.flush()  # nothing more held: no second summary
    assert len([e for e in log.events if e["event"] == "drops-suppressed"]) == 1


def test_the_bucket_refills_so_drops_are_named_again_after_a_quiet_spell() -> None:
    eng, log = engine(Accounts(ALICE))
    forged = pap_request("alice@acme.example", b"wonderland", b"not-the-secret")
    for _ in range(100):
        eng.on_auth(forged, ACME_NAS, NOW)
    assert len([e for e in log.events if e["event"] == "dropped"]) == BURST
    eng.on_auth(forged, ACME_NAS, NOW + 60)
    assert len([e for e in log.events if e["event"] == "dropped"]) == BURST + 1


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The datagrams the engine decoded into attributes (counted by replacing the engine's
    ``decode``, which a mypyc-compiled engine does not look up at run time: these tests run in
    the pure-Python pass of ``make test``)."""
    if core.__file__ is not None and core.__file__.endswith(".so"):
        pytest.skip("the engine is compiled; the pure-Python pass counts its decodes")
    seen: list[bytes] = []

    def counting(data: bytes) -> Packet:
        seen.append(data)
        return decode(data)

    monkeypatch.setattr(core, "decode", counting)
    return seen


def _forged(code: int, *, ma: str) -> bytes:
    """4 KB of 2-octet attributes with no valid authenticator: ``ma`` none, first or last."""
    attrs = b"\x21\x02" * ((4096 - 20 - (18 if ma != "none" else 0)) // 2)
    fake_ma = bytes((80, 18)) + os.urandom(16)
    body = fake_ma + attrs if ma == "first" else attrs + fake_ma if ma == "last" else attrs
    return bytes((code, 1)) + (20 + len(body)).to_bytes(2, "big") + os.urandom(16) + body


@pytest.mark.parametrize(
    ("code", "ma", "counter"),
    [
        (Code.ACCESS_REQUEST, "none", "dropped_malformed"),  # past 200 attributes, unsigned
        (Code.ACCESS_REQUEST, "first", "dropped_bad_authenticator"),
        (Code.ACCESS_REQUEST, "last", "dropped_malformed"),  # the walk stops at 200
        (Code.STATUS_SERVER, "last", "dropped_malformed"),
        (Code.ACCOUNTING_REQUEST, "none", "dropped_bad_authenticator"),
    ],
)
def test_a_forged_packet_is_dropped_before_its_attributes_are_decoded(
    decodes: list[bytes], code: int, ma: str, counter: str
) -> None:
    eng, _ = engine(Accounts(ALICE))
    data = _forged(code, ma=ma)
    assert len(data) == 4096
    on: Any = eng.on_acct if code == Code.ACCOUNTING_REQUEST else eng.on_auth
    assert on(data, ACME_NAS, NOW) is None
    assert getattr(eng.counters, counter) == 1
    assert decodes == []


def test_a_forged_packet_of_few_attributes_is_dropped_undecoded_wherever_its_ma(
    decodes: list[bytes],
) -> None:
    eng, _ = engine(Accounts(ALICE))
    for extra_before in (0, 3):
        attrs = [(33, b"x")] * extra_before + [(80, bytes(16)), (1, b"alice@acme.example")]
        data = crypto.sign_request(
            Code.ACCESS_REQUEST, 1, encode_attributes(attrs), b"s", message_authenticator=False
        )
        assert eng.on_auth(data, ACME_NAS, NOW) is None
    assert eng.on_acct(accounting_request(b"wrong"), ACME_NAS, NOW) is None
    assert eng.counters.dropped_bad_authenticator == 3
    assert decodes == []


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_genuine_request_is_decoded_once_wherever_its_message_authenticator(
    decodes: list[bytes], where: str
) -> None:
    secret = b"acme-secret"
    auth = os.urandom(16)
    attrs = [
        (1, b"alice@acme.example"),
        (2, crypto.hide_password(b"wonderland", secret, auth)),
        (33, b"\x50\x12" + bytes(16)),  # a Proxy-State that looks like one at the end
    ]
    ma_at = {"first": 0, "middle": 2, "last": 3}[where]
    attrs.insert(ma_at, (80, bytes(16)))
    body = encode_attributes(attrs)
    header = bytes((Code.ACCESS_REQUEST, 9)) + (20 + len(body)).to_bytes(2, "big")
    offset = 20 + len(encode_attributes(attrs[:ma_at])) + 2
    mac = crypto.hmac_md5(secret, header + auth + body)
    req = header + auth + body[: offset - 20] + mac + body[offset + 16 - 20 :]
    eng, _ = engine(Accounts(ALICE))
    answer = eng.on_auth(req, ACME_NAS, NOW)
    assert isinstance(answer, bytes) and answer[0] == Code.ACCESS_ACCEPT
    assert decodes == [req]
