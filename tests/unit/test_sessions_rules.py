"""The session rules (radiusgw.sessions): the transition table, its reference model, and every
store backend held to the model by random event sequences (issue 15.1).

Each backend (``backend``, ``database``: tests/conftest.py) is one database per test, opened by
``open_backend`` and emptied before each example (tests/stores.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiusgw.accounting import AccountingEvent
from radiusgw.domain import AccountingRecord, AdmissionRequest, SessionRow
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.sessions import (
    EVENT_OF_STATUS,
    TRANSITIONS,
    Event,
    SessionModel,
    State,
    Step,
    month_of,
)
from radiusgw.store.backend import Backend, open_backend
from tests.stores import empty_sessions

T0 = dt.datetime(2025, 3, 30, 22, tzinfo=dt.UTC).timestamp()  # two hours before April (UTC)
REALMS = ("acme.example", "globex.example")
NAS = ("198.51.100.7", "198.51.100.8")


def write(store: Backend, events: Sequence[AccountingEvent]) -> None:
    """The events as the accounting writer hands them to the store: records carrying them."""
    records = [
        AccountingRecord(
            e.received, e.nas_address, e.realm, e.user_name, int(e.status), e.session_id, b"", e
        )
        for e in events
    ]
    assert store.write_accounting(records) == []


def reserve(store: Backend, realm: str, username: str, now: float) -> None:
    request = AdmissionRequest(realm, username, realm_max=10_000, reservation_ttl=30.0)
    assert store.admit([request], now)[0].admitted


# -- the table itself ----------------------------------------------------------------------------

RECORD_EVENTS = (Event.START, Event.INTERIM, Event.STOP)


def test_every_state_has_a_transition_for_every_record() -> None:
    for state in State:
        for event in RECORD_EVENTS:
            assert (state, event) in TRANSITIONS, (state, event)


def test_a_stop_is_final_and_a_duplicate_start_changes_nothing() -> None:
    for event in RECORD_EVENTS:
        assert TRANSITIONS[(State.STOPPED, event)].step is Step.IGNORE
    for state in (State.LIVE, State.SILENT, State.CLOSED):
        assert TRANSITIONS[(state, Event.START)].step is Step.IGNORE


def test_accounting_on_and_off_are_a_nas_restart_and_tunnel_types_no_event() -> None:
    # RFC 2866 §5.1: Accounting-On/Off; RFC 2867 §4.1 tunnel types change no session
    assert EVENT_OF_STATUS[int(AcctStatusType.ACCOUNTING_ON)] is Event.NAS_RESTART
    assert EVENT_OF_STATUS[int(AcctStatusType.ACCOUNTING_OFF)] is Event.NAS_RESTART
    assert int(AcctStatusType.TUNNEL_START) not in EVENT_OF_STATUS


# -- the backends against the model --------------------------------------------------------------


@dataclass(frozen=True)
class Acct:
    delta: float
    status: AcctStatusType
    nas: int
    sid: str | None
    realm: int
    user: str
    octets: tuple[int, int]
    session_time: int | None
    interim: int | None
    delay: int
    lns: str | None
    framed_ip: str | None
    cause: int | None


@dataclass(frozen=True)
class Sweep:
    delta: float
    default_interval: float


@dataclass(frozen=True)
class Reserve:
    delta: float
    realm: int
    user: str


@dataclass(frozen=True)
class Flush:
    """Ends a write_accounting batch: the events before it are written in one call."""


_deltas = st.one_of(
    st.integers(0, 120).map(float), st.sampled_from([0.25, 700.0, 2000.0, 86_400.0 * 20])
)
_octets = st.one_of(
    st.integers(0, 10_000),
    st.sampled_from([2**32 - 1, 2**32, 2**33 + 5, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)
_acct = st.builds(
    Acct,
    delta=_deltas,
    status=st.sampled_from(
        [
            AcctStatusType.START,
            AcctStatusType.INTERIM_UPDATE,
            AcctStatusType.STOP,
            AcctStatusType.START,
            AcctStatusType.INTERIM_UPDATE,
            AcctStatusType.STOP,
            AcctStatusType.ACCOUNTING_ON,
            AcctStatusType.ACCOUNTING_OFF,
            AcctStatusType.TUNNEL_START,
        ]
    ),
    nas=st.integers(0, 1),
    sid=st.sampled_from(["s1", "s2", "s3", None]),
    realm=st.integers(0, 1),
    user=st.sampled_from(["alice", "bob"]),
    octets=st.tuples(_octets, _octets),
    session_time=st.one_of(st.none(), st.integers(0, 5000), st.just(2**32 - 1)),
    interim=st.sampled_from([None, 0, 60, 600]),
    delay=st.sampled_from([0, 0, 0, 5, 300]),
    lns=st.sampled_from([None, "192.0.2.10", "192.0.2.11"]),
    framed_ip=st.sampled_from([None, "10.0.0.7"]),
    cause=st.sampled_from([None, 1, 6]),
)
_ops = st.lists(
    st.one_of(
        _acct,
        _acct,
        _acct,
        _acct,
        st.builds(Sweep, delta=_deltas, default_interval=st.sampled_from([60.0, 600.0])),
        st.builds(Reserve, delta=_deltas, realm=st.integers(0, 1), user=st.just("alice")),
        st.just(Flush()),
    ),
    max_size=40,
)


def _event(op: Acct, now: float) -> AccountingEvent:
    return AccountingEvent(
        status=op.status,
        nas_address=NAS[op.nas],
        received=now,
        event_time=now - op.delay,
        realm=REALMS[op.realm],
        user_name=f"{op.user}@{REALMS[op.realm]}",
        username=op.user,
        session_id=op.sid,
        nas_ip_address=NAS[op.nas],
        nas_identifier="nas",
        input_octets=op.octets[0],
        output_octets=op.octets[1],
        session_time=op.session_time,
        terminate_cause=op.cause,
        interim_interval=op.interim,
        lns=op.lns,
        framed_ip=op.framed_ip,
        delay=op.delay,
    )


def _unnumbered(rows: Sequence[SessionRow]) -> list[SessionRow]:
    """Rows without their ids (a backend numbers its rows its own way), in order made."""
    return [replace(row, id=0) for row in rows]


@pytest.fixture
def store(database: str, tmp_path: Path) -> Iterator[Backend]:
    """Opened once per test; each example empties it first."""
    opened = open_backend(database, tmp_path / "gw.db.key")
    yield opened
    opened.close()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=_ops)
def test_a_backend_follows_the_session_rules(
    database: str, store: Backend, ops: list[Acct | Sweep | Reserve | Flush]
) -> None:
    model = SessionModel()
    now = T0
    months = {month_of(T0 - 86_400 * 40)}
    empty_sessions(database)
    batch: list[AccountingEvent] = []
    for op in ops:
        if isinstance(op, Flush):
            write(store, batch)
            batch = []
            continue
        now += op.delta
        months.add(month_of(now))
        if isinstance(op, Acct):
            event = _event(op, now)
            batch.append(event)
            model.apply_one(event)
            continue
        write(store, batch)  # what comes before a sweep or an admission is in the store
        batch = []
        if isinstance(op, Sweep):
            expected = model.expire_stale(now, op.default_interval)
            closed = store.expire_stale(now, op.default_interval)
            # In no particular order: a backend may walk its live sessions as it likes.
            assert sorted(_unnumbered(closed), key=repr) == sorted(_unnumbered(expected), key=repr)
        else:
            reserve(store, REALMS[op.realm], op.user, now)
    write(store, batch)
    assert _unnumbered(store.sessions()) == _unnumbered(model.rows())
    for realm in REALMS:
        for month in sorted(months):
            assert store.usage(realm, month) == model.usage(realm, month), (realm, month)
        assert store.month_octets(realm, now) == model.month_octets(realm, now)
