"""Nothing raises out of the engine (issue 14.11), whatever a registered NAS sends: the
invariant h11 holds its parser to, here for the whole request path."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from radiusgw.domain import Account
from radiusgw.engine import AccountingAnswer, Admission, Engine, ProxyAccounting, ProxyAuth
from radiusgw.radius import crypto
from radiusgw.radius.packet import MAX_LENGTH, encode_attributes
from tests.unit.engine.helpers import ACME_NAS, LAC_D, Accounts, engine, padding
from tests.unit.engine.test_engine import ALICE, NOW

SOURCES = {ACME_NAS: b"acme-secret", LAC_D: b"lac-secret"}
TARO = Account("auth.initech.example", "taro", "secret-pw", class_=b"c" * 200)

# The types the engine reads, and any other; values of any length that fits.
types = st.sampled_from(
    [1, 2, 3, 4, 5, 18, 25, 26, 32, 33, 40, 42, 43, 44, 46, 60, 80]
) | st.integers(0, 255)
users = st.sampled_from(
    [
        b"alice@acme.example",
        b"taro@auth.initech.example",
        b"x@vpn.initech.example",
        b"bob@globex.example",
        b"@",
        b"alice@",
        b"\xff\xfe@acme.example",
    ]
)
values = st.binary(max_size=253)
attribute = st.one_of(
    st.tuples(types, values),
    st.tuples(st.just(1), users),
    st.tuples(st.just(33), st.binary(min_size=200, max_size=253)),  # Proxy-State, big
    st.tuples(st.just(40), st.integers(0, 16).map(lambda n: n.to_bytes(4, "big"))),
)


def _engine() -> Engine:
    return engine(Accounts(ALICE, TARO))[0]


def _run(eng: Engine, data: bytes, source: tuple[str, int]) -> None:
    result = eng.on_auth(data, source, NOW)
    assert result is None or isinstance(result, bytes | Admission | ProxyAuth)
    if isinstance(result, bytes):
        assert len(result) <= MAX_LENGTH
    acct: Any = eng.on_acct(data, source, NOW)
    assert acct is None or isinstance(acct, bytes | AccountingAnswer | ProxyAccounting)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=MAX_LENGTH + 10), st.sampled_from(list(SOURCES)))
def test_arbitrary_bytes_from_a_registered_nas_raise_nothing(
    data: bytes, source: tuple[str, int]
) -> None:
    _run(_engine(), data, source)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([1, 4, 12]) | st.integers(0, 255),
    users,
    st.sampled_from([None, b"wonderland", b"secret-pw", b"guess", b""]),
    st.lists(attribute, max_size=20),
    st.none() | st.integers(MAX_LENGTH - 100, MAX_LENGTH),
    st.booleans(),
    st.binary(min_size=16, max_size=16),
    st.sampled_from(list(SOURCES)),
)
# The fuzz run of the issue: a VPDN accept (its tunnel attributes) longer than the request.
@example(1, b"x@vpn.initech.example", None, [], MAX_LENGTH, True, bytes(16), LAC_D)
def test_validly_signed_packets_with_any_attributes_raise_nothing(
    code: int,
    user: bytes,
    password: bytes | None,
    attrs: list[tuple[int, bytes]],
    pad_to: int | None,
    ma: bool,
    authenticator: bytes,
    source: tuple[str, int],
) -> None:
    """Signed with the NAS's secret, a right or wrong password, any other attributes, and
    padded with Proxy-State up to near the 4,096-octet limit."""
    secret = SOURCES[source]
    head = [(1, user)]
    if password is not None:
        head.append((2, crypto.hide_password(password, secret, authenticator)))
    overhead = 20 + (18 if ma else 0)
    while overhead + len(encode_attributes(head + attrs)) > MAX_LENGTH:
        attrs.pop()
    attrs = head + attrs
    if pad_to is not None:
        room = pad_to - overhead - len(encode_attributes(attrs))
        if room >= 3:
            attrs += padding(room)
    data = crypto.sign_request(
        code,
        7,
        encode_attributes(attrs),
        secret,
        authenticator=authenticator,
        message_authenticator=ma,
    )
    eng = _engine()
    _run(eng, data, source)
    _run(eng, data, source)  # and again, as a retransmission
