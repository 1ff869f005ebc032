"""How each backend's ``apply_events`` writes sessions: values as the records say them, and one
batch equal to its records one at a time, whatever the stream.

The records carry the event the engine parsed (``AccountingRecord.event``), as the server's
accounting writer sends them, so the events' fields are set here directly. Each test runs once
per backend (tests/unit/store/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radiusgw.accounting import AccountingEvent
from radiusgw.domain import AdmissionRequest
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.store import AccountingRecord
from radiusgw.store.backend import Backend, open_backend
from tests.stores import empty_sessions

REALM = "acme.example"
NAS = "198.51.100.7"
T0 = 1_741_564_800.0  # 2025-03-10 UTC


def event_record(status: AcctStatusType, **fields: Any) -> AccountingRecord:
    fields.setdefault("realm", REALM)
    fields.setdefault("username", "alice")
    fields.setdefault("session_id", "s1")
    fields.setdefault("received", T0)
    fields.setdefault("event_time", fields["received"])
    fields.setdefault("nas_address", NAS)
    event = AccountingEvent(status=status, **fields)
    return AccountingRecord(
        event.received,
        event.nas_address,
        event.realm,
        event.username,
        int(status),
        event.session_id,
        b"parsed on receipt",
        event=event,
    )


def test_absent_values_are_null_and_empty_or_zero_ones_are_kept(store: Backend) -> None:
    assert (
        store.write_accounting(
            [
                event_record(AcctStatusType.START, session_id="", nas_identifier="", username=""),
                event_record(AcctStatusType.STOP, session_id="", terminate_cause=0, username=""),
                event_record(
                    AcctStatusType.START,
                    session_id="full",
                    lns="192.0.2.10",
                    nas_ip_address="198.51.100.1",
                    nas_identifier="lac-1",
                    framed_ip="100.64.0.1",
                    interim_interval=0,  # 0 means absent
                ),
                event_record(AcctStatusType.STOP, session_id="none", terminate_cause=None),
            ]
        )
        == []
    )
    found = [
        (
            r.acct_session_id,
            r.username,
            r.lns,
            r.nas_ip_address,
            r.nas_identifier,
            r.framed_ip,
            r.interim_interval,
            r.terminate_cause,
            r.closed_by,
        )
        for r in store.sessions()
    ]
    assert found == [
        ("", "", None, None, "", None, None, 0, "stop"),
        ("full", "alice", "192.0.2.10", "198.51.100.1", "lac-1", "100.64.0.1", None, None, None),
        ("none", "alice", None, None, None, None, None, None, "stop"),
    ]


_STATUSES = [
    AcctStatusType.START,
    AcctStatusType.INTERIM_UPDATE,
    AcctStatusType.STOP,
    AcctStatusType.ACCOUNTING_ON,
]
_EVENTS = st.lists(
    st.builds(
        event_record,
        st.sampled_from(_STATUSES),
        nas_address=st.sampled_from([NAS, "198.51.100.8"]),
        session_id=st.sampled_from(["a", "b", "c"]),
        username=st.sampled_from(["alice", "bob"]),
        received=st.integers(0, 200).map(lambda s: T0 + s),
        input_octets=st.integers(0, 2**40),
        session_time=st.none() | st.integers(0, 100),
        lns=st.none() | st.sampled_from(["192.0.2.1", "192.0.2.2"]),
        terminate_cause=st.none() | st.integers(0, 20),
    ),
    max_size=25,
)


_HELD = st.lists(
    st.builds(
        AdmissionRequest,
        st.just(REALM),
        st.sampled_from(["alice", "bob"]),
        st.none() | st.sampled_from(["192.0.2.1", "192.0.2.2"]),
        realm_max=st.just(10),
    ),
    max_size=4,
)


def reservations(store: Backend) -> list[int]:
    """The unexpired reservations per user and LNS (none, or one of two): which were consumed."""
    counts = []
    for user in ("alice", "bob"):
        for lns in (None, "192.0.2.1", "192.0.2.2"):
            where: dict[str, Any] = {"realm": REALM, "username": user, "lns": lns}
            counts.append(store.count_live(reserved_at=T0, **where) - store.count_live(**where))
    return counts


@pytest.fixture
def two_databases(new_database: Callable[[], str]) -> tuple[str, str]:
    """Made once per test; each example starts from them emptied (tests/stores.py): a new
    PostgreSQL database per example would cost more than the example."""
    return new_database(), new_database()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=_EVENTS, held=_HELD)
def test_one_batch_equals_its_records_one_at_a_time(
    two_databases: tuple[str, str],
    key_path: Path,
    records: list[AccountingRecord],
    held: list[AdmissionRequest],
) -> None:
    # Repeated keys, NAS restarts and reservations to consume, in any order.
    results = []
    for database, batches in zip(two_databases, ([records], [[r] for r in records]), strict=True):
        store = open_backend(database, key_path)
        try:
            empty_sessions(database)
            store.admit(held, T0)
            for batch in batches:
                assert store.write_accounting(batch) == []
            results.append((store.sessions(), reservations(store)))
        finally:
            store.close()
    assert results[0] == results[1]
